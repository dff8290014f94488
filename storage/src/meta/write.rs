//! Write transactions. Each function is one `BEGIN IMMEDIATE` transaction on the writer
//! connection, the single linearisation point of the store.

use rusqlite::{Connection, TransactionBehavior, params};

use super::read::{head_entry, last_commit, object_row};
use super::{to_i64, to_u64};
use crate::digest::ObjectId;
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::record::{Record, RecordOp};
use crate::types::{CommitInfo, CommitMeta, Precondition};

/// An operation whose content is already durable (a published file) or travels with the
/// transaction (inline bytes).
#[derive(Clone, Debug)]
pub(crate) enum PreparedOp {
    /// Reference an object that must already have a row.
    Put { path: String, object: ObjectId },
    /// Reference small content, inserting its inline row if needed.
    PutInline {
        path: String,
        digests: Digests,
        bytes: Vec<u8>,
    },
    /// Delete a live path.
    Delete { path: String },
}

/// Records that a staged object exists, or refreshes the creation time of an existing row so
/// that the GC grace period starts again (the caller holds the object's stripe lock).
pub(crate) fn upsert_object(conn: &mut Connection, d: &Digests, now_ms: i64) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(
        "INSERT INTO objects(blake3, sha256, size, created) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(blake3) DO UPDATE SET created = max(created, excluded.created)",
    )?
    .execute(params![
        d.blake3.as_bytes().as_slice(),
        d.sha256.as_bytes().as_slice(),
        to_i64(d.size),
        now_ms
    ])?;
    tx.commit()?;
    Ok(())
}

/// One commit waiting to be applied.
#[derive(Debug)]
pub(crate) struct CommitRequest {
    pub(crate) ops: Vec<PreparedOp>,
    pub(crate) preconditions: Vec<Precondition>,
    pub(crate) meta: CommitMeta,
}

/// Applies several commits in one transaction (group commit: one fsync for all of them).
///
/// Each commit runs inside its own savepoint, so a failing precondition or a missing object
/// rolls back only that commit; later ones see every earlier one, exactly as if they had been
/// applied one by one. The results are only returned once the transaction is durable; if the
/// final COMMIT fails, every commit of the batch fails.
pub(crate) fn apply_batch(
    conn: &mut Connection,
    batch: Vec<CommitRequest>,
    now_ms: i64,
) -> Vec<Result<CommitInfo>> {
    let n = batch.len();
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(n, &e),
    };
    let mut results = Vec::with_capacity(n);
    for req in batch {
        let result = tx
            .savepoint()
            .map_err(StorageError::from)
            .and_then(|mut sp| match apply_one(&sp, req, now_ms) {
                Ok(info) => {
                    sp.commit()?;
                    Ok(info)
                }
                Err(e) => {
                    sp.rollback()?;
                    Err(e)
                }
            });
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(n, &e),
    }
}

/// Every commit of a batch fails with the transaction's error. It is a database or disk
/// failure (often a full disk), never corruption: the transaction was rolled back whole.
fn fail_all(n: usize, e: &rusqlite::Error) -> Vec<Result<CommitInfo>> {
    (0..n)
        .map(|_| Err(StorageError::from_shared_sqlite(e)))
        .collect()
}

/// Applies one commit inside the caller's transaction: checks preconditions, checks that every
/// referenced object still has a row (a GC may have removed it since it was staged), and
/// appends the hash-chained record.
fn apply_one(conn: &Connection, req: CommitRequest, now_ms: i64) -> Result<CommitInfo> {
    for pre in &req.preconditions {
        check_precondition(conn, pre)?;
    }
    let mut record_ops = Vec::with_capacity(req.ops.len());
    for op in req.ops {
        record_ops.push(match op {
            PreparedOp::Put { path, object } => {
                let row = object_row(conn, &object)?
                    .ok_or_else(|| StorageError::ObjectMissing(object.to_hex()))?;
                RecordOp::Put { path, object, size: row.size, sha256: row.sha256 }
            }
            PreparedOp::PutInline { path, digests, bytes } => {
                conn.prepare_cached(
                    "INSERT INTO objects(blake3, sha256, size, created, inline) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(blake3) DO UPDATE SET created = max(created, excluded.created)",
                )?
                .execute(params![
                    digests.blake3.as_bytes().as_slice(),
                    digests.sha256.as_bytes().as_slice(),
                    to_i64(digests.size),
                    now_ms,
                    bytes
                ])?;
                RecordOp::Put {
                    path,
                    object: digests.blake3,
                    size: digests.size,
                    sha256: digests.sha256,
                }
            }
            PreparedOp::Delete { path } => {
                if head_entry(conn, &path)?.is_none() {
                    return Err(StorageError::NotFound(path));
                }
                RecordOp::Delete { path }
            }
        });
    }
    append(conn, record_ops, &req.meta, now_ms)
}

/// Which superseded versions a purge takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cutoff {
    /// Versions whose successor was committed at or before this time (ms since the epoch).
    Time(i64),
    /// Versions whose successor was committed at or before this commit seq: no tree from
    /// that commit on contains them.
    Seq(u64),
}

/// Purges the content of every version the cutoff selects, in one commit that records who
/// purged what. Returns `None` when nothing qualifies.
pub(crate) fn purge_superseded(
    conn: &mut Connection,
    cutoff: Cutoff,
    meta: &CommitMeta,
    now_ms: i64,
) -> Result<Option<(CommitInfo, u64, u64)>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let victims = superseded(&tx, cutoff)?;
    if victims.is_empty() {
        return Ok(None);
    }
    let mut bytes = 0u64;
    let count = victims.len() as u64;
    let mut ops = Vec::with_capacity(victims.len());
    for (path, seq, size) in victims {
        tx.prepare_cached("UPDATE versions SET purged = 1 WHERE path = ?1 AND seq = ?2")?
            .execute(params![path, seq])?;
        bytes += to_u64(size);
        ops.push(RecordOp::Purge {
            path,
            version: to_u64(seq),
        });
    }
    let info = append(&tx, ops, meta, now_ms)?;
    tx.commit()?;
    Ok(Some((info, count, bytes)))
}

/// The number and total size of the versions [`purge_superseded`] would purge.
pub(crate) fn superseded_before(conn: &Connection, cutoff: Cutoff) -> Result<(u64, u64)> {
    let victims = superseded(conn, cutoff)?;
    Ok((
        victims.len() as u64,
        victims.iter().map(|v| to_u64(v.2)).sum(),
    ))
}

/// Unpurged versions whose successor (the next version of the same path, a delete included)
/// was committed at or before the cutoff.
fn superseded(conn: &Connection, cutoff: Cutoff) -> Result<Vec<(String, i64, i64)>> {
    let (sql, bound) = match cutoff {
        Cutoff::Time(ms) => (
            "SELECT v.path, v.seq, v.size FROM versions v
             WHERE v.object IS NOT NULL AND v.purged = 0
               AND (SELECT c.ts FROM versions n JOIN commits c ON c.seq = n.seq
                    WHERE n.path = v.path AND n.seq > v.seq ORDER BY n.seq LIMIT 1) <= ?1
             ORDER BY v.path, v.seq",
            ms,
        ),
        Cutoff::Seq(seq) => (
            "SELECT v.path, v.seq, v.size FROM versions v
             WHERE v.object IS NOT NULL AND v.purged = 0
               AND (SELECT n.seq FROM versions n
                    WHERE n.path = v.path AND n.seq > v.seq ORDER BY n.seq LIMIT 1) <= ?1
             ORDER BY v.path, v.seq",
            to_i64(seq),
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([bound], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Sets `key` to `value` and removes each of `remove`, in one transaction (a policy written
/// under a new key replaces the one a store kept under its old key).
pub(crate) fn replace_setting(
    conn: &mut Connection,
    key: &str,
    value: &str,
    remove: &[&str],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    set_setting(&tx, key, Some(value))?;
    for old in remove {
        set_setting(&tx, old, None)?;
    }
    tx.commit()?;
    Ok(())
}

/// Sets `key` to `value` unless `key` or any of `also` is already set, in one transaction so
/// that an operator's concurrent choice is never overwritten. Returns whether it wrote.
pub(crate) fn init_setting(
    conn: &mut Connection,
    key: &str,
    value: &str,
    also: &[&str],
) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for k in std::iter::once(key).chain(also.iter().copied()) {
        if super::read::setting(&tx, k)?.is_some() {
            return Ok(false);
        }
    }
    set_setting(&tx, key, Some(value))?;
    tx.commit()?;
    Ok(true)
}

/// Moves the write-ahead log into the database and truncates it, so that the pages a GC
/// freed stop occupying the log file. Best effort: readers get at most `wait` before the
/// checkpoint gives up (it then stays a passive one), so commits are never held up for long.
pub(crate) fn checkpoint_truncate(conn: &Connection, wait: std::time::Duration) -> Result<()> {
    conn.busy_timeout(wait)?;
    let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    // Back to the writer's usual patience, as `open_writer` set it.
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    match result {
        Ok(()) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets or clears a setting.
pub(crate) fn set_setting(conn: &Connection, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => conn.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, v],
        )?,
        None => conn.execute("DELETE FROM settings WHERE key = ?1", [key])?,
    };
    Ok(())
}

/// Deletes an object row if, inside this transaction, nothing references it and it is older
/// than `created_before_ms`. Returns whether the row was deleted and whether it was a file.
pub(crate) fn delete_object_if_unreferenced(
    conn: &mut Connection,
    id: &ObjectId,
    created_before_ms: i64,
    dry_run: bool,
) -> Result<Option<ObjectOutcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let key = id.as_bytes().as_slice();
    let referenced: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM versions WHERE object = ?1 AND purged = 0)")?
        .query_row([key], |r| r.get(0))?;
    if referenced {
        return Ok(None);
    }
    let Some(row) = object_row(&tx, id)? else {
        return Ok(None);
    };
    if row.created_ms >= created_before_ms {
        return Ok(None);
    }
    if !dry_run {
        tx.prepare_cached("DELETE FROM objects WHERE blake3 = ?1")?
            .execute([key])?;
        tx.commit()?;
    }
    Ok(Some(ObjectOutcome {
        size: row.size,
        is_file: row.inline.is_none(),
    }))
}

/// What [`delete_object_if_unreferenced`] removed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ObjectOutcome {
    pub(crate) size: u64,
    pub(crate) is_file: bool,
}

fn check_precondition(conn: &Connection, pre: &Precondition) -> Result<()> {
    let head = head_entry(conn, &pre.path)?;
    super::api::evaluate_precondition(pre, head)
}

/// Appends a commit record and applies its operations to `versions` and `head`.
fn append(
    tx: &Connection,
    ops: Vec<RecordOp>,
    meta: &CommitMeta,
    now_ms: i64,
) -> Result<CommitInfo> {
    let parent = last_commit(tx)?;
    let seq = parent.as_ref().map_or(1, |p| p.seq + 1);
    // Commit times never go backwards, even if the wall clock does, so retention by age and
    // the git export see a monotonic history.
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
    tx.prepare_cached(
        "INSERT INTO commits(seq, id, parent, ts, principal, message, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        seq_i,
        id.as_bytes().as_slice(),
        record.parent.map(|p| p.as_bytes().to_vec()),
        time_ms,
        meta.principal,
        meta.message,
        bytes
    ])?;
    for op in &record.ops {
        apply_change(tx, op, seq_i)?;
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

/// Applies a put or a delete of a commit record at `seq` to `versions` and `head` (a purge
/// changes nothing here: the purge commit flags its versions itself). Commits and replayed
/// histories (`replay.rs`) share it, so both write the same rows.
pub(super) fn apply_change(tx: &Connection, op: &RecordOp, seq: i64) -> Result<()> {
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
            tx.prepare_cached(
                "INSERT INTO versions(path, seq, object, size, sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![path, seq, o, sz, s])?;
            tx.prepare_cached(
                "INSERT INTO head(path, seq, object, size, sha256) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(path) DO UPDATE SET seq = excluded.seq, object = excluded.object,
                 size = excluded.size, sha256 = excluded.sha256",
            )?
            .execute(params![path, seq, o, sz, s])?;
        }
        RecordOp::Delete { path } => {
            tx.prepare_cached(
                "INSERT INTO versions(path, seq, object, size, sha256) VALUES (?1, ?2, NULL, 0, NULL)",
            )?
            .execute(params![path, seq])?;
            tx.prepare_cached("DELETE FROM head WHERE path = ?1")?
                .execute([path])?;
        }
        RecordOp::Purge { .. } => {}
    }
    Ok(())
}
