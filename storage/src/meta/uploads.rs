//! Queries of the `uploads` table: resumable upload sessions that survive a restart.
//!
//! A row owns the file `uploads/<id>` of the store directory; `offset` is the number of bytes
//! of that file that were durably acknowledged (the file may be longer after a crash in the
//! middle of an append, and is cut back to `offset` before the next one).

use rusqlite::{Connection, OptionalExtension, params};

use super::{to_i64, to_u64};
use crate::error::Result;

/// The schema of the table, created with the rest of the store's schema.
pub(crate) const UPLOADS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS uploads(
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    started INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    ttl INTEGER NOT NULL,
    lease_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_path ON uploads(path);
";

/// One session row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UploadRow {
    pub(crate) id: String,
    pub(crate) path: String,
    pub(crate) started_ms: i64,
    pub(crate) offset: u64,
    pub(crate) ttl_ms: i64,
    pub(crate) lease_until_ms: i64,
}

/// Inserts a new session.
pub(crate) fn insert_upload(conn: &Connection, row: &UploadRow) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO uploads(id, path, started, offset, ttl, lease_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        row.id,
        row.path,
        row.started_ms,
        to_i64(row.offset),
        row.ttl_ms,
        row.lease_until_ms
    ])?;
    Ok(())
}

/// A session by id, expired or not.
pub(crate) fn upload_row(conn: &Connection, id: &str) -> Result<Option<UploadRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, path, started, offset, ttl, lease_until FROM uploads WHERE id = ?1",
    )?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

/// Records a durable append: the new offset and a renewed lease.
pub(crate) fn advance_upload(
    conn: &Connection,
    id: &str,
    offset: u64,
    lease_until_ms: i64,
) -> Result<()> {
    conn.prepare_cached("UPDATE uploads SET offset = ?2, lease_until = ?3 WHERE id = ?1")?
        .execute(params![id, to_i64(offset), lease_until_ms])?;
    Ok(())
}

/// Removes a session row; `false` if it did not exist.
pub(crate) fn delete_upload(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM uploads WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// How many sessions labelled `path` are still live at `now_ms` (expired ones are about to be
/// swept and do not count against a caller's limit).
pub(crate) fn count_live_uploads(conn: &Connection, path: &str, now_ms: i64) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM uploads WHERE path = ?1 AND lease_until > ?2")?
        .query_row(params![path, now_ms], |r| r.get(0))?;
    Ok(to_u64(n))
}

/// Every session, for startup recovery and expiry.
pub(crate) fn all_uploads(conn: &Connection) -> Result<Vec<UploadRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, path, started, offset, ttl, lease_until FROM uploads ORDER BY id",
    )?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        path: r.get(1)?,
        started_ms: r.get(2)?,
        offset: to_u64(r.get(3)?),
        ttl_ms: r.get(4)?,
        lease_until_ms: r.get(5)?,
    })
}
