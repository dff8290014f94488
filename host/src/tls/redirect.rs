//! What the plain-HTTP and HTTPS frontends do before routing: answer ACME HTTP-01 challenges,
//! redirect plain HTTP to HTTPS, and keep HSTS off local names.

use std::sync::Arc;

use axum::body::Body;
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION, STRICT_TRANSPORT_SECURITY};
use http::{HeaderMap, Response, StatusCode, Uri};

use super::TlsState;
use super::names::is_local;
use crate::config::HttpsRedirect;

/// The path prefix of ACME HTTP-01 challenges (RFC 8555 §8.3).
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The frontend's view of TLS: shared by both listeners.
#[derive(Debug, Clone, Default)]
pub struct HttpHooks {
    /// The TLS state, when the HTTPS listener is on.
    pub tls: Option<Arc<TlsState>>,
    /// The HTTPS listener's port, for redirects (`None`: HTTPS is off, never redirect).
    pub https_port: Option<u16>,
    /// Which requests are redirected.
    pub redirect: HttpsRedirect,
}

impl HttpHooks {
    /// The response to a request that must not reach routing: the key authorization of a
    /// pending HTTP-01 challenge (for any host), or, on plain HTTP, a 308 to HTTPS.
    /// `instance` is the `https-redirect` of the instance the request routes to, if it has
    /// one: it wins over the server-wide rule, except that challenges are never redirected
    /// (a CA validating HTTP-01 must reach the answer on plain HTTP).
    pub fn before_routing(
        &self,
        host: &str,
        uri: &Uri,
        https: bool,
        instance: Option<bool>,
    ) -> Option<Response<Body>> {
        let path = uri.path();
        if let Some(token) = path.strip_prefix(ACME_CHALLENGE_PREFIX) {
            // Unknown tokens fall through to routing: a backend may serve its own.
            let answer = self.tls.as_ref()?.http_challenge(token)?;
            let mut r = Response::new(Body::from(answer));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            return Some(r);
        }
        if https {
            return None;
        }
        let port = self.https_port?;
        let redirect = instance.unwrap_or_else(|| self.server_rule(host));
        redirect.then(|| redirect_response(host, port, uri))
    }

    /// The server-wide `[frontend-http] https-redirect` rule for `host`.
    fn server_rule(&self, host: &str) -> bool {
        match self.redirect {
            HttpsRedirect::Never => false,
            HttpsRedirect::Always => true,
            HttpsRedirect::Acme => self.tls.as_ref().is_some_and(|t| t.has_acme(host)),
        }
    }
}

/// A 308 (method and body kept) to the same host, path and query on HTTPS.
pub fn redirect_response(host: &str, port: u16, uri: &Uri) -> Response<Body> {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{port}{target}");
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Removes `Strict-Transport-Security` from responses for local names: browsers would apply a
/// localhost HSTS entry to every port of localhost, long after the test that set it.
pub fn strip_local_hsts(host: &str, headers: &mut HeaderMap) {
    if is_local(host) {
        headers.remove(STRICT_TRANSPORT_SECURITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(redirect: HttpsRedirect) -> HttpHooks {
        HttpHooks {
            tls: None,
            https_port: Some(8443),
            redirect,
        }
    }

    #[test]
    fn redirects_keep_path_query_and_port() {
        let uri: Uri = "/a/b?x=1".parse().unwrap();
        let r = hooks(HttpsRedirect::Always)
            .before_routing("www.example.com", &uri, false, None)
            .unwrap();
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            r.headers()[LOCATION],
            "https://www.example.com:8443/a/b?x=1"
        );
        let r = redirect_response("::1", 443, &"/".parse().unwrap());
        assert_eq!(r.headers()[LOCATION], "https://[::1]/");
    }

    #[test]
    fn no_redirect_without_https_or_when_never_or_for_challenges() {
        let uri: Uri = "/x".parse().unwrap();
        assert!(
            hooks(HttpsRedirect::Never)
                .before_routing("a.example", &uri, false, None)
                .is_none()
        );
        // `acme` without any ACME certificate redirects nothing.
        assert!(
            hooks(HttpsRedirect::Acme)
                .before_routing("a.example", &uri, false, None)
                .is_none()
        );
        let off = HttpHooks {
            https_port: None,
            ..hooks(HttpsRedirect::Always)
        };
        assert!(off.before_routing("a.example", &uri, false, None).is_none());
        let challenge: Uri = "/.well-known/acme-challenge/tok".parse().unwrap();
        assert!(
            hooks(HttpsRedirect::Always)
                .before_routing("a.example", &challenge, false, Some(true))
                .is_none()
        );
    }

    #[test]
    fn an_instance_setting_wins_over_the_server_rule() {
        let uri: Uri = "/x".parse().unwrap();
        let redirected = |rule, instance| {
            hooks(rule)
                .before_routing("a.example", &uri, false, instance)
                .is_some_and(|r| r.status() == StatusCode::PERMANENT_REDIRECT)
        };
        for rule in [
            HttpsRedirect::Never,
            HttpsRedirect::Acme,
            HttpsRedirect::Always,
        ] {
            assert!(redirected(rule, Some(true)), "{rule:?} + true");
            assert!(!redirected(rule, Some(false)), "{rule:?} + false");
        }
        // Absent, the server rule decides (`acme` without certificates: nothing).
        assert!(redirected(HttpsRedirect::Always, None));
        assert!(!redirected(HttpsRedirect::Never, None));
        assert!(!redirected(HttpsRedirect::Acme, None));
        // HTTPS itself is never redirected, whatever the instance says.
        assert!(
            hooks(HttpsRedirect::Always)
                .before_routing("a.example", &uri, true, Some(true))
                .is_none()
        );
    }

    #[test]
    fn hsts_is_stripped_only_for_local_names() {
        for (host, kept) in [
            ("localhost", false),
            ("www.localhost", false),
            ("127.0.0.1", false),
            ("::1", false),
            ("www.example.com", true),
        ] {
            let mut h = HeaderMap::new();
            h.insert(
                STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=1"),
            );
            strip_local_hsts(host, &mut h);
            assert_eq!(h.contains_key(STRICT_TRANSPORT_SECURITY), kept, "{host}");
        }
    }
}
