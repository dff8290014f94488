//! The mirror's part of request handling: refusing pushes, bringing manifests up to date
//! from upstream, and fetching missing blobs (streamed to the client by `fetch`).

use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use everlock_host::http::{Method, StatusCode};
use everlock_host::storage::{CommitMeta, Op, Store};

use super::fetch::{self, Target};
use super::flights::{self, Role};
use super::{Mirror, read_limited};
use crate::blobs::stat;
use crate::error::{OciError, OciResult};
use crate::layout;
use crate::manifests::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::names::{Algorithm, Name, OciDigest, Reference, Tag};
use crate::registry::Registry;
use crate::respond::header;
use crate::route::Route;

/// The manifest types asked of the upstream, the four this registry stores.
const ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// 405 `UNSUPPORTED` for a push to a mirror that does not accept pushes.
pub(crate) fn refuse_push(reg: &Registry, route: &Route, method: &Method) -> OciResult<()> {
    let Some(mirror) = &reg.mirror else {
        return Ok(());
    };
    let push = matches!(method, &Method::PUT | &Method::POST | &Method::PATCH)
        && matches!(
            route,
            Route::Manifest(..) | Route::UploadStart(_) | Route::Upload(..)
        );
    if push && !mirror.allow_push {
        return Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            crate::error::Code::Unsupported,
            format!(
                "this registry mirrors {}; pushes are disabled",
                mirror.origin()
            ),
        ));
    }
    Ok(())
}

/// Brings a manifest up to date from upstream before the normal read path serves it: a
/// digest the store lacks is fetched; a tag is fetched when missing or when its last check
/// is older than the TTL. Upstream failures are logged and leave the store as it is, so
/// cached content is still served (and a manifest never fetched answers 404).
pub(crate) async fn refresh_manifest(
    reg: &Registry,
    principal: &Principal,
    name: &Name,
    raw: &str,
) {
    let Some(mirror) = &reg.mirror else {
        return;
    };
    let Ok(Some(reference)) = Reference::parse(raw) else {
        return;
    };
    let Ok(store) = reg.store().await else {
        return;
    };
    if let Err(e) = refresh(reg, mirror, store, principal, name, &reference).await {
        tracing::warn!(instance = %reg.instance, %name, reference = raw, error = %e, "oci mirror: manifest not refreshed");
    }
}

async fn refresh(
    reg: &Registry,
    mirror: &Mirror,
    store: &Store,
    principal: &Principal,
    name: &Name,
    reference: &Reference,
) -> Result<(), String> {
    let local = crate::manifests::resolve(store, name, reference)
        .await
        .map_err(|e| e.message)?;
    let local = match local {
        Some(d)
            if stat(store, &layout::manifest(name, &d))
                .await
                .map_err(|e| e.message)?
                .is_some() =>
        {
            Some(d)
        }
        _ => None,
    };
    let tag = match reference {
        Reference::Digest(_) if local.is_some() => return Ok(()),
        Reference::Digest(_) => None,
        Reference::Tag(t) => {
            let key = format!("{name}:{t}");
            if local.is_some() && mirror.fresh(&key) {
                return Ok(());
            }
            Some((t.clone(), key))
        }
    };
    let raw = reference.to_string();
    if let (Some(current), Some((_, key))) = (&local, &tag)
        && upstream_digest(mirror, name, &raw).await? == Some(current.to_string())
    {
        mirror.mark_checked(key.clone());
        return Ok(());
    }
    let (bytes, media_type) =
        fetch_manifest(mirror, name, &raw, reg.settings.max_manifest_bytes).await?;
    let digest = match reference {
        Reference::Digest(d) => {
            let actual = OciDigest::of(d.alg(), &bytes);
            if actual != *d {
                return Err(format!("upstream sent {actual} for {d}"));
            }
            actual
        }
        Reference::Tag(_) => OciDigest::of(Algorithm::Sha256, &bytes),
    };
    store_manifest(
        store,
        principal,
        name,
        &digest,
        tag.as_ref().map(|(t, _)| t),
        &media_type,
        bytes,
        &mirror.origin(),
    )
    .await?;
    if let Some((_, key)) = tag {
        mirror.mark_checked(key);
    }
    Ok(())
}

/// The digest the upstream gives for a manifest reference, by a HEAD (which tells whether a
/// tag moved without downloading the manifest).
async fn upstream_digest(
    mirror: &Mirror,
    name: &Name,
    raw: &str,
) -> Result<Option<String>, String> {
    let head = mirror
        .upstream
        .send(Method::HEAD, name, &format!("manifests/{raw}"), &ACCEPT)
        .await
        .map_err(|e| e.to_string())?;
    if !head.status().is_success() {
        return Ok(None);
    }
    Ok(head
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned))
}

/// A manifest from upstream, validated like a push: its bytes and media type.
async fn fetch_manifest(
    mirror: &Mirror,
    name: &Name,
    raw: &str,
    limit: u64,
) -> Result<(Vec<u8>, String), String> {
    let answer = mirror
        .upstream
        .send(Method::GET, name, &format!("manifests/{raw}"), &ACCEPT)
        .await
        .map_err(|e| e.to_string())?;
    if !answer.status().is_success() {
        return Err(format!("upstream answered {}", answer.status()));
    }
    if answer.content_length().is_some_and(|n| n > limit) {
        return Err(format!("upstream manifest larger than {limit} bytes"));
    }
    let content_type = answer
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_limited(answer, limit).await?;
    let parsed = crate::manifests::parse(&bytes, content_type.as_deref()).map_err(|e| e.message)?;
    Ok((bytes, parsed.media_type))
}

/// Commits a fetched manifest (and the tag pointing at it). Its blobs are not required to
/// be present: they are fetched when a client asks for them.
#[allow(clippy::too_many_arguments)]
async fn store_manifest(
    store: &Store,
    principal: &Principal,
    name: &Name,
    digest: &OciDigest,
    tag: Option<&Tag>,
    media_type: &str,
    bytes: Vec<u8>,
    origin: &str,
) -> Result<(), String> {
    let mut ops = vec![
        Op::PutBytes {
            path: layout::manifest(name, digest),
            bytes,
        },
        Op::PutBytes {
            path: layout::media_type(name, digest),
            bytes: media_type.as_bytes().to_vec(),
        },
    ];
    let message = match tag {
        Some(t) => {
            ops.push(Op::PutBytes {
                path: layout::tag(name, t),
                bytes: digest.to_string().into_bytes(),
            });
            format!("oci: mirror manifest {name}:{t} -> {digest} from {origin}")
        }
        None => format!("oci: mirror manifest {name}@{digest} from {origin}"),
    };
    store
        .commit(ops, Vec::new(), CommitMeta::new(principal.name(), message))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The mirror's part of a blob read: `None` when the normal read path should answer (not a
/// mirror, the blob is here, or a fetch by another request just ended), else the answer
/// streamed from upstream.
pub(crate) async fn blob(
    reg: &Registry,
    principal: &Principal,
    name: &Name,
    raw: &str,
    head: bool,
) -> OciResult<Option<Response>> {
    let Some(mirror) = &reg.mirror else {
        return Ok(None);
    };
    let Ok(d) = OciDigest::parse(raw) else {
        return Ok(None);
    };
    let store = reg.store().await?;
    if stat(store, &layout::blob_link(name, &d)).await?.is_some() {
        return Ok(None);
    }
    if let Some(blob) = stat(store, &layout::blob(&d)).await? {
        // Fetched before for another repository. It is linked here only once the upstream
        // confirms this repository has it (a HEAD, no download): otherwise a reader of this
        // repository could read a blob of another one through it.
        if upstream_has(mirror, name, &d).await {
            link_existing(store, principal, name, &d, blob).await?;
        }
        return Ok(None);
    }
    if head {
        // A pusher skips uploading every blob HEAD reports, and its manifest must then find
        // the blob here; so a mirror that accepts pushes reports only what it holds (the
        // normal read path answers 404), while a pure mirror answers from upstream.
        if mirror.allow_push {
            return Ok(None);
        }
        return upstream_head(mirror, name, &d).await;
    }
    let guard = match mirror.flights.join(&d) {
        Role::Follower(rx) => {
            flights::follow(rx).await;
            return Ok(None);
        }
        Role::Leader(guard) => guard,
    };
    let Ok(permit) = mirror.slots.clone().acquire_owned().await else {
        return Ok(None);
    };
    let answer = match mirror
        .upstream
        .send(Method::GET, name, &format!("blobs/{d}"), &[])
        .await
    {
        Ok(a) if a.status().is_success() => a,
        Ok(a) => {
            tracing::info!(instance = %reg.instance, %name, digest = %d, status = %a.status(), "oci mirror: upstream has no such blob");
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(instance = %reg.instance, %name, digest = %d, error = %e, "oci mirror: upstream unreachable");
            return Ok(None);
        }
    };
    let target = Target {
        store: store.clone(),
        principal: principal.clone(),
        name: name.clone(),
        digest: d,
        upstream: mirror.upstream.clone(),
        permit,
    };
    fetch::tee(answer, target, guard).map(Some)
}

/// Links a blob the store already holds into repository `name`, the way a mount does (the
/// blob path is re-written so a concurrent `gc` cannot remove it under the new link).
async fn link_existing(
    store: &Store,
    principal: &Principal,
    name: &Name,
    d: &OciDigest,
    blob: everlock_host::storage::Entry,
) -> OciResult<()> {
    let message = format!("oci: mirror link blob {name}@{d}");
    let result = crate::uploads::link_blob(store, principal, name, d, blob, message).await;
    match result {
        // A conflict means a concurrent gc removed it: the read path answers 404 and the
        // client's retry fetches it again.
        Ok(_) | Err(everlock_host::storage::StorageError::Conflict { .. }) => Ok(()),
        Err(e) => Err(OciError::internal(&e)),
    }
}

/// Whether the upstream answers a HEAD of blob `d` in repository `name` with success.
async fn upstream_has(mirror: &Mirror, name: &Name, d: &OciDigest) -> bool {
    mirror
        .upstream
        .send(Method::HEAD, name, &format!("blobs/{d}"), &[])
        .await
        .is_ok_and(|a| a.status().is_success())
}

/// HEAD of a blob the mirror lacks: the upstream's answer (size and digest), without
/// fetching the content.
async fn upstream_head(mirror: &Mirror, name: &Name, d: &OciDigest) -> OciResult<Option<Response>> {
    let Ok(answer) = mirror
        .upstream
        .send(Method::HEAD, name, &format!("blobs/{d}"), &[])
        .await
    else {
        return Ok(None);
    };
    let length = answer
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (true, Some(length)) = (answer.status().is_success(), length) else {
        return Ok(None);
    };
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert("docker-content-digest", header(&d.to_string())?);
    Ok(Some(response))
}
