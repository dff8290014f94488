//! The shared state behind a [`crate::Store`] handle and the reads every layer above needs.
//!
//! It sits below the store API, staging, uploads and export, which all take an [`Inner`]: they
//! import it from here and the store calls them, so imports run one way.

use std::path::PathBuf;

use tokio::sync::watch;

use crate::content::Content;
use crate::digest::CommitId;
use crate::error::{Result, StorageError};
use crate::lock::StoreLock;
use crate::meta::{self, MetaRead, MetaStore, Resolved};
use crate::objects::{AnyObjects, AnyReader, ObjectBackend};
use crate::stripes::Stripes;
use crate::types::Entry;
use crate::uploads::state::Uploads;

/// `read` and `read_at` refuse content larger than this; stream it with `open` instead.
pub const READ_MAX: u64 = 64 * 1024 * 1024;

/// The shared state behind [`Store`].
#[derive(Debug)]
pub(crate) struct Inner {
    /// The store directory.
    pub(crate) dir: PathBuf,
    /// Object bytes.
    pub(crate) objects: AnyObjects,
    /// Serialises stage publishes against GC deletes of the same object.
    pub(crate) stripes: Stripes,
    /// The metadata: commits, HEAD, object rows, settings, upload sessions.
    pub(crate) meta: Box<dyn MetaStore>,
    /// The seq of the newest durable commit (0 for an empty store), shared with every handle
    /// of the store in this process (see `changes.rs`). Every commit of this process goes
    /// through `Inner::commit` or a retention purge, which both advance it; in shared mode
    /// the manager's listener advances it for other nodes' commits. Readers learn whether
    /// HEAD moved without a query.
    pub(crate) changes: watch::Sender<u64>,
    /// Resumable upload sessions.
    pub(crate) uploads: Uploads,
    /// False for a read-only handle: every write fails with `ReadOnly`.
    pub(super) writable: bool,
    /// Whether the metadata is shared with other nodes (PostgreSQL).
    pub(super) shared: bool,
    /// Held for the lifetime of a local store; declared last so it is released last. `None`
    /// for a read-only handle, which takes no lock (so it works next to a server), and for a
    /// shared store, which several nodes open at once.
    pub(super) _lock: Option<StoreLock>,
}

impl Inner {
    /// Fails with [`StorageError::ReadOnly`] on a read-only handle. Every write entry point
    /// calls it before touching files; SQL writes would fail on the read-only connection
    /// anyway, but object and upload files are written before their rows.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(StorageError::ReadOnly(format!(
                "{} was opened without its lock, for reading next to its owner",
                self.dir.display()
            )))
        }
    }

    /// Records that commit `seq` is durable.
    pub(crate) fn note_commit(&self, seq: u64) {
        crate::changes::advance(&self.changes, seq);
    }

    /// Runs `f` with metadata reads that each see the newest durable state.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&dyn MetaRead) -> Result<T>) -> Result<T> {
        meta::read(&*self.meta, f)
    }

    /// Runs `f` with metadata reads that all see one consistent state.
    pub(crate) fn snapshot<T>(&self, f: impl FnOnce(&dyn MetaRead) -> Result<T>) -> Result<T> {
        meta::snapshot(&*self.meta, f)
    }

    /// Resolves `path` at a commit to a live entry.
    pub(crate) fn resolve_at(&self, path: &str, commit: &CommitId) -> Result<Entry> {
        self.read(|r| {
            let seq = r.commit_by_id(commit)?.seq;
            match r.resolve_at(path, seq)? {
                Resolved::Live(e) => Ok(e),
                Resolved::Purged { version } => Err(StorageError::Purged {
                    path: path.to_owned(),
                    version,
                }),
                Resolved::Absent => Err(StorageError::NotFound(path.to_owned())),
            }
        })
    }

    /// Reads an entry's content into memory.
    pub(crate) fn read_entry(&self, entry: &Entry) -> Result<Vec<u8>> {
        if entry.size > READ_MAX {
            return Err(StorageError::TooLarge {
                path: entry.path.clone(),
                size: entry.size,
            });
        }
        if let Some(bytes) = self.read(|r| r.inline_bytes(&entry.object))? {
            return Ok(bytes);
        }
        let mut file = self
            .objects
            .open(&entry.object)
            .map_err(|e| missing(entry, e))?;
        let mut out = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        std::io::Read::read_to_end(&mut file, &mut out)?;
        Ok(out)
    }

    /// Opens an entry's content for streaming.
    pub(crate) fn open_entry(&self, entry: Entry) -> Result<Content> {
        if let Some(bytes) = self.read(|r| r.inline_bytes(&entry.object))? {
            return Ok(Content::memory(entry, bytes));
        }
        let reader = self
            .objects
            .open(&entry.object)
            .map_err(|e| missing(&entry, e))?;
        Ok(match reader {
            AnyReader::Fs(file) => Content::file(entry, file),
            AnyReader::S3(remote) => Content::remote(entry, remote),
        })
    }
}

fn missing(entry: &Entry, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::Corrupt(format!(
            "object {} of {} is missing",
            entry.object, entry.path
        ))
    } else {
        e.into()
    }
}
