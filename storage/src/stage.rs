//! Streaming an object into the store: hash and write in parallel, then publish.
//!
//! The async side reads ~1 MiB chunks from the caller's reader and hands each chunk to two
//! blocking workers, one hashing (blake3 + sha256, sha512 on request) and one writing to
//! `tmp/`. Bounded channels keep at most a few chunks in flight, so memory stays flat whatever
//! the object size, and the two workers use both cores.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::hashing::{Digests, MultiHasher};
use crate::objects::{AnyObjects, ObjectBackend, TempObject};
use crate::store::inner::Inner;
use crate::types::{ObjectRef, StageOptions};

/// Bytes read from the caller per chunk.
const CHUNK: usize = 1024 * 1024;
/// Chunks queued per worker; bounds memory to about `2 * (DEPTH + 1)` chunks.
const DEPTH: usize = 3;

/// Stages a stream; see `Store::stage_with`.
pub(crate) async fn stage<R>(
    inner: Arc<Inner>,
    mut reader: R,
    opts: StageOptions,
) -> Result<ObjectRef>
where
    R: AsyncRead + Unpin + Send,
{
    let want_sha512 = opts.sha512 || matches!(opts.expect, Some(Digest::Sha512(_)));
    let temp = {
        let inner = inner.clone();
        run_blocking(move || Ok(inner.objects.create_temp()?)).await?
    };
    let (hash_tx, mut hash_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let (write_tx, mut write_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = MultiHasher::new(want_sha512);
        while let Some(chunk) = hash_rx.blocking_recv() {
            h.update(&chunk);
        }
        h.finish()
    });
    let writer = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut temp = temp;
        while let Some(chunk) = write_rx.blocking_recv() {
            temp.write_all(&chunk)?;
        }
        temp.sync()?;
        Ok(temp)
    });

    let read_result = pump(&mut reader, &hash_tx, &write_tx).await;
    // Closing the channels lets both workers finish; on a read error the writer still returns
    // the temp object, which is then dropped and so deleted.
    drop(hash_tx);
    drop(write_tx);
    let digests = hasher
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?;
    let temp = writer
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))??;
    read_result?;
    digests.check(opts.expect.as_ref())?;
    run_blocking(move || publish(&inner, temp, &digests)).await?;
    Ok(ObjectRef {
        id: digests.blake3,
        sha256: digests.sha256,
        sha512: digests.sha512,
        size: digests.size,
    })
}

/// Stages bytes that are already in memory (large `PutBytes`), synchronously.
pub(crate) fn stage_bytes(inner: &Inner, bytes: &[u8], digests: &Digests) -> Result<()> {
    let mut temp = inner.objects.create_temp()?;
    temp.write_all(bytes)?;
    temp.sync()?;
    publish(inner, temp, digests)
}

/// Publishes a durable temp object and records its row, under the object's stripe lock so
/// that a concurrent GC of the same object cannot interleave (reference/storage.md §6).
pub(crate) fn publish(
    inner: &Inner,
    temp: <AnyObjects as ObjectBackend>::Temp,
    d: &Digests,
) -> Result<()> {
    let _stripe = inner.stripes.lock(&d.blake3);
    // Only the stripe lock is held during the link and directory fsync: commits of other
    // objects keep flowing through the writer connection meanwhile.
    let known_inline = inner
        .read(|r| r.object_row(&d.blake3))?
        .is_some_and(|r| r.inline.is_some());
    if known_inline {
        // The metadata already holds these bytes; a second copy as a file would only linger
        // until the GC's orphan sweep.
        temp.discard();
    } else {
        inner.objects.publish(temp, &d.blake3)?;
    }
    inner.meta.upsert_object(d, crate::meta::now_ms())
}

/// Moves one chunk at a time from the reader to both workers (also used by resumable
/// upload sessions).
pub(crate) async fn pump<R>(
    reader: &mut R,
    hash_tx: &mpsc::Sender<Arc<Vec<u8>>>,
    write_tx: &mpsc::Sender<Arc<Vec<u8>>>,
) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
{
    loop {
        let mut buf = Vec::with_capacity(CHUNK);
        let mut eof = false;
        while buf.len() < CHUNK {
            if reader.read_buf(&mut buf).await? == 0 {
                eof = true;
                break;
            }
        }
        if !buf.is_empty() {
            let chunk = Arc::new(buf);
            let hashed = hash_tx.send(chunk.clone()).await;
            let written = write_tx.send(chunk).await;
            if hashed.is_err() || written.is_err() {
                // A worker stopped early; its own error is reported by the caller.
                return Ok(());
            }
        }
        if eof {
            return Ok(());
        }
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?
}
