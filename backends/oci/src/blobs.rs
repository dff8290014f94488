//! Blob reads (GET/HEAD with Range) and deletes, plus the commit that makes a finished upload
//! part of a repository.

use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderValue, RANGE,
};
use everlock_host::http::{StatusCode, request::Parts};
use everlock_host::storage::{
    CommitMeta, Expected, ObjectRef, Op, Precondition, StorageError, Store,
};
use tokio_util::io::ReaderStream;

use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::names::{Name, OciDigest};
use crate::registry::Registry;
use crate::respond::{empty, header};

/// Bytes per body frame of a blob download: large enough to keep per-frame overhead low,
/// small enough that a slow client holds little memory.
const STREAM_CHUNK: usize = 256 * 1024;

/// Parses a blob digest from a path; HEAD answers 404 for anything unusable (clients abort on
/// any other status), GET a 400 `DIGEST_INVALID`.
pub(crate) fn parse_digest(raw: &str, head: bool, unknown: Code) -> OciResult<OciDigest> {
    OciDigest::parse(raw).map_err(|_| {
        if head {
            OciError::not_found(unknown, format!("no such digest {raw:?}"))
        } else {
            OciError::bad(Code::DigestInvalid, format!("invalid digest {raw:?}"))
        }
    })
}

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`.
pub(crate) async fn get(
    reg: &Registry,
    name: &Name,
    raw: &str,
    parts: &Parts,
    head: bool,
) -> OciResult<Response> {
    let d = parse_digest(raw, head, Code::BlobUnknown)?;
    let store = reg.store().await?;
    let unknown = || OciError::not_found(Code::BlobUnknown, format!("blob {d} unknown to {name}"));
    if stat(store, &layout::blob_link(name, &d)).await?.is_none() {
        return Err(unknown());
    }
    let content = match store.open(&layout::blob(&d)).await {
        Ok(c) => c,
        Err(StorageError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(OciError::internal(&e)),
    };
    let size = content.len();
    let range = match parts.headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => parse_range(v, size).map_err(|()| {
            OciError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                Code::BlobUnknown,
                format!("range {v:?} not satisfiable for {size} bytes"),
            )
            .with_header(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            )
        })?,
        None => None,
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut response = if head {
        Response::new(Body::empty())
    } else if range.is_some() {
        let reader = content
            .range(start, len)
            .await
            .map_err(|e| OciError::internal(&StorageError::Io(e)))?;
        Response::new(Body::from_stream(ReaderStream::with_capacity(
            reader,
            STREAM_CHUNK,
        )))
    } else {
        Response::new(Body::from_stream(ReaderStream::with_capacity(
            content,
            STREAM_CHUNK,
        )))
    };
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("docker-content-digest", header(&d.to_string())?);
    h.insert(ETAG, header(&format!("\"{d}\""))?);
    if range.is_some() {
        h.insert(
            CONTENT_RANGE,
            header(&format!("bytes {start}-{}/{size}", start + len - 1))?,
        );
    }
    Ok(response)
}

/// A single `bytes=` range as inclusive bounds, clamped to the content; `Ok(None)` for a
/// header we ignore (another unit, several ranges, garbage: RFC 9110 lets us serve it all),
/// `Err` for a range that cannot be satisfied. The syntax is `http-range-header`'s strict
/// parser (the one the site backend uses); the policy is the registry's: it never sends
/// `multipart/byteranges`, so it honours one range only, and a reversed range (`bytes=9-3`),
/// which RFC 9110 lets a server ignore or reject, is rejected with 416 as registries do.
pub(crate) fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    use http_range_header::{RangeInvalid, RangeUnsatisfiableError, SyntacticallyCorrectRange};
    let parsed = match http_range_header::parse_range_header_with_max_ranges(
        value,
        std::num::NonZeroUsize::MIN,
    ) {
        Ok(parsed) => parsed,
        Err(RangeUnsatisfiableError::Invalid(RangeInvalid::Reversed)) => return Err(()),
        Err(_) => return Ok(None),
    };
    // With at most one range allowed, the parser never returns more; none is an ignored header.
    let ranges = parsed.into_ranges();
    let [range] = ranges.as_slice() else {
        return Ok(None);
    };
    // An empty blob has no byte any range could select.
    let last = size.checked_sub(1).ok_or(())?;
    match *range {
        SyntacticallyCorrectRange::FromStart(start) if start <= last => Ok(Some((start, last))),
        // `bytes=-n`: the last n bytes (all of them when n is larger).
        SyntacticallyCorrectRange::FromLast(n) if n > 0 => Ok(Some((size.saturating_sub(n), last))),
        SyntacticallyCorrectRange::Indexed(start, end) if start <= last => {
            Ok(Some((start, end.min(last))))
        }
        _ => Err(()),
    }
}

/// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from the repository; the bytes go
/// when `gc` finds nothing referencing them.
pub(crate) async fn delete(
    reg: &Registry,
    principal: &Principal,
    name: &Name,
    raw: &str,
) -> OciResult<Response> {
    if !reg.settings.allow_delete {
        return Err(crate::manifests::delete_disabled());
    }
    let d = parse_digest(raw, false, Code::BlobUnknown)?;
    let store = reg.store().await?;
    let link = layout::blob_link(name, &d);
    let Some(entry) = stat(store, &link).await? else {
        return Err(OciError::not_found(
            Code::BlobUnknown,
            format!("blob {d} unknown to {name}"),
        ));
    };
    let result = store
        .commit(
            vec![Op::Delete { path: link.clone() }],
            vec![Precondition {
                path: link,
                expected: Expected::Version(entry.version),
            }],
            CommitMeta::new(principal.name(), format!("oci: delete blob {name}@{d}")),
        )
        .await;
    match result {
        Ok(_) => Ok(empty(StatusCode::ACCEPTED)),
        Err(StorageError::NotFound(_) | StorageError::Conflict { .. }) => Err(OciError::not_found(
            Code::BlobUnknown,
            format!("blob {d} unknown to {name}"),
        )),
        Err(e) => Err(OciError::internal(&e)),
    }
}

/// Commits a staged or finished upload as blob `d` of repository `name` and answers 201.
pub(crate) async fn commit_blob(
    store: &Store,
    principal: &Principal,
    name: &Name,
    d: &OciDigest,
    object: ObjectRef,
) -> OciResult<Response> {
    let ops = vec![
        Op::Put {
            path: layout::blob(d),
            object,
        },
        Op::PutBytes {
            path: layout::blob_link(name, d),
            bytes: d.to_string().into_bytes(),
        },
    ];
    store
        .commit(
            ops,
            Vec::new(),
            CommitMeta::new(principal.name(), format!("oci: push blob {name}@{d}")),
        )
        .await
        .map_err(|e| match e {
            // The object was collected between publish and commit (only possible with a zero
            // grace period); the client retries the upload.
            StorageError::ObjectMissing(_) => {
                OciError::bad(Code::BlobUploadInvalid, "upload lost, retry it")
            }
            e => OciError::internal(&e),
        })?;
    blob_created(name, d)
}

/// 201 with the blob's `Location` and `Docker-Content-Digest`.
pub(crate) fn blob_created(name: &Name, d: &OciDigest) -> OciResult<Response> {
    let mut response = empty(StatusCode::CREATED);
    let h = response.headers_mut();
    h.insert(
        everlock_host::http::header::LOCATION,
        header(&format!("/v2/{name}/blobs/{d}"))?,
    );
    h.insert("docker-content-digest", header(&d.to_string())?);
    Ok(response)
}

/// A repository that holds blob `d` and that `principal` may read, for a mount without
/// `from`: the target repository first, then the others in name order. Repositories the
/// caller may not read are skipped before their links are looked at, so a 201 never reveals
/// a blob the caller could not pull.
pub(crate) async fn readable_holder(
    reg: &Registry,
    store: &Store,
    principal: &Principal,
    target: &Name,
    d: &OciDigest,
) -> OciResult<Option<Name>> {
    let readable = |n: &Name| reg.allowed(principal, n, everlock_host::auth::Action::Read);
    if readable(target) && stat(store, &layout::blob_link(target, d)).await?.is_some() {
        return Ok(Some(target.clone()));
    }
    // One listing of the repository tree finds every link to the blob, however many
    // repositories there are (the catalog reads the same listing).
    let suffix = format!("{}{}", layout::BLOB_LINKS_DIR, d.path());
    let entries = store
        .list(layout::REPOS)
        .await
        .map_err(|e| OciError::internal(&e))?;
    Ok(entries
        .iter()
        .filter_map(|e| e.path.strip_prefix(layout::REPOS)?.strip_suffix(&suffix))
        .filter_map(Name::parse)
        .find(|n| readable(n)))
}

/// `Store::stat` with storage failures mapped.
pub(crate) async fn stat(
    store: &Store,
    path: &str,
) -> OciResult<Option<everlock_host::storage::Entry>> {
    store.stat(path).await.map_err(|e| OciError::internal(&e))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_follow_the_conformance_table() {
        let size = 3000;
        assert_eq!(parse_range("bytes=500-1499", size), Ok(Some((500, 1499))));
        assert_eq!(parse_range("bytes=500-", size), Ok(Some((500, 2999))));
        assert_eq!(parse_range("bytes=-500", size), Ok(Some((2500, 2999))));
        assert_eq!(parse_range("bytes=2000-5000", size), Ok(Some((2000, 2999))));
        assert_eq!(parse_range("bytes=-5000", size), Ok(Some((0, 2999))));
        assert_eq!(parse_range("bytes=500-0", size), Err(()));
        assert_eq!(parse_range("bytes=5000-10000", size), Err(()));
        assert_eq!(parse_range("bytes=-0", size), Err(()));
        assert_eq!(parse_range("bytes=0-0", 0), Err(()));
        for ignored in [
            "items=1-2",
            "bytes=1-2,4-5",
            "bytes=x-y",
            "bytes=",
            "bytes=-",
        ] {
            assert_eq!(parse_range(ignored, size), Ok(None), "{ignored}");
        }
    }

    /// The unit is case-insensitive (RFC 9110 section 14.1) and a number too large for a
    /// `u64` is a range past the end, not garbage: the hand-written parser served both whole.
    #[test]
    fn ranges_follow_rfc_9110_syntax() {
        let size = 3000;
        assert_eq!(parse_range("BYTES=0-9", size), Ok(Some((0, 9))));
        assert_eq!(
            parse_range("bytes=10-99999999999999999999", size),
            Ok(Some((10, 2999)))
        );
        assert_eq!(parse_range("bytes=1-2, 4-5", size), Ok(None));
    }
}
