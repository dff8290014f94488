//! The request pipeline (reference §1): authorize, check the method, normalise the path,
//! resolve it, evaluate preconditions and Range, pick the encoding variant, set the headers and
//! stream the body.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use everlock_host::auth::{Action, Principal};
use everlock_host::axum::body::Body;
use everlock_host::axum::extract::{Request, State};
use everlock_host::axum::response::Response;
use everlock_host::frontend::http::Scheme;
use everlock_host::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use everlock_host::http_auth;
use everlock_host::storage::StorageError;

use crate::http::body::Source;
use crate::http::compress;
use crate::http::conditional::{self, Outcome, Validators};
use crate::http::encoding::{self, Coding};
use crate::http::headers;
use crate::http::path::{self, SitePath};
use crate::http::range::{self, RangeRequest};
use crate::http::resolve::{self, Target};
use crate::http::rewrite::{self, Applied, SiteHeaders};
use crate::markdown::pool::RenderError;
use crate::markdown::site::{MarkdownSite, PageKind};
use crate::rules::Rules;
use crate::settings::Mode;
use crate::site::SiteInner;
use crate::snapshot::{RenderedPage, Snapshot, hex_prefix};

/// The realm of the `WWW-Authenticate` challenge.
pub const REALM: &str = "site";

/// The deploy endpoint, relative to the instance prefix.
pub const DEPLOY_PATH: &str = "/.well-known/everlock/deploy";

/// Handles every request routed to the site.
pub async fn handle(State(site): State<Arc<SiteInner>>, req: Request) -> Response {
    let https = req.extensions().get::<Scheme>() == Some(&Scheme::Https);
    let mut response = route(&site, req).await;
    headers::security(response.headers_mut(), &site.settings, https);
    if let Some(extra) = response.extensions_mut().remove::<SiteHeaders>() {
        extra.apply(response.headers_mut());
    }
    response
}

async fn route(site: &Arc<SiteInner>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(rel) = path::strip_prefix(parts.uri.path(), &site.prefix).map(str::to_owned) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    if rel == DEPLOY_PATH {
        return crate::deploy::handle(site, parts, body).await;
    }
    let principal = match http_auth::authenticate(&site.auth, &parts).await {
        Ok(p) => p,
        Err(e) => return http_auth::reject(&e, REALM),
    };
    if !site
        .auth
        .authorize(&principal, &site.resource, Action::Read)
    {
        return if principal.is_anon() {
            http_auth::unauthorized(REALM)
        } else {
            http_auth::forbidden()
        };
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let private = !site
        .auth
        .authorize(&Principal::anon(), &site.resource, Action::Read);
    let Some(site_path) = path::normalize(&rel) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    match serve(
        site,
        &parts.method,
        &parts.headers,
        parts.uri.query(),
        &site_path,
        private,
    )
    .await
    {
        Ok(r) => r,
        Err(Failure::Render(e)) if e.is_over_budget() => {
            tracing::error!(site = %site.name, path = %parts.uri.path(), "{e}");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this page's layout ran past its rendering budget; the site's author has to simplify it\n",
            )
        }
        Err(Failure::Storage(e)) => storage_failure(&site.name, &e),
        Err(e) => {
            tracing::error!(site = %site.name, "storage error: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error\n")
        }
    }
}

/// The answer to a storage failure while serving: 503 with `Retry-After: 1` while the shared
/// metadata database is unreachable (nothing is wrong with the site; a retry a moment later
/// works), 500 for anything else.
fn storage_failure(site: &str, e: &StorageError) -> Response {
    if let StorageError::Unavailable(_) = e {
        tracing::warn!(site = %site, "storage unavailable: {e}");
        let mut r = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage unavailable; retry\n",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    tracing::error!(site = %site, "storage error: {e}");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error\n")
}

#[cfg(test)]
#[path = "serve_status_tests.rs"]
mod status_tests;

/// Why serving failed: the server's side either way, told apart for the page and the log.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A Markdown page could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Serves a normalised path. Errors are the server's side: storage failures, or a Markdown page
/// that could not be rendered (such as a layout over its budget).
async fn serve(
    site: &SiteInner,
    method: &Method,
    req_headers: &HeaderMap,
    query: Option<&str>,
    site_path: &SitePath,
    private: bool,
) -> Result<Response, Failure> {
    let snapshot = site.snapshot().await?;
    let rules = site.rules(&snapshot).await?;
    let request = Req {
        method,
        headers: req_headers,
        query,
        path: site_path,
        private,
    };
    let mut response = serve_in(site, &snapshot, &rules, &request).await?;
    let extra = rules.headers(&site_path.segments);
    if !extra.is_empty() {
        response.extensions_mut().insert(SiteHeaders(extra));
    }
    Ok(response)
}

/// What `serve_in` needs of the request.
struct Req<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    path: &'a SitePath,
    private: bool,
}

/// Serves a request on one snapshot, `_redirects` rules included.
async fn serve_in(
    site: &SiteInner,
    snapshot: &Snapshot,
    rules: &Rules,
    request: &Req<'_>,
) -> Result<Response, Failure> {
    let Req {
        method,
        headers: req_headers,
        query,
        path: site_path,
        private,
    } = *request;
    let markdown = match site.settings.mode {
        Mode::Markdown => Some(site.markdown(snapshot).await?),
        Mode::Html => None,
    };
    let resolve =
        |p: &SitePath| resolve::resolve(site.settings.mode, snapshot, markdown.as_deref(), p);
    let (target, status) = match rewrite::apply(site, rules, site_path, resolve(site_path), query) {
        Applied::Respond(r) => return Ok(r),
        Applied::Serve(path, status) => (
            path.as_ref()
                .map_or(Target::NotFound, |p| rewrite::follow(resolve(p), resolve)),
            status,
        ),
        Applied::Target(target) => (target, StatusCode::OK),
    };
    let (target, status) = match target {
        Target::Redirect(segments, slash) => {
            let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
            let location = path::location(&site.prefix, &refs, slash, query);
            let mut r = plain(StatusCode::PERMANENT_REDIRECT, "");
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(r);
        }
        Target::NotFound => match resolve::not_found_page(snapshot, markdown.as_deref()) {
            Some(page) => (page, StatusCode::NOT_FOUND),
            None => return Ok(plain(StatusCode::NOT_FOUND, "not found\n")),
        },
        other => (other, status),
    };
    let Some(repr) = representation(
        site,
        snapshot,
        markdown.as_deref(),
        &target,
        req_headers,
        private,
    )
    .await?
    else {
        return Ok(plain(StatusCode::NOT_FOUND, "not found\n"));
    };
    Ok(send(repr, status, method, req_headers).await)
}

/// A selected representation: its metadata and where its bytes come from.
struct Representation {
    content_type: String,
    cache_control: String,
    validators: Validators,
    vary: bool,
    encoding: Option<Coding>,
    len: u64,
    source: Source,
}

async fn representation(
    site: &SiteInner,
    snapshot: &Snapshot,
    markdown: Option<&MarkdownSite>,
    target: &Target,
    req_headers: &HeaderMap,
    private: bool,
) -> Result<Option<Representation>, Failure> {
    let last_modified = snapshot.last_modified();
    let Some(commit) = snapshot.commit_id() else {
        return Ok(None);
    };
    let rendered = async |page: Arc<RenderedPage>, content_type: &str, key: &str| {
        let cache_control = headers::cache_control(key, content_type, &site.settings, private);
        let body = page.body.clone();
        let variant = compress::on_the_fly(
            site,
            req_headers,
            content_type,
            page.hash,
            body.len() as u64,
            || std::future::ready(Ok(body.clone())),
        )
        .await?;
        Ok::<_, Failure>(match variant {
            Some((coding, bytes)) => Representation {
                cache_control,
                content_type: content_type.to_owned(),
                validators: Validators::new(
                    compress::coded_etag(&page.etag, coding),
                    last_modified,
                ),
                vary: true,
                encoding: Some(coding),
                len: bytes.len() as u64,
                source: Source::Memory(bytes),
            },
            None => Representation {
                cache_control,
                content_type: content_type.to_owned(),
                validators: Validators::new(page.etag.clone(), last_modified),
                vary: compress::compressible(content_type),
                encoding: None,
                len: page.body.len() as u64,
                source: Source::Memory(page.body.clone()),
            },
        })
    };
    match target {
        Target::File(key) => {
            let Some(original) = snapshot.files.get(key) else {
                return Ok(None);
            };
            let available: Vec<Coding> = Coding::ALL
                .into_iter()
                .filter(|c| snapshot.files.contains_key(&format!("{key}{}", c.suffix())))
                .collect();
            let accept = req_headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok());
            let chosen = encoding::choose(accept, &available);
            let entry =
                match chosen.and_then(|c| snapshot.files.get(&format!("{key}{}", c.suffix()))) {
                    Some(variant) => variant,
                    None => original,
                };
            let content_type = headers::content_type(key);
            let cache_control = headers::cache_control(key, &content_type, &site.settings, private);
            if available.is_empty() {
                let load = async || compress::identity_bytes(site, original, commit).await;
                let hash = *original.object.as_bytes();
                if let Some((coding, bytes)) = compress::on_the_fly(
                    site,
                    req_headers,
                    &content_type,
                    hash,
                    original.size,
                    load,
                )
                .await?
                {
                    let etag = format!("\"{}\"", hex_prefix(&hash));
                    return Ok(Some(Representation {
                        cache_control,
                        content_type,
                        validators: Validators::new(
                            compress::coded_etag(&etag, coding),
                            last_modified,
                        ),
                        vary: true,
                        encoding: Some(coding),
                        len: bytes.len() as u64,
                        source: Source::Memory(bytes),
                    }));
                }
            }
            let source = match site.small_file(entry, commit).await? {
                Some(bytes) => Source::Memory(bytes),
                None => Source::Store {
                    store: site.store().await?.clone(),
                    key: entry.path.clone(),
                    commit,
                },
            };
            let vary =
                !available.is_empty() || compress::compressible_size(&content_type, original.size);
            Ok(Some(Representation {
                cache_control,
                content_type,
                validators: Validators::new(
                    format!("\"{}\"", hex_prefix(entry.object.as_bytes())),
                    last_modified,
                ),
                vary,
                encoding: chosen.filter(|_| !std::ptr::eq(entry, original)),
                len: entry.size,
                source,
            }))
        }
        Target::Page(key, kind) => {
            let Some(md) = markdown else { return Ok(None) };
            let cache_key = match kind {
                PageKind::Section { page } if *page > 1 => format!("{key}#page={page}"),
                _ => key.clone(),
            };
            let page = match snapshot.rendered(&cache_key) {
                Some(p) => p,
                None => {
                    let store = site.store().await?;
                    let html = md.render(store, commit, key, *kind).await?;
                    let page = Arc::new(RenderedPage::new(html));
                    snapshot.store_rendered(&cache_key, page.clone());
                    page
                }
            };
            Ok(Some(rendered(page, "text/html; charset=utf-8", key).await?))
        }
        Target::Sitemap => {
            let Some(md) = markdown else { return Ok(None) };
            let page = match snapshot.rendered("sitemap.xml") {
                Some(p) => p,
                None => {
                    let page = Arc::new(RenderedPage::new(md.sitemap()));
                    snapshot.store_rendered("sitemap.xml", page.clone());
                    page
                }
            };
            Ok(Some(
                rendered(page, "application/xml; charset=utf-8", "sitemap.xml").await?,
            ))
        }
        Target::Stylesheet(asset) => {
            let Some(md) = markdown else { return Ok(None) };
            let (body, content_type, cache_key) = crate::markdown::theme::asset(md, *asset);
            let page = match snapshot.rendered(cache_key) {
                Some(p) => p,
                None => {
                    let page = Arc::new(RenderedPage::new(body));
                    snapshot.store_rendered(cache_key, page.clone());
                    page
                }
            };
            let mut repr = rendered(page, content_type, cache_key).await?;
            // The name carries the content's hash: a new stylesheet is a new URL.
            repr.cache_control = if private {
                "private, max-age=31536000, immutable".to_owned()
            } else {
                "public, max-age=31536000, immutable".to_owned()
            };
            Ok(Some(repr))
        }
        Target::Taxonomy(taxonomy, term) => {
            let Some(md) = markdown else { return Ok(None) };
            // `#` cannot occur in a store key, so these cache keys never collide with a page.
            let cache_key = format!("#taxonomy/{taxonomy}/{}", term.as_deref().unwrap_or(""));
            let page = match snapshot.rendered(&cache_key) {
                Some(p) => p,
                None => {
                    let html = md.render_taxonomy(taxonomy, term.as_deref()).await?;
                    let page = Arc::new(RenderedPage::new(html));
                    snapshot.store_rendered(&cache_key, page.clone());
                    page
                }
            };
            Ok(Some(
                rendered(page, "text/html; charset=utf-8", "index.html").await?,
            ))
        }
        Target::Redirect(..) | Target::NotFound => Ok(None),
    }
}

/// Applies preconditions and Range to a representation and builds the response.
async fn send(
    repr: Representation,
    status: StatusCode,
    method: &Method,
    req_headers: &HeaderMap,
) -> Response {
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, &repr.content_type)
        .header(header::CACHE_CONTROL, &repr.cache_control)
        .header(header::ETAG, &repr.validators.etag);
    if let Some(lm) = repr.validators.last_modified {
        builder = builder.header(header::LAST_MODIFIED, httpdate::fmt_http_date(lm));
    }
    if repr.vary {
        builder = builder.header(header::VARY, "Accept-Encoding");
    }
    if let Some(coding) = repr.encoding {
        builder = builder.header(header::CONTENT_ENCODING, coding.token());
    }
    let head = method == Method::HEAD;
    if status != StatusCode::OK {
        return finish(
            builder
                .status(status)
                .header(header::CONTENT_LENGTH, repr.len),
            &repr,
            head,
            0,
            repr.len,
        )
        .await;
    }
    match conditional::evaluate(method, req_headers, &repr.validators) {
        Outcome::NotModified => {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, ""));
        }
        Outcome::PreconditionFailed => {
            return with_etag(
                plain(StatusCode::PRECONDITION_FAILED, "precondition failed\n"),
                &repr,
            );
        }
        Outcome::Proceed => {}
    }
    builder = builder.header(header::ACCEPT_RANGES, "bytes");
    let range = req_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| {
            method == Method::GET && conditional::if_range_allows(req_headers, &repr.validators)
        })
        .map_or(RangeRequest::Full, |v| range::parse(v, repr.len));
    match range {
        RangeRequest::Full => {
            finish(
                builder
                    .status(StatusCode::OK)
                    .header(header::CONTENT_LENGTH, repr.len),
                &repr,
                head,
                0,
                repr.len,
            )
            .await
        }
        RangeRequest::Unsatisfiable => {
            let mut r = with_etag(
                plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n"),
                &repr,
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", repr.len)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        RangeRequest::Ranges(ranges) => match ranges.as_slice() {
            [(start, end)] => {
                let len = end - start + 1;
                let b = builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(
                        header::CONTENT_RANGE,
                        format!("bytes {start}-{end}/{}", repr.len),
                    )
                    .header(header::CONTENT_LENGTH, len);
                finish(b, &repr, head, *start, len).await
            }
            many => {
                let boundary = boundary(&repr.validators.etag);
                let (body, length) =
                    repr.source
                        .multipart(many, repr.len, &repr.content_type, &boundary);
                if let (Some(h), Ok(v)) = (
                    builder.headers_mut(),
                    HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")),
                ) {
                    h.insert(header::CONTENT_TYPE, v);
                }
                builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(header::CONTENT_LENGTH, length)
                    .body(body)
                    .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, ""))
            }
        },
    }
}

async fn finish(
    builder: everlock_host::http::response::Builder,
    repr: &Representation,
    head: bool,
    start: u64,
    len: u64,
) -> Response {
    let body = if head {
        Ok(Body::empty())
    } else {
        repr.source.range(start, len).await
    };
    match body {
        Ok(body) => builder
            .body(body)
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "")),
        Err(e) => {
            tracing::error!("cannot open content: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error\n")
        }
    }
}

/// An error response that still names the representation's validators and cache policy.
fn with_etag(mut r: Response, repr: &Representation) -> Response {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&repr.validators.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&repr.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if repr.vary {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    r
}

/// A multipart boundary that cannot collide with a previous response's: derived from the
/// ETag and the current time.
fn boundary(etag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let hash = blake3::hash(format!("{etag}{nanos}").as_bytes());
    format!("everlock-{}", hex_prefix(hash.as_bytes()))
}

/// A small plain-text response.
pub fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
