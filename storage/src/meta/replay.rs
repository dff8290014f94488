//! Replaying a commit record copied from another store (`StoreManager::copy_store`), on
//! SQLite. The record's bytes are stored as they are, so the commit keeps its id; the rule
//! every engine applies before that is [`check_replay`].

use rusqlite::{Connection, TransactionBehavior, params};

use super::read::last_commit;
use super::to_i64;
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::record::{Record, RecordOp};
use crate::types::CommitInfo;

/// Decodes `bytes` and checks that the record extends a chain whose newest commit is `last`:
/// the next seq and `last` as its parent. Returns the record and its commit info.
pub(crate) fn check_replay(
    bytes: &[u8],
    last: Option<&CommitInfo>,
) -> Result<(Record, CommitInfo)> {
    let record = Record::decode(bytes)?;
    let expected_seq = last.map_or(1, |c| c.seq + 1);
    let expected_parent = last.map(|c| c.id);
    if record.seq != expected_seq || record.parent != expected_parent {
        return Err(StorageError::invalid(
            "copied commit",
            format!(
                "commit {} does not follow the destination's HEAD (seq {})",
                record.seq,
                expected_seq.saturating_sub(1)
            ),
        ));
    }
    let info = CommitInfo {
        seq: record.seq,
        id: crate::record::id_of(bytes),
        parent: record.parent,
        time_ms: record.time_ms,
        principal: record.principal.clone(),
        message: record.message.clone(),
    };
    Ok((record, info))
}

/// Inserts the inline objects, then the commit, in one transaction on the writer.
pub(crate) fn replay(
    conn: &mut Connection,
    bytes: &[u8],
    inline: &[(Digests, Vec<u8>)],
    now_ms: i64,
) -> Result<CommitInfo> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let last = last_commit(&tx)?;
    let (record, info) = check_replay(bytes, last.as_ref())?;
    for (d, data) in inline {
        tx.prepare_cached(
            "INSERT INTO objects(blake3, sha256, size, created, inline) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(blake3) DO NOTHING",
        )?
        .execute(params![
            d.blake3.as_bytes().as_slice(),
            d.sha256.as_bytes().as_slice(),
            to_i64(d.size),
            now_ms,
            data
        ])?;
    }
    let seq = to_i64(info.seq);
    tx.prepare_cached(
        "INSERT INTO commits(seq, id, parent, ts, principal, message, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        seq,
        info.id.as_bytes().as_slice(),
        info.parent.map(|p| p.as_bytes().to_vec()),
        info.time_ms,
        info.principal,
        info.message,
        bytes
    ])?;
    for op in &record.ops {
        apply(&tx, op, seq)?;
    }
    tx.commit()?;
    Ok(info)
}

fn apply(tx: &Connection, op: &RecordOp, seq: i64) -> Result<()> {
    match op {
        RecordOp::Purge { path, version } => {
            tx.prepare_cached("UPDATE versions SET purged = 1 WHERE path = ?1 AND seq = ?2")?
                .execute(params![path, to_i64(*version)])?;
        }
        RecordOp::Put { .. } | RecordOp::Delete { .. } => super::write::apply_change(tx, op, seq)?,
    }
    Ok(())
}
