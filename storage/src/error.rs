//! The one error type of the storage crate.

use std::io;

/// Everything that can go wrong inside a store.
///
/// Callers map these to protocol errors: `NotFound`, `Purged`, `Conflict` and `DigestMismatch`
/// are the client's fault, `InUse` is an operator problem, and `Corrupt`, `Io` and `Sqlite` are
/// the host's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The path does not exist at the requested commit (or at HEAD).
    #[error("not found: {0}")]
    NotFound(String),
    /// The version exists in history, but its content was purged by retention.
    #[error("content purged: {path} at version {version}")]
    Purged {
        /// The path whose content was purged.
        path: String,
        /// The version (commit sequence number) whose content was purged.
        version: u64,
    },
    /// A commit id that the store does not know.
    #[error("unknown commit: {0}")]
    UnknownCommit(String),
    /// A precondition of a commit did not hold (compare-and-swap lost).
    #[error("precondition failed for {path}: expected {expected}, found {found}")]
    Conflict {
        /// The path whose precondition failed.
        path: String,
        /// What the caller expected.
        expected: String,
        /// What the store holds.
        found: String,
    },
    /// The staged content does not match the digest the caller announced.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller expected, as `alg:hex`.
        expected: String,
        /// The digest of the received bytes, as `alg:hex`.
        actual: String,
    },
    /// A staged object disappeared before it was committed (garbage collected); stage it again.
    #[error("object {0} is not in the store; stage it again")]
    ObjectMissing(String),
    /// A path, prefix, store name or argument is malformed.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid (`path`, `store name`, ...).
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Another process holds the store's `LOCK`.
    #[error("store in use by another process: {0}")]
    InUse(String),
    /// The store directory does not exist or holds no store.
    #[error("no such store: {0}")]
    NoSuchStore(String),
    /// Content too large for an in-memory read; use `open` to stream it.
    #[error("{path} is {size} bytes, too large to read into memory; stream it with open()")]
    TooLarge {
        /// The path that was read.
        path: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The on-disk state contradicts itself: a missing object, a bad hash or a broken chain.
    #[error("store corrupt: {0}")]
    Corrupt(String),
    /// A filesystem error.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A metadata database error.
    #[error("metadata database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A blocking worker task died (panicked or was cancelled).
    #[error("storage worker failed: {0}")]
    Worker(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// Builds an [`StorageError::Invalid`] error.
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        StorageError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
