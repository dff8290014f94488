//! Whole-store reads on PostgreSQL for `verify`, `export`, `stats` and the GC (the port of
//! `meta/walk.rs`). The walkers get raw column bytes: a malformed hash is something `verify`
//! reports, not an error that stops it. The two unbounded walks come in pages, so that a
//! store with millions of commits or objects never sits in memory whole.

use tokio_postgres::Row;

use super::pool::Db;

use super::super::api::{RawCommit, RawHead, RawObject, RawVersion, StoreCounts};
use super::super::{to_i64, to_u64};
use crate::digest::ObjectId;
use crate::error::Result;

/// Rows per page of the paged walks.
const PAGE: i64 = 1000;

/// The next page of commit rows after `seq`, oldest first.
pub(super) async fn commits_after(c: &Db, seq: u64) -> Result<Vec<RawCommit>> {
    let rows = c
        .query(
            "SELECT seq, id, parent, ts, principal, message, record FROM commits
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&to_i64(seq), &PAGE],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(RawCommit {
                seq: to_u64(r.try_get(0)?),
                id: r.try_get(1)?,
                parent: r.try_get(2)?,
                time_ms: r.try_get(3)?,
                principal: r.try_get(4)?,
                message: r.try_get(5)?,
                record: r.try_get(6)?,
            })
        })
        .collect()
}

fn raw_version(r: &Row, seq: Option<u64>) -> Result<RawVersion> {
    Ok(RawVersion {
        path: r.try_get(0)?,
        seq: match seq {
            Some(s) => s,
            None => to_u64(r.try_get(4)?),
        },
        object: r.try_get(1)?,
        size: to_u64(r.try_get(2)?),
        sha256: r.try_get(3)?,
    })
}

/// The version rows a commit wrote.
pub(super) async fn versions_at(c: &Db, seq: u64) -> Result<Vec<RawVersion>> {
    let rows = c
        .query(
            "SELECT path, object, size, sha256 FROM versions WHERE seq = $1",
            &[&to_i64(seq)],
        )
        .await?;
    rows.iter().map(|r| raw_version(r, Some(seq))).collect()
}

/// Whether the version of `path` written at `seq` is purged; `None` without such a row.
pub(super) async fn version_purged(c: &Db, path: &str, seq: u64) -> Result<Option<bool>> {
    let rows = c
        .query(
            "SELECT purged FROM versions WHERE path = $1 AND seq = $2",
            &[&path, &to_i64(seq)],
        )
        .await?;
    Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
}

/// Every purged version as `(path, seq)`.
pub(super) async fn purged_versions(c: &Db) -> Result<Vec<(String, u64)>> {
    let rows = c
        .query("SELECT path, seq FROM versions WHERE purged", &[])
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, to_u64(r.try_get(1)?))))
        .collect()
}

/// The newest version row of every path ever written (deletes included).
pub(super) async fn latest_versions(c: &Db) -> Result<Vec<RawVersion>> {
    let rows = c
        .query(
            "SELECT DISTINCT ON (path) path, object, size, sha256, seq FROM versions
             ORDER BY path, seq DESC",
            &[],
        )
        .await?;
    rows.iter().map(|r| raw_version(r, None)).collect()
}

/// Every row of the `head` table.
pub(super) async fn head_rows(c: &Db) -> Result<Vec<RawHead>> {
    let rows = c
        .query("SELECT path, seq, object, size, sha256 FROM head", &[])
        .await?;
    rows.iter()
        .map(|r| {
            Ok(RawHead {
                path: r.try_get(0)?,
                seq: to_u64(r.try_get(1)?),
                object: r.try_get(2)?,
                size: to_u64(r.try_get(3)?),
                sha256: r.try_get(4)?,
            })
        })
        .collect()
}

/// Objects an unpurged version references that have no row (raw ids).
pub(super) async fn referenced_without_row(c: &Db) -> Result<Vec<Vec<u8>>> {
    let rows = c
        .query(
            "SELECT DISTINCT v.object FROM versions v LEFT JOIN objects o ON o.blake3 = v.object
             WHERE v.object IS NOT NULL AND NOT v.purged AND o.blake3 IS NULL",
            &[],
        )
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// The next page of object rows (inline bytes included) after id `after`, in id order.
pub(super) async fn objects_after(c: &Db, after: Option<&[u8]>) -> Result<Vec<RawObject>> {
    let rows = c
        .query(
            "SELECT blake3, sha256, size, inline FROM objects
             WHERE $1::BYTEA IS NULL OR blake3 > $1 ORDER BY blake3 LIMIT $2",
            &[&after, &PAGE],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(RawObject {
                id: r.try_get(0)?,
                sha256: r.try_get(1)?,
                size: to_u64(r.try_get(2)?),
                inline: r.try_get(3)?,
            })
        })
        .collect()
}

/// Every object whose bytes live outside the database, with its size, in id order.
pub(super) async fn file_objects(c: &Db) -> Result<Vec<(ObjectId, u64)>> {
    let rows = c
        .query(
            "SELECT blake3, size FROM objects WHERE inline IS NULL ORDER BY blake3",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: Vec<u8> = r.try_get(0)?;
            Ok((ObjectId::from_slice(&id)?, to_u64(r.try_get(1)?)))
        })
        .collect()
}

/// Object, byte and commit counts.
pub(super) async fn counts(c: &Db) -> Result<StoreCounts> {
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM objects),
                    (SELECT coalesce(sum(size), 0)::BIGINT FROM objects),
                    (SELECT count(*) FROM commits)",
            &[],
        )
        .await?;
    Ok(StoreCounts {
        objects: to_u64(row.try_get(0)?),
        bytes: to_u64(row.try_get(1)?),
        commits: to_u64(row.try_get(2)?),
    })
}

/// Unreferenced objects created before `created_before_ms`: GC candidates, each re-checked
/// under the store's row lock by `delete_object_if_unreferenced` before it goes.
pub(super) async fn gc_candidates(c: &Db, created_before_ms: i64) -> Result<Vec<ObjectId>> {
    let rows = c
        .query(
            "SELECT blake3 FROM objects o WHERE created < $1
             AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.object = o.blake3 AND NOT v.purged)",
            &[&created_before_ms],
        )
        .await?;
    rows.iter()
        .map(|r| ObjectId::from_slice(&r.try_get::<_, Vec<u8>>(0)?))
        .collect()
}
