//! Objects in an S3-compatible bucket (issue #12): `<prefix>objects/<2 hex>/<64 hex>`.
//!
//! The interface is synchronous and runs on the caller's blocking pool; the S3 client is async.
//! Every call is spawned onto a small runtime owned by the backend and awaited through a
//! `std` channel. Unlike `Handle::block_on` that cannot panic when misused from async code,
//! and the client's connection pool lives on threads that no caller can starve. The hop costs
//! a few microseconds, nothing next to an S3 round trip.
//!
//! Publish order, which keeps the rule that metadata never names bytes S3 has not acknowledged:
//! stages spool to a local file (bounded memory), and `publish` uploads it. Objects up to
//! [`SINGLE_PUT_MAX`] go in one `PutObject` with `If-None-Match: *`, so exactly one of several
//! concurrent publishers of the same id gets `New`. Larger objects go through multipart
//! upload, whose completion `object_store` cannot make conditional; see [`S3Objects::publish`].

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};

use super::{ObjectBackend, PartKey, Published, TempObject};
use crate::digest::ObjectId;

/// Objects up to this size are uploaded in one conditional `PutObject` (held in memory once).
pub(crate) const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;
/// Bytes fetched by one ranged GET of a reader; a reader holds at most one window.
pub(crate) const READ_WINDOW: u64 = 4 * 1024 * 1024;
/// Worker threads of the client runtime: they only move bytes between sockets and buffers.
const IO_THREADS: usize = 2;

/// The client and the runtime it runs on, shared with every open reader.
#[derive(Debug)]
struct Client {
    store: Arc<dyn ObjectStore>,
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Client {
    /// Runs `fut` on the client runtime and waits for it on the calling (blocking) thread.
    fn run<T, F>(&self, fut: F) -> Result<T, S3Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            // The receiver only goes away if the caller's thread died; nothing to report to.
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| S3Error::RuntimeGone)
    }
}

impl Drop for Client {
    /// Shutting down in the background is allowed from async code too, where the last reader
    /// may well be dropped; a plain runtime drop would panic there.
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Objects in an S3-compatible bucket, spooled through a local directory.
#[derive(Debug)]
pub(crate) struct S3Objects {
    client: Arc<Client>,
    /// The configured prefix, under which every store gets its own directory of keys.
    base: Key,
    /// `<prefix>objects` (or `<prefix><store>/objects` for a store's scoped view).
    root: Key,
    /// `<prefix>uploads` (or `<prefix><store>/uploads`): upload session parts.
    uploads: Key,
    spool: PathBuf,
    counter: AtomicU64,
}

impl S3Objects {
    /// Connects to the bucket described by `config`, spooling temporary objects in `spool`
    /// (created 0700 if missing). Does not touch the network; see [`S3Objects::check`].
    #[cfg(test)]
    pub(crate) fn open(config: &S3Config, spool: &Path) -> io::Result<Self> {
        crate::perms::create_dir_all(spool)?;
        Self::connect(config, spool)
    }

    /// [`S3Objects::open`] without creating `spool`: for a backend that only checks the
    /// bucket and hands out [`S3Objects::scoped`] views, so a failed check leaves no trace.
    pub(crate) fn connect(config: &S3Config, spool: &Path) -> io::Result<Self> {
        Self::connect_with(config, spool, retry_config())
    }

    /// Checks the bucket with a client that does not retry, so that a start on a wrong or
    /// unreachable endpoint fails at once with one error instead of after a series of
    /// retries (each logged); the serving client keeps its retries for transient failures.
    pub(crate) fn check_once(config: &S3Config, spool: &Path) -> io::Result<()> {
        let no_retries = RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        };
        Self::connect_with(config, spool, no_retries)?.check()
    }

    fn connect_with(config: &S3Config, spool: &Path, retry: RetryConfig) -> io::Result<Self> {
        let base = base_key(&config.prefix)?;
        let root = base.clone().join("objects");
        let uploads = base.clone().join("uploads");
        let store = build_store(config, retry)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("everlock-s3")
            .enable_all()
            .build()?;
        let client = Client {
            store: Arc::new(store),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        };
        Ok(Self {
            client: Arc::new(client),
            base,
            root,
            uploads,
            spool: spool.to_path_buf(),
            counter: AtomicU64::new(0),
        })
    }

    /// Lists one level under the prefix, so that a wrong endpoint, bucket or credentials
    /// fail at startup with one clear error instead of at the first push.
    pub(crate) fn check(&self) -> io::Result<()> {
        let store = self.client.store.clone();
        let root = self.root.clone();
        let err = request("list", &self.root);
        self.client
            .run(async move { store.list_with_delimiter(Some(&root)).await })?
            .map_err(err)?;
        Ok(())
    }

    /// The objects of store `name` (`<prefix><name>/objects/...`), spooled in `spool`
    /// (created 0700 if missing). The view shares this backend's client and its connection
    /// pool, so a server with many stores still runs one S3 runtime.
    pub(crate) fn scoped(&self, name: &str, spool: &Path) -> io::Result<Self> {
        let part = object_store::path::PathPart::parse(name)
            .map_err(|e| S3Error::Config(format!("store name {name:?} is not a valid key: {e}")))?;
        crate::perms::create_dir_all(spool)?;
        Ok(Self {
            client: self.client.clone(),
            base: self.base.clone(),
            root: self.base.clone().join(part.clone()).join("objects"),
            uploads: self.base.clone().join(part).join("uploads"),
            spool: spool.to_path_buf(),
            counter: AtomicU64::new(0),
        })
    }

    /// A fresh name in the spool directory.
    fn spool_path(&self) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.spool
            .join(format!("{}-{nanos}-{n}", std::process::id()))
    }

    /// The key of an object.
    pub(crate) fn key_of(&self, id: &ObjectId) -> Key {
        let hex = id.to_hex();
        let fan = hex.get(..2).unwrap_or("00").to_owned();
        self.root.clone().join(fan).join(hex)
    }

    /// Whether `key` exists, by a HEAD request.
    fn head(&self, key: &Key) -> io::Result<bool> {
        let store = self.client.store.clone();
        let k = key.clone();
        match self.client.run(async move { store.head(&k).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(request("head", key)(e).into()),
        }
    }

    /// One conditional `PutObject`: `If-None-Match: *` makes S3 pick exactly one winner.
    fn put_small(&self, temp: &S3Temp, key: &Key) -> io::Result<Published> {
        self.put_spooled(temp, key, PutMode::Create)
    }

    /// One `PutObject` of a spool file held in memory once, with `mode`.
    fn put_spooled(&self, temp: &S3Temp, key: &Key, mode: PutMode) -> io::Result<Published> {
        let mut bytes = Vec::with_capacity(usize::try_from(temp.written).unwrap_or(0));
        let mut file = &temp.file;
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        check_len(key, temp.written, bytes.len() as u64)?;
        let store = self.client.store.clone();
        let k = key.clone();
        let opts = PutOptions::from(mode);
        let put = async move { store.put_opts(&k, PutPayload::from(bytes), opts).await };
        match self.client.run(put)? {
            Ok(_) => Ok(Published::New),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Published::AlreadyPresent),
            Err(e) => Err(request("put", key)(e).into()),
        }
    }

    /// Multipart upload straight from the spool file, a bounded number of parts at a time.
    fn put_large(&self, temp: &S3Temp, key: &Key) -> io::Result<Published> {
        if self.head(key)? {
            return Ok(Published::AlreadyPresent);
        }
        self.put_multipart(temp, key)?;
        Ok(Published::New)
    }

    /// An unconditional multipart upload of a spool file.
    fn put_multipart(&self, temp: &S3Temp, key: &Key) -> io::Result<()> {
        let file = tokio::fs::File::from_std(temp.file.try_clone()?);
        let store = self.client.store.clone();
        let k = key.clone();
        let expected = temp.written;
        self.client
            .run(upload_multipart(store, k, file, expected))??;
        Ok(())
    }

    /// A reader of any key, after a HEAD for its length.
    fn open_key(&self, key: Key) -> io::Result<S3Reader> {
        let store = self.client.store.clone();
        let k = key.clone();
        let meta = self
            .client
            .run(async move { store.head(&k).await })?
            .map_err(request("head", &key))?;
        Ok(S3Reader::new(self.client.clone(), key, meta.size))
    }

    /// Deletes a key; a missing key is not an error (S3 does not tell them apart anyway).
    fn delete_key(&self, key: &Key) -> io::Result<()> {
        let store = self.client.store.clone();
        let k = key.clone();
        match self.client.run(async move { store.delete(&k).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(request("delete", key)(e).into()),
        }
    }

    /// Every key under `prefix` (for sweeps only: correctness never depends on a listing).
    fn list_keys(&self, prefix: &Key) -> io::Result<Vec<object_store::ObjectMeta>> {
        let store = self.client.store.clone();
        let root = prefix.clone();
        Ok(self
            .client
            .run(async move {
                store
                    .list(Some(&root))
                    .try_collect::<Vec<object_store::ObjectMeta>>()
                    .await
            })?
            .map_err(request("list", prefix))?)
    }
}

impl ObjectBackend for S3Objects {
    type Temp = S3Temp;
    type Reader = S3Reader;

    fn create_temp(&self) -> io::Result<S3Temp> {
        let path = self.spool_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(crate::perms::FILE_MODE)
            .open(&path)?;
        Ok(S3Temp {
            file,
            path,
            written: 0,
        })
    }

    /// Moves a finished upload file into the spool instead of copying it: upload sessions
    /// live next to the spool in the store directory, so a rename saves writing every byte
    /// twice before the upload. Across filesystems it falls back to the copy.
    fn adopt(&self, path: PathBuf) -> io::Result<S3Temp> {
        let spooled = self.spool_path();
        match fs::rename(&path, &spooled) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(18) => {
                // EXDEV: not on one filesystem.
                let mut source = File::open(&path)?;
                let mut temp = self.create_temp()?;
                super::copy_into(&mut source, &mut temp)?;
                fs::remove_file(&path)?;
                return Ok(temp);
            }
            Err(e) => return Err(e),
        }
        // From here on the temp owns the file and deletes it when dropped.
        let file = OpenOptions::new().read(true).write(true).open(&spooled);
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&spooled);
                return Err(e);
            }
        };
        let mut temp = S3Temp {
            file,
            path: spooled,
            written: 0,
        };
        temp.written = temp.file.metadata()?.len();
        // Appends, if any, go after the adopted bytes.
        temp.file.seek(SeekFrom::End(0))?;
        Ok(temp)
    }

    /// Small objects: one `PutObject` with `If-None-Match: *`, so concurrent publishers of one
    /// id get exactly one `New`. Large objects: a HEAD (an existing object is a dedupe hit and
    /// costs no upload), then an unconditional multipart upload, because `object_store` only
    /// sends `If-None-Match` on `CompleteMultipartUpload` inside `copy_if_not_exists`. Two
    /// nodes publishing the same large id at the same moment therefore both upload and both
    /// report `New`; the last completion wins. That is harmless: the key is the blake3 hash
    /// of the bytes, checked before publish, so both write identical bytes, a reader never
    /// sees anything else, and callers only use the outcome for dedupe statistics.
    fn publish(&self, temp: S3Temp, id: &ObjectId) -> io::Result<Published> {
        let key = self.key_of(id);
        let outcome = if temp.written <= SINGLE_PUT_MAX {
            self.put_small(&temp, &key)
        } else {
            self.put_large(&temp, &key)
        };
        temp.discard();
        outcome
    }

    fn open(&self, id: &ObjectId) -> io::Result<S3Reader> {
        self.open_key(self.key_of(id))
    }

    fn exists(&self, id: &ObjectId) -> io::Result<bool> {
        self.head(&self.key_of(id))
    }

    /// S3 deletes succeed whether or not the key exists, so a HEAD tells which it was. Only
    /// the GC removes objects, one node at a time, so the HEAD/DELETE gap has no competitor.
    fn remove(&self, id: &ObjectId) -> io::Result<bool> {
        let key = self.key_of(id);
        if !self.head(&key)? {
            return Ok(false);
        }
        self.delete_key(&key)?;
        Ok(true)
    }

    /// Lists `<prefix>objects/` (only the GC's orphan sweep uses this, never correctness).
    fn list(&self) -> io::Result<Vec<(ObjectId, SystemTime)>> {
        let metas = self.list_keys(&self.root)?;
        // A key whose name is not an object id was not written by us; leave it alone.
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let id = m.location.filename()?.parse::<ObjectId>().ok()?;
                (m.location == self.key_of(&id)).then(|| (id, SystemTime::from(m.last_modified)))
            })
            .collect())
    }

    /// Removes leftover spool files. Multipart uploads cut short by a crash are not listed by
    /// `object_store`; a bucket lifecycle rule (`AbortIncompleteMultipartUpload`) expires them.
    fn clean_temp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.spool)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn put_part(&self, part: &PartKey, temp: S3Temp) -> io::Result<()> {
        self.put_part_key(part, temp)
    }

    fn open_part(&self, part: &PartKey) -> io::Result<S3Reader> {
        self.open_key(self.part_key(part))
    }

    fn remove_parts(&self, parts: &[PartKey]) -> io::Result<()> {
        for part in parts {
            self.delete_key(&self.part_key(part))?;
        }
        Ok(())
    }

    fn list_parts(&self) -> io::Result<Vec<(PartKey, SystemTime)>> {
        self.list_part_keys()
    }
}

mod config;
mod error;
mod parts;
mod reader;
mod upload;
pub use config::S3Config;
use config::{base_key, build_store, retry_config};
pub(crate) use error::S3Error;
use error::request;
pub(crate) use reader::S3Reader;
pub(crate) use upload::S3Temp;
use upload::{check_len, upload_multipart};
