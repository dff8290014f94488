//! Upload sessions of shared stores: a session's bytes are parts in object storage, so that
//! POST on one node, PATCH on another and PUT on a third work (issue #12, item 4).
//!
//! An append streams the request body to a local temporary object while counting it (and
//! hashing it, when this node holds the running hash of the session's bytes so far), stores it
//! as one part named by the session, its start offset and a random tag, and then moves the
//! session's offset by compare-and-swap in the metadata, recording the part in the same
//! transaction ([`UploadMeta::append_upload_part`]). Of two appends racing for one offset on
//! two nodes exactly one moves it; the other deletes its own part (the tag keeps the two
//! apart) and answers with the usual offset conflict.
//!
//! Finishing reads the part rows (which tile `0..offset`), streams the parts in order through
//! the hasher into a temporary object and publishes it like a stage: memory stays at one
//! buffer whatever the size. Then the session ends, again by compare-and-swap on its offset,
//! and its parts are deleted. Cancel and expiry delete the parts their rows name. Nothing
//! lists the bucket for correctness: [`sweep_orphans`] lists parts only to delete those that
//! no row names (an append that died between storing its part and recording it) once they are
//! older than [`ORPHAN_GRACE_MS`].

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use super::state::Hashed;
use super::{CHUNK, DEPTH, UploadSession, live_row, object_ref};
use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::hashing::{Digests, MultiHasher};
use crate::meta::{self, UploadPart, UploadRow};
use crate::objects::{AnyObjects, ObjectBackend, PartKey, TempObject};
use crate::store::Store;
use crate::store::inner::Inner;
use crate::types::ObjectRef;

/// Parts that no session row names are deleted once they are this old. An append records its
/// part right after storing it, so an unrecorded part older than this is debris.
pub(super) const ORPHAN_GRACE_MS: i64 = 60 * 60 * 1000;

type Temp = <AnyObjects as ObjectBackend>::Temp;

/// Whether `store`'s sessions keep their bytes as parts: in shared stores, where the next
/// request of a session may reach another node. Single-node stores keep the local file, which
/// finishes without copying (see `uploads.rs`).
pub(super) fn uses_parts(store: &Store) -> bool {
    store.is_shared() || store.inner.uploads.parts_forced.load(Ordering::Relaxed)
}

/// Appends `reader` to the session `row` as one part; `cached` is this node's running hash of
/// the session, kept up to date when it matched.
pub(super) async fn append<R>(
    store: &Store,
    row: UploadRow,
    cached: &mut Option<Hashed>,
    reader: R,
) -> Result<UploadSession>
where
    R: AsyncRead + Unpin + Send,
{
    // This node's running hash goes on if it covers exactly the bytes so far; a session's
    // first append starts one. Otherwise (another node appended last) the finish hashes.
    let hashed = cached
        .take()
        .filter(|h| h.offset == row.offset)
        .or_else(|| {
            (row.offset == 0).then(|| Hashed {
                hasher: MultiHasher::new(false),
                offset: 0,
            })
        });
    let temp = store
        .blocking(|inner| Ok(inner.objects.create_temp()?))
        .await?;
    let (temp, hashed, written) = stage_part(temp, hashed, reader).await?;
    if written == 0 {
        // Nothing to store: the session stays as it is (the temp is dropped, i.e. deleted).
        drop(temp);
        *cached = hashed;
        return Ok(row.into());
    }
    let part = PartKey::new(&row.id, row.offset)?;
    let lease = meta::now_ms().saturating_add(row.ttl_ms);
    let (id, from) = (row.id.clone(), row.offset);
    let recorded = store
        .blocking(move |inner| {
            inner.objects.put_part(&part, temp)?;
            let record = UploadPart {
                offset: from,
                len: written,
                tag: part.tag.clone(),
            };
            // An error here leaves the outcome unknown (the row may have moved), so the part
            // stays; if it is not recorded, the orphan sweep deletes it later.
            let moved = inner.meta.append_upload_part(&id, from, &record, lease)?;
            if !moved {
                remove_parts(inner, std::slice::from_ref(&part));
            }
            Ok(moved)
        })
        .await?;
    if !recorded {
        return Err(match store.live_session_row(&row.id).await? {
            None => StorageError::NotFound(format!("upload {}", row.id)),
            Some(now) => StorageError::Conflict {
                path: format!("upload {}", row.id),
                expected: format!("offset {}", row.offset),
                found: format!("offset {}", now.offset),
            },
        });
    }
    *cached = hashed;
    Ok(UploadSession {
        offset: row.offset + written,
        expires_ms: lease,
        ..row.into()
    })
}

/// Streams `reader` into `temp` (and `hashed`, if any) with bounded memory; returns the durable
/// temp, the advanced hash and the bytes written. On an error the temp is dropped (deleted).
async fn stage_part<R>(
    temp: Temp,
    hashed: Option<Hashed>,
    mut reader: R,
) -> Result<(Temp, Option<Hashed>, u64)>
where
    R: AsyncRead + Unpin + Send,
{
    let (hash_tx, mut hash_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let (write_tx, mut write_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut hashed = hashed;
        while let Some(chunk) = hash_rx.blocking_recv() {
            if let Some(h) = hashed.as_mut() {
                h.hasher.update(&chunk);
                h.offset += chunk.len() as u64;
            }
        }
        hashed
    });
    let writer = tokio::task::spawn_blocking(move || -> Result<(Temp, u64)> {
        let mut temp = temp;
        let mut written = 0u64;
        while let Some(chunk) = write_rx.blocking_recv() {
            temp.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        temp.sync()?;
        Ok((temp, written))
    });
    let read_result = crate::stage::pump(&mut reader, &hash_tx, &write_tx).await;
    drop(hash_tx);
    drop(write_tx);
    let hashed = hasher
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?;
    let (temp, written) = writer
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))??;
    read_result?;
    Ok((temp, hashed, written))
}

/// Finishes a session: see the module documentation.
pub(super) fn finish(
    inner: &Inner,
    id: &str,
    expect: Option<Digest>,
    cached: Option<Hashed>,
) -> Result<ObjectRef> {
    let row = live_row(inner, id)?.ok_or_else(|| StorageError::NotFound(format!("upload {id}")))?;
    let parts = inner.meta.upload_parts(id)?;
    check_tiling(id, &parts, row.offset)?;
    let want_sha512 = matches!(expect, Some(Digest::Sha512(_)));
    let reuse = cached.filter(|h| h.offset == row.offset && !want_sha512);
    let keys: Vec<PartKey> = parts.iter().map(|p| key_of(id, p)).collect();
    let (temp, digests) = concatenate(inner, &keys, &parts, reuse, want_sha512)?;
    if let Err(e) = digests.check(expect.as_ref()) {
        // The spec says to discard data that does not match its digest.
        drop(temp);
        end(inner, id, None)?;
        return Err(e);
    }
    crate::stage::publish(inner, temp, &digests)?;
    if !inner.meta.finish_upload_at(id, row.offset)? {
        // An append on another node moved the offset while we read: the object is published
        // (harmless, the GC frees it if nothing commits it), the session goes on.
        return Err(StorageError::Conflict {
            path: format!("upload {id}"),
            expected: format!("offset {}", row.offset),
            found: "an append that finished meanwhile".into(),
        });
    }
    remove_parts(inner, &keys);
    Ok(object_ref(&digests))
}

/// Streams the parts in order into a new temporary object, hashing them unless `reuse` already
/// holds the hash of exactly these bytes; returns the durable temp and the digests.
fn concatenate(
    inner: &Inner,
    keys: &[PartKey],
    parts: &[UploadPart],
    reuse: Option<Hashed>,
    sha512: bool,
) -> Result<(Temp, Digests)> {
    let mut temp = inner.objects.create_temp()?;
    let (mut hasher, hashing) = match reuse {
        Some(h) => (h.hasher, false),
        None => (MultiHasher::new(sha512), true),
    };
    let mut buf = vec![0u8; CHUNK];
    for (key, part) in keys.iter().zip(parts) {
        let mut reader = inner.objects.open_part(key)?;
        let mut got = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            if hashing {
                hasher.update(chunk);
            }
            temp.write_all(chunk)?;
            got += n as u64;
        }
        if got != part.len {
            return Err(StorageError::Corrupt(format!(
                "upload {} part at {} holds {got} bytes, its row says {}",
                key.session, part.offset, part.len
            )));
        }
    }
    temp.sync()?;
    Ok((temp, hasher.finish()))
}

/// The part rows of a session must cover `0..offset` without gaps or overlaps.
fn check_tiling(id: &str, parts: &[UploadPart], offset: u64) -> Result<()> {
    let mut end = 0u64;
    for p in parts {
        if p.offset != end {
            return Err(StorageError::Corrupt(format!(
                "upload {id} has a part at {} where {end} was expected",
                p.offset
            )));
        }
        end = end.saturating_add(p.len);
    }
    if end != offset {
        return Err(StorageError::Corrupt(format!(
            "upload {id} has parts up to {end}, its row says {offset}"
        )));
    }
    Ok(())
}

fn key_of(id: &str, p: &UploadPart) -> PartKey {
    PartKey {
        session: id.to_owned(),
        offset: p.offset,
        tag: p.tag.clone(),
    }
}

/// Ends a session and deletes its parts; `false` if there was no such session (or, with
/// `expired_at`, it was renewed meanwhile). The row goes first: it is the commit point, and
/// parts left behind by a crash right after it are swept as orphans.
pub(super) fn end(inner: &Inner, id: &str, expired_at: Option<i64>) -> Result<bool> {
    let Some(parts) = inner.meta.end_upload(id, expired_at)? else {
        return Ok(false);
    };
    let keys: Vec<PartKey> = parts.iter().map(|p| key_of(id, p)).collect();
    remove_parts(inner, &keys);
    Ok(true)
}

/// Deletes parts nothing needs any more; a failure only leaves orphans for the sweep.
fn remove_parts(inner: &Inner, keys: &[PartKey]) {
    if keys.is_empty() {
        return;
    }
    if let Err(e) = inner.objects.remove_parts(keys) {
        tracing::warn!(error = %e, "cannot delete upload parts; the orphan sweep will");
    }
}

/// Deletes parts that no session row names and that are older than the grace period; returns
/// how many. Runs at most once per quarter grace period per store handle, since it lists.
pub(super) fn sweep_orphans(inner: &Inner, now_ms: i64) -> Result<u64> {
    let last = inner.uploads.last_sweep_ms.load(Ordering::Relaxed);
    if last != 0 && now_ms.saturating_sub(last) < ORPHAN_GRACE_MS / 4 {
        return Ok(0);
    }
    inner.uploads.last_sweep_ms.store(now_ms, Ordering::Relaxed);
    let cutoff = SystemTime::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(now_ms.saturating_sub(ORPHAN_GRACE_MS)).unwrap_or(0));
    let mut by_session: BTreeMap<String, Vec<PartKey>> = BTreeMap::new();
    for (key, modified) in inner.objects.list_parts()? {
        if modified < cutoff {
            by_session.entry(key.session.clone()).or_default().push(key);
        }
    }
    let mut removed = 0u64;
    for (session, keys) in by_session {
        let recorded: HashSet<(u64, String)> = inner
            .meta
            .upload_parts(&session)?
            .into_iter()
            .map(|p| (p.offset, p.tag))
            .collect();
        let orphans: Vec<PartKey> = keys
            .into_iter()
            .filter(|k| !recorded.contains(&(k.offset, k.tag.clone())))
            .collect();
        removed += orphans.len() as u64;
        inner.objects.remove_parts(&orphans)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
