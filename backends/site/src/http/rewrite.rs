//! Applying a site's `_redirects` and `_headers` ([`crate::rules`]) to a request.

use everlock_host::axum::response::Response;
use everlock_host::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use crate::http::path::{self, SitePath};
use crate::http::reply::plain;
use crate::http::resolve::Target;
use crate::rules::{Matched, Rules};
use crate::site::SiteInner;

/// What the redirect rules make of a request.
pub(crate) enum Applied {
    /// No rule applies: serve what the path resolved to.
    Target(Target),
    /// A 3xx rule: this response.
    Respond(Response),
    /// A rewrite (200) or an error page (404, 410, 451): serve this path (`None`: a target
    /// that cannot be a site path) with this status.
    Serve(Option<SitePath>, StatusCode),
}

/// Applies the first matching `_redirects` rule, if it applies: a rule that is not forced
/// yields to anything the path resolves to.
pub(crate) fn apply(
    site: &SiteInner,
    rules: &Rules,
    path: &SitePath,
    target: Target,
    query: Option<&str>,
) -> Applied {
    let Some(rule) = rules.redirect(&path.segments) else {
        return Applied::Target(target);
    };
    if !rule.force && target != Target::NotFound {
        return Applied::Target(target);
    }
    match StatusCode::from_u16(rule.status) {
        Ok(code) if code.is_redirection() => Applied::Respond(redirect(site, &rule, code, query)),
        Ok(code) => {
            let to = rule.to.split(['?', '#']).next().unwrap_or("");
            Applied::Serve(path::normalize(to), code)
        }
        Err(_) => Applied::Target(target),
    }
}

/// A rewrite serves its target's content at the requested URL, so a canonical-form redirect
/// of the target (`/app.html` → `/app`) is followed once instead of sent.
pub(crate) fn follow(target: Target, resolve: impl Fn(&SitePath) -> Target) -> Target {
    match target {
        Target::Redirect(segments, trailing_slash) => match resolve(&SitePath {
            segments,
            trailing_slash,
        }) {
            Target::Redirect(..) => Target::NotFound,
            other => other,
        },
        other => other,
    }
}

/// Headers from the site's `_headers`, applied after the security headers so that a site can
/// choose its own (a stricter `Content-Security-Policy`, say).
#[derive(Debug, Clone)]
pub(crate) struct SiteHeaders(pub(crate) Vec<(HeaderName, HeaderValue)>);

impl SiteHeaders {
    /// Replaces each named header with the site's values.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        for (name, _) in &self.0 {
            headers.remove(name);
        }
        for (name, value) in self.0 {
            headers.append(name, value);
        }
    }
}

/// The response of a `_redirects` rule with a 3xx status. A site path is made absolute under
/// the instance prefix; the request's query string is kept unless the target has its own.
fn redirect(site: &SiteInner, rule: &Matched, code: StatusCode, query: Option<&str>) -> Response {
    let mut location = if rule.is_external() {
        rule.to.clone()
    } else {
        format!("{}{}", site.prefix.trim_end_matches('/'), rule.to)
    };
    if let Some(q) = query.filter(|_| !rule.to.contains('?')) {
        location.push('?');
        location.push_str(q);
    }
    let mut r = plain(code, "");
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "bad redirect target\n"),
    }
}
