//! Upload session rows on PostgreSQL (the port of `meta/uploads.rs`): the `uploads` table and,
//! for sessions whose bytes are parts in object storage, `upload_parts`.
//!
//! An append's compare-and-swap is one `UPDATE ... WHERE upload_offset = $from`: in READ
//! COMMITTED a second transaction updating the same row waits for the first and then
//! re-evaluates the condition against the committed row, so of two nodes appending at one
//! offset exactly one moves it. The part row is inserted in the same transaction, and a
//! session's delete takes the same row lock first, so no part row outlives its session.

use tokio_postgres::Row;

use super::super::{UploadMeta, UploadPart, UploadRow, to_i64, to_u64};
use super::PostgresMeta;
use super::pool::Db;
use crate::error::Result;

/// The tables, appended to the store's schema (see `SCHEMA` in `mod.rs`).
pub(super) const UPLOAD_PARTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS upload_parts(
    id TEXT NOT NULL,
    part_offset BIGINT NOT NULL,
    len BIGINT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY(id, part_offset)
);
";

/// Inserts a session unless its path already has `max_open` live ones; whether it inserted.
pub(super) async fn insert_upload_capped(
    c: &Db,
    row: &UploadRow,
    max_open: u64,
    now_ms: i64,
) -> Result<bool> {
    super::write::lock_store(c).await?;
    if super::read::count_live_uploads(c, &row.path, now_ms).await? >= max_open {
        return Ok(false);
    }
    c.execute(
        "INSERT INTO uploads(id, path, started, upload_offset, ttl, lease_until)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &row.id,
            &row.path,
            &row.started_ms,
            &to_i64(row.offset),
            &row.ttl_ms,
            &row.lease_until_ms,
        ],
    )
    .await?;
    Ok(true)
}

const UPLOAD_COLUMNS: &str = "id, path, started, upload_offset, ttl, lease_until";

fn upload_from_row(r: &Row) -> Result<UploadRow> {
    Ok(UploadRow {
        id: r.try_get(0)?,
        path: r.try_get(1)?,
        started_ms: r.try_get(2)?,
        offset: to_u64(r.try_get(3)?),
        ttl_ms: r.try_get(4)?,
        lease_until_ms: r.try_get(5)?,
    })
}

/// A session by id, expired or not.
pub(super) async fn upload_row(c: &Db, id: &str) -> Result<Option<UploadRow>> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1");
    let rows = c.query(&sql, &[&id]).await?;
    rows.first().map(upload_from_row).transpose()
}

/// Records a durable append: the new offset and a renewed lease.
pub(super) async fn advance_upload(
    c: &Db,
    id: &str,
    offset: u64,
    lease_until_ms: i64,
) -> Result<()> {
    c.execute(
        "UPDATE uploads SET upload_offset = $2, lease_until = $3 WHERE id = $1",
        &[&id, &to_i64(offset), &lease_until_ms],
    )
    .await?;
    Ok(())
}

/// Deletes a session row and its part rows; whether the session existed.
pub(super) async fn delete_upload(c: &Db, id: &str) -> Result<bool> {
    let gone = c
        .execute("DELETE FROM uploads WHERE id = $1", &[&id])
        .await?;
    c.execute("DELETE FROM upload_parts WHERE id = $1", &[&id])
        .await?;
    Ok(gone > 0)
}

/// Every session row, oldest id first.
pub(super) async fn all_uploads(c: &Db) -> Result<Vec<UploadRow>> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads ORDER BY id");
    let rows = c.query(&sql, &[]).await?;
    rows.iter().map(upload_from_row).collect()
}

async fn append_part(
    c: &Db,
    id: &str,
    from: u64,
    part: &UploadPart,
    lease_until_ms: i64,
) -> Result<bool> {
    let moved = c
        .execute(
            "UPDATE uploads SET upload_offset = $3, lease_until = $4
             WHERE id = $1 AND upload_offset = $2",
            &[
                &id,
                &to_i64(from),
                &to_i64(from.saturating_add(part.len)),
                &lease_until_ms,
            ],
        )
        .await?;
    if moved == 0 {
        return Ok(false);
    }
    c.execute(
        "INSERT INTO upload_parts(id, part_offset, len, tag) VALUES ($1, $2, $3, $4)",
        &[&id, &to_i64(part.offset), &to_i64(part.len), &part.tag],
    )
    .await?;
    Ok(true)
}

async fn parts_of(c: &Db, id: &str) -> Result<Vec<UploadPart>> {
    let rows = c
        .query(
            "SELECT part_offset, len, tag FROM upload_parts WHERE id = $1 ORDER BY part_offset",
            &[&id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(UploadPart {
                offset: to_u64(r.try_get(0)?),
                len: to_u64(r.try_get(1)?),
                tag: r.try_get(2)?,
            })
        })
        .collect()
}

async fn finish_at(c: &Db, id: &str, offset: u64) -> Result<bool> {
    let gone = c
        .execute(
            "DELETE FROM uploads WHERE id = $1 AND upload_offset = $2",
            &[&id, &to_i64(offset)],
        )
        .await?;
    if gone == 0 {
        return Ok(false);
    }
    c.execute("DELETE FROM upload_parts WHERE id = $1", &[&id])
        .await?;
    Ok(true)
}

async fn end(c: &Db, id: &str, expired_at: Option<i64>) -> Result<Option<Vec<UploadPart>>> {
    let gone = c
        .execute(
            "DELETE FROM uploads WHERE id = $1 AND lease_until <= $2",
            &[&id, &expired_at.unwrap_or(i64::MAX)],
        )
        .await?;
    if gone == 0 {
        return Ok(None);
    }
    let parts = parts_of(c, id).await?;
    c.execute("DELETE FROM upload_parts WHERE id = $1", &[&id])
        .await?;
    Ok(Some(parts))
}

impl UploadMeta for PostgresMeta {
    fn append_upload_part(
        &self,
        id: &str,
        from: u64,
        part: &UploadPart,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let conn = self.pool.get()?;
        self.transaction(
            &conn,
            "BEGIN",
            append_part(conn.client(), id, from, part, lease_until_ms),
        )
    }

    fn upload_parts(&self, id: &str) -> Result<Vec<UploadPart>> {
        let conn = self.pool.get()?;
        self.run(parts_of(conn.client(), id))
    }

    fn finish_upload_at(&self, id: &str, offset: u64) -> Result<bool> {
        let conn = self.pool.get()?;
        self.transaction(&conn, "BEGIN", finish_at(conn.client(), id, offset))
    }

    fn end_upload(&self, id: &str, expired_at: Option<i64>) -> Result<Option<Vec<UploadPart>>> {
        let conn = self.pool.get()?;
        self.transaction(&conn, "BEGIN", end(conn.client(), id, expired_at))
    }
}
