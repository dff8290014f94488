//! Read queries on PostgreSQL (the port of `meta/read.rs`), and [`PgRead`], the blocking
//! [`MetaRead`] over one connection that the closures of `read` and `snapshot` receive.

use std::future::Future;

use tokio::runtime::Handle;
use tokio_postgres::Row;

use super::pool::Db;

use super::super::api::{MetaRead, RawCommit, RawHead, RawObject, RawVersion, StoreCounts};
use super::super::{Cutoff, ObjectRow, Resolved, to_i64, to_u64};
use super::walk;
use crate::digest::{CommitId, ObjectId, Sha256};
use crate::error::{Result, StorageError};
use crate::path::prefix_upper_bound;
use crate::types::{CommitInfo, Entry, HistoryEntry, VersionContent};

pub(super) const COMMIT_COLUMNS: &str = "seq, id, parent, ts, principal, message";

/// Reads a row selected with [`COMMIT_COLUMNS`] starting at column `at`.
fn commit_from_row(row: &Row, at: usize) -> Result<CommitInfo> {
    let id: Vec<u8> = row.try_get(at + 1)?;
    let parent: Option<Vec<u8>> = row.try_get(at + 2)?;
    Ok(CommitInfo {
        seq: to_u64(row.try_get(at)?),
        id: CommitId::from_slice(&id)?,
        parent: parent.map(|p| CommitId::from_slice(&p)).transpose()?,
        time_ms: row.try_get(at + 3)?,
        principal: row.try_get(at + 4)?,
        message: row.try_get(at + 5)?,
    })
}

/// The newest commit.
pub(super) async fn last_commit(c: &Db) -> Result<Option<CommitInfo>> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM commits ORDER BY seq DESC LIMIT 1");
    let rows = c.query(&sql, &[]).await?;
    rows.first().map(|r| commit_from_row(r, 0)).transpose()
}

async fn commit_by_id(c: &Db, id: &CommitId) -> Result<CommitInfo> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM commits WHERE id = $1");
    let rows = c.query(&sql, &[&id.as_bytes().as_slice()]).await?;
    match rows.first() {
        Some(r) => commit_from_row(r, 0),
        None => Err(StorageError::UnknownCommit(id.to_hex())),
    }
}

async fn log(c: &Db, limit: u64) -> Result<Vec<CommitInfo>> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM commits ORDER BY seq DESC LIMIT $1");
    let rows = c.query(&sql, &[&to_i64(limit)]).await?;
    rows.iter().map(|r| commit_from_row(r, 0)).collect()
}

fn entry_from_row(row: &Row) -> Result<Entry> {
    let object: Vec<u8> = row.try_get(2)?;
    let sha: Vec<u8> = row.try_get(4)?;
    Ok(Entry {
        path: row.try_get(0)?,
        version: to_u64(row.try_get(1)?),
        object: ObjectId::from_slice(&object)?,
        size: to_u64(row.try_get(3)?),
        sha256: Sha256::from_slice(&sha)?,
    })
}

/// The HEAD entry of a path.
pub(super) async fn head_entry(c: &Db, path: &str) -> Result<Option<Entry>> {
    let rows = c
        .query(
            "SELECT path, seq, object, size, sha256 FROM head WHERE path = $1",
            &[&path],
        )
        .await?;
    rows.first().map(entry_from_row).transpose()
}

async fn resolve_at(c: &Db, path: &str, seq: u64) -> Result<Resolved> {
    let rows = c
        .query(
            "SELECT path, seq, object, size, sha256, purged FROM versions
             WHERE path = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
            &[&path, &to_i64(seq)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(Resolved::Absent);
    };
    let object: Option<Vec<u8>> = row.try_get(2)?;
    if object.is_none() {
        return Ok(Resolved::Absent);
    }
    if row.try_get::<_, bool>(5)? {
        return Ok(Resolved::Purged {
            version: to_u64(row.try_get(1)?),
        });
    }
    Ok(Resolved::Live(entry_from_row(row)?))
}

async fn list_head(c: &Db, prefix: &str) -> Result<Vec<Entry>> {
    let rows = c
        .query(
            "SELECT path, seq, object, size, sha256 FROM head
             WHERE path >= $1 AND path < $2 ORDER BY path",
            &[&prefix, &prefix_upper_bound(prefix)],
        )
        .await?;
    rows.iter().map(entry_from_row).collect()
}

/// Every path under `prefix` that existed at `seq`, purged versions included (the path did
/// exist); `DISTINCT ON` picks each path's newest version at or before `seq`.
async fn list_at(c: &Db, prefix: &str, seq: u64) -> Result<Vec<Entry>> {
    let rows = c
        .query(
            "SELECT DISTINCT ON (path) path, seq, object, size, sha256 FROM versions
             WHERE path >= $1 AND path < $2 AND seq <= $3 ORDER BY path, seq DESC",
            &[&prefix, &prefix_upper_bound(prefix), &to_i64(seq)],
        )
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let object: Option<Vec<u8>> = r.try_get(2)?;
        if object.is_some() {
            out.push(entry_from_row(r)?);
        }
    }
    Ok(out)
}

async fn history(c: &Db, path: &str) -> Result<Vec<HistoryEntry>> {
    let rows = c
        .query(
            "SELECT v.object, v.size, v.sha256, v.purged,
                    c.seq, c.id, c.parent, c.ts, c.principal, c.message
             FROM versions v JOIN commits c ON c.seq = v.seq
             WHERE v.path = $1 ORDER BY v.seq",
            &[&path],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let object: Option<Vec<u8>> = r.try_get(0)?;
        let content = match object {
            Some(object) => {
                let sha: Vec<u8> = r.try_get(2)?;
                Some(VersionContent {
                    object: ObjectId::from_slice(&object)?,
                    size: to_u64(r.try_get(1)?),
                    sha256: Sha256::from_slice(&sha)?,
                    purged: r.try_get(3)?,
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
pub(super) async fn object_row(c: &Db, id: &ObjectId) -> Result<Option<ObjectRow>> {
    let rows = c
        .query(
            "SELECT sha256, size, created, inline IS NOT NULL FROM objects WHERE blake3 = $1",
            &[&id.as_bytes().as_slice()],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let sha: Vec<u8> = r.try_get(0)?;
    let inline: bool = r.try_get(3)?;
    Ok(Some(ObjectRow {
        sha256: Sha256::from_slice(&sha)?,
        size: to_u64(r.try_get(1)?),
        created_ms: r.try_get(2)?,
        inline: inline.then(Vec::new),
    }))
}

async fn inline_bytes(c: &Db, id: &ObjectId) -> Result<Option<Vec<u8>>> {
    let rows = c
        .query(
            "SELECT inline FROM objects WHERE blake3 = $1",
            &[&id.as_bytes().as_slice()],
        )
        .await?;
    match rows.first() {
        Some(r) => Ok(r.try_get::<_, Option<Vec<u8>>>(0)?),
        None => Ok(None),
    }
}

/// A setting, if set.
pub(super) async fn setting(c: &Db, key: &str) -> Result<Option<String>> {
    let rows = c
        .query("SELECT value FROM settings WHERE key = $1", &[&key])
        .await?;
    Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
}

async fn recent_objects(c: &Db, n: u64) -> Result<Vec<ObjectId>> {
    let rows = c
        .query(
            "SELECT DISTINCT object FROM versions
             WHERE seq > (SELECT coalesce(max(seq), 0) FROM commits) - $1
               AND NOT purged AND object IS NOT NULL",
            &[&to_i64(n)],
        )
        .await?;
    rows.iter()
        .map(|r| ObjectId::from_slice(&r.try_get::<_, Vec<u8>>(0)?))
        .collect()
}

async fn nth_changing_commit(c: &Db, n: u64) -> Result<Option<u64>> {
    let rows = c
        .query(
            "SELECT DISTINCT seq FROM versions ORDER BY seq DESC LIMIT 1 OFFSET $1",
            &[&to_i64(n.saturating_sub(1))],
        )
        .await?;
    Ok(rows
        .first()
        .map(|r| r.try_get::<_, i64>(0))
        .transpose()?
        .map(to_u64))
}

async fn purged_paths_at(c: &Db, seq: u64) -> Result<u64> {
    let row = c
        .query_one(
            "SELECT count(*) FROM versions v
             WHERE v.purged AND v.seq <= $1
               AND NOT EXISTS (SELECT 1 FROM versions n
                               WHERE n.path = v.path AND n.seq > v.seq AND n.seq <= $1)",
            &[&to_i64(seq)],
        )
        .await?;
    Ok(to_u64(row.try_get(0)?))
}

/// Unpurged versions whose successor was committed at or before the cutoff, as
/// `(path, seq, size)`.
pub(super) async fn superseded(c: &Db, cutoff: Cutoff) -> Result<Vec<(String, i64, i64)>> {
    let (sql, bound) = match cutoff {
        Cutoff::Time(ms) => (
            "SELECT v.path, v.seq, v.size FROM versions v
             WHERE v.object IS NOT NULL AND NOT v.purged
               AND (SELECT cm.ts FROM versions n JOIN commits cm ON cm.seq = n.seq
                    WHERE n.path = v.path AND n.seq > v.seq ORDER BY n.seq LIMIT 1) <= $1
             ORDER BY v.path, v.seq",
            ms,
        ),
        Cutoff::Seq(seq) => (
            "SELECT v.path, v.seq, v.size FROM versions v
             WHERE v.object IS NOT NULL AND NOT v.purged
               AND (SELECT n.seq FROM versions n
                    WHERE n.path = v.path AND n.seq > v.seq ORDER BY n.seq LIMIT 1) <= $1
             ORDER BY v.path, v.seq",
            to_i64(seq),
        ),
    };
    let rows = c.query(sql, &[&bound]).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// How many sessions labelled `path` are live at `now_ms`.
pub(super) async fn count_live_uploads(c: &Db, path: &str, now_ms: i64) -> Result<u64> {
    let row = c
        .query_one(
            "SELECT count(*) FROM uploads WHERE path = $1 AND lease_until > $2",
            &[&path, &now_ms],
        )
        .await?;
    Ok(to_u64(row.try_get(0)?))
}

/// The blocking read interface over one connection (inside a snapshot transaction or not).
pub(super) struct PgRead<'a> {
    handle: &'a Handle,
    client: &'a Db,
}

impl<'a> PgRead<'a> {
    pub(super) fn new(handle: &'a Handle, client: &'a Db) -> PgRead<'a> {
        PgRead { handle, client }
    }

    fn run<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        self.handle.block_on(fut)
    }
}

impl MetaRead for PgRead<'_> {
    fn last_commit(&self) -> Result<Option<CommitInfo>> {
        self.run(last_commit(self.client))
    }
    fn commit_by_id(&self, id: &CommitId) -> Result<CommitInfo> {
        self.run(commit_by_id(self.client, id))
    }
    fn log(&self, limit: u64) -> Result<Vec<CommitInfo>> {
        self.run(log(self.client, limit))
    }
    fn head_entry(&self, path: &str) -> Result<Option<Entry>> {
        self.run(head_entry(self.client, path))
    }
    fn resolve_at(&self, path: &str, seq: u64) -> Result<Resolved> {
        self.run(resolve_at(self.client, path, seq))
    }
    fn list_head(&self, prefix: &str) -> Result<Vec<Entry>> {
        self.run(list_head(self.client, prefix))
    }
    fn list_at(&self, prefix: &str, seq: u64) -> Result<Vec<Entry>> {
        self.run(list_at(self.client, prefix, seq))
    }
    fn history(&self, path: &str) -> Result<Vec<HistoryEntry>> {
        self.run(history(self.client, path))
    }
    fn object_row(&self, id: &ObjectId) -> Result<Option<ObjectRow>> {
        self.run(object_row(self.client, id))
    }
    fn inline_bytes(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        self.run(inline_bytes(self.client, id))
    }
    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.run(setting(self.client, key))
    }
    fn recent_objects(&self, n: u64) -> Result<Vec<ObjectId>> {
        self.run(recent_objects(self.client, n))
    }
    fn nth_changing_commit(&self, n: u64) -> Result<Option<u64>> {
        self.run(nth_changing_commit(self.client, n))
    }
    fn purged_paths_at(&self, seq: u64) -> Result<u64> {
        self.run(purged_paths_at(self.client, seq))
    }
    fn superseded_before(&self, cutoff: Cutoff) -> Result<(u64, u64)> {
        let victims = self.run(superseded(self.client, cutoff))?;
        Ok((
            victims.len() as u64,
            victims.iter().map(|v| to_u64(v.2)).sum(),
        ))
    }
    fn count_live_uploads(&self, path: &str, now_ms: i64) -> Result<u64> {
        self.run(count_live_uploads(self.client, path, now_ms))
    }
    fn gc_candidates(&self, created_before_ms: i64) -> Result<Vec<ObjectId>> {
        self.run(walk::gc_candidates(self.client, created_before_ms))
    }
    fn counts(&self) -> Result<StoreCounts> {
        self.run(walk::counts(self.client))
    }
    fn for_each_commit(&self, f: &mut dyn FnMut(RawCommit) -> Result<()>) -> Result<()> {
        // Pages, so that the callback runs outside `block_on` and memory stays bounded.
        let mut after = 0u64;
        loop {
            let page = self.run(walk::commits_after(self.client, after))?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            for c in page {
                f(c)?;
            }
        }
    }
    fn versions_at(&self, seq: u64) -> Result<Vec<RawVersion>> {
        self.run(walk::versions_at(self.client, seq))
    }
    fn version_purged(&self, path: &str, seq: u64) -> Result<Option<bool>> {
        self.run(walk::version_purged(self.client, path, seq))
    }
    fn purged_versions(&self) -> Result<Vec<(String, u64)>> {
        self.run(walk::purged_versions(self.client))
    }
    fn latest_versions(&self) -> Result<Vec<RawVersion>> {
        self.run(walk::latest_versions(self.client))
    }
    fn head_rows(&self) -> Result<Vec<RawHead>> {
        self.run(walk::head_rows(self.client))
    }
    fn referenced_without_row(&self) -> Result<Vec<Vec<u8>>> {
        self.run(walk::referenced_without_row(self.client))
    }
    fn for_each_object(&self, f: &mut dyn FnMut(RawObject) -> Result<()>) -> Result<()> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.run(walk::objects_after(self.client, after.as_deref()))?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id.clone());
            for o in page {
                f(o)?;
            }
        }
    }
    fn file_objects(&self) -> Result<Vec<(ObjectId, u64)>> {
        self.run(walk::file_objects(self.client))
    }
}
