//! Resumable upload sessions: content that arrives in several requests (OCI chunked and
//! streamed uploads), survives a restart, and becomes an object only when it is finished.
//!
//! A session is a row of the `uploads` table plus the file `uploads/<id>` in the store
//! directory (not `tmp/`, which is emptied at every open). An append streams the request body
//! to the end of the file while hashing it, `fdatasync`s, and only then records the new offset:
//! the row's offset is always a durable prefix of the file. After a crash the file may be
//! longer than the offset; the next append cuts it back first.
//!
//! The running hash state lives in memory only. After a restart it is rebuilt by re-reading the
//! file once (reference/storage.md §2 allows "saved or re-hashed on resume"), which costs one
//! sequential read and keeps the table free of hasher internals.
//!
//! Finishing checks the announced digest, then publishes the file as an object exactly like a
//! stage does (link into `objects/`, directory fsync, object row), so the caller commits it with
//! an ordinary [`crate::Op::Put`].
//!
//! That local file serves a single node. A shared store (PostgreSQL metadata, several nodes)
//! keeps a session's bytes as parts in object storage instead (`uploads/parts.rs`), so any
//! node can continue or finish any session.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use tokio::io::AsyncRead;

use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::meta::{self, UploadRow};
use crate::path::validate_path;
use crate::store::Store;
use crate::store::inner::Inner;
use crate::types::ObjectRef;

pub(crate) use local::recover;
use local::{append_stream, cut_back, end_session, publish_session, rehash, remove_quietly};
use state::{Hashed, sync_dir};

/// Bytes read from the caller per chunk.
const CHUNK: usize = 1024 * 1024;
/// Chunks queued per worker, as in `stage`.
const DEPTH: usize = 3;
/// Writeback of a long append is started every this many bytes (see `objects::fs`).
const WRITEBACK_WINDOW: u64 = 16 * 1024 * 1024;

/// A resumable upload session as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSession {
    /// The session id: 32 lowercase hex digits, unguessable.
    pub id: String,
    /// The caller's label (for OCI, the repository the upload belongs to).
    pub path: String,
    /// When the session started, in milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// Bytes received and durably stored so far.
    pub offset: u64,
    /// When the session expires unless more data arrives, in milliseconds since the epoch.
    pub expires_ms: i64,
}

impl From<UploadRow> for UploadSession {
    fn from(r: UploadRow) -> Self {
        UploadSession {
            id: r.id,
            path: r.path,
            started_ms: r.started_ms,
            offset: r.offset,
            expires_ms: r.lease_until_ms,
        }
    }
}

impl Store {
    /// Starts a resumable upload labelled `path` that expires `ttl` after its last append.
    pub async fn upload_start(&self, path: &str, ttl: Duration) -> Result<UploadSession> {
        self.upload_start_limited(path, ttl, u64::MAX).await
    }

    /// [`Store::upload_start`], refused with [`StorageError::TooManyUploads`] while `path`
    /// already has `max_open` live sessions. The decisive count and the new row happen under
    /// the writer connection, so concurrent starts never exceed the limit.
    pub async fn upload_start_limited(
        &self,
        path: &str,
        ttl: Duration,
        max_open: u64,
    ) -> Result<UploadSession> {
        // Upload files are written before their rows; see `Inner::check_writable`.
        self.inner.check_writable()?;
        validate_path(path)?;
        let path = path.to_owned();
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| StorageError::Worker(format!("random: {e}")))?;
        let id = hex::encode(raw);
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let in_parts = parts::uses_parts(self);
        self.blocking(move |inner| {
            let too_many = |path: &str| StorageError::TooManyUploads {
                path: path.to_owned(),
                limit: max_open,
            };
            // A cheap check first, so that a caller over its limit creates no file at all.
            let open = inner.read(|r| r.count_live_uploads(&path, meta::now_ms()))?;
            if open >= max_open {
                return Err(too_many(&path));
            }
            if in_parts {
                // No local file: the session's bytes will be parts in object storage.
                return insert_capped(inner, &id, &path, ttl_ms, max_open)?
                    .ok_or_else(|| too_many(&path));
            }
            // The file first: a crash before the row leaves an orphan file that `recover`
            // removes, never a row without its file.
            let file = inner.uploads.file(&id);
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::perms::FILE_MODE)
                .open(&file)?
                .sync_all()?;
            sync_dir(&inner.uploads.dir)?;
            let inserted = insert_capped(inner, &id, &path, ttl_ms, max_open);
            if !matches!(inserted, Ok(Some(_))) {
                remove_quietly(&file);
            }
            inserted?.ok_or_else(|| too_many(&path))
        })
        .await
    }

    /// A live session; `None` when the id is unknown, malformed or expired.
    pub async fn upload_session(&self, id: &str) -> Result<Option<UploadSession>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let id = id.to_owned();
        self.blocking(move |inner| live_row(inner, &id).map(|r| r.map(Into::into)))
            .await
    }

    /// Appends a stream to a session. With `at`, the append must start exactly there
    /// (otherwise [`StorageError::Conflict`], which OCI answers with 416). Another request
    /// still writing the same session is a conflict too. Returns the session after the append,
    /// once the data is durable; a reader error leaves the session at its previous offset.
    pub async fn upload_append<R>(
        &self,
        id: &str,
        at: Option<u64>,
        reader: R,
    ) -> Result<UploadSession>
    where
        R: AsyncRead + Unpin + Send,
    {
        self.inner.check_writable()?;
        let not_found = || StorageError::NotFound(format!("upload {id}"));
        if !valid_id(id) {
            return Err(not_found());
        }
        // Only a live session gets an in-memory slot: ids that name nothing (guessed, expired,
        // finished) must leave no state behind.
        if self.live_session_row(id).await?.is_none() {
            return Err(not_found());
        }
        let slot = self.inner.uploads.slot(id);
        let Ok(mut guard) = slot.try_lock() else {
            return Err(StorageError::Conflict {
                path: format!("upload {id}"),
                expected: "no other request writing".into(),
                found: "a request still writing".into(),
            });
        };
        let Some(row) = self.live_session_row(id).await? else {
            // Finished, cancelled or expired between the two looks: drop the slot made for it.
            drop(guard);
            self.inner.uploads.forget(id);
            return Err(not_found());
        };
        if let Some(at) = at
            && at != row.offset
        {
            return Err(StorageError::Conflict {
                path: format!("upload {id}"),
                expected: format!("offset {at}"),
                found: format!("offset {}", row.offset),
            });
        }
        if parts::uses_parts(self) {
            return parts::append(self, row, &mut guard, reader).await;
        }
        self.append_local(id, row, &mut guard, reader).await
    }

    /// Appends to a single-node session's local file: resumes the hash state cached for the
    /// session (or rebuilds it from the file), cuts debris past the durable offset, streams and
    /// records the new offset; on failure the file is cut back to the recorded offset.
    async fn append_local<R>(
        &self,
        id: &str,
        row: UploadRow,
        cached: &mut Option<Hashed>,
        reader: R,
    ) -> Result<UploadSession>
    where
        R: AsyncRead + Unpin + Send,
    {
        let hashed = match cached.take() {
            Some(h) if h.offset == row.offset => h,
            _ => {
                let owned = id.to_owned();
                let offset = row.offset;
                self.blocking(move |inner| rehash(inner, &owned, offset, false))
                    .await?
            }
        };
        let file = {
            let path = self.inner.uploads.file(id);
            let offset = row.offset;
            run_blocking(move || {
                let mut f = OpenOptions::new().write(true).open(path)?;
                // Bytes past the durable offset are debris of an interrupted append.
                f.set_len(offset)?;
                f.seek(SeekFrom::Start(offset))?;
                Ok(f)
            })
            .await?
        };
        let lease = meta::now_ms().saturating_add(row.ttl_ms);
        match self
            .append_durably(id, &row, file, hashed, reader, lease)
            .await
        {
            Ok((new_offset, hashed)) => {
                *cached = Some(hashed);
                Ok(UploadSession {
                    offset: new_offset,
                    expires_ms: lease,
                    ..row.into()
                })
            }
            Err(e) => {
                // The row still says `row.offset`; whatever reached the file after it is
                // debris, and on a full disk it is exactly what fills the disk.
                let path = self.inner.uploads.file(id);
                let offset = row.offset;
                if let Err(cut) = run_blocking(move || cut_back(&path, offset)).await {
                    tracing::warn!(id, error = %cut, "cannot cut a failed upload back");
                }
                Err(e)
            }
        }
    }

    /// Streams `reader` to the end of the session's file and records the new offset; returns
    /// that offset and the hash state once both are durable.
    async fn append_durably<R>(
        &self,
        id: &str,
        row: &UploadRow,
        file: File,
        hashed: Hashed,
        reader: R,
        lease: i64,
    ) -> Result<(u64, Hashed)>
    where
        R: AsyncRead + Unpin + Send,
    {
        let (added, hashed) = append_stream(file, hashed, reader).await?;
        let new_offset = row.offset + added;
        let owned = id.to_owned();
        self.blocking(move |inner| inner.meta.advance_upload(&owned, new_offset, lease))
            .await?;
        Ok((new_offset, hashed))
    }

    /// The row of a live session, looked up without touching the in-memory slots.
    async fn live_session_row(&self, id: &str) -> Result<Option<UploadRow>> {
        let owned = id.to_owned();
        self.blocking(move |inner| live_row(inner, &owned)).await
    }

    /// Finishes a session: checks `expect` against the whole content and publishes it as an
    /// object (commit it with [`crate::Op::Put`]). The session ends either way when the digest
    /// does not match, because the spec says to discard such data.
    pub async fn upload_finish(&self, id: &str, expect: Option<Digest>) -> Result<ObjectRef> {
        self.inner.check_writable()?;
        let not_found = || StorageError::NotFound(format!("upload {id}"));
        if !valid_id(id) {
            return Err(not_found());
        }
        let slot = self.inner.uploads.slot(id);
        let Ok(mut guard) = slot.try_lock() else {
            return Err(StorageError::Conflict {
                path: format!("upload {id}"),
                expected: "no other request writing".into(),
                found: "a request still writing".into(),
            });
        };
        let cached = guard.take();
        let owned = id.to_owned();
        let in_parts = parts::uses_parts(self);
        let result = self
            .blocking(move |inner| {
                if in_parts {
                    return parts::finish(inner, &owned, expect, cached);
                }
                let row = live_row(inner, &owned)?
                    .ok_or_else(|| StorageError::NotFound(format!("upload {owned}")))?;
                let want_sha512 = matches!(expect, Some(Digest::Sha512(_)));
                let hashed = match cached {
                    Some(h) if h.offset == row.offset && !want_sha512 => h,
                    _ => rehash(inner, &owned, row.offset, want_sha512)?,
                };
                let digests = hashed.hasher.finish();
                if let Err(e) = digests.check(expect.as_ref()) {
                    end_session(inner, &owned)?;
                    return Err(e);
                }
                if let Err(e) = publish_session(inner, &owned, row.offset, &digests) {
                    // Publishing consumes the session's file whether or not it succeeds, so
                    // the session cannot be resumed: end it rather than leave a row that
                    // points at nothing.
                    if let Err(end) = end_session(inner, &owned) {
                        tracing::warn!(id = %owned, error = %end, "cannot end a failed upload");
                    }
                    return Err(e);
                }
                inner.meta.delete_upload(&owned)?;
                Ok(object_ref(&digests))
            })
            .await;
        self.inner.uploads.forget(id);
        result
    }

    /// Cancels a session and deletes its data; `false` if it did not exist.
    pub async fn upload_cancel(&self, id: &str) -> Result<bool> {
        self.inner.check_writable()?;
        if !valid_id(id) {
            return Ok(false);
        }
        let slot = self.inner.uploads.slot(id);
        let _guard = slot.lock().await;
        let owned = id.to_owned();
        let in_parts = parts::uses_parts(self);
        let out = self
            .blocking(move |inner| {
                if in_parts {
                    parts::end(inner, &owned, None)
                } else {
                    end_session(inner, &owned)
                }
            })
            .await;
        self.inner.uploads.forget(id);
        out
    }

    /// Ends every session whose lease ran out; returns how many. Sessions that a request is
    /// writing right now are left for the next run.
    pub async fn expire_uploads(&self) -> Result<u64> {
        self.inner.check_writable()?;
        let rows = self.blocking(|inner| inner.meta.all_uploads()).await?;
        let now = meta::now_ms();
        let in_parts = parts::uses_parts(self);
        if in_parts {
            self.inner
                .uploads
                .retain_slots(&rows.iter().map(|r| r.id.as_str()).collect());
        }
        let mut n = 0;
        for row in rows.into_iter().filter(|r| r.lease_until_ms <= now) {
            let slot = self.inner.uploads.slot(&row.id);
            let Ok(_guard) = slot.try_lock() else {
                continue;
            };
            let id = row.id.clone();
            let ended = self
                .blocking(move |inner| {
                    if in_parts {
                        // Only if still expired: another node may have appended meanwhile.
                        parts::end(inner, &id, Some(now))
                    } else {
                        end_session(inner, &id)
                    }
                })
                .await?;
            if ended {
                n += 1;
            }
            self.inner.uploads.forget(&row.id);
        }
        if in_parts {
            let swept = self
                .blocking(move |inner| parts::sweep_orphans(inner, now))
                .await?;
            if swept > 0 {
                tracing::info!(swept, "deleted orphaned upload parts");
            }
        }
        Ok(n)
    }

    /// Every session, live or expired, oldest id first (for listings and tests).
    pub async fn uploads(&self) -> Result<Vec<UploadSession>> {
        self.blocking(|inner| {
            Ok(inner
                .meta
                .all_uploads()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
    }
}

/// Inserts a session's row unless `path` reached `max_open` live sessions meanwhile (`None`).
fn insert_capped(
    inner: &Inner,
    id: &str,
    path: &str,
    ttl_ms: i64,
    max_open: u64,
) -> Result<Option<UploadSession>> {
    let now = meta::now_ms();
    let row = UploadRow {
        id: id.to_owned(),
        path: path.to_owned(),
        started_ms: now,
        offset: 0,
        ttl_ms,
        lease_until_ms: now.saturating_add(ttl_ms),
    };
    // The decisive count and the insert are one unit of work in the metadata.
    if !inner.meta.insert_upload_capped(&row, max_open, now)? {
        return Ok(None);
    }
    Ok(Some(row.into()))
}

/// Session ids are generated hex; anything else never names a file.
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The row of a session that has not expired.
fn live_row(inner: &Inner, id: &str) -> Result<Option<UploadRow>> {
    let row = inner.meta.upload_row(id)?;
    Ok(row.filter(|r| r.lease_until_ms > meta::now_ms()))
}

fn object_ref(d: &Digests) -> ObjectRef {
    ObjectRef {
        id: d.blake3,
        sha256: d.sha256,
        sha512: d.sha512,
        size: d.size,
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?
}

mod local;
mod parts;
pub(crate) mod state;
#[cfg(test)]
mod tests;
