//! Sending a selected representation (reference §6, §7): the representation's headers, then
//! the preconditions, then Range, then the body, whole, one range or `multipart/byteranges`.

use std::time::SystemTime;

use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::response::Builder;
use everlock_host::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::http::conditional::{self, Outcome};
use crate::http::error::ServeError;
use crate::http::range::{self, RangeRequest};
use crate::http::reply::plain;
use crate::http::representation::Representation;
use crate::snapshot::hex_prefix;

/// Answers a request for `repr` with `status`. Only a 200 is subject to preconditions and
/// Range; an error page (a custom 404, a rule's 410) is always sent whole.
pub(crate) async fn send(
    repr: Representation,
    status: StatusCode,
    method: &Method,
    req_headers: &HeaderMap,
) -> Result<Response, ServeError> {
    let builder = headers(&repr);
    let head = method == Method::HEAD;
    if status != StatusCode::OK {
        return whole(builder.status(status), &repr, head).await;
    }
    match conditional::evaluate(method, req_headers, &repr.validators) {
        Outcome::NotModified => {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .map_err(ServeError::Response);
        }
        Outcome::PreconditionFailed => {
            return Ok(with_etag(
                plain(StatusCode::PRECONDITION_FAILED, "precondition failed\n"),
                &repr,
            ));
        }
        Outcome::Proceed => {}
    }
    let builder = builder
        .status(StatusCode::OK)
        .header(header::ACCEPT_RANGES, "bytes");
    match requested_range(method, req_headers, &repr) {
        RangeRequest::Full => whole(builder, &repr, head).await,
        RangeRequest::Unsatisfiable => Ok(unsatisfiable(&repr)),
        RangeRequest::Ranges(ranges) => partial(builder, &repr, head, &ranges).await,
    }
}

/// The headers that describe the representation, whatever the status.
fn headers(repr: &Representation) -> Builder {
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
    builder
}

/// The Range a GET asks for, unless `If-Range` says the client's copy is stale (then the whole
/// representation). HEAD ignores Range.
fn requested_range(
    method: &Method,
    req_headers: &HeaderMap,
    repr: &Representation,
) -> RangeRequest {
    req_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| {
            method == Method::GET && conditional::if_range_allows(req_headers, &repr.validators)
        })
        .map_or(RangeRequest::Full, |v| range::parse(v, repr.len))
}

/// The whole representation.
async fn whole(
    builder: Builder,
    repr: &Representation,
    head: bool,
) -> Result<Response, ServeError> {
    let builder = builder.header(header::CONTENT_LENGTH, repr.len);
    finish(builder, repr, head, 0, repr.len).await
}

/// 416, naming the representation's length.
fn unsatisfiable(repr: &Representation) -> Response {
    let mut r = with_etag(
        plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n"),
        repr,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", repr.len)) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// 206 with one range as the body, or several as `multipart/byteranges`.
async fn partial(
    builder: Builder,
    repr: &Representation,
    head: bool,
    ranges: &[(u64, u64)],
) -> Result<Response, ServeError> {
    let builder = builder.status(StatusCode::PARTIAL_CONTENT);
    if let [(start, end)] = ranges {
        let len = end - start + 1;
        let builder = builder
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", repr.len),
            )
            .header(header::CONTENT_LENGTH, len);
        return finish(builder, repr, head, *start, len).await;
    }
    let boundary = boundary(&repr.validators.etag);
    let (body, length) = repr
        .source
        .multipart(ranges, repr.len, &repr.content_type, &boundary);
    let mut builder = builder.header(header::CONTENT_LENGTH, length);
    if let (Some(h), Ok(v)) = (
        builder.headers_mut(),
        HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")),
    ) {
        h.insert(header::CONTENT_TYPE, v);
    }
    builder.body(body).map_err(ServeError::Response)
}

/// The response with `len` bytes from `start` as its body (none for HEAD).
async fn finish(
    builder: Builder,
    repr: &Representation,
    head: bool,
    start: u64,
    len: u64,
) -> Result<Response, ServeError> {
    let body = if head {
        Body::empty()
    } else {
        repr.source
            .range(start, len)
            .await
            .map_err(ServeError::Content)?
    };
    builder.body(body).map_err(ServeError::Response)
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
