//! The one error type of the storage crate.

use std::io;

/// Everything that can go wrong inside a store.
///
/// Callers map these to protocol errors: `NotFound`, `Purged`, `Conflict`, `DigestMismatch` and
/// `TooManyUploads` are the client's fault, `InUse`, `ReadOnly` and `Full` are operator
/// problems, `Unavailable` is temporary (the shared database is unreachable), and `Corrupt`,
/// `Io`, `Sqlite` and `Database` are the host's. `Corrupt` is reserved for
/// on-disk state that contradicts itself; a failing or full disk is `Io`, `Sqlite` or `Full`,
/// never `Corrupt`.
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
    /// The store was opened read-only (no `LOCK`, so that it can be read while a server owns
    /// it), or SQLite found its database read-only; writes need the store's owner.
    #[error("store is read-only: {0}")]
    ReadOnly(String),
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
    /// The filesystem holding the store has no space left (`ENOSPC`), the owner's quota is
    /// exhausted (`EDQUOT`), or SQLite found the disk full. Nothing is wrong with the store:
    /// freeing space makes it work again, without a restart.
    #[error("storage full: {0}")]
    Full(String),
    /// A resumable upload was refused because its label already has `limit` open sessions.
    #[error("{path} already has {limit} open upload sessions")]
    TooManyUploads {
        /// The label (for OCI, the repository).
        path: String,
        /// The configured maximum.
        limit: u64,
    },
    /// A filesystem error (other than a full disk, which is [`StorageError::Full`]).
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
    /// A metadata database error (other than a full disk, which is [`StorageError::Full`]).
    #[error("metadata database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// A blocking worker task died (panicked or was cancelled).
    #[error("storage worker failed: {0}")]
    Worker(String),
    /// The shared metadata database (PostgreSQL) refused or failed an operation for a reason
    /// that is not the client's fault (a constraint the store's own logic should have
    /// prevented, a permission, a serialisation failure). Like `Io`, the host's problem (500).
    #[error("metadata database error: {0}")]
    Database(String),
    /// The shared metadata database cannot be reached (refused, dropped or timed-out
    /// connection, server shutting down). Nothing is wrong with the store: retrying once the
    /// database is back works, so servers answer 503.
    #[error("metadata database unavailable: {0}")]
    Unavailable(String),
    /// The destination of a store copy already has commits; a copy never merges histories.
    #[error("store {0} already has commits; a copy only fills an empty store")]
    NotEmpty(String),
}

impl From<io::Error> for StorageError {
    /// Classifies a filesystem error: a full disk or an exhausted quota becomes
    /// [`StorageError::Full`] so callers can answer "storage full" (HTTP 507) instead of a
    /// generic failure.
    fn from(e: io::Error) -> Self {
        if is_full(&e) {
            StorageError::Full(e.to_string())
        } else {
            StorageError::Io(e)
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    /// Classifies a database error: `SQLITE_FULL` (the WAL or database could not grow) becomes
    /// [`StorageError::Full`], and `SQLITE_READONLY` (a write through a read-only handle's
    /// connection) becomes [`StorageError::ReadOnly`].
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StorageError::Full(e.to_string()),
            Some(rusqlite::ErrorCode::ReadOnly) => StorageError::ReadOnly(e.to_string()),
            _ => StorageError::Sqlite(e),
        }
    }
}

/// Whether an I/O error means "no space left" (`ENOSPC`) or "quota exceeded" (`EDQUOT`).
pub(crate) fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
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

    /// The same error for each of several callers that shared one failed database operation
    /// (a group commit): `rusqlite::Error` cannot be cloned, so its code and text are copied.
    pub(crate) fn from_shared_sqlite(e: &rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return StorageError::Full(e.to_string());
        }
        let code = match e {
            rusqlite::Error::SqliteFailure(code, _) => *code,
            _ => rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        };
        StorageError::Sqlite(rusqlite::Error::SqliteFailure(code, Some(e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disks_are_classified_apart_from_other_failures() {
        let enospc = io::Error::from_raw_os_error(28);
        assert!(matches!(StorageError::from(enospc), StorageError::Full(_)));
        let edquot = io::Error::from_raw_os_error(122);
        assert!(matches!(StorageError::from(edquot), StorageError::Full(_)));
        let eio = io::Error::from_raw_os_error(5);
        assert!(matches!(StorageError::from(eio), StorageError::Io(_)));
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(matches!(
            StorageError::from_shared_sqlite(&full),
            StorageError::Full(_)
        ));
        let err = StorageError::from(full);
        assert!(matches!(err, StorageError::Full(_)));
        assert!(!err.to_string().contains("corrupt"), "{err}");
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let shared = StorageError::from_shared_sqlite(&busy);
        assert!(matches!(shared, StorageError::Sqlite(_)), "{shared}");
        assert!(!shared.to_string().contains("corrupt"), "{shared}");
    }
}
