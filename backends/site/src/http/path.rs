//! Request path normalisation: the one place that turns a raw request path into a store key.
//!
//! The raw path is split on `/` before percent-decoding and each segment is decoded exactly
//! once, so `%2f` can never introduce a separator and `%2e%2e` is caught as `..` after decoding.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Characters escaped when a store key is written back into a `Location` header.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A safe, decoded request path relative to the site root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePath {
    /// Decoded segments, none empty, `.`, `..`, or containing `/`, `\` or NUL.
    pub segments: Vec<String>,
    /// Whether the raw path ended with `/` (or was the root).
    pub trailing_slash: bool,
}

impl SitePath {
    /// The store key (`a/b/c.html`), empty for the root.
    pub fn key(&self) -> String {
        self.segments.join("/")
    }

    /// Whether any segment is hidden (starts with `.`): such paths are never served.
    pub fn is_hidden(&self) -> bool {
        self.segments.iter().any(|s| s.starts_with('.'))
    }
}

/// Normalises `raw` (the request path after the instance prefix). `None` means "unsafe", which
/// the caller answers with 404 (never 400, so probes learn nothing).
pub fn normalize(raw: &str) -> Option<SitePath> {
    let mut segments = Vec::new();
    for raw_segment in raw.split('/') {
        if raw_segment.contains('\\') {
            return None;
        }
        let decoded = percent_decode_str(raw_segment).decode_utf8().ok()?;
        if decoded.contains(['/', '\\', '\0']) || decoded == ".." {
            return None;
        }
        if decoded.is_empty() || decoded == "." {
            continue;
        }
        segments.push(decoded.into_owned());
    }
    Some(SitePath {
        trailing_slash: segments.is_empty() || raw.ends_with('/'),
        segments,
    })
}

/// Builds a redirect target from normalised segments, never from raw input: the result always
/// starts with exactly one `/`, so it can never be a protocol-relative `//host` URL.
pub fn location(
    prefix: &str,
    segments: &[&str],
    trailing_slash: bool,
    query: Option<&str>,
) -> String {
    let mut out = String::from(prefix.trim_end_matches('/'));
    for segment in segments {
        out.push('/');
        out.extend(utf8_percent_encode(segment, SEGMENT));
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    // The prefix is a validated path prefix, but collapse leading slashes anyway.
    while out.starts_with("//") {
        out.remove(0);
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Strips the instance prefix from a request path at a segment boundary.
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let base = prefix.trim_end_matches('/');
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_separators_are_rejected() {
        for raw in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/a/%2E%2E/b",
            "/a%2fb",
            "/a%2Fb",
            "/a\\b",
            "/a%5cb",
            "/a%00b",
            "/%ff",
        ] {
            assert_eq!(normalize(raw), None, "{raw}");
        }
    }

    #[test]
    fn empty_and_dot_segments_are_dropped() {
        let p = normalize("//a/./b//c.html").unwrap();
        assert_eq!(p.key(), "a/b/c.html");
        assert!(!p.trailing_slash);
        let p = normalize("/docs/").unwrap();
        assert_eq!(p.key(), "docs");
        assert!(p.trailing_slash);
        assert!(normalize("").unwrap().trailing_slash);
        assert_eq!(normalize("/a%20b").unwrap().key(), "a b");
        assert!(normalize("/a/.git/config").unwrap().is_hidden());
    }

    #[test]
    fn locations_are_never_protocol_relative() {
        assert_eq!(
            location("/", &["evil.example"], true, None),
            "/evil.example/"
        );
        assert_eq!(location("/", &[], true, Some("a=1")), "/?a=1");
        assert_eq!(
            location("/docs", &["a b", "c?d"], true, None),
            "/docs/a%20b/c%3Fd/"
        );
        assert_eq!(location("/", &["x"], false, Some("")), "/x");
    }

    #[test]
    fn prefixes_strip_at_segment_boundaries() {
        assert_eq!(strip_prefix("/docs/a", "/docs"), Some("/a"));
        assert_eq!(strip_prefix("/docs", "/docs"), Some(""));
        assert_eq!(strip_prefix("/docsx", "/docs"), None);
        assert_eq!(strip_prefix("/a", "/"), Some("/a"));
    }
}
