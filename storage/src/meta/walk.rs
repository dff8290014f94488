//! Whole-store reads for `verify`, `export`, `stats` and the GC's candidate list. They used to
//! live next to their callers; here they sit with every other query, so the rest of the crate
//! sees only the [`MetaRead`](super::MetaRead) interface and a PostgreSQL port replaces this
//! file without touching the walkers.
//!
//! The walkers need the raw column bytes (a malformed hash is something `verify` reports,
//! not an error that stops it), so these rows carry `Vec<u8>` where the rest of `meta` parses.

use rusqlite::{Connection, OptionalExtension, params};

use super::api::{RawCommit, RawHead, RawObject, RawVersion, StoreCounts};
use super::{to_i64, to_u64};
use crate::digest::ObjectId;
use crate::error::Result;

/// Calls `f` with every commit row, oldest first.
pub(crate) fn for_each_commit(
    conn: &Connection,
    f: &mut dyn FnMut(RawCommit) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT seq, id, parent, ts, principal, message, record FROM commits ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(RawCommit {
            seq: to_u64(r.get(0)?),
            id: r.get(1)?,
            parent: r.get(2)?,
            time_ms: r.get(3)?,
            principal: r.get(4)?,
            message: r.get(5)?,
            record: r.get(6)?,
        })?;
    }
    Ok(())
}

/// The version rows a commit wrote.
pub(crate) fn versions_at(conn: &Connection, seq: u64) -> Result<Vec<RawVersion>> {
    let mut stmt =
        conn.prepare_cached("SELECT path, object, size, sha256 FROM versions WHERE seq = ?1")?;
    let mut rows = stmt.query([to_i64(seq)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(RawVersion {
            path: r.get(0)?,
            seq,
            object: r.get(1)?,
            size: to_u64(r.get(2)?),
            sha256: r.get(3)?,
        });
    }
    Ok(out)
}

/// Whether the version of `path` written at `seq` is purged; `None` if there is no such row.
pub(crate) fn version_purged(conn: &Connection, path: &str, seq: u64) -> Result<Option<bool>> {
    Ok(conn
        .prepare_cached("SELECT purged FROM versions WHERE path = ?1 AND seq = ?2")?
        .query_row(params![path, to_i64(seq)], |r| r.get(0))
        .optional()?)
}

/// Every purged version as `(path, seq)`.
pub(crate) fn purged_versions(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare("SELECT path, seq FROM versions WHERE purged != 0")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, to_u64(r.get(1)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest version row of every path that was ever written (deletes included).
pub(crate) fn latest_versions(conn: &Connection) -> Result<Vec<RawVersion>> {
    let mut stmt =
        conn.prepare("SELECT path, max(seq), object, size, sha256 FROM versions GROUP BY path")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(RawVersion {
            path: r.get(0)?,
            seq: to_u64(r.get(1)?),
            object: r.get(2)?,
            size: to_u64(r.get(3)?),
            sha256: r.get(4)?,
        });
    }
    Ok(out)
}

/// Every row of the `head` table.
pub(crate) fn head_rows(conn: &Connection) -> Result<Vec<RawHead>> {
    let mut stmt = conn.prepare("SELECT path, seq, object, size, sha256 FROM head")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(RawHead {
            path: r.get(0)?,
            seq: to_u64(r.get(1)?),
            object: r.get(2)?,
            size: to_u64(r.get(3)?),
            sha256: r.get(4)?,
        });
    }
    Ok(out)
}

/// Objects an unpurged version references that have no row (raw ids).
pub(crate) fn referenced_without_row(conn: &Connection) -> Result<Vec<Vec<u8>>> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT v.object FROM versions v LEFT JOIN objects o ON o.blake3 = v.object
         WHERE v.object IS NOT NULL AND v.purged = 0 AND o.blake3 IS NULL",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Calls `f` with every object row (inline bytes included), in id order.
pub(crate) fn for_each_object(
    conn: &Connection,
    f: &mut dyn FnMut(RawObject) -> Result<()>,
) -> Result<()> {
    let mut stmt =
        conn.prepare("SELECT blake3, sha256, size, inline FROM objects ORDER BY blake3")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(RawObject {
            id: r.get(0)?,
            sha256: r.get(1)?,
            size: to_u64(r.get(2)?),
            inline: r.get(3)?,
        })?;
    }
    Ok(())
}

/// Every object whose bytes live in a file, with its size, in id order.
pub(crate) fn file_objects(conn: &Connection) -> Result<Vec<(ObjectId, u64)>> {
    let mut stmt =
        conn.prepare("SELECT blake3, size FROM objects WHERE inline IS NULL ORDER BY blake3")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: Vec<u8> = r.get(0)?;
        out.push((ObjectId::from_slice(&id)?, to_u64(r.get(1)?)));
    }
    Ok(out)
}

/// Object and commit counts; the caller runs it in a snapshot together with the HEAD lookup.
pub(crate) fn counts(conn: &Connection) -> Result<StoreCounts> {
    let (objects, bytes) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let commits = conn.query_row("SELECT COUNT(*) FROM commits", [], |r| r.get::<_, i64>(0))?;
    Ok(StoreCounts {
        objects: to_u64(objects),
        bytes: to_u64(bytes),
        commits: to_u64(commits),
    })
}

/// Objects created before `created_before_ms` that no unpurged version references: GC
/// candidates, each re-checked by `delete_object_if_unreferenced` before it goes.
pub(crate) fn gc_candidates(conn: &Connection, created_before_ms: i64) -> Result<Vec<ObjectId>> {
    let mut stmt = conn.prepare(
        "SELECT blake3 FROM objects o WHERE created < ?1
         AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.object = o.blake3 AND v.purged = 0)",
    )?;
    let ids = stmt.query_map(params![created_before_ms], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for id in ids {
        out.push(ObjectId::from_slice(&id?)?);
    }
    Ok(out)
}
