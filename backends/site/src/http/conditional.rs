//! Conditional requests (RFC 9110 §13.2.2): `If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since`, in that order, and `If-Range`. The headers are parsed and compared by
//! the `headers` crate's typed headers; the order and the outcomes are the site's.

use std::time::SystemTime;

use everlock_host::http::{HeaderMap, Method, header};
use headers::{
    ETag, HeaderMapExt as _, IfMatch, IfModifiedSince, IfNoneMatch, IfRange, IfUnmodifiedSince,
};

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
    /// The same ETag, typed for comparisons; `None` only if `etag` were malformed, in which
    /// case no tag list matches it (only `*`).
    tag: Option<ETag>,
    /// Last modification time, truncated to whole seconds.
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    /// Validators from a quoted strong ETag and a last-modification time.
    pub fn new(etag: String, last_modified: Option<SystemTime>) -> Validators {
        Validators {
            tag: etag.parse().ok(),
            etag,
            last_modified,
        }
    }

    /// Whether `If-Match` passes: strong comparison, `*` matches any existing representation
    /// (and this is only asked of one).
    fn if_match(&self, condition: &IfMatch) -> bool {
        condition.is_any()
            || self
                .tag
                .as_ref()
                .is_some_and(|t| condition.precondition_passes(t))
    }

    /// Whether `If-None-Match` matches (weak comparison), i.e. the precondition fails.
    fn none_match_matches(&self, condition: &IfNoneMatch) -> bool {
        match &self.tag {
            Some(tag) => !condition.precondition_passes(tag),
            None => *condition == IfNoneMatch::any(),
        }
    }
}

/// Evaluates the preconditions in RFC 9110 order.
pub fn evaluate(method: &Method, headers: &HeaderMap, v: &Validators) -> Outcome {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(if_match) = headers.typed_get::<IfMatch>() {
        if !v.if_match(&if_match) {
            return Outcome::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) =
        (headers.typed_get::<IfUnmodifiedSince>(), v.last_modified)
        && !since.precondition_passes(modified)
    {
        return Outcome::PreconditionFailed;
    }
    if let Some(if_none_match) = headers.typed_get::<IfNoneMatch>() {
        if v.none_match_matches(&if_none_match) {
            return if get_or_head {
                Outcome::NotModified
            } else {
                Outcome::PreconditionFailed
            };
        }
    } else if get_or_head
        && let (Some(since), Some(modified)) =
            (headers.typed_get::<IfModifiedSince>(), v.last_modified)
        && !since.is_modified(modified)
    {
        return Outcome::NotModified;
    }
    Outcome::Proceed
}

/// Whether a `Range` header may be honoured: true without `If-Range`, otherwise only on a strong
/// ETag match or an exact `Last-Modified` match (§13.1.5; the crate's own `is_modified` would
/// also accept any later date, which the RFC does not). An `If-Range` that is neither a tag nor
/// a date never matches.
pub fn if_range_allows(headers: &HeaderMap, v: &Validators) -> bool {
    if !headers.contains_key(header::IF_RANGE) {
        return true;
    }
    let Some(if_range) = headers.typed_get::<IfRange>() else {
        return false;
    };
    v.last_modified
        .is_some_and(|modified| if_range == IfRange::date(modified))
        || v.tag
            .as_ref()
            .is_some_and(|tag| !if_range.is_modified(Some(tag), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use everlock_host::http::HeaderValue;
    use std::time::Duration;

    fn v() -> Validators {
        Validators::new(
            "\"abc\"".into(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        )
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
        // A later date is not an exact match: the representation may have changed since.
        assert!(!if_range_allows(
            &h(&[(header::IF_RANGE, "Wed, 15 Nov 2023 00:00:00 GMT")]),
            &v()
        ));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, "garbage")]), &v()));
    }

    #[test]
    fn tag_lists_and_wildcards() {
        let g = Method::GET;
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_NONE_MATCH, "\"x\", W/\"abc\"")]), &v()),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_NONE_MATCH, "*")]), &v()),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_MATCH, "garbage")]), &v()),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            evaluate(&g, &h(&[(header::IF_UNMODIFIED_SINCE, "garbage")]), &v()),
            Outcome::Proceed
        );
    }
}
