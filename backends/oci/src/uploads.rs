//! Blob uploads (reference/oci.md §5): single POST, POST + monolithic PUT, chunked PATCHes
//! with `Content-Range`, one streamed PATCH, status, cancel and cross-repository mount.
//!
//! Sessions are the store's resumable uploads, labelled with the repository, so they survive a
//! restart, keep every earlier `Location` valid (the URL is just the session id) and expire.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use everlock_host::auth::{Action, Principal};
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CONTENT_LENGTH, LOCATION, RANGE};
use everlock_host::http::{HeaderName, StatusCode, request::Parts};
use everlock_host::storage::{
    CommitMeta, Entry, Expected, ObjectRef, Op, Precondition, StageOptions, StorageError, Store,
    UploadSession,
};
use tokio::io::{AsyncRead, ReadBuf};

use crate::blobs::{blob_created, commit_blob, stat};
use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::names::{Name, OciDigest};
use crate::registry::Registry;
use crate::respond::{BodyError, body_is_empty, body_reader, empty, header, is_body_error, query};

/// `POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]`.
pub(crate) async fn start(
    reg: &Registry,
    principal: &Principal,
    name: &Name,
    parts: &Parts,
    body: Body,
) -> OciResult<Response> {
    let store = reg.store().await?;
    reg.sweep_uploads(store).await;
    let q = query(parts);
    if let Some(mount) = q.get("mount")
        && let Ok(d) = OciDigest::parse(mount)
        && let Some(response) = try_mount(reg, store, principal, name, &d, q.get("from")).await?
    {
        return Ok(response);
    }
    if let Some(raw) = q.get("digest") {
        // Single POST: the whole blob in this request.
        let d = parse_push_digest(raw)?;
        let expect = d.to_store().ok_or_else(|| invalid_digest(raw))?;
        let object = store
            .stage_with(
                body_reader(body),
                StageOptions {
                    expect: Some(expect),
                    sha512: false,
                },
            )
            .await
            .map_err(|e| upload_error(&e, None))?;
        return commit_blob(store, principal, name, &d, object).await;
    }
    let session = store
        .upload_start_limited(
            name.as_str(),
            reg.settings.upload_expiry(),
            reg.settings.max_open_uploads,
        )
        .await
        .map_err(|e| OciError::internal(&e))?;
    session_response(StatusCode::ACCEPTED, name, &session)
}

/// Mounts `d` from `from` when the caller may read it there and it exists; `None` means
/// "fall back to a normal upload" (202), never an error.
async fn try_mount(
    reg: &Registry,
    store: &Store,
    principal: &Principal,
    name: &Name,
    d: &OciDigest,
    from: Option<&String>,
) -> OciResult<Option<Response>> {
    let from = match from.map(|f| Name::parse(f)) {
        Some(Some(f)) => f,
        // Without `from` ("automatic content discovery"), any repository the caller may
        // read that holds the blob will do; the others are never looked at.
        None => match crate::blobs::readable_holder(reg, store, principal, name, d).await? {
            Some(f) => f,
            None => return Ok(None),
        },
        Some(None) => return Ok(None),
    };
    if !reg.allowed(principal, &from, Action::Read) {
        return Ok(None);
    }
    if stat(store, &layout::blob_link(&from, d)).await?.is_none() {
        return Ok(None);
    }
    let blob_path = layout::blob(d);
    let Some(blob) = stat(store, &blob_path).await? else {
        return Ok(None);
    };
    let message = format!("oci: mount blob {d} from {from} into {name}");
    let result = link_blob(store, principal, name, d, blob, message).await;
    match result {
        Ok(_) => blob_created(name, d).map(Some),
        // Collected meanwhile: upload it instead.
        Err(StorageError::Conflict { .. } | StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(OciError::internal(&e)),
    }
}

/// Links blob `d`, which the store holds as `blob`, into repository `name` in one commit. The
/// blob path is written again (same object, precondition on that object) so that a concurrent
/// `gc`, which requires the version it scanned, cannot remove the blob under the new link; a
/// `Conflict` therefore means the blob was collected meanwhile. Mounts and mirrors share it.
pub(crate) async fn link_blob(
    store: &Store,
    principal: &Principal,
    name: &Name,
    d: &OciDigest,
    blob: Entry,
    message: String,
) -> Result<(), StorageError> {
    let blob_path = layout::blob(d);
    let object = ObjectRef {
        id: blob.object,
        sha256: blob.sha256,
        sha512: None,
        size: blob.size,
    };
    store
        .commit(
            vec![
                Op::Put {
                    path: blob_path.clone(),
                    object,
                },
                Op::PutBytes {
                    path: layout::blob_link(name, d),
                    bytes: d.to_string().into_bytes(),
                },
            ],
            vec![Precondition {
                path: blob_path,
                expected: Expected::Object(blob.object),
            }],
            CommitMeta::new(principal.name(), message),
        )
        .await
        .map(|_| ())
}

/// `GET /v2/<name>/blobs/uploads/<id>`: 204 with the current `Range`.
pub(crate) async fn status(reg: &Registry, name: &Name, id: &str) -> OciResult<Response> {
    let store = reg.store().await?;
    let session = session_of(store, name, id).await?;
    session_response(StatusCode::NO_CONTENT, name, &session)
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: append a chunk (with `Content-Range`) or the whole
/// stream (without).
pub(crate) async fn patch(
    reg: &Registry,
    name: &Name,
    id: &str,
    parts: &Parts,
    body: Body,
) -> OciResult<Response> {
    let store = reg.store().await?;
    let session = session_of(store, name, id).await?;
    let session = append(store, name, &session, parts, body).await?;
    session_response(StatusCode::ACCEPTED, name, &session)
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: append a last chunk if any, verify, commit.
pub(crate) async fn finish(
    reg: &Registry,
    principal: &Principal,
    name: &Name,
    id: &str,
    parts: &Parts,
    body: Body,
) -> OciResult<Response> {
    let store = reg.store().await?;
    let session = session_of(store, name, id).await?;
    let q = query(parts);
    let raw = q
        .get("digest")
        .ok_or_else(|| OciError::bad(Code::DigestInvalid, "the closing PUT needs ?digest="))?;
    let d = parse_push_digest(raw)?;
    let expect = d.to_store().ok_or_else(|| invalid_digest(raw))?;
    if !body_is_empty(parts, &body) {
        append(store, name, &session, parts, body).await?;
    }
    let object = store
        .upload_finish(&session.id, Some(expect))
        .await
        .map_err(|e| upload_error(&e, None))?;
    commit_blob(store, principal, name, &d, object).await
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`: 204, and the data is gone.
pub(crate) async fn cancel(reg: &Registry, name: &Name, id: &str) -> OciResult<Response> {
    let store = reg.store().await?;
    let session = session_of(store, name, id).await?;
    store
        .upload_cancel(&session.id)
        .await
        .map_err(|e| OciError::internal(&e))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Appends the request body to a session, honouring `Content-Range` and `Content-Length`.
async fn append(
    store: &Store,
    name: &Name,
    session: &UploadSession,
    parts: &Parts,
    body: Body,
) -> OciResult<UploadSession> {
    let declared_len = match parts.headers.get(CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| OciError::bad(Code::SizeInvalid, "invalid Content-Length"))?,
        ),
    };
    let range = match parts.headers.get("content-range") {
        None => None,
        Some(v) => Some(
            parse_content_range(v.to_str().unwrap_or("")).ok_or_else(|| {
                range_error(
                    name,
                    session,
                    "malformed Content-Range (want <start>-<end>)",
                )
            })?,
        ),
    };
    let (at, exact) = match range {
        Some((start, end)) => {
            let len = end - start + 1;
            if declared_len.is_some_and(|l| l != len) {
                return Err(OciError::bad(
                    Code::SizeInvalid,
                    format!("Content-Range announces {len} bytes, Content-Length differs"),
                ));
            }
            if start != session.offset {
                return Err(range_error(
                    name,
                    session,
                    &format!(
                        "chunk starts at {start}, the upload is at {}",
                        session.offset
                    ),
                ));
            }
            (Some(start), Some(len))
        }
        None => (None, declared_len),
    };
    let reader = Exact {
        inner: body_reader(body),
        remaining: exact,
    };
    store
        .upload_append(&session.id, at, reader)
        .await
        .map_err(|e| upload_error(&e, Some((name, session))))
}

/// A session of repository `name`, or 404 `BLOB_UPLOAD_UNKNOWN` (unknown, expired, or
/// another repository's).
async fn session_of(store: &Store, name: &Name, id: &str) -> OciResult<UploadSession> {
    let session = store
        .upload_session(id)
        .await
        .map_err(|e| OciError::internal(&e))?;
    session.filter(|s| s.path == name.as_str()).ok_or_else(|| {
        OciError::not_found(
            Code::BlobUploadUnknown,
            format!("upload {id:?} unknown or expired"),
        )
    })
}

/// The 202/204 answer of a session: `Location`, `Range`, `Docker-Upload-UUID`.
fn session_response(
    status: StatusCode,
    name: &Name,
    session: &UploadSession,
) -> OciResult<Response> {
    let mut response = empty(status);
    let h = response.headers_mut();
    for (k, v) in session_headers(name, session)? {
        h.insert(k, v);
    }
    Ok(response)
}

fn session_headers(
    name: &Name,
    session: &UploadSession,
) -> OciResult<Vec<(HeaderName, everlock_host::http::HeaderValue)>> {
    Ok(vec![
        (
            LOCATION,
            header(&format!("/v2/{name}/blobs/uploads/{}", session.id))?,
        ),
        (
            RANGE,
            header(&format!("0-{}", session.offset.saturating_sub(1)))?,
        ),
        (
            HeaderName::from_static("docker-upload-uuid"),
            header(&session.id)?,
        ),
    ])
}

/// 416 `BLOB_UPLOAD_INVALID` with the session's current state, so the client can resume.
fn range_error(name: &Name, session: &UploadSession, message: &str) -> OciError {
    let mut err = OciError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        Code::BlobUploadInvalid,
        message,
    );
    if let Ok(headers) = session_headers(name, session) {
        for (k, v) in headers {
            err = err.with_header(k, v);
        }
    }
    err
}

/// Maps a storage error of an upload to its spec error.
fn upload_error(err: &StorageError, session: Option<(&Name, &UploadSession)>) -> OciError {
    match err {
        StorageError::DigestMismatch { expected, actual } => OciError::bad(
            Code::DigestInvalid,
            format!("content has digest {actual}, not {expected}"),
        ),
        StorageError::NotFound(_) => {
            OciError::not_found(Code::BlobUploadUnknown, "upload unknown or expired")
        }
        StorageError::Conflict {
            expected, found, ..
        } => match session {
            Some((name, s)) => range_error(name, s, &format!("expected {expected}, {found}")),
            None => OciError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                Code::BlobUploadInvalid,
                format!("expected {expected}, {found}"),
            ),
        },
        e if is_body_error(e) => OciError::bad(Code::BlobUploadInvalid, e.to_string()),
        e => OciError::internal(e),
    }
}

/// `<start>-<end>`, inclusive, as sent by chunked clients (a `bytes ` or `bytes=` prefix is
/// tolerated); `None` for anything else, including `end < start`.
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v
        .strip_prefix("bytes ")
        .or_else(|| v.strip_prefix("bytes="))
        .unwrap_or(v);
    let (a, b) = v.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (a, b) = (num(a)?, num(b)?);
    (b >= a).then_some((a, b))
}

fn parse_push_digest(raw: &str) -> OciResult<OciDigest> {
    OciDigest::parse(raw).map_err(|_| invalid_digest(raw))
}

fn invalid_digest(raw: &str) -> OciError {
    OciError::bad(
        Code::DigestInvalid,
        format!("invalid or unsupported digest {raw:?} (sha256 and sha512 are supported)"),
    )
}

/// A reader that must yield exactly `remaining` bytes when a length was declared: fewer (a
/// truncated body) or more (a lying `Content-Range`) is a [`BodyError`].
struct Exact<R> {
    inner: R,
    remaining: Option<u64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Exact<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let n = (buf.filled().len() - before) as u64;
        let Some(remaining) = this.remaining.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if n == 0 && *remaining > 0 {
            return Poll::Ready(Err(io::Error::other(BodyError(format!(
                "body ended {remaining} bytes early"
            )))));
        }
        if n > *remaining {
            return Poll::Ready(Err(io::Error::other(BodyError(
                "body longer than declared".into(),
            ))));
        }
        *remaining -= n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 5-5"), Some((5, 5)));
        assert_eq!(parse_content_range("bytes=1-2"), Some((1, 2)));
        for bad in [
            "", "-", "5-", "-5", "9-1", "a-b", "0-99/100", "1--2", " -1-2",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }
}
