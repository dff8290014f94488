//! The smallest pieces every site response is built from: the authentication realm and plain
//! text answers. This module imports nothing else of the crate, so the serving pipeline, the
//! redirect rules and the deploy endpoint can all use it without importing one another.

use bytes::Bytes;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::{HeaderValue, StatusCode, header};

/// The realm of the `WWW-Authenticate` challenge, for reads and deploys alike.
pub const REALM: &str = "site";

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
