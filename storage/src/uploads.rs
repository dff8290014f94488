//! Resumable upload sessions: content that arrives in several requests (OCI chunked and
//! streamed uploads), survives a restart, and becomes an object only when it is finished.
//!
//! A session is a row of the `uploads` table plus the file `uploads/<id>` in the store
//! directory (not `tmp/`, which is emptied at every open). An append streams the request body
//! to the end of the file while hashing it, `fdatasync`s, and only then records the new offset:
//! the row's offset is always a durable prefix of the file. After a crash the file may be
//! longer than the offset; the next append cuts it back first.
//!
//! The running hash state lives in memory only. After a restart it is rebuilt by re-reading the
//! file once (reference/storage.md §2 allows "saved or re-hashed on resume"), which costs one
//! sequential read and keeps the table free of hasher internals.
//!
//! Finishing checks the announced digest, then publishes the file as an object exactly like a
//! stage does (link into `objects/`, directory fsync, object row), so the caller commits it with
//! an ordinary [`crate::Op::Put`].

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::hashing::{Digests, MultiHasher};
use crate::meta::{self, UploadRow};
use crate::path::validate_path;
use crate::store::{Inner, Store};
use crate::types::ObjectRef;

/// Bytes read from the caller per chunk.
const CHUNK: usize = 1024 * 1024;
/// Chunks queued per worker, as in `stage`.
const DEPTH: usize = 3;
/// Writeback of a long append is started every this many bytes (see `objects::fs`).
const WRITEBACK_WINDOW: u64 = 16 * 1024 * 1024;

/// A resumable upload session as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSession {
    /// The session id: 32 lowercase hex digits, unguessable.
    pub id: String,
    /// The caller's label (for OCI, the repository the upload belongs to).
    pub path: String,
    /// When the session started, in milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// Bytes received and durably stored so far.
    pub offset: u64,
    /// When the session expires unless more data arrives, in milliseconds since the epoch.
    pub expires_ms: i64,
}

impl From<UploadRow> for UploadSession {
    fn from(r: UploadRow) -> Self {
        UploadSession {
            id: r.id,
            path: r.path,
            started_ms: r.started_ms,
            offset: r.offset,
            expires_ms: r.lease_until_ms,
        }
    }
}

/// The running hash of a session's first `offset` bytes.
struct Hashed {
    hasher: MultiHasher,
    offset: u64,
}

type Slot = Arc<tokio::sync::Mutex<Option<Hashed>>>;

/// The in-process side of the sessions: their directory and the live hash states.
pub(crate) struct Uploads {
    dir: PathBuf,
    live: Mutex<HashMap<String, Slot>>,
}

impl fmt::Debug for Uploads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uploads").field("dir", &self.dir).finish()
    }
}

impl Uploads {
    /// Uses `<store>/uploads`, creating it if needed.
    pub(crate) fn open(store_dir: &Path) -> Result<Uploads> {
        let dir = store_dir.join("uploads");
        if !dir.is_dir() {
            fs::create_dir(&dir)?;
            sync_dir(store_dir)?;
        }
        Ok(Uploads {
            dir,
            live: Mutex::new(HashMap::new()),
        })
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The lock of one session: held while a request appends to or finishes it.
    fn slot(&self, id: &str) -> Slot {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    fn forget(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// Startup recovery: drops rows whose file is gone and files that no row owns, so a crash at
/// any point of `upload_start` or `upload_cancel` leaves nothing behind.
pub(crate) fn recover(inner: &Inner) -> Result<()> {
    let rows = meta::all_uploads(&inner.writer())?;
    let mut owned = std::collections::HashSet::new();
    for row in rows {
        if inner.uploads.file(&row.id).is_file() {
            owned.insert(row.id);
        } else {
            tracing::warn!(id = %row.id, "upload session without its file; dropping it");
            meta::delete_upload(&inner.writer(), &row.id)?;
        }
    }
    let mut removed = 0;
    for entry in fs::read_dir(&inner.uploads.dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !owned.contains(name.to_string_lossy().as_ref()) && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(&inner.uploads.dir)?;
    }
    Ok(())
}

impl Store {
    /// Starts a resumable upload labelled `path` that expires `ttl` after its last append.
    pub async fn upload_start(&self, path: &str, ttl: Duration) -> Result<UploadSession> {
        validate_path(path)?;
        let path = path.to_owned();
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| StorageError::Worker(format!("random: {e}")))?;
        let id = hex::encode(raw);
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.blocking(move |inner| {
            // The file first: a crash before the row leaves an orphan file that `recover`
            // removes, never a row without its file.
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(inner.uploads.file(&id))?
                .sync_all()?;
            sync_dir(&inner.uploads.dir)?;
            let now = meta::now_ms();
            let row = UploadRow {
                id,
                path,
                started_ms: now,
                offset: 0,
                ttl_ms,
                lease_until_ms: now.saturating_add(ttl_ms),
            };
            meta::insert_upload(&inner.writer(), &row)?;
            Ok(row.into())
        })
        .await
    }

    /// A live session; `None` when the id is unknown, malformed or expired.
    pub async fn upload_session(&self, id: &str) -> Result<Option<UploadSession>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let id = id.to_owned();
        self.blocking(move |inner| live_row(inner, &id).map(|r| r.map(Into::into)))
            .await
    }

    /// Appends a stream to a session. With `at`, the append must start exactly there
    /// (otherwise [`StorageError::Conflict`], which OCI answers with 416). Another request
    /// still writing the same session is a conflict too. Returns the session after the append,
    /// once the data is durable; a reader error leaves the session at its previous offset.
    pub async fn upload_append<R>(
        &self,
        id: &str,
        at: Option<u64>,
        reader: R,
    ) -> Result<UploadSession>
    where
        R: AsyncRead + Unpin + Send,
    {
        let not_found = || StorageError::NotFound(format!("upload {id}"));
        if !valid_id(id) {
            return Err(not_found());
        }
        let slot = self.inner.uploads.slot(id);
        let Ok(mut guard) = slot.try_lock() else {
            return Err(StorageError::Conflict {
                path: format!("upload {id}"),
                expected: "no other request writing".into(),
                found: "a request still writing".into(),
            });
        };
        let owned = id.to_owned();
        let row = self
            .blocking(move |inner| live_row(inner, &owned))
            .await?
            .ok_or_else(not_found)?;
        if let Some(at) = at
            && at != row.offset
        {
            return Err(StorageError::Conflict {
                path: format!("upload {id}"),
                expected: format!("offset {at}"),
                found: format!("offset {}", row.offset),
            });
        }
        let hashed = match guard.take() {
            Some(h) if h.offset == row.offset => h,
            _ => {
                let owned = id.to_owned();
                let offset = row.offset;
                self.blocking(move |inner| rehash(inner, &owned, offset, false))
                    .await?
            }
        };
        let file = {
            let path = self.inner.uploads.file(id);
            let offset = row.offset;
            run_blocking(move || {
                let mut f = OpenOptions::new().write(true).open(path)?;
                // Bytes past the durable offset are debris of an interrupted append.
                f.set_len(offset)?;
                f.seek(SeekFrom::Start(offset))?;
                Ok(f)
            })
            .await?
        };
        let (added, hashed) = append_stream(file, hashed, reader).await?;
        let new_offset = row.offset + added;
        let owned = id.to_owned();
        let lease = meta::now_ms().saturating_add(row.ttl_ms);
        self.blocking(move |inner| {
            meta::advance_upload(&inner.writer(), &owned, new_offset, lease)
        })
        .await?;
        *guard = Some(hashed);
        Ok(UploadSession {
            offset: new_offset,
            expires_ms: lease,
            ..row.into()
        })
    }

    /// Finishes a session: checks `expect` against the whole content and publishes it as an
    /// object (commit it with [`crate::Op::Put`]). The session ends either way when the digest
    /// does not match, because the spec says to discard such data.
    pub async fn upload_finish(&self, id: &str, expect: Option<Digest>) -> Result<ObjectRef> {
        let not_found = || StorageError::NotFound(format!("upload {id}"));
        if !valid_id(id) {
            return Err(not_found());
        }
        let slot = self.inner.uploads.slot(id);
        let Ok(mut guard) = slot.try_lock() else {
            return Err(StorageError::Conflict {
                path: format!("upload {id}"),
                expected: "no other request writing".into(),
                found: "a request still writing".into(),
            });
        };
        let cached = guard.take();
        let owned = id.to_owned();
        let result = self
            .blocking(move |inner| {
                let row = live_row(inner, &owned)?
                    .ok_or_else(|| StorageError::NotFound(format!("upload {owned}")))?;
                let want_sha512 = matches!(expect, Some(Digest::Sha512(_)));
                let hashed = match cached {
                    Some(h) if h.offset == row.offset && !want_sha512 => h,
                    _ => rehash(inner, &owned, row.offset, want_sha512)?,
                };
                let digests = hashed.hasher.finish();
                if let Err(e) = digests.check(expect.as_ref()) {
                    end_session(inner, &owned)?;
                    return Err(e);
                }
                let path = inner.uploads.file(&owned);
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(row.offset)?;
                file.sync_data()?;
                drop(file);
                let temp = inner.objects.adopt(path)?;
                crate::stage::publish(inner, temp, &digests)?;
                meta::delete_upload(&inner.writer(), &owned)?;
                Ok(object_ref(&digests))
            })
            .await;
        self.inner.uploads.forget(id);
        result
    }

    /// Cancels a session and deletes its data; `false` if it did not exist.
    pub async fn upload_cancel(&self, id: &str) -> Result<bool> {
        if !valid_id(id) {
            return Ok(false);
        }
        let slot = self.inner.uploads.slot(id);
        let _guard = slot.lock().await;
        let owned = id.to_owned();
        let out = self.blocking(move |inner| end_session(inner, &owned)).await;
        self.inner.uploads.forget(id);
        out
    }

    /// Ends every session whose lease ran out; returns how many. Sessions that a request is
    /// writing right now are left for the next run.
    pub async fn expire_uploads(&self) -> Result<u64> {
        let rows = self
            .blocking(|inner| meta::all_uploads(&inner.writer()))
            .await?;
        let now = meta::now_ms();
        let mut n = 0;
        for row in rows.into_iter().filter(|r| r.lease_until_ms <= now) {
            let slot = self.inner.uploads.slot(&row.id);
            let Ok(_guard) = slot.try_lock() else {
                continue;
            };
            let id = row.id.clone();
            if self.blocking(move |inner| end_session(inner, &id)).await? {
                n += 1;
            }
            self.inner.uploads.forget(&row.id);
        }
        Ok(n)
    }

    /// Every session, live or expired, oldest id first (for listings and tests).
    pub async fn uploads(&self) -> Result<Vec<UploadSession>> {
        self.blocking(|inner| {
            Ok(meta::all_uploads(&inner.writer())?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
    }
}

/// Session ids are generated hex; anything else never names a file.
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The row of a session that has not expired.
fn live_row(inner: &Inner, id: &str) -> Result<Option<UploadRow>> {
    let row = meta::upload_row(&inner.writer(), id)?;
    Ok(row.filter(|r| r.lease_until_ms > meta::now_ms()))
}

/// Deletes a session's row, then its file.
fn end_session(inner: &Inner, id: &str) -> Result<bool> {
    let existed = meta::delete_upload(&inner.writer(), id)?;
    match fs::remove_file(inner.uploads.file(id)) {
        Ok(()) => sync_dir(&inner.uploads.dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(existed)
}

/// Re-reads the first `offset` bytes of a session's file into a fresh hash state.
fn rehash(inner: &Inner, id: &str, offset: u64, sha512: bool) -> Result<Hashed> {
    let file = File::open(inner.uploads.file(id))?;
    let mut reader = file.take(offset);
    let mut hasher = MultiHasher::new(sha512);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
    if total != offset {
        return Err(StorageError::Corrupt(format!(
            "upload {id} holds {total} bytes, its row says {offset}"
        )));
    }
    Ok(Hashed { hasher, offset })
}

/// Streams `reader` to the end of `file` while hashing, in parallel, with bounded memory;
/// returns the bytes added once they are durable.
async fn append_stream<R>(file: File, hashed: Hashed, mut reader: R) -> Result<(u64, Hashed)>
where
    R: AsyncRead + Unpin + Send,
{
    let (hash_tx, mut hash_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let (write_tx, mut write_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = hashed;
        while let Some(chunk) = hash_rx.blocking_recv() {
            h.hasher.update(&chunk);
            h.offset += chunk.len() as u64;
        }
        h
    });
    let writer = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut file = file;
        let start = file.stream_position()?;
        let (mut written, mut flushed) = (0u64, 0u64);
        while let Some(chunk) = write_rx.blocking_recv() {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
            if written - flushed >= WRITEBACK_WINDOW {
                let len = std::num::NonZeroU64::new(written - flushed);
                rustix::fs::fadvise(&file, start + flushed, len, rustix::fs::Advice::DontNeed)
                    .map_err(std::io::Error::from)?;
                flushed = written;
            }
        }
        file.sync_data()?;
        Ok(written)
    });
    let read_result = crate::stage::pump(&mut reader, &hash_tx, &write_tx).await;
    drop(hash_tx);
    drop(write_tx);
    let hashed = hasher
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?;
    let written = writer
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))??;
    read_result?;
    Ok((written, hashed))
}

fn object_ref(d: &Digests) -> ObjectRef {
    ObjectRef {
        id: d.blake3,
        sha256: d.sha256,
        sha512: d.sha512,
        size: d.size,
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{CommitMeta, Op};

    async fn store(dir: &Path) -> Store {
        Store::open_dir(dir.join("s")).await.unwrap()
    }

    fn sha256(data: &[u8]) -> Digest {
        Digest::Sha256(crate::hashing::digest_bytes(data).sha256)
    }

    #[tokio::test]
    async fn chunks_resume_after_restart_and_finish_into_an_object() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path()).await;
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        let up = s
            .upload_start("repo/a", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(up.offset, 0);
        let first = s
            .upload_append(&up.id, Some(0), &data[..1_000_000])
            .await
            .unwrap();
        assert_eq!(first.offset, 1_000_000);
        // A chunk at the wrong offset is a conflict and changes nothing.
        assert!(matches!(
            s.upload_append(&up.id, Some(5), &data[..10]).await,
            Err(StorageError::Conflict { .. })
        ));
        drop(s);
        // Simulate a crash in the middle of an append: bytes past the offset are debris.
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.path().join("s/uploads").join(&up.id))
            .unwrap();
        f.write_all(b"garbage").unwrap();
        drop(f);
        fs::write(d.path().join("s/uploads/orphan"), b"x").unwrap();
        let s = store(d.path()).await;
        assert!(!d.path().join("s/uploads/orphan").exists());
        let again = s.upload_session(&up.id).await.unwrap().unwrap();
        assert_eq!(again.offset, 1_000_000);
        assert_eq!(again.path, "repo/a");
        s.upload_append(&up.id, None, &data[1_000_000..])
            .await
            .unwrap();
        let wrong = s.upload_finish(&up.id, Some(sha256(b"nope"))).await;
        assert!(matches!(wrong, Err(StorageError::DigestMismatch { .. })));
        assert!(
            s.upload_session(&up.id).await.unwrap().is_none(),
            "discarded"
        );

        let up = s
            .upload_start("repo/a", Duration::from_secs(60))
            .await
            .unwrap();
        s.upload_append(&up.id, Some(0), &data[..]).await.unwrap();
        let obj = s.upload_finish(&up.id, Some(sha256(&data))).await.unwrap();
        assert_eq!(obj.size, data.len() as u64);
        s.commit(
            vec![Op::Put {
                path: "blob".into(),
                object: obj,
            }],
            vec![],
            CommitMeta::new("t", "t"),
        )
        .await
        .unwrap();
        assert!(s.read("blob").await.unwrap() == data);
        assert_eq!(fs::read_dir(d.path().join("s/uploads")).unwrap().count(), 0);
        assert!(s.verify().await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn sha512_after_restart_cancel_and_expiry() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path()).await;
        let up = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
        s.upload_append(&up.id, None, &b"hello "[..]).await.unwrap();
        s.upload_append(&up.id, Some(6), &b"world"[..])
            .await
            .unwrap();
        let mut h = MultiHasher::new(true);
        h.update(b"hello world");
        let want = h.finish().sha512.unwrap();
        let obj = s
            .upload_finish(&up.id, Some(Digest::Sha512(want)))
            .await
            .unwrap();
        assert_eq!(obj.sha512, Some(want));

        let gone = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
        assert!(s.upload_cancel(&gone.id).await.unwrap());
        assert!(!s.upload_cancel(&gone.id).await.unwrap());
        assert!(matches!(
            s.upload_append(&gone.id, None, &b"x"[..]).await,
            Err(StorageError::NotFound(_))
        ));
        assert!(s.upload_session("../../etc").await.unwrap().is_none());

        let short = s.upload_start("r", Duration::from_millis(1)).await.unwrap();
        let keep = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(s.upload_session(&short.id).await.unwrap().is_none());
        assert_eq!(s.expire_uploads().await.unwrap(), 1);
        let left: Vec<_> = s
            .uploads()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(left, vec![keep.id.clone()]);
        assert_eq!(fs::read_dir(d.path().join("s/uploads")).unwrap().count(), 1);
    }
}
