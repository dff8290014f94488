//! Pull-through mirror (issue #15 item 1): an instance with `upstream` set fetches the
//! manifests and blobs it lacks from that registry and keeps them, so later pulls are local.
//!
//! - Manifests are small (bounded by `max-manifest-bytes`): fetched whole, validated, and
//!   committed before the normal read path serves them. A tag is asked upstream again once
//!   `upstream-tag-ttl-secs` have passed since it was last checked (a HEAD first: an unchanged
//!   digest costs no download); if upstream cannot be reached the cached manifest is served.
//! - Blobs are streamed to the client while they are stored (`fetch`), once per digest
//!   however many clients ask at the same time.
//! - The tag list is the upstream's merged with the local tags, the upstream's cached for
//!   the tag TTL and served from that cache while the upstream is down (`tags`).
//! - Pushes are refused (405 `UNSUPPORTED`) unless `allow-push = true`.
//!
//! Authorization is this registry's own: a caller must be allowed to read the repository
//! here before anything is fetched for it.

mod client;
mod fetch;
mod tags;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use everlock_host::http::{Method, StatusCode};
use everlock_host::storage::{CommitMeta, Op, Store};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::blobs::stat;
use crate::error::{OciError, OciResult};
use crate::layout;
use crate::manifests::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::names::{Algorithm, Name, OciDigest, Reference, Tag};
use crate::registry::{Registry, header};
use crate::route::Route;
use crate::settings::Settings;

use client::Upstream;
use fetch::{Flights, Role, Target};
pub(crate) use tags::upstream_tags;

/// The manifest types asked of the upstream, the four this registry stores.
const ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];
/// Tags whose last upstream check is remembered at most; beyond it the memory starts over
/// (every tag is then checked upstream once more).
const MAX_CHECKED: usize = 16 * 1024;

/// A secret setting: read from TOML as a string, never shown by `Debug` (settings are
/// logged on errors).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The upstream URL: `http(s)://host[:port]` with no path, query or credentials.
fn upstream_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("upstream {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "upstream {raw:?} must be an http:// or https:// URL"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "upstream {raw:?} must name a registry, not a path (no /v2, no query)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put upstream credentials in upstream-username/-password".into());
    }
    Ok(url)
}

/// Checks the mirror settings of an instance.
pub(crate) fn validate(s: &Settings) -> Result<(), String> {
    match &s.upstream {
        // Credentials without an upstream are unused (the console may set them first).
        None => Ok(()),
        Some(raw) => {
            upstream_url(raw)?;
            if s.upstream_password.is_some() && s.upstream_username.is_none() {
                return Err("upstream-password needs upstream-username".into());
            }
            Ok(())
        }
    }
}

/// The environment variable that may carry an instance's upstream password.
pub(crate) fn password_env(instance: &str) -> String {
    let suffix: String = instance
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("EVERLOCK_UPSTREAM_PASSWORD_{suffix}")
}

/// The mirror state of an instance.
pub(crate) struct Mirror {
    upstream: Upstream,
    tag_ttl: Duration,
    allow_push: bool,
    /// When each `name:tag` was last checked upstream.
    checked: Mutex<HashMap<String, Instant>>,
    /// The upstream's tag list per repository and when it was fetched (`tags`).
    tag_lists: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    flights: Flights,
    slots: Arc<Semaphore>,
}

impl Mirror {
    /// The mirror of an instance, `None` when it has no upstream.
    pub(crate) fn new(instance: &str, s: &Settings) -> Result<Option<Mirror>, String> {
        let Some(raw) = &s.upstream else {
            return Ok(None);
        };
        let base = upstream_url(raw)?;
        let password = s.upstream_password.clone().or_else(|| {
            std::env::var(password_env(instance))
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret)
        });
        let upstream = Upstream::new(base, s.upstream_username.clone(), password)?;
        Ok(Some(Mirror {
            upstream,
            tag_ttl: Duration::from_secs(s.upstream_tag_ttl_secs),
            allow_push: s.allow_push,
            checked: Mutex::new(HashMap::new()),
            tag_lists: Mutex::new(HashMap::new()),
            flights: Flights::default(),
            slots: Arc::new(Semaphore::new(fetch::MAX_FLIGHTS)),
        }))
    }

    /// The upstream's origin, `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> String {
        self.upstream.origin()
    }

    fn fresh(&self, key: &str) -> bool {
        let checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked.get(key).is_some_and(|t| t.elapsed() < self.tag_ttl)
    }

    fn mark_checked(&self, key: String) {
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked.len() >= MAX_CHECKED {
            checked.clear();
        }
        checked.insert(key, Instant::now());
    }
}

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

/// Reads an upstream answer of at most `limit` bytes.
async fn read_limited(answer: reqwest::Response, limit: u64) -> Result<Vec<u8>, String> {
    use futures_util::StreamExt as _;
    let mut out = Vec::new();
    let mut body = answer.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("upstream: {e}"))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(format!("upstream manifest larger than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
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
            fetch::follow(rx).await;
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

#[cfg(test)]
mod tests;
