//! The value types of the store API: operations, preconditions and what reads return.

use crate::digest::{CommitId, ObjectId, Sha256, Sha512};

/// A staged object: content that is durably stored but not yet reachable from any path.
///
/// Returned by `Store::stage`; pass it to [`Op::Put`] to make it visible in a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    /// The blake3 hash that names the object.
    pub id: ObjectId,
    /// The sha256 digest (the OCI content address).
    pub sha256: Sha256,
    /// The sha512 digest, only when the caller asked for it.
    pub sha512: Option<Sha512>,
    /// The size in bytes.
    pub size: u64,
}

/// One operation of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Point `path` at an object previously returned by `stage`.
    Put {
        /// The path to write.
        path: String,
        /// The staged object.
        object: ObjectRef,
    },
    /// Write small content given in memory (stored inline in the metadata when small).
    PutBytes {
        /// The path to write.
        path: String,
        /// The content.
        bytes: Vec<u8>,
    },
    /// Remove `path`; it must exist at HEAD.
    Delete {
        /// The path to delete.
        path: String,
    },
}

impl Op {
    /// The path this operation touches.
    pub fn path(&self) -> &str {
        match self {
            Op::Put { path, .. } | Op::PutBytes { path, .. } | Op::Delete { path } => path,
        }
    }
}

/// What a precondition expects a path to be at HEAD when the commit is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// The path must not exist.
    Absent,
    /// The path must exist with exactly this version (the seq of the commit that last wrote it).
    Version(u64),
    /// The path must exist with exactly this content.
    Object(ObjectId),
}

/// A compare-and-swap condition checked inside the commit transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precondition {
    /// The path to check.
    pub path: String,
    /// What it must be.
    pub expected: Expected,
}

/// Who commits, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitMeta {
    /// The authenticated principal (a user name, or `system`).
    pub principal: String,
    /// A message carrying the domain context.
    pub message: String,
}

impl CommitMeta {
    /// Builds commit metadata.
    pub fn new(principal: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            message: message.into(),
        }
    }
}

/// A commit of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The position in the log, starting at 1; also the version of every path it wrote.
    pub seq: u64,
    /// The hash-chained id.
    pub id: CommitId,
    /// The parent's id, `None` for the first commit.
    pub parent: Option<CommitId>,
    /// Commit time in milliseconds since the Unix epoch (never decreasing along the log).
    pub time_ms: i64,
    /// Who committed.
    pub principal: String,
    /// Why.
    pub message: String,
}

/// A path's state at some commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path.
    pub path: String,
    /// The seq of the commit that wrote this content.
    pub version: u64,
    /// The content's blake3 id.
    pub object: ObjectId,
    /// The content's sha256 digest.
    pub sha256: Sha256,
    /// The content's size in bytes.
    pub size: u64,
}

/// What one commit did to one path, as listed by `history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The commit that made the change.
    pub commit: CommitInfo,
    /// The content written, or `None` for a delete.
    pub content: Option<VersionContent>,
}

/// The content a version wrote, which outlives a purge as an audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionContent {
    /// The content's blake3 id.
    pub object: ObjectId,
    /// The content's sha256 digest.
    pub sha256: Sha256,
    /// The size in bytes.
    pub size: u64,
    /// Whether retention purged the bytes (the row stays for the audit trail).
    pub purged: bool,
}

/// Options of `Store::stage_with`.
#[derive(Clone, Debug, Default)]
pub struct StageOptions {
    /// Reject the content unless it has this digest.
    pub expect: Option<crate::digest::Digest>,
    /// Also compute sha512 (implied by an expected sha512).
    pub sha512: bool,
}

/// Formats a commit time (Unix milliseconds) as RFC 3339 UTC to the second, the one format
/// every tool and console listing shows; times before the epoch show as the epoch.
pub fn rfc3339(time_ms: i64) -> String {
    let ms = u64::try_from(time_ms).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn commit_times_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_000_000_123), "2026-11-18T11:06:40Z");
        assert_eq!(super::rfc3339(-5), "1970-01-01T00:00:00Z");
    }
}
