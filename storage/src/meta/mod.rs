//! The metadata side of a store: the [`MetaStore`] interface the rest of the crate uses, and
//! its SQLite implementation with the schema, connections and every query, so that the
//! metadata can be ported to another SQL engine (PostgreSQL) without touching the rest of the
//! crate. No file outside `meta/` names a SQL statement or a `rusqlite` type (except error
//! conversion in `error.rs`).
//!
//! - `api`: the [`MetaStore`] and [`MetaRead`] traits and the raw rows the walks return.
//! - `sqlite`: [`SqliteMeta`], the implementation (writer with group commit, reader pool).
//! - `read`, `write`, `uploads`, `walk`: the SQLite queries.
//! - `backup`: SQLite's online backup, for `backup.rs`.
//! - `replay`: appending a commit record copied from another store (same bytes, same id).
//! - `postgres`: [`MetaStore`] on PostgreSQL, the registry of shared stores (`cluster`) and
//!   the change listener (`notify`).
//! - `conformance`: the test suite every implementation must pass.
//!
//! Tables (reference/storage.md §2):
//! - `commits`: the hash-chained log; `record` holds the canonical bytes whose blake3 is `id`.
//! - `versions`: one row per path per commit that changed it; a NULL object is a delete, and
//!   `purged` marks content removed by retention while the audit row stays.
//! - `head`: the current content of every live path, for fast reads and prefix listings.
//! - `objects`: every stored object with its sha256, size and creation time; small objects keep
//!   their bytes `inline` instead of in a file.
//! - `settings`: per-store configuration such as the retention policy.
//! - `uploads`: resumable upload sessions (see `uploads.rs`).

mod api;
mod backup;
#[cfg(test)]
pub(crate) mod conformance;
mod postgres;
mod read;
pub(crate) mod replay;
mod sqlite;
mod uploads;
mod walk;
mod write;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

pub(crate) use api::{MetaRead, MetaStore, RawCommit, RawObject, read, snapshot};
pub(crate) use backup::{MetaCopy, copy_database, single_file};
pub(crate) use postgres::{PgCluster, Registration, notify};
pub(crate) use read::*;
pub(crate) use sqlite::SqliteMeta;
pub(crate) use uploads::*;
pub(crate) use write::*;

use crate::error::Result;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS commits(
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    parent BLOB,
    ts INTEGER NOT NULL,
    principal TEXT NOT NULL,
    message TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS versions(
    path TEXT NOT NULL,
    seq INTEGER NOT NULL,
    object BLOB,
    size INTEGER NOT NULL,
    sha256 BLOB,
    purged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(path, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_by_seq ON versions(seq);
CREATE INDEX IF NOT EXISTS versions_by_object ON versions(object) WHERE object IS NOT NULL;
CREATE TABLE IF NOT EXISTS head(
    path TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    object BLOB NOT NULL,
    size INTEGER NOT NULL,
    sha256 BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects(
    blake3 BLOB PRIMARY KEY,
    sha256 BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL,
    inline BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Opens the writer connection and creates the schema.
///
/// WAL with `synchronous=FULL` makes every commit durable when it returns; WAL with NORMAL
/// could lose the last transactions on power loss (reference/storage.md §9).
pub(crate) fn open_writer(file: &Path) -> Result<Connection> {
    // SQLite would create the database 0644; created empty here with 0600 first, it adopts the
    // file, and gives its `-wal` and `-shm` files the database's mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(crate::perms::FILE_MODE)
        .open(file)?;
    let conn = Connection::open(file)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(UPLOADS_SCHEMA)?;
    Ok(conn)
}

/// Opens a read-only connection; WAL lets it read a consistent snapshot while the writer works.
pub(crate) fn open_reader(file: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Converts a SQLite integer that the schema guarantees to be non-negative.
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Converts a size or seq for binding; values above `i64::MAX` cannot occur on real disks.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
