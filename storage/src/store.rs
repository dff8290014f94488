//! The store handle: the async API over one store directory.
//!
//! Every metadata or file operation runs on tokio's blocking pool, so callers on an async
//! runtime never block a worker thread. The metadata is reached only through the
//! [`MetaStore`] interface (SQLite today, see `meta/`), the bytes only through the object
//! backend.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::sync::watch;

use crate::content::Content;
use crate::digest::{CommitId, Digest};
use crate::error::{Result, StorageError};
use crate::hashing::digest_bytes;
use crate::meta::{CommitRequest, PreparedOp};
use crate::objects::{ObjectBackend, ObjectsRoot};
use crate::path::{validate_path, validate_prefix};
use crate::types::{
    CommitInfo, CommitMeta, Entry, HistoryEntry, ObjectRef, Op, Precondition, StageOptions,
};

/// Content up to this size given as bytes is stored inline in the metadata: a small commit then
/// costs one SQLite fsync instead of an extra file fsync and directory fsync.
pub const INLINE_MAX: usize = 16 * 1024;

/// A handle to one open store. Cloning is cheap and every clone shares the same state; the
/// store is closed (and its `LOCK` released) when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`; fails with [`StorageError::InUse`] if
    /// another process has it open.
    pub async fn open_dir(dir: impl Into<PathBuf>) -> Result<Store> {
        let dir = dir.into();
        run(move || Store::open_dir_blocking(&dir)).await
    }

    /// Blocking version of [`Store::open_dir`], for code outside an async runtime.
    pub fn open_dir_blocking(dir: &Path) -> Result<Store> {
        Ok(Store {
            inner: Arc::new(Inner::open(
                dir,
                Duration::ZERO,
                &ObjectsRoot::File,
                watch::Sender::new(0),
            )?),
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether this handle was opened read-only ([`crate::StoreManager::open_read_only`]):
    /// every write through it fails with [`StorageError::ReadOnly`].
    pub fn is_read_only(&self) -> bool {
        !self.inner.writable
    }

    /// The content of `path` at HEAD. Fails with `NotFound`, or `TooLarge` above [`READ_MAX`].
    pub async fn read(&self, path: &str) -> Result<Vec<u8>> {
        let path = path.to_owned();
        self.blocking(move |inner| {
            let entry = inner
                .read(|r| r.head_entry(&path))?
                .ok_or(StorageError::NotFound(path))?;
            inner.read_entry(&entry)
        })
        .await
    }

    /// The HEAD entry of `path` (its version and digests), if it exists.
    pub async fn stat(&self, path: &str) -> Result<Option<Entry>> {
        let path = path.to_owned();
        self.blocking(move |inner| inner.read(|r| r.head_entry(&path)))
            .await
    }

    /// The content of `path` as of commit `commit`. A purged version fails with `Purged`.
    pub async fn read_at(&self, path: &str, commit: CommitId) -> Result<Vec<u8>> {
        let path = path.to_owned();
        self.blocking(move |inner| {
            let entry = inner.resolve_at(&path, &commit)?;
            inner.read_entry(&entry)
        })
        .await
    }

    /// Writes one path in its own commit.
    pub async fn write(&self, path: &str, bytes: Vec<u8>, meta: CommitMeta) -> Result<CommitInfo> {
        self.commit(
            vec![Op::PutBytes {
                path: path.to_owned(),
                bytes,
            }],
            Vec::new(),
            meta,
        )
        .await
    }

    /// Deletes one path in its own commit.
    pub async fn delete(&self, path: &str, meta: CommitMeta) -> Result<CommitInfo> {
        self.commit(
            vec![Op::Delete {
                path: path.to_owned(),
            }],
            Vec::new(),
            meta,
        )
        .await
    }

    /// Applies several operations atomically, after checking every precondition inside the
    /// same transaction (compare-and-swap). Nothing is applied if anything fails.
    pub async fn commit(
        &self,
        ops: Vec<Op>,
        preconditions: Vec<Precondition>,
        meta: CommitMeta,
    ) -> Result<CommitInfo> {
        self.blocking(move |inner| inner.commit(ops, &preconditions, &meta))
            .await
    }

    /// Blocking version of [`Store::commit`] for synchronous callers (CLI tools, benchmarks);
    /// do not call it on an async worker thread.
    pub fn commit_blocking(
        &self,
        ops: Vec<Op>,
        preconditions: &[Precondition],
        meta: &CommitMeta,
    ) -> Result<CommitInfo> {
        self.inner.commit(ops, preconditions, meta)
    }

    /// Every live path starting with `prefix` at HEAD, in path order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.blocking(move |inner| inner.read(|r| r.list_head(&prefix)))
            .await
    }

    /// Every path starting with `prefix` as of commit `commit`, in path order.
    pub async fn list_at(&self, prefix: &str, commit: CommitId) -> Result<Vec<Entry>> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.blocking(move |inner| {
            inner.read(|r| {
                let seq = r.commit_by_id(&commit)?.seq;
                r.list_at(&prefix, seq)
            })
        })
        .await
    }

    /// Every change of `path`, oldest first, including deletes and purged versions.
    pub async fn history(&self, path: &str) -> Result<Vec<HistoryEntry>> {
        validate_path(path)?;
        let path = path.to_owned();
        self.blocking(move |inner| inner.read(|r| r.history(&path)))
            .await
    }

    /// The newest commit, `None` for an empty store.
    pub async fn head(&self) -> Result<Option<CommitInfo>> {
        self.blocking(|inner| inner.read(|r| r.last_commit())).await
    }

    /// The seq of the newest commit (0 when the store is empty), without touching the
    /// database: a cheap "did anything change?" check for caches keyed by HEAD. It moves
    /// only after the commit is durable. With shared (PostgreSQL) metadata it follows other
    /// nodes' commits within a second; a local store's read-only handle does not see other
    /// processes' commits here: it reports HEAD as of its opening ([`Store::head`] is always
    /// current).
    pub fn head_seq(&self) -> u64 {
        *self.inner.changes.borrow()
    }

    /// The store's HEAD seq as a watch: it moves on this process's commits at once and, with
    /// shared (PostgreSQL) metadata, on other nodes' commits within a second (`LISTEN/NOTIFY`
    /// on channel `everlock_commits`, with polling every 500 ms while the listener is down).
    /// Every handle of the store in the process shares it, and it survives the store being
    /// closed and reopened by the same manager.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Whether the store's metadata is shared with other nodes (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.inner.shared
    }

    /// A commit by id.
    pub async fn commit_info(&self, id: CommitId) -> Result<CommitInfo> {
        self.blocking(move |inner| inner.read(|r| r.commit_by_id(&id)))
            .await
    }

    /// The newest commits first, at most `limit`.
    pub async fn log(&self, limit: u64) -> Result<Vec<CommitInfo>> {
        self.blocking(move |inner| inner.read(|r| r.log(limit)))
            .await
    }

    /// Streams content into the store without committing it; `expect` rejects the content
    /// (and deletes it) unless it has that digest. Memory use does not depend on the size.
    pub async fn stage<R>(&self, reader: R, expect: Option<Digest>) -> Result<ObjectRef>
    where
        R: AsyncRead + Unpin + Send,
    {
        self.stage_with(
            reader,
            StageOptions {
                expect,
                sha512: false,
            },
        )
        .await
    }

    /// [`Store::stage`] with all options (sha512 on request).
    pub async fn stage_with<R>(&self, reader: R, opts: StageOptions) -> Result<ObjectRef>
    where
        R: AsyncRead + Unpin + Send,
    {
        // Staging publishes object files before any SQL runs, so the read-only connection
        // alone would not stop it.
        self.inner.check_writable()?;
        crate::stage::stage(self.inner.clone(), reader, opts).await
    }

    /// Opens `path` at HEAD for streaming, with its length and seek support for ranges.
    pub async fn open(&self, path: &str) -> Result<Content> {
        let path = path.to_owned();
        self.blocking(move |inner| {
            let entry = inner
                .read(|r| r.head_entry(&path))?
                .ok_or(StorageError::NotFound(path))?;
            inner.open_entry(entry)
        })
        .await
    }

    /// Opens `path` as of commit `commit` for streaming.
    pub async fn open_at(&self, path: &str, commit: CommitId) -> Result<Content> {
        let path = path.to_owned();
        self.blocking(move |inner| {
            let entry = inner.resolve_at(&path, &commit)?;
            inner.open_entry(entry)
        })
        .await
    }

    /// Writes the whole history as a `git fast-import` stream; see [`crate::ExportOptions`].
    pub async fn export<W: Write + Send + 'static>(
        &self,
        writer: W,
        opts: crate::ExportOptions,
    ) -> Result<W> {
        self.blocking(move |inner| {
            let mut writer = writer;
            crate::export::export(inner, &mut writer, &opts)?;
            Ok(writer)
        })
        .await
    }

    /// Blocking version of [`Store::export`] for synchronous callers such as the CLI; do not
    /// call it on an async worker thread.
    pub fn export_blocking(
        &self,
        writer: &mut dyn Write,
        opts: &crate::ExportOptions,
    ) -> Result<()> {
        crate::export::export(&self.inner, writer, opts)
    }

    /// Runs a closure on the blocking pool with the shared state.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run(move || f(&inner)).await
    }
}

impl Inner {
    /// Validates and applies a commit.
    pub(crate) fn commit(
        &self,
        ops: Vec<Op>,
        preconditions: &[Precondition],
        meta: &CommitMeta,
    ) -> Result<CommitInfo> {
        self.check_writable()?;
        if ops.is_empty() {
            return Err(StorageError::invalid("commit", "no operations"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for op in &ops {
            validate_path(op.path())?;
            if !seen.insert(op.path().to_owned()) {
                return Err(StorageError::invalid(
                    "commit",
                    format!("{:?} appears twice", op.path()),
                ));
            }
        }
        for pre in preconditions {
            validate_path(&pre.path)?;
        }
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            prepared.push(match op {
                Op::Put { path, object } => PreparedOp::Put {
                    path,
                    object: object.id,
                },
                Op::Delete { path } => PreparedOp::Delete { path },
                Op::PutBytes { path, bytes } => {
                    let digests = digest_bytes(&bytes);
                    if bytes.len() <= INLINE_MAX {
                        PreparedOp::PutInline {
                            path,
                            digests,
                            bytes,
                        }
                    } else {
                        crate::stage::stage_bytes(self, &bytes, &digests)?;
                        PreparedOp::Put {
                            path,
                            object: digests.blake3,
                        }
                    }
                }
            });
        }
        if self.shared {
            self.check_published(&prepared)?;
        }
        self.group_commit(CommitRequest {
            ops: prepared,
            preconditions: preconditions.to_vec(),
            meta: meta.clone(),
        })
    }

    /// Fails with `ObjectMissing` if the bytes of an object a put references are gone. In
    /// shared mode another node's GC may have removed them after this node's stage found
    /// them present (and skipped its upload) but before the stage's row was written; the GC
    /// removes bytes under the store's write lock, which that row insert waited for, so
    /// checking here, after the stage, catches it. The client stages again.
    ///
    /// An object whose row holds its bytes inline has none in the object storage (staging
    /// content the store already keeps inline publishes nothing), so its row is asked before
    /// calling it missing.
    fn check_published(&self, ops: &[PreparedOp]) -> Result<()> {
        for op in ops {
            if let PreparedOp::Put { object, .. } = op
                && !self.objects.exists(object)?
                && self
                    .meta
                    .object_row_now(object)?
                    .is_none_or(|row| row.inline.is_none())
            {
                return Err(StorageError::ObjectMissing(object.to_hex()));
            }
        }
        Ok(())
    }

    /// Hands a validated commit to the metadata and records it once it is durable. The
    /// metadata serialises commits (SQLite: group commit on its single writer), so commits
    /// of concurrent callers may share one transaction.
    fn group_commit(&self, request: CommitRequest) -> Result<CommitInfo> {
        let info = self.meta.commit(request)?;
        self.note_commit(info.seq);
        Ok(info)
    }
}

async fn run<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?
}

pub(crate) mod inner;
mod open;
mod staged;
#[cfg(test)]
mod tests;

use inner::Inner;
pub use inner::READ_MAX;
pub(crate) use open::{FORMAT, is_store};
