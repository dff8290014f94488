//! The single-node session file: `uploads/<id>` in the store directory, appended with
//! `fdatasync`, cut back after a failed append, re-hashed after a restart, and taken over by
//! the object backend at finish without a copy (see the `uploads` module documentation).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use super::state::{Hashed, sync_dir};
use super::{CHUNK, DEPTH, WRITEBACK_WINDOW};
use crate::error::{Result, StorageError};
use crate::hashing::{Digests, MultiHasher};
use crate::objects::ObjectBackend;
use crate::store::inner::Inner;

/// Startup recovery: drops rows whose file is gone and files that no row owns, so a crash at
/// any point of `upload_start` or `upload_cancel` leaves nothing behind.
pub(crate) fn recover(inner: &Inner) -> Result<()> {
    let rows = inner.meta.all_uploads()?;
    let mut owned = std::collections::HashSet::new();
    for row in rows {
        if inner.uploads.file(&row.id).is_file() {
            owned.insert(row.id);
        } else {
            tracing::warn!(id = %row.id, "upload session without its file; dropping it");
            inner.meta.delete_upload(&row.id)?;
        }
    }
    let mut removed = 0;
    for entry in fs::read_dir(&inner.uploads.dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !owned.contains(name.to_string_lossy().as_ref()) && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(&inner.uploads.dir)?;
    }
    Ok(())
}

/// Removes a file whose owner failed; a leftover is swept by `recover` at the next open.
pub(super) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove an abandoned upload file");
    }
}

/// Deletes a session's file, then its row. The file is what takes the space, so on a full
/// disk it must go first: the row's delete needs room in the database's WAL. A crash in
/// between leaves a row without its file, which `recover` drops at the next open.
pub(super) fn end_session(inner: &Inner, id: &str) -> Result<bool> {
    match fs::remove_file(inner.uploads.file(id)) {
        Ok(()) => sync_dir(&inner.uploads.dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    inner.meta.delete_upload(id)
}

/// Publishes a session's first `offset` bytes as an object, like a stage.
pub(super) fn publish_session(
    inner: &Inner,
    id: &str,
    offset: u64,
    digests: &Digests,
) -> Result<()> {
    let path = inner.uploads.file(id);
    let file = OpenOptions::new().write(true).open(&path)?;
    file.set_len(offset)?;
    file.sync_data()?;
    drop(file);
    let temp = inner.objects.adopt(path)?;
    crate::stage::publish(inner, temp, digests)
}

/// Cuts a session's file back to its durable `offset` after a failed append, so the partial
/// bytes of the failure (on a full disk: the bytes that filled it) are freed at once.
pub(super) fn cut_back(path: &Path, offset: u64) -> Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(offset)?;
    file.sync_data()?;
    Ok(())
}

/// Re-reads the first `offset` bytes of a session's file into a fresh hash state.
pub(super) fn rehash(inner: &Inner, id: &str, offset: u64, sha512: bool) -> Result<Hashed> {
    let file = File::open(inner.uploads.file(id))?;
    let mut reader = file.take(offset);
    let mut hasher = MultiHasher::new(sha512);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
    if total != offset {
        return Err(StorageError::Corrupt(format!(
            "upload {id} holds {total} bytes, its row says {offset}"
        )));
    }
    Ok(Hashed { hasher, offset })
}

/// Streams `reader` to the end of `file` while hashing, in parallel, with bounded memory;
/// returns the bytes added once they are durable.
pub(super) async fn append_stream<R>(
    file: File,
    hashed: Hashed,
    mut reader: R,
) -> Result<(u64, Hashed)>
where
    R: AsyncRead + Unpin + Send,
{
    let (hash_tx, mut hash_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let (write_tx, mut write_rx) = mpsc::channel::<Arc<Vec<u8>>>(DEPTH);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = hashed;
        while let Some(chunk) = hash_rx.blocking_recv() {
            h.hasher.update(&chunk);
            h.offset += chunk.len() as u64;
        }
        h
    });
    let writer = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut file = file;
        let start = file.stream_position()?;
        let (mut written, mut flushed) = (0u64, 0u64);
        while let Some(chunk) = write_rx.blocking_recv() {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
            if written - flushed >= WRITEBACK_WINDOW {
                let len = std::num::NonZeroU64::new(written - flushed);
                rustix::fs::fadvise(&file, start + flushed, len, rustix::fs::Advice::DontNeed)
                    .map_err(std::io::Error::from)?;
                flushed = written;
            }
        }
        file.sync_data()?;
        Ok(written)
    });
    let read_result = crate::stage::pump(&mut reader, &hash_tx, &write_tx).await;
    drop(hash_tx);
    drop(write_tx);
    let hashed = hasher
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?;
    let written = writer
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))??;
    read_result?;
    Ok((written, hashed))
}
