//! HTTP Basic authentication for HTTP backends.
//!
//! Backends call [`authenticate`] with a request's parts, then decide with
//! `Auth::authorize`. The outcomes map to statuses the same way everywhere — malformed
//! header 400, bad credentials 401 with the backend's realm, throttled 429 with
//! `Retry-After`, authenticated but not allowed 403 — while each backend renders its own
//! body (the OCI backend, for instance, needs spec error JSON).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use everlock_auth::{AccessControl, LoginError, Principal};
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

/// Where the login that `Auth` verified for one request is recorded.
///
/// The frontend puts a fresh slot in each request's extensions and reads it when the
/// response ends; only [`authenticate`] fills it, right after `Auth` verified the
/// credentials. The type is private to the host crate, so a backend can neither name it to
/// fetch the slot nor write a login of its choosing into it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoginSlot(Arc<OnceLock<String>>);

impl LoginSlot {
    /// Records a verified login; the first one of a request stays.
    pub(crate) fn set(&self, login: &str) {
        let _ = self.0.set(login.to_owned());
    }

    /// The verified login, if the request authenticated as a user.
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Authenticates a request: no credentials (or `Basic Og==`) is `anon`; anything else must
/// verify. The client address for throttling comes from the connection.
pub async fn authenticate(
    auth: &AccessControl,
    parts: &http::request::Parts,
) -> Result<Principal, LoginError> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let header = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.as_bytes()),
        (Some(_), Some(_)) => {
            return Err(LoginError::Malformed(
                "more than one Authorization header".to_owned(),
            ));
        }
    };
    let principal = auth.authenticate_http(header, client_ip(parts)).await?;
    // The access log shows who made the request: the frontend left a slot for it, and only
    // a login `Auth` just verified is written there.
    if let (Some(login), Some(slot)) = (principal.login(), parts.extensions.get::<LoginSlot>()) {
        slot.set(login.as_str());
    }
    Ok(principal)
}

/// The peer address the frontend recorded; unspecified in tests without a socket.
pub fn client_ip(parts: &http::request::Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// `Basic realm="<realm>", charset="UTF-8"`.
pub fn challenge(realm: &str) -> HeaderValue {
    let realm: String = realm
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' || *c == ' ')
        .collect();
    HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"))
}

/// The status a login failure maps to.
pub fn status(err: &LoginError) -> StatusCode {
    match err {
        LoginError::Malformed(_) => StatusCode::BAD_REQUEST,
        LoginError::BadCredentials => StatusCode::UNAUTHORIZED,
        LoginError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
    }
}

/// Adds the headers a login failure needs (`WWW-Authenticate`, `Retry-After`) to `response`.
pub fn decorate(response: &mut Response<Body>, err: &LoginError, realm: &str) {
    *response.status_mut() = status(err);
    let headers = response.headers_mut();
    match err {
        LoginError::BadCredentials => {
            headers.insert(WWW_AUTHENTICATE, challenge(realm));
        }
        LoginError::Throttled { retry_after } => {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
        }
        LoginError::Malformed(_) => {}
    }
}

/// A plain-text rejection for a login failure.
pub fn reject(err: &LoginError, realm: &str) -> Response<Body> {
    let mut response = text(format!("{err}\n"));
    decorate(&mut response, err, realm);
    response
}

/// 401 with a challenge: the request was anonymous and anonymous access is not enough.
pub fn unauthorized(realm: &str) -> Response<Body> {
    reject(&LoginError::BadCredentials, realm)
}

/// 403: authenticated, but not allowed.
pub fn forbidden() -> Response<Body> {
    let mut response = text("access denied\n".to_owned());
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

fn text(body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rejections_carry_their_headers() {
        let r = reject(&LoginError::BadCredentials, "site");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            "Basic realm=\"site\", charset=\"UTF-8\""
        );
        let r = reject(
            &LoginError::Throttled {
                retry_after: Duration::from_secs(30),
            },
            "x",
        );
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "30");
        let r = reject(&LoginError::Malformed("bad".into()), "x");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(forbidden().status(), StatusCode::FORBIDDEN);
        assert_eq!(
            challenge("we\"ird\nrealm"),
            "Basic realm=\"weirdrealm\", charset=\"UTF-8\""
        );
    }
}
