//! Write transactions on PostgreSQL (the port of `meta/write.rs`; upload rows are in
//! `uploads.rs`). Each function runs inside the transaction the caller opened, and every one that decides on the
//! store's state first takes the row lock of the store's `store_head` row, so that writes of
//! one store are serialised across every node, as SQLite's single writer serialises them.

use super::pool::Db;

use super::super::{CommitRequest, Cutoff, ObjectOutcome, PreparedOp, to_i64, to_u64};
use super::read::{head_entry, last_commit, object_row, superseded};
use crate::digest::ObjectId;
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::record::{Record, RecordOp};
use crate::types::{CommitInfo, CommitMeta, Precondition};

/// Takes the store's write lock for the rest of the transaction. In READ COMMITTED every later
/// statement then sees every transaction that held the lock before.
pub(super) async fn lock_store(c: &Db) -> Result<()> {
    c.query_one("SELECT id FROM store_head WHERE id = 1 FOR UPDATE", &[])
        .await?;
    Ok(())
}

/// Records a published object, or restarts the grace period of an existing row.
pub(super) async fn upsert_object(c: &Db, d: &Digests, now_ms: i64) -> Result<()> {
    lock_store(c).await?;
    c.execute(
        "INSERT INTO objects(blake3, sha256, size, created) VALUES ($1, $2, $3, $4)
         ON CONFLICT(blake3) DO UPDATE SET created = greatest(objects.created, excluded.created)",
        &[
            &d.blake3.as_bytes().as_slice(),
            &d.sha256.as_bytes().as_slice(),
            &to_i64(d.size),
            &now_ms,
        ],
    )
    .await?;
    Ok(())
}

/// Applies one commit: preconditions, object rows, then the hash-chained record.
pub(super) async fn commit(c: &Db, req: CommitRequest, now_ms: i64) -> Result<CommitInfo> {
    lock_store(c).await?;
    for pre in &req.preconditions {
        check_precondition(c, pre).await?;
    }
    let mut record_ops = Vec::with_capacity(req.ops.len());
    for op in req.ops {
        record_ops.push(match op {
            PreparedOp::Put { path, object } => {
                let row = object_row(c, &object)
                    .await?
                    .ok_or_else(|| StorageError::ObjectMissing(object.to_hex()))?;
                RecordOp::Put { path, object, size: row.size, sha256: row.sha256 }
            }
            PreparedOp::PutInline { path, digests, bytes } => {
                c.execute(
                    "INSERT INTO objects(blake3, sha256, size, created, inline) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT(blake3) DO UPDATE SET created = greatest(objects.created, excluded.created)",
                    &[
                        &digests.blake3.as_bytes().as_slice(),
                        &digests.sha256.as_bytes().as_slice(),
                        &to_i64(digests.size),
                        &now_ms,
                        &bytes,
                    ],
                )
                .await?;
                RecordOp::Put {
                    path,
                    object: digests.blake3,
                    size: digests.size,
                    sha256: digests.sha256,
                }
            }
            PreparedOp::Delete { path } => {
                if head_entry(c, &path).await?.is_none() {
                    return Err(StorageError::NotFound(path));
                }
                RecordOp::Delete { path }
            }
        });
    }
    append(c, record_ops, &req.meta, now_ms).await
}

/// Purges every version `cutoff` selects in one commit; `None` when nothing qualifies.
pub(super) async fn purge_superseded(
    c: &Db,
    cutoff: Cutoff,
    meta: &CommitMeta,
    now_ms: i64,
) -> Result<Option<(CommitInfo, u64, u64)>> {
    lock_store(c).await?;
    let victims = superseded(c, cutoff).await?;
    if victims.is_empty() {
        return Ok(None);
    }
    let count = victims.len() as u64;
    let mut bytes = 0u64;
    let mut ops = Vec::with_capacity(victims.len());
    for (path, seq, size) in victims {
        c.execute(
            "UPDATE versions SET purged = true WHERE path = $1 AND seq = $2",
            &[&path, &seq],
        )
        .await?;
        bytes += to_u64(size);
        ops.push(RecordOp::Purge {
            path,
            version: to_u64(seq),
        });
    }
    let info = append(c, ops, meta, now_ms).await?;
    Ok(Some((info, count, bytes)))
}

/// Sets `key` and removes each of `remove`.
pub(super) async fn replace_setting(c: &Db, key: &str, value: &str, remove: &[&str]) -> Result<()> {
    lock_store(c).await?;
    set_setting(c, key, value).await?;
    for old in remove {
        c.execute("DELETE FROM settings WHERE key = $1", &[old])
            .await?;
    }
    Ok(())
}

/// Sets `key` unless it or any of `also` is set; whether it wrote.
pub(super) async fn init_setting(c: &Db, key: &str, value: &str, also: &[&str]) -> Result<bool> {
    lock_store(c).await?;
    for k in std::iter::once(key).chain(also.iter().copied()) {
        if super::read::setting(c, k).await?.is_some() {
            return Ok(false);
        }
    }
    set_setting(c, key, value).await?;
    Ok(true)
}

async fn set_setting(c: &Db, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO settings(key, value) VALUES ($1, $2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}

/// The GC's re-check and delete, under the store lock so no commit can reference the object
/// between the check and the delete.
pub(super) async fn delete_object_if_unreferenced(
    c: &Db,
    id: &ObjectId,
    created_before_ms: i64,
    dry_run: bool,
) -> Result<Option<ObjectOutcome>> {
    lock_store(c).await?;
    let key = id.as_bytes().as_slice();
    let referenced: bool = c
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM versions WHERE object = $1 AND NOT purged)",
            &[&key],
        )
        .await?
        .try_get(0)?;
    if referenced {
        return Ok(None);
    }
    let Some(row) = object_row(c, id).await? else {
        return Ok(None);
    };
    if row.created_ms >= created_before_ms {
        return Ok(None);
    }
    if !dry_run {
        c.execute("DELETE FROM objects WHERE blake3 = $1", &[&key])
            .await?;
    }
    Ok(Some(ObjectOutcome {
        size: row.size,
        is_file: row.inline.is_none(),
    }))
}

async fn check_precondition(c: &Db, pre: &Precondition) -> Result<()> {
    let head = head_entry(c, &pre.path).await?;
    crate::meta::api::evaluate_precondition(pre, head)
}

/// Appends a commit record (the same bytes, hence the same id, as SQLite's `append`) and
/// applies its operations to `versions` and `head`.
async fn append(c: &Db, ops: Vec<RecordOp>, meta: &CommitMeta, now_ms: i64) -> Result<CommitInfo> {
    let parent = last_commit(c).await?;
    let seq = parent.as_ref().map_or(1, |p| p.seq + 1);
    // Commit times never go backwards, even if a node's clock does.
    let time_ms = parent.as_ref().map_or(now_ms, |p| p.time_ms.max(now_ms));
    let record = Record {
        seq,
        parent: parent.as_ref().map(|p| p.id),
        time_ms,
        principal: meta.principal.clone(),
        message: meta.message.clone(),
        ops,
    };
    let bytes = record.encode();
    let id = crate::record::id_of(&bytes);
    let seq_i = to_i64(seq);
    let parent_bytes = record.parent.map(|p| p.as_bytes().to_vec());
    c.execute(
        "INSERT INTO commits(seq, id, parent, ts, principal, message, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &seq_i,
            &id.as_bytes().as_slice(),
            &parent_bytes,
            &time_ms,
            &meta.principal,
            &meta.message,
            &bytes,
        ],
    )
    .await?;
    for op in &record.ops {
        apply_op(c, op, seq_i).await?;
    }
    Ok(CommitInfo {
        seq,
        id,
        parent: record.parent,
        time_ms,
        principal: record.principal,
        message: record.message,
    })
}

pub(super) async fn apply_op(c: &Db, op: &RecordOp, seq: i64) -> Result<()> {
    match op {
        RecordOp::Put {
            path,
            object,
            size,
            sha256,
        } => {
            let (o, s, sz) = (
                object.as_bytes().as_slice(),
                sha256.as_bytes().as_slice(),
                to_i64(*size),
            );
            c.execute(
                "INSERT INTO versions(path, seq, object, size, sha256) VALUES ($1, $2, $3, $4, $5)",
                &[path, &seq, &o, &sz, &s],
            )
            .await?;
            c.execute(
                "INSERT INTO head(path, seq, object, size, sha256) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT(path) DO UPDATE SET seq = excluded.seq, object = excluded.object,
                 size = excluded.size, sha256 = excluded.sha256",
                &[path, &seq, &o, &sz, &s],
            )
            .await?;
        }
        RecordOp::Delete { path } => {
            c.execute(
                "INSERT INTO versions(path, seq, object, size, sha256) VALUES ($1, $2, NULL, 0, NULL)",
                &[path, &seq],
            )
            .await?;
            c.execute("DELETE FROM head WHERE path = $1", &[path])
                .await?;
        }
        RecordOp::Purge { .. } => {}
    }
    Ok(())
}
