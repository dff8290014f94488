//! Replaying a commit record copied from another store, on PostgreSQL (the port of
//! `meta/replay.rs`): under the store's row lock, like every write.

use super::pool::Db;
use super::read::last_commit;
use super::write::{apply_op, lock_store};
use crate::error::Result;
use crate::hashing::Digests;
use crate::meta::replay::check_replay;
use crate::meta::to_i64;
use crate::record::RecordOp;
use crate::types::CommitInfo;

/// Inserts the inline objects, then the commit, inside the caller's transaction.
pub(super) async fn replay(
    c: &Db,
    bytes: &[u8],
    inline: &[(Digests, Vec<u8>)],
    now_ms: i64,
) -> Result<CommitInfo> {
    lock_store(c).await?;
    let last = last_commit(c).await?;
    let (record, info) = check_replay(bytes, last.as_ref())?;
    for (d, data) in inline {
        c.execute(
            "INSERT INTO objects(blake3, sha256, size, created, inline) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(blake3) DO NOTHING",
            &[
                &d.blake3.as_bytes().as_slice(),
                &d.sha256.as_bytes().as_slice(),
                &to_i64(d.size),
                &now_ms,
                data,
            ],
        )
        .await?;
    }
    let seq = to_i64(info.seq);
    let parent = info.parent.map(|p| p.as_bytes().to_vec());
    c.execute(
        "INSERT INTO commits(seq, id, parent, ts, principal, message, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &seq,
            &info.id.as_bytes().as_slice(),
            &parent,
            &info.time_ms,
            &info.principal,
            &info.message,
            &bytes,
        ],
    )
    .await?;
    for op in &record.ops {
        match op {
            RecordOp::Purge { path, version } => {
                c.execute(
                    "UPDATE versions SET purged = true WHERE path = $1 AND seq = $2",
                    &[path, &to_i64(*version)],
                )
                .await?;
            }
            other => apply_op(c, other, seq).await?,
        }
    }
    Ok(info)
}
