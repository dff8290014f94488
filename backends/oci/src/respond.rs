//! The response helpers every handler shares: spec errors for authentication, JSON and
//! empty responses, header values, query parameters and request bodies. They depend on
//! nothing of the registry, so every module may use them.

use std::collections::HashMap;
use std::io;

use everlock_host::auth::LoginError;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use everlock_host::http::{StatusCode, request::Parts};
use everlock_host::http_auth;
use everlock_host::storage::StorageError;
use futures_util::TryStreamExt as _;
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

use crate::error::{Code, OciError, OciResult};

/// The realm of the Basic challenge.
pub(crate) const REALM: &str = "everlock";

/// 401 `UNAUTHORIZED` with the Basic challenge.
pub(crate) fn unauthorized(message: &str) -> OciError {
    OciError::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, message)
        .with_header(WWW_AUTHENTICATE, http_auth::challenge(REALM))
}

/// The spec error for a failed login (bad credentials, malformed header, throttling).
pub(crate) fn login_error(err: &LoginError) -> OciError {
    let status = http_auth::status(err);
    match err {
        LoginError::BadCredentials => unauthorized("invalid username or password"),
        LoginError::Throttled { retry_after } => {
            OciError::new(status, Code::TooManyRequests, "too many failed logins")
                .with_header(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)))
        }
        LoginError::Malformed(m) => OciError::new(status, Code::Unauthorized, m.clone()),
    }
}

/// The query parameters of a request (the last value wins for repeated keys).
pub(crate) fn query(parts: &Parts) -> HashMap<String, String> {
    parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A request body as a byte stream; transport errors (a truncated body, a reset) become
/// [`BodyError`]s so they can be told apart from disk errors.
pub(crate) fn body_reader(body: Body) -> impl AsyncRead + Unpin + Send {
    StreamReader::new(
        body.into_data_stream()
            .map_err(|e| io::Error::other(BodyError(e.to_string()))),
    )
}

/// The client's side of a failed upload: its body ended early, broke, or did not match its
/// declared length.
#[derive(Debug, thiserror::Error)]
#[error("request body: {0}")]
pub(crate) struct BodyError(pub(crate) String);

/// Whether a storage error came from the request body rather than from the store.
pub(crate) fn is_body_error(err: &StorageError) -> bool {
    match err {
        StorageError::Io(e) => e.get_ref().is_some_and(|inner| inner.is::<BodyError>()),
        _ => false,
    }
}

/// Whether a request carries no body at all (so a closing PUT need not append anything).
pub(crate) fn body_is_empty(parts: &Parts, body: &Body) -> bool {
    use http_body::Body as _;
    if body.size_hint().exact() == Some(0) {
        return true;
    }
    parts
        .headers
        .get(everlock_host::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0")
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        everlock_host::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An empty response with a status (Content-Length 0).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response.headers_mut().insert(
        everlock_host::http::header::CONTENT_LENGTH,
        HeaderValue::from_static("0"),
    );
    response
}

/// A header value from text that we built ourselves (paths, digests, numbers): always valid,
/// but checked anyway instead of trusting it.
pub(crate) fn header(value: &str) -> OciResult<HeaderValue> {
    HeaderValue::from_str(value)
        .map_err(|_| OciError::bad(Code::Unsupported, "value not representable in a header"))
}
