//! Everlock's versioned store: every write is a commit, every past state stays readable, and
//! multi-GB content streams through with bounded memory and survives `kill -9`.
//!
//! A store is a directory holding immutable object files named by their blake3 hash and a
//! SQLite database (WAL, `synchronous=FULL`) with a hash-chained commit log. The design, its
//! write order and its crash matrix are in `docs/reference/storage.md`.
//!
//! # Layout
//! - `manager`: [`StoreManager`], named stores under a data directory, or (shared mode,
//!   [`MetaConfig::Postgres`]) registered in a PostgreSQL database that several nodes share.
//! - `changes`: the per-store HEAD watch ([`Store::changes`]), moved by local commits and, in
//!   shared mode, by other nodes' commits (`LISTEN/NOTIFY`, polling fallback).
//! - `copy`: [`StoreManager::copy_store`], a store's whole history into another manager.
//! - `store`: [`Store`], the async API (read, write, delete, commit, list, history, read_at).
//! - `stage`: streaming content in, hashing and writing in parallel.
//! - `content`: [`Content`], streaming content out with seek for ranges.
//! - `objects`: the object-bytes interface, its filesystem and S3 implementations, chosen per
//!   manager by [`ObjectsConfig`] (`AnyObjects`), and the async bridge for S3 readers.
//! - `meta`: the SQL schema and every query.
//! - `record`: the canonical commit record whose hash is the commit id.
//! - `verify`: re-hash objects and check the chain.
//! - `retention`: [`RetentionPolicy`], which superseded content a store keeps.
//! - `gc`: applying the policy and object garbage collection.
//! - `export`: `git fast-import` export.
//! - `uploads`: resumable upload sessions (OCI chunked uploads) that survive a restart.
//! - `perms`: private file modes (0700 directories, 0600 files, 0400 objects).
//! - `digest`, `hashing`, `path`, `types`, `lock`, `stripes`, `error`: supporting pieces.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod backup;
mod changes;
mod content;
mod copy;
mod digest;
mod error;
mod export;
mod gc;
mod hashing;
mod lock;
mod manager;
mod meta;
mod objects;
mod path;
mod perms;
mod record;
mod redact;
mod retention;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod shared_usage_tests;
mod stage;
mod stats;
mod store;
mod stripes;
mod types;
mod uploads;
mod verify;

pub use content::Content;
pub use copy::CopyReport;
pub use digest::{CommitId, Digest, ObjectId, Sha256, Sha512};
pub use error::{Result, StorageError};
pub use export::ExportOptions;
pub use gc::{DEFAULT_GRACE, GcOptions, GcReport};
pub use manager::{MetaConfig, ObjectsConfig, PostgresConfig, StoreManager};
pub use objects::S3Config;
pub use path::{MAX_PATH_LEN, validate_path, validate_prefix, validate_store_name};
pub use redact::redact_url;
pub use retention::{PolicyParseError, RetentionPolicy};
pub use stats::StoreStats;
pub use store::{INLINE_MAX, READ_MAX, Store};
pub use types::{
    CommitInfo, CommitMeta, Entry, Expected, HistoryEntry, ObjectRef, Op, Precondition,
    StageOptions, VersionContent, rfc3339,
};
pub use uploads::UploadSession;
pub use verify::{Problem, VerifyReport};
