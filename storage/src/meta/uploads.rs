//! Queries of the `uploads` table: resumable upload sessions that survive a restart.
//!
//! A single-node session owns the file `uploads/<id>` of the store directory; `offset` is the
//! number of bytes of that file that were durably acknowledged (the file may be longer after a
//! crash in the middle of an append, and is cut back to `offset` before the next one).
//!
//! A session whose bytes are parts in object storage (shared stores, see `uploads/parts.rs`)
//! also has one `upload_parts` row per part: the offset it starts at, its length and the tag of
//! the append that wrote it. A part row is only ever inserted together with the move of the
//! session's offset from the part's start to its end ([`UploadMeta::append_upload_part`]), so
//! the rows of a session always tile `0..offset` exactly, whichever node wrote each part.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteMeta, to_i64, to_u64};
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
CREATE TABLE IF NOT EXISTS upload_parts(
    id TEXT NOT NULL,
    part_offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY(id, part_offset)
) WITHOUT ROWID;
";

/// One recorded part of a session: bytes `offset..offset + len`, stored in object storage
/// under the part name made of `offset` and `tag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UploadPart {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) tag: String,
}

/// The metadata of upload sessions whose bytes are parts in object storage. Every
/// [`super::MetaStore`] implements it; each write method is one transaction.
pub(crate) trait UploadMeta {
    /// Records `part` and moves the session's offset from `from` to `from + part.len`,
    /// renewing its lease, only if the offset is still `from`: the compare-and-swap that
    /// decides between two appends racing for one offset. Whether it did (`false`: another
    /// append moved the offset first, or the session is gone).
    fn append_upload_part(
        &self,
        id: &str,
        from: u64,
        part: &UploadPart,
        lease_until_ms: i64,
    ) -> Result<bool>;
    /// The recorded parts of a session, in offset order.
    fn upload_parts(&self, id: &str) -> Result<Vec<UploadPart>>;
    /// Deletes a session and its part rows if its offset is still `offset` (a finish that
    /// streamed exactly those parts); whether it did.
    fn finish_upload_at(&self, id: &str, offset: u64) -> Result<bool>;
    /// Deletes a session and its part rows, returning the parts so that their bytes can go
    /// too; `None` if there was no such session. With `expired_at`, only a session whose
    /// lease ended by then (an append may have renewed it since the caller looked).
    fn end_upload(&self, id: &str, expired_at: Option<i64>) -> Result<Option<Vec<UploadPart>>>;
}

impl UploadMeta for SqliteMeta {
    fn append_upload_part(
        &self,
        id: &str,
        from: u64,
        part: &UploadPart,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let moved = tx
            .prepare_cached(
                "UPDATE uploads SET offset = ?3, lease_until = ?4 WHERE id = ?1 AND offset = ?2",
            )?
            .execute(params![
                id,
                to_i64(from),
                to_i64(from.saturating_add(part.len)),
                lease_until_ms
            ])?;
        if moved == 0 {
            return Ok(false);
        }
        tx.prepare_cached(
            "INSERT INTO upload_parts(id, part_offset, len, tag) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, to_i64(part.offset), to_i64(part.len), part.tag])?;
        tx.commit()?;
        Ok(true)
    }

    fn upload_parts(&self, id: &str) -> Result<Vec<UploadPart>> {
        parts_of(&self.writer(), id)
    }

    fn finish_upload_at(&self, id: &str, offset: u64) -> Result<bool> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let gone = tx
            .prepare_cached("DELETE FROM uploads WHERE id = ?1 AND offset = ?2")?
            .execute(params![id, to_i64(offset)])?;
        if gone == 0 {
            return Ok(false);
        }
        tx.prepare_cached("DELETE FROM upload_parts WHERE id = ?1")?
            .execute([id])?;
        tx.commit()?;
        Ok(true)
    }

    fn end_upload(&self, id: &str, expired_at: Option<i64>) -> Result<Option<Vec<UploadPart>>> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let gone = tx
            .prepare_cached("DELETE FROM uploads WHERE id = ?1 AND lease_until <= ?2")?
            .execute(params![id, expired_at.unwrap_or(i64::MAX)])?;
        if gone == 0 {
            return Ok(None);
        }
        let parts = parts_of(&tx, id)?;
        tx.prepare_cached("DELETE FROM upload_parts WHERE id = ?1")?
            .execute([id])?;
        tx.commit()?;
        Ok(Some(parts))
    }
}

fn parts_of(conn: &Connection, id: &str) -> Result<Vec<UploadPart>> {
    let mut stmt = conn.prepare_cached(
        "SELECT part_offset, len, tag FROM upload_parts WHERE id = ?1 ORDER BY part_offset",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(UploadPart {
            offset: to_u64(r.get(0)?),
            len: to_u64(r.get(1)?),
            tag: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
}

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

/// Removes a session row (and part rows, which single-node sessions never have); `false` if
/// it did not exist.
pub(crate) fn delete_upload(conn: &Connection, id: &str) -> Result<bool> {
    conn.prepare_cached("DELETE FROM upload_parts WHERE id = ?1")?
        .execute([id])?;
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

#[cfg(test)]
mod tests {
    //! The part rows on both engines: the compare-and-swap an append relies on, and the
    //! deletes that hand back what must be removed from object storage.

    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::super::conformance::Fixture;
    use super::*;

    fn part(offset: u64, len: u64, tag: &str) -> UploadPart {
        UploadPart {
            offset,
            len,
            tag: tag.into(),
        }
    }

    fn parts_move_by_compare_and_swap(f: Fixture) {
        let m = &*f.meta;
        let now = super::super::now_ms();
        for id in ["s1", "s2"] {
            let row = UploadRow {
                id: id.into(),
                path: "p".into(),
                started_ms: now,
                offset: 0,
                ttl_ms: 1000,
                lease_until_ms: now + 1000,
            };
            assert!(m.insert_upload_capped(&row, 10, now).unwrap());
        }
        assert!(
            m.append_upload_part("s1", 0, &part(0, 5, "a"), now + 2000)
                .unwrap()
        );
        // The second append that read offset 0 loses, and records nothing.
        assert!(
            !m.append_upload_part("s1", 0, &part(0, 7, "b"), now + 2000)
                .unwrap()
        );
        assert!(
            m.append_upload_part("s1", 5, &part(5, 3, "c"), now + 3000)
                .unwrap()
        );
        assert!(
            !m.append_upload_part("gone", 0, &part(0, 1, "d"), now)
                .unwrap()
        );
        let row = m.upload_row("s1").unwrap().unwrap();
        assert_eq!((row.offset, row.lease_until_ms), (8, now + 3000));
        let want = vec![part(0, 5, "a"), part(5, 3, "c")];
        assert_eq!(m.upload_parts("s1").unwrap(), want);

        // A finish that saw offset 5 is refused once the offset moved on.
        assert!(!m.finish_upload_at("s1", 5).unwrap());
        // An expiry decided before the last append renewed the lease is refused too.
        assert_eq!(m.end_upload("s1", Some(now + 2500)).unwrap(), None);
        assert_eq!(m.end_upload("s1", Some(now + 3000)).unwrap(), Some(want));
        assert!(m.upload_parts("s1").unwrap().is_empty());
        assert_eq!(m.end_upload("s1", None).unwrap(), None);

        assert!(
            m.append_upload_part("s2", 0, &part(0, 4, "e"), now + 2000)
                .unwrap()
        );
        assert!(m.finish_upload_at("s2", 4).unwrap());
        assert!(m.upload_row("s2").unwrap().is_none());
        assert!(m.upload_parts("s2").unwrap().is_empty());
    }

    #[test]
    fn sqlite_parts_move_by_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMeta::open(&dir.path().join("meta.sqlite")).unwrap();
        parts_move_by_compare_and_swap(Fixture {
            meta: Box::new(meta),
            _guard: Box::new(dir),
        });
    }

    #[test]
    fn postgres_parts_move_by_compare_and_swap() {
        if super::super::postgres::available() {
            parts_move_by_compare_and_swap(super::super::postgres::fixture());
        }
    }
}
