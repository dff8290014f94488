//! A small web UI (issue #15 item 7): the repositories the viewer may read, and per
//! repository its tags with size, creation time, platforms, digest, referrers (signatures,
//! SBOMs) and the pull command. Server-rendered HTML without JavaScript.
//!
//! Where it is served: under `/ui/` on the registry's own vhosts. The registry declares
//! `/ui` as an extra path prefix (`BackendKind::extra_prefixes`) when `ui = true`, so the host
//! routes it to the instance next to `/v2` (the zero-config `localhost/ui/` beside the
//! welcome site's `localhost/`). Nothing under `/v2/` is the UI's, so no name there is a
//! pseudo-repository. Setting `ui = false` stops declaring the prefix; a `/ui` request that
//! still reaches the instance (one mounted at `/`) gets a 404.
//!
//! Login is the registry's: HTTP Basic with the same users; an anonymous viewer who may read
//! nothing gets the Basic challenge, so the browser asks for credentials.

mod page;

use everlock_host::auth::{Action, Principal};
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use everlock_host::http::{Method, StatusCode, request::Parts};
use everlock_host::http_auth;
use everlock_host::storage::{StorageError, Store};
use serde_json::Value;

use crate::layout;
use crate::names::{Name, OciDigest};
use crate::registry::Registry;
use crate::respond::REALM;

/// The path prefix the UI answers under, declared to the host as an extra prefix.
pub(crate) const BASE: &str = "/ui";

/// The UI's answer to a request, or `None` when the path is not the UI's.
pub(crate) async fn handle(reg: &Registry, parts: &Parts) -> Option<Response> {
    let rest = parts.uri.path().strip_prefix(BASE)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let base = BASE;
    if !reg.settings.ui {
        return Some(html(
            StatusCode::NOT_FOUND,
            page::message("Not found", "The web UI is off."),
        ));
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Some(html(
            StatusCode::METHOD_NOT_ALLOWED,
            page::message("Not allowed", "The web UI only reads."),
        ));
    }
    let Ok(principal) = http_auth::authenticate(&reg.auth, parts).await else {
        return Some(challenge());
    };
    let response = match render(reg, parts, &principal, base, rest).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(instance = %reg.instance, error = %e, "oci ui: store error");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                page::message(
                    "Unavailable",
                    "The registry's store cannot be read right now.",
                ),
            )
        }
    };
    Some(response)
}

async fn render(
    reg: &Registry,
    parts: &Parts,
    principal: &Principal,
    base: &str,
    rest: &str,
) -> Result<Response, StorageError> {
    let store = reg.open_store().await?;
    let host = parts
        .headers
        .get(everlock_host::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        let names: Vec<String> = crate::listing::repositories(store)
            .await
            .map_err(|e| StorageError::Corrupt(e.message))?
            .into_iter()
            .filter(|n| reg.allowed(principal, n, Action::Read))
            .map(|n| n.to_string())
            .collect();
        if names.is_empty() && principal.is_anon() {
            return Ok(challenge());
        }
        return Ok(html(
            StatusCode::OK,
            page::repositories(base, principal, &names),
        ));
    }
    let not_found = || {
        html(
            StatusCode::NOT_FOUND,
            page::message("Not found", "No such repository."),
        )
    };
    let Some(name) = rest.strip_prefix("r/").and_then(Name::parse) else {
        return Ok(not_found());
    };
    if !reg.allowed(principal, &name, Action::Read) {
        // Anonymous viewers are asked to log in; others learn nothing about the repository.
        return Ok(if principal.is_anon() {
            challenge()
        } else {
            not_found()
        });
    }
    let rows = tags(store, &name).await?;
    if rows.is_empty() {
        return Ok(not_found());
    }
    Ok(html(
        StatusCode::OK,
        page::repository(base, &host, principal, &name, &rows),
    ))
}

/// One tag as the UI shows it.
pub(crate) struct TagRow {
    pub(crate) tag: String,
    pub(crate) digest: String,
    /// Manifest plus config and layers (an index: plus its manifests' sizes).
    pub(crate) size: u64,
    pub(crate) created: Option<String>,
    pub(crate) platforms: Vec<String>,
    /// Referrers: artifact type (or media type) and digest.
    pub(crate) referrers: Vec<(String, String)>,
}

/// Config blobs larger than this are not read for their creation time and platform.
const MAX_CONFIG: u64 = 256 * 1024;

async fn tags(store: &Store, name: &Name) -> Result<Vec<TagRow>, StorageError> {
    let prefix = layout::tags_prefix(name);
    let mut rows = Vec::new();
    for e in store.list(&prefix).await? {
        let Some(tag) = e.path.strip_prefix(&prefix) else {
            continue;
        };
        let Some(digest) = read(store, &e.path)
            .await?
            .and_then(|b| OciDigest::parse(String::from_utf8_lossy(&b).trim()).ok())
        else {
            continue;
        };
        let Some(bytes) = read(store, &layout::manifest(name, &digest)).await? else {
            continue;
        };
        let manifest: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut row = TagRow {
            tag: tag.to_owned(),
            digest: digest.to_string(),
            size: bytes.len() as u64,
            created: None,
            platforms: Vec::new(),
            referrers: Vec::new(),
        };
        describe(store, &manifest, &mut row).await?;
        for r in store.list(&layout::referrers_prefix(name, &digest)).await? {
            if let Some(desc) = read(store, &r.path).await? {
                let d: Value = serde_json::from_slice(&desc).unwrap_or(Value::Null);
                let kind = text(&d, "artifactType")
                    .or(text(&d, "mediaType"))
                    .unwrap_or("artifact");
                let digest = text(&d, "digest").unwrap_or("");
                row.referrers.push((kind.to_owned(), digest.to_owned()));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A JSON object's field, `Null` when absent (serde_json's `Index` without its panic lint).
fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    field(v, key).as_str()
}

/// Sizes, platforms and creation time from a manifest (and its config, when small).
async fn describe(store: &Store, m: &Value, row: &mut TagRow) -> Result<(), StorageError> {
    let size_of = |v: &Value| field(v, "size").as_u64().unwrap_or(0);
    if let Some(children) = field(m, "manifests").as_array() {
        for c in children {
            row.size += size_of(c);
            let p = field(c, "platform");
            if let (Some(os), Some(arch)) = (text(p, "os"), text(p, "architecture")) {
                let variant = text(p, "variant")
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default();
                row.platforms.push(format!("{os}/{arch}{variant}"));
            }
        }
        return Ok(());
    }
    let config = field(m, "config");
    row.size += size_of(config);
    if let Some(layers) = field(m, "layers").as_array() {
        row.size += layers.iter().map(size_of).sum::<u64>();
    }
    let digest = text(config, "digest").and_then(|d| OciDigest::parse(d).ok());
    if let Some(d) = digest
        && size_of(config) <= MAX_CONFIG
        && let Some(bytes) = read(store, &layout::blob(&d)).await?
    {
        let c: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        row.created = text(&c, "created").map(str::to_owned);
        if let (Some(os), Some(arch)) = (text(&c, "os"), text(&c, "architecture")) {
            row.platforms.push(format!("{os}/{arch}"));
        }
    }
    Ok(())
}

async fn read(store: &Store, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
    match store.read(path).await {
        Ok(b) => Ok(Some(b)),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // Every answer of the instance carries the API version header, the UI's too, so a
    // client probing any path of the registry's vhost sees one consistent server.
    h.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

fn challenge() -> Response {
    let mut r = html(
        StatusCode::UNAUTHORIZED,
        page::message(
            "Log in",
            "Log in with your registry user name and password.",
        ),
    );
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, http_auth::challenge(REALM));
    r
}
