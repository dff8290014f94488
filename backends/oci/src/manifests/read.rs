//! Manifest reads: resolving a reference, and `GET`/`HEAD` of the exact bytes pushed.

use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use everlock_host::storage::{StorageError, Store};

use super::OCI_MANIFEST;
use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::names::{Name, OciDigest, Reference};
use crate::registry::Registry;
use crate::respond::header;

/// Resolves a reference to a digest; `None` when the tag does not exist.
pub(crate) async fn resolve(
    store: &Store,
    name: &Name,
    reference: &Reference,
) -> OciResult<Option<OciDigest>> {
    match reference {
        Reference::Digest(d) => Ok(Some(d.clone())),
        Reference::Tag(t) => match store.read(&layout::tag(name, t)).await {
            Ok(bytes) => Ok(std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| OciDigest::parse(s).ok())),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(OciError::internal(&e)),
        },
    }
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`: the exact bytes pushed, with their type.
pub(crate) async fn get(reg: &Registry, name: &Name, raw: &str, head: bool) -> OciResult<Response> {
    let unknown = || {
        OciError::not_found(
            Code::ManifestUnknown,
            format!("manifest {raw:?} unknown to {name}"),
        )
    };
    let reference = match Reference::parse(raw) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(unknown()),
        Err(_) if head => return Err(unknown()),
        Err(_) => {
            return Err(OciError::bad(
                Code::DigestInvalid,
                format!("invalid digest {raw:?}"),
            ));
        }
    };
    let store = reg.store().await?;
    let digest = resolve(store, name, &reference)
        .await?
        .ok_or_else(unknown)?;
    let bytes = match store.read(&layout::manifest(name, &digest)).await {
        Ok(b) => b,
        Err(StorageError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(OciError::internal(&e)),
    };
    let media_type = match store.read(&layout::media_type(name, &digest)).await {
        Ok(t) => String::from_utf8(t).unwrap_or_else(|_| OCI_MANIFEST.to_owned()),
        Err(StorageError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(OciError::internal(&e)),
    };
    let len = bytes.len();
    let mut response = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(bytes))
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, header(&media_type)?);
    h.insert(CONTENT_LENGTH, len.into());
    h.insert("docker-content-digest", header(&digest.to_string())?);
    h.insert(ETAG, header(&format!("\"{digest}\""))?);
    Ok(response)
}
