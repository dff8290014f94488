//! The request pipeline (reference §1): route the deploy endpoint, authorize, check the method,
//! normalise the path, resolve it (`_redirects` included), then select the representation
//! ([`crate::http::representation`]) and send it ([`crate::http::send`]). Every failure is a
//! [`ServeError`], turned into a status in one place.
//!
//! This module is the top of the site's HTTP layer: it dispatches to [`crate::deploy`] and to
//! the serving modules, and none of them imports it.

use std::sync::Arc;

use everlock_host::Scheme;
use everlock_host::auth::{Action, Principal};
use everlock_host::axum::extract::{Request, State};
use everlock_host::axum::response::Response;
use everlock_host::http::request::Parts;
use everlock_host::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use everlock_host::http_auth;

use crate::http::error::ServeError;
use crate::http::headers;
use crate::http::path::{self, SitePath};
use crate::http::reply::{REALM, plain};
use crate::http::representation::Selection;
use crate::http::resolve::{self, Target};
use crate::http::rewrite::{self, Applied, SiteHeaders};
use crate::http::send::send;
use crate::rules::Rules;
use crate::settings::Mode;
use crate::site::SiteInner;
use crate::snapshot::Snapshot;

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

/// Sends the deploy endpoint to [`crate::deploy`] and everything else through the reading
/// pipeline.
async fn route(site: &Arc<SiteInner>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(rel) = path::strip_prefix(parts.uri.path(), &site.prefix).map(str::to_owned) else {
        return ServeError::NotFound.response();
    };
    if rel == DEPLOY_PATH {
        return crate::deploy::handle(site, parts, body).await;
    }
    let private = match admit(site, &parts).await {
        Ok(private) => private,
        Err(refused) => return refused,
    };
    match read(site, &parts, &rel, private).await {
        Ok(r) => r,
        Err(e) => {
            e.log(&site.name, parts.uri.path());
            e.response()
        }
    }
}

/// Authenticates and authorizes a read: the refusal (401, 403, 400, 429) as `Err`, else
/// whether the site is private (anonymous readers may not read it).
async fn admit(site: &SiteInner, parts: &Parts) -> Result<bool, Response> {
    let principal = http_auth::authenticate(&site.auth, parts)
        .await
        .map_err(|e| http_auth::reject(&e, REALM))?;
    if !site
        .auth
        .authorize(&principal, &site.resource, Action::Read)
    {
        return Err(if principal.is_anon() {
            http_auth::unauthorized(REALM)
        } else {
            http_auth::forbidden()
        });
    }
    Ok(!site
        .auth
        .authorize(&Principal::anon(), &site.resource, Action::Read))
}

/// Serves a GET or HEAD of `rel` (the path below the prefix).
async fn read(
    site: &SiteInner,
    parts: &Parts,
    rel: &str,
    private: bool,
) -> Result<Response, ServeError> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(ServeError::MethodNotAllowed(parts.method.clone()));
    }
    let site_path = path::normalize(rel).ok_or(ServeError::NotFound)?;
    let snapshot = site.snapshot().await?;
    let rules = site.rules(&snapshot).await?;
    let request = Req {
        method: &parts.method,
        headers: &parts.headers,
        query: parts.uri.query(),
        path: &site_path,
        private,
    };
    // A 4xx is still the site's answer to the path, so it carries the site's `_headers` like
    // any page; a failure of the server does not.
    let mut response = match serve_in(site, &snapshot, &rules, &request).await {
        Err(e) if !e.is_server_fault() => e.response(),
        other => other?,
    };
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
) -> Result<Response, ServeError> {
    let markdown = match site.settings.mode {
        Mode::Markdown => Some(site.markdown(snapshot).await?),
        Mode::Html => None,
    };
    let resolve =
        |p: &SitePath| resolve::resolve(site.settings.mode, snapshot, markdown.as_deref(), p);
    let (target, status) = match rewrite::apply(
        site,
        rules,
        request.path,
        resolve(request.path),
        request.query,
    ) {
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
            return Ok(redirect(&site.prefix, &segments, slash, request.query));
        }
        Target::NotFound => match resolve::not_found_page(snapshot, markdown.as_deref()) {
            Some(page) => (page, StatusCode::NOT_FOUND),
            None => return Err(ServeError::NotFound),
        },
        other => (other, status),
    };
    let selection = Selection {
        site,
        snapshot,
        markdown: markdown.as_deref(),
        headers: request.headers,
        private: request.private,
    };
    let repr = selection
        .select(&target)
        .await?
        .ok_or(ServeError::NotFound)?;
    send(repr, status, request.method, request.headers).await
}

/// The 308 to a path's canonical form, built from the normalised segments (never from raw
/// input) with the query kept.
fn redirect(prefix: &str, segments: &[String], slash: bool, query: Option<&str>) -> Response {
    let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let location = path::location(prefix, &refs, slash, query);
    let mut r = plain(StatusCode::PERMANENT_REDIRECT, "");
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
