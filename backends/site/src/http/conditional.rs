//! Conditional requests (RFC 9110 §13.2.2): `If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since`, in that order, and `If-Range`.

use std::time::SystemTime;

use everlock_host::http::{HeaderMap, Method, header};

/// What the preconditions decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the representation.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

/// The validators of the selected representation.
#[derive(Debug, Clone)]
pub struct Validators {
    /// The strong ETag, quoted (`"abc"`).
    pub etag: String,
    /// Last modification time, truncated to whole seconds.
    pub last_modified: Option<SystemTime>,
}

/// Evaluates the preconditions in RFC 9110 order.
pub fn evaluate(method: &Method, headers: &HeaderMap, v: &Validators) -> Outcome {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(if_match) = header_str(headers, header::IF_MATCH) {
        if !list_matches(if_match, &v.etag, true) {
            return Outcome::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) = (
        header_date(headers, header::IF_UNMODIFIED_SINCE),
        v.last_modified,
    ) && modified > since
    {
        return Outcome::PreconditionFailed;
    }
    if let Some(if_none_match) = header_str(headers, header::IF_NONE_MATCH) {
        if list_matches(if_none_match, &v.etag, false) {
            return if get_or_head {
                Outcome::NotModified
            } else {
                Outcome::PreconditionFailed
            };
        }
    } else if get_or_head
        && let (Some(since), Some(modified)) = (
            header_date(headers, header::IF_MODIFIED_SINCE),
            v.last_modified,
        )
        && modified <= since
    {
        return Outcome::NotModified;
    }
    Outcome::Proceed
}

/// Whether a `Range` header may be honoured: true without `If-Range`, otherwise only on a strong
/// ETag match or an exact `Last-Modified` match.
pub fn if_range_allows(headers: &HeaderMap, v: &Validators) -> bool {
    let Some(value) = header_str(headers, header::IF_RANGE) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return strong_eq(value, &v.etag);
    }
    match (httpdate::parse_http_date(value).ok(), v.last_modified) {
        (Some(date), Some(modified)) => date == modified,
        _ => false,
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    header_str(headers, name).and_then(|v| httpdate::parse_http_date(v.trim()).ok())
}

/// Whether an `If-Match` / `If-None-Match` list matches `etag` (strong or weak comparison).
/// `*` matches any existing representation, and this function is only called for one.
fn list_matches(list: &str, etag: &str, strong: bool) -> bool {
    if list.trim() == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|candidate| {
        if strong {
            strong_eq(candidate, etag)
        } else {
            candidate.strip_prefix("W/").unwrap_or(candidate)
                == etag.strip_prefix("W/").unwrap_or(etag)
        }
    })
}

/// Strong comparison: neither side may be weak.
fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use everlock_host::http::HeaderValue;
    use std::time::Duration;

    fn v() -> Validators {
        Validators {
            etag: "\"abc\"".into(),
            last_modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn h(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, val) in pairs {
            m.insert(k.clone(), HeaderValue::from_str(val).unwrap());
        }
        m
    }

    const OLD: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const EXACT: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    #[test]
    fn precedence_follows_rfc_9110() {
        let g = Method::GET;
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_MATCH, "\"nope\"")]), &v()),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_MATCH, "W/\"abc\"")]), &v()),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_MATCH, "*")]), &v()),
            Outcome::Proceed
        );
        // If-Match present: If-Unmodified-Since is ignored.
        assert_eq!(
            evaluate(
                &g,
                &h(&[
                    (header::IF_MATCH, "\"x\", \"abc\""),
                    (header::IF_UNMODIFIED_SINCE, OLD)
                ]),
                &v()
            ),
            Outcome::Proceed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_UNMODIFIED_SINCE, OLD)]), &v()),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_UNMODIFIED_SINCE, EXACT)]), &v()),
            Outcome::Proceed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_NONE_MATCH, "W/\"abc\"")]), &v()),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&Method::POST, &h(&[(header::IF_NONE_MATCH, "*")]), &v()),
            Outcome::PreconditionFailed
        );
        // If-None-Match present and not matching: If-Modified-Since is ignored.
        assert_eq!(
            evaluate(
                &g,
                &h(&[
                    (header::IF_NONE_MATCH, "\"zzz\""),
                    (header::IF_MODIFIED_SINCE, EXACT)
                ]),
                &v()
            ),
            Outcome::Proceed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_MODIFIED_SINCE, EXACT)]), &v()),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_MODIFIED_SINCE, OLD)]), &v()),
            Outcome::Proceed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_MODIFIED_SINCE, "garbage")]), &v()),
            Outcome::Proceed
        );
    }

    #[test]
    fn if_range_needs_a_strong_or_exact_match() {
        assert!(if_range_allows(&h(&[]), &v()));
        assert!(if_range_allows(&h(&[(header::IF_RANGE, "\"abc\"")]), &v()));
        assert!(!if_range_allows(
            &h(&[(header::IF_RANGE, "W/\"abc\"")]),
            &v()
        ));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, "\"old\"")]), &v()));
        assert!(if_range_allows(&h(&[(header::IF_RANGE, EXACT)]), &v()));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, OLD)]), &v()));
    }
}
