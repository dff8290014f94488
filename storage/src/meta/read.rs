//! Read queries. They run on any connection, usually a pooled read-only one, and each call is
//! one statement or one read transaction so it sees a consistent snapshot.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{to_i64, to_u64};
use crate::digest::{CommitId, ObjectId, Sha256};
use crate::error::{Result, StorageError};
use crate::path::prefix_upper_bound;
use crate::types::{CommitInfo, Entry, HistoryEntry, VersionContent};

/// What a path resolves to at some commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The path holds this content.
    Live(Entry),
    /// The path held this content but retention purged it.
    Purged { version: u64 },
    /// The path does not exist (never written, or deleted).
    Absent,
}

/// An object's metadata row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObjectRow {
    pub(crate) sha256: Sha256,
    pub(crate) size: u64,
    pub(crate) created_ms: i64,
    pub(crate) inline: Option<Vec<u8>>,
}

pub(crate) const COMMIT_COLUMNS: &str = "seq, id, parent, ts, principal, message";

/// Reads a row selected with [`COMMIT_COLUMNS`] starting at column `at`.
pub(crate) fn commit_from_row(row: &Row<'_>, at: usize) -> Result<CommitInfo> {
    let id: Vec<u8> = row.get(at + 1)?;
    let parent: Option<Vec<u8>> = row.get(at + 2)?;
    Ok(CommitInfo {
        seq: to_u64(row.get(at)?),
        id: CommitId::from_slice(&id)?,
        parent: parent.map(|p| CommitId::from_slice(&p)).transpose()?,
        time_ms: row.get(at + 3)?,
        principal: row.get(at + 4)?,
        message: row.get(at + 5)?,
    })
}

/// The newest commit.
pub(crate) fn last_commit(conn: &Connection) -> Result<Option<CommitInfo>> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM commits ORDER BY seq DESC LIMIT 1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    rows.next()?.map(|r| commit_from_row(r, 0)).transpose()
}

/// A commit by id.
pub(crate) fn commit_by_id(conn: &Connection, id: &CommitId) -> Result<CommitInfo> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM commits WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id.as_bytes().as_slice()])?;
    match rows.next()? {
        Some(r) => commit_from_row(r, 0),
        None => Err(StorageError::UnknownCommit(id.to_hex())),
    }
}

/// The newest commits first, at most `limit`.
pub(crate) fn log(conn: &Connection, limit: u64) -> Result<Vec<CommitInfo>> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM commits ORDER BY seq DESC LIMIT ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([to_i64(limit)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(commit_from_row(r, 0)?);
    }
    Ok(out)
}

fn entry_from_row(row: &Row<'_>) -> Result<Entry> {
    let object: Vec<u8> = row.get(2)?;
    let sha: Vec<u8> = row.get(4)?;
    Ok(Entry {
        path: row.get(0)?,
        version: to_u64(row.get(1)?),
        object: ObjectId::from_slice(&object)?,
        size: to_u64(row.get(3)?),
        sha256: Sha256::from_slice(&sha)?,
    })
}

/// The HEAD entry of a path.
pub(crate) fn head_entry(conn: &Connection, path: &str) -> Result<Option<Entry>> {
    let mut stmt =
        conn.prepare_cached("SELECT path, seq, object, size, sha256 FROM head WHERE path = ?1")?;
    let mut rows = stmt.query([path])?;
    rows.next()?.map(entry_from_row).transpose()
}

/// A path at commit `seq` (the floor lookup over `versions`).
pub(crate) fn resolve_at(conn: &Connection, path: &str, seq: u64) -> Result<Resolved> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, seq, object, size, sha256, purged FROM versions
         WHERE path = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
    )?;
    let mut rows = stmt.query(params![path, to_i64(seq)])?;
    let Some(row) = rows.next()? else {
        return Ok(Resolved::Absent);
    };
    let object: Option<Vec<u8>> = row.get(2)?;
    if object.is_none() {
        return Ok(Resolved::Absent);
    }
    let purged: bool = row.get(5)?;
    if purged {
        return Ok(Resolved::Purged {
            version: to_u64(row.get(1)?),
        });
    }
    Ok(Resolved::Live(entry_from_row(row)?))
}

/// Every live path starting with `prefix` at HEAD, in path order.
pub(crate) fn list_head(conn: &Connection, prefix: &str) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, seq, object, size, sha256 FROM head WHERE path >= ?1 AND path < ?2 ORDER BY path",
    )?;
    let mut rows = stmt.query(params![prefix, prefix_upper_bound(prefix)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(entry_from_row(r)?);
    }
    Ok(out)
}

/// Every path starting with `prefix` that existed at commit `seq`, in path order; purged
/// versions are listed too, because the path did exist.
pub(crate) fn list_at(conn: &Connection, prefix: &str, seq: u64) -> Result<Vec<Entry>> {
    // SQLite documents that bare columns next to max() come from the row holding the maximum.
    let mut stmt = conn.prepare_cached(
        "SELECT path, max(seq), object, size, sha256 FROM versions
         WHERE path >= ?1 AND path < ?2 AND seq <= ?3 GROUP BY path ORDER BY path",
    )?;
    let mut rows = stmt.query(params![prefix, prefix_upper_bound(prefix), to_i64(seq)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let object: Option<Vec<u8>> = r.get(2)?;
        if object.is_some() {
            out.push(entry_from_row(r)?);
        }
    }
    Ok(out)
}

/// Every change of a path, oldest first.
pub(crate) fn history(conn: &Connection, path: &str) -> Result<Vec<HistoryEntry>> {
    let sql = format!(
        "SELECT v.object, v.size, v.sha256, v.purged, {} FROM versions v JOIN commits c ON c.seq = v.seq
         WHERE v.path = ?1 ORDER BY v.seq",
        COMMIT_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([path])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let object: Option<Vec<u8>> = r.get(0)?;
        let content = match object {
            Some(object) => {
                let sha: Vec<u8> = r.get(2)?;
                Some(VersionContent {
                    object: ObjectId::from_slice(&object)?,
                    size: to_u64(r.get(1)?),
                    sha256: Sha256::from_slice(&sha)?,
                    purged: r.get(3)?,
                })
            }
            None => None,
        };
        out.push(HistoryEntry {
            commit: commit_from_row(r, 4)?,
            content,
        });
    }
    Ok(out)
}

/// An object's row, without its inline bytes.
pub(crate) fn object_row(conn: &Connection, id: &ObjectId) -> Result<Option<ObjectRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sha256, size, created, inline IS NOT NULL FROM objects WHERE blake3 = ?1",
    )?;
    stmt.query_row([id.as_bytes().as_slice()], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, bool>(3)?,
        ))
    })
    .optional()?
    .map(|(sha, size, created_ms, inline)| {
        Ok(ObjectRow {
            sha256: Sha256::from_slice(&sha)?,
            size: to_u64(size),
            created_ms,
            inline: inline.then(Vec::new),
        })
    })
    .transpose()
}

/// The bytes of an inline object, `None` if the object is a file (or unknown).
pub(crate) fn inline_bytes(conn: &Connection, id: &ObjectId) -> Result<Option<Vec<u8>>> {
    let mut stmt = conn.prepare_cached("SELECT inline FROM objects WHERE blake3 = ?1")?;
    Ok(stmt
        .query_row([id.as_bytes().as_slice()], |r| {
            r.get::<_, Option<Vec<u8>>>(0)
        })
        .optional()?
        .flatten())
}

/// A setting, if set.
pub(crate) fn setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?;
    Ok(stmt.query_row([key], |r| r.get(0)).optional()?)
}

/// The objects referenced by the newest `n` commits, for the startup check.
pub(crate) fn recent_objects(conn: &Connection, n: u64) -> Result<Vec<ObjectId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT object FROM versions
         WHERE seq > (SELECT coalesce(max(seq), 0) FROM commits) - ?1
           AND purged = 0 AND object IS NOT NULL",
    )?;
    let mut rows = stmt.query([to_i64(n)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let b: Vec<u8> = r.get(0)?;
        out.push(ObjectId::from_slice(&b)?);
    }
    Ok(out)
}

/// The seq of the `n`-th newest commit that changed at least one path (`n` >= 1), or `None`
/// when fewer commits did. Commits that change nothing (retention's own purges) do not count:
/// their tree is their parent's.
pub(crate) fn nth_changing_commit(conn: &Connection, n: u64) -> Result<Option<u64>> {
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT seq FROM versions ORDER BY seq DESC LIMIT 1 OFFSET ?1")?;
    Ok(stmt
        .query_row([to_i64(n.saturating_sub(1))], |r| r.get::<_, i64>(0))
        .optional()?
        .map(to_u64))
}

/// How many paths of the tree at commit `seq` hold content that retention purged.
pub(crate) fn purged_paths_at(conn: &Connection, seq: u64) -> Result<u64> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*) FROM versions v
         WHERE v.purged = 1 AND v.seq <= ?1
           AND NOT EXISTS (SELECT 1 FROM versions n
                           WHERE n.path = v.path AND n.seq > v.seq AND n.seq <= ?1)",
    )?;
    Ok(to_u64(stmt.query_row([to_i64(seq)], |r| r.get(0))?))
}
