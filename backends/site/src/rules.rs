//! `_redirects` and `_headers` (issue #16 item 4), in Netlify's format.
//!
//! `_redirects`: one rule a line, `from to [status][!]`; `#` starts a comment. `from` is a
//! path whose segments may be `:name` placeholders (one segment each) and whose last segment may
//! be `*` (the rest of the path, zero or more segments). `to` is a site path or an absolute
//! `http(s)://` URL and may use `:name` and `:splat`. The status is 301 when omitted; 302, 303,
//! 307 and 308 redirect too; 200 serves `to` at the requested URL (a rewrite); 404, 410 and 451
//! serve `to` with that status. A rule applies only when no file answers the path, unless its
//! status ends with `!` (forced). The first matching rule wins.
//!
//! `_headers`: a path pattern on its own line (same syntax as `from`), then indented
//! `Name: value` lines that every response for a matching path carries; when several rules
//! match, all their headers are added, in file order.
//!
//! Both files are parsed at deploy, where any error rejects the deploy with
//! `file:line: message`, and again (infallibly, since they were checked) when a snapshot is
//! first served.

use everlock_host::http::{HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// The redirects file, at the site root.
pub const REDIRECTS: &str = "_redirects";
/// The headers file, at the site root.
pub const HEADERS: &str = "_headers";
/// The most rules either file may hold: each request walks them in order.
pub const MAX_RULES: usize = 2000;

/// Escaped when a captured value goes into a target: a splat keeps its `/`s.
const VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Headers a rule may not set: they describe the message framing, which the server owns.
const RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "content-encoding",
    "content-range",
    "content-type",
    "etag",
    "last-modified",
    "location",
    "vary",
    "keep-alive",
    "upgrade",
    "trailer",
    "www-authenticate",
    "set-cookie",
];

/// A rule file error: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RuleError {
    /// `_redirects` or `_headers`.
    pub file: &'static str,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A path pattern: segments, then optionally `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<Segment>,
    splat: bool,
}

/// Why a path pattern is malformed; the text goes into a [`RuleError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PatternError {
    /// The pattern is not a site path.
    #[error("{0:?} must start with `/`")]
    NotAbsolute(String),
    /// A `*` before the last segment.
    #[error("in {0:?}, `*` may only be the last segment")]
    SplatNotLast(String),
    /// A `:name` whose name is empty, not a name, or the reserved `splat`.
    #[error("{0:?} is not a placeholder name")]
    BadPlaceholder(String),
    /// A `*` inside a segment (`/a*`).
    #[error("in {0:?}, `*` must be a whole segment")]
    PartialSplat(String),
}

/// Captured placeholder values (`splat` for `*`).
type Captures = Vec<(String, String)>;

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, PatternError> {
        if !text.starts_with('/') {
            return Err(PatternError::NotAbsolute(text.to_owned()));
        }
        let parts: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::new();
        let mut splat = false;
        for (i, part) in parts.iter().enumerate() {
            if *part == "*" {
                if i + 1 != parts.len() {
                    return Err(PatternError::SplatNotLast(text.to_owned()));
                }
                splat = true;
            } else if let Some(name) = part.strip_prefix(':') {
                if !is_name(name) || name == "splat" {
                    return Err(PatternError::BadPlaceholder((*part).to_owned()));
                }
                segments.push(Segment::Param(name.to_owned()));
            } else if part.contains('*') {
                return Err(PatternError::PartialSplat(text.to_owned()));
            } else {
                segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(Pattern { segments, splat })
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(n) => Some(n.as_str()),
                Segment::Literal(_) => None,
            })
            .chain(self.splat.then_some("splat"))
    }

    /// Matches decoded request segments.
    fn matches(&self, path: &[String]) -> Option<Captures> {
        if path.len() < self.segments.len() || (!self.splat && path.len() != self.segments.len()) {
            return None;
        }
        let mut captures = Vec::new();
        for (segment, value) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(l) if l == value => {}
                Segment::Literal(_) => return None,
                Segment::Param(n) => captures.push((n.clone(), value.clone())),
            }
        }
        if self.splat {
            let rest = path.get(self.segments.len()..).unwrap_or(&[]);
            captures.push(("splat".to_owned(), rest.join("/")));
        }
        Some(captures)
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One `_redirects` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Redirect {
    from: Pattern,
    to: String,
    status: u16,
    force: bool,
}

/// What a matching redirect rule says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The target with placeholders filled in.
    pub to: String,
    /// The status (200 for a rewrite).
    pub status: u16,
    /// The rule applies even where a file exists.
    pub force: bool,
}

impl Matched {
    /// Whether the target is another site (an absolute URL).
    pub fn is_external(&self) -> bool {
        self.to.starts_with("http://") || self.to.starts_with("https://")
    }
}

/// One `_headers` rule.
#[derive(Debug, Clone)]
struct HeaderRule {
    pattern: Pattern,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A site's parsed `_redirects` and `_headers`.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    redirects: Vec<Redirect>,
    headers: Vec<HeaderRule>,
}

impl Rules {
    /// Parses both files (either may be absent).
    pub fn parse(redirects: Option<&str>, headers: Option<&str>) -> Result<Rules, RuleError> {
        Ok(Rules {
            redirects: redirects
                .map(parse_redirects)
                .transpose()?
                .unwrap_or_default(),
            headers: headers.map(parse_headers).transpose()?.unwrap_or_default(),
        })
    }

    /// Whether there is nothing to apply (the common case, checked first on every request).
    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.headers.is_empty()
    }

    /// The first redirect rule matching `path` (decoded segments).
    pub fn redirect(&self, path: &[String]) -> Option<Matched> {
        self.redirects.iter().find_map(|r| {
            let captures = r.from.matches(path)?;
            Some(Matched {
                to: substitute(&r.to, &captures),
                status: r.status,
                force: r.force,
            })
        })
    }

    /// Every header the `_headers` rules matching `path` add, in file order.
    pub fn headers(&self, path: &[String]) -> Vec<(HeaderName, HeaderValue)> {
        self.headers
            .iter()
            .filter(|r| r.pattern.matches(path).is_some())
            .flat_map(|r| r.headers.iter().cloned())
            .collect()
    }
}

/// The lines that carry something: 1-based numbers, comments and blank lines skipped.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.trim_start().is_empty() && !l.trim_start().starts_with('#'))
}

fn parse_redirects(text: &str) -> Result<Vec<Redirect>, RuleError> {
    let mut out = Vec::new();
    for (line, content) in lines(text) {
        let err = |message: String| RuleError {
            file: REDIRECTS,
            line,
            message,
        };
        let fields: Vec<&str> = content.split_whitespace().collect();
        let (from, to, status) = match fields.as_slice() {
            [from, to] => (*from, *to, "301"),
            [from, to, status] => (*from, *to, *status),
            [_, _, _, extra, ..] => {
                return Err(err(format!(
                    "unexpected {extra:?}: query and condition matching are not supported"
                )));
            }
            _ => return Err(err("a rule needs a source path and a target".to_owned())),
        };
        let from = Pattern::parse(from).map_err(|e| err(e.to_string()))?;
        let (code, force) = match status.strip_suffix('!') {
            Some(code) => (code, true),
            None => (status, false),
        };
        let status: u16 = code
            .parse()
            .map_err(|_| err(format!("{status:?} is not a status code")))?;
        let external = to.starts_with("http://") || to.starts_with("https://");
        match status {
            301 | 302 | 303 | 307 | 308 => {}
            200 | 404 | 410 | 451 if !external => {}
            200 | 404 | 410 | 451 => {
                return Err(err(format!(
                    "status {status} serves a page of this site; {to:?} is another site"
                )));
            }
            _ => {
                return Err(err(format!(
                    "status {status} is not supported (use 200, 301, 302, 303, 307, 308, 404, 410 or 451)"
                )));
            }
        }
        if !to.chars().all(|c| c.is_ascii_graphic()) {
            return Err(err(format!(
                "{to:?} must be written in visible ASCII (percent-encode anything else)"
            )));
        }
        if !external && (!to.starts_with('/') || to.starts_with("//")) {
            return Err(err(format!(
                "{to:?} must be a site path starting with `/` or an http(s):// URL"
            )));
        }
        for name in placeholders(to) {
            if !from.names().any(|n| n == name) {
                return Err(err(format!(
                    "{to:?} uses :{name}, which the source path does not capture"
                )));
            }
        }
        out.push(Redirect {
            from,
            to: to.to_owned(),
            status,
            force,
        });
        if out.len() > MAX_RULES {
            return Err(err(format!("more than {MAX_RULES} rules")));
        }
    }
    Ok(out)
}

fn parse_headers(text: &str) -> Result<Vec<HeaderRule>, RuleError> {
    let mut out: Vec<HeaderRule> = Vec::new();
    for (line, content) in lines(text) {
        let err = |message: String| RuleError {
            file: HEADERS,
            line,
            message,
        };
        let indented = content.starts_with([' ', '\t']);
        if !indented {
            let pattern = Pattern::parse(content.trim()).map_err(|e| err(e.to_string()))?;
            out.push(HeaderRule {
                pattern,
                headers: Vec::new(),
            });
            if out.len() > MAX_RULES {
                return Err(err(format!("more than {MAX_RULES} rules")));
            }
            continue;
        }
        let Some(rule) = out.last_mut() else {
            return Err(err("a header line comes before any path".to_owned()));
        };
        let Some((name, value)) = content.trim().split_once(':') else {
            return Err(err("expected `Name: value`".to_owned()));
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| err(format!("{:?} is not a header name", name.trim())))?;
        if RESERVED.contains(&name.as_str()) {
            return Err(err(format!(
                "{name} is set by the server and cannot be overridden"
            )));
        }
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| err(format!("the value of {name} is not a valid header value")))?;
        rule.headers.push((name, value));
    }
    Ok(out)
}

/// The `:name` placeholders a target uses (a `:` followed by a name; `https://x:8080` uses
/// none).
fn placeholders(to: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = to;
    while let Some(at) = rest.find(':') {
        let after = rest.get(at + 1..).unwrap_or("");
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = after.get(..len).unwrap_or("");
        if is_name(name) {
            out.push(name);
        }
        rest = after.get(len..).unwrap_or("");
    }
    out
}

/// Fills `:name` placeholders in `to` from `captures`, percent-encoding the values.
fn substitute(to: &str, captures: &Captures) -> String {
    let mut out = String::with_capacity(to.len());
    let mut rest = to;
    while let Some(at) = rest.find(':') {
        out.push_str(rest.get(..at).unwrap_or(""));
        let after = rest.get(at + 1..).unwrap_or("");
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = after.get(..len).unwrap_or("");
        match captures.iter().find(|(n, _)| n == name) {
            Some((_, value)) if is_name(name) => {
                out.extend(utf8_percent_encode(value, VALUE));
            }
            _ => {
                out.push(':');
                out.push_str(name);
            }
        }
        rest = after.get(len..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn redirects_match_with_placeholders_and_splats() {
        let rules = Rules::parse(
            Some(
                "# moved pages\n\
                 /old            /new\n\
                 /blog/:year/:slug  /posts/:slug?y=:year  302\n\
                 /docs/*         /v2/docs/:splat  308!\n\
                 /app/*          /index.html  200\n\
                 /ext            https://example.com:8443/x  307\n",
            ),
            None,
        )
        .unwrap();
        let m = rules.redirect(&segs("/old")).unwrap();
        assert_eq!((m.to.as_str(), m.status, m.force), ("/new", 301, false));
        let m = rules.redirect(&segs("/blog/2024/hello world")).unwrap();
        assert_eq!(
            (m.to.as_str(), m.status),
            ("/posts/hello%20world?y=2024", 302)
        );
        assert!(rules.redirect(&segs("/blog/2024")).is_none());
        let m = rules.redirect(&segs("/docs/a/b.html")).unwrap();
        assert_eq!(
            (m.to.as_str(), m.status, m.force),
            ("/v2/docs/a/b.html", 308, true)
        );
        assert_eq!(rules.redirect(&segs("/docs")).unwrap().to, "/v2/docs/");
        assert_eq!(rules.redirect(&segs("/app/x/y")).unwrap().status, 200);
        let m = rules.redirect(&segs("/ext")).unwrap();
        assert!(m.is_external());
        assert_eq!(m.to, "https://example.com:8443/x");
        assert!(rules.redirect(&segs("/other")).is_none());
    }

    #[test]
    fn redirect_errors_name_the_line() {
        for (text, line, needle) in [
            ("/a /b 299\n", 1, "not supported"),
            ("\n# c\n/a\n", 3, "needs a source path and a target"),
            ("/a /b 301 Country=us\n", 1, "not supported"),
            ("/a /:x\n", 1, "does not capture"),
            ("a /b\n", 1, "must start with `/`"),
            ("/a relative\n", 1, "site path"),
            ("/a //evil.example/\n", 1, "site path"),
            ("/a https://x.example/ 200\n", 1, "another site"),
            ("/*/b /c\n", 1, "last segment"),
            ("/a /b x\n", 1, "not a status code"),
        ] {
            let e = Rules::parse(Some(text), None).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(
                e.to_string().starts_with(&format!("_redirects:{line}: ")),
                "{e}"
            );
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn pattern_errors_say_what_is_wrong() {
        for (text, expected) in [
            ("a/b", PatternError::NotAbsolute("a/b".into())),
            ("/*/b", PatternError::SplatNotLast("/*/b".into())),
            ("/:splat", PatternError::BadPlaceholder(":splat".into())),
            ("/:", PatternError::BadPlaceholder(":".into())),
            ("/a*", PatternError::PartialSplat("/a*".into())),
        ] {
            assert_eq!(Pattern::parse(text), Err(expected), "{text:?}");
        }
        assert!(Pattern::parse("/a/:b/*").is_ok());
    }

    #[test]
    fn headers_accumulate_per_path() {
        let rules = Rules::parse(
            None,
            Some(
                "/*\n  X-Frame-Options: DENY\n\n/assets/*\n  Cache-Control: public, max-age=60\n\
                 # a comment\n  X-Robots-Tag: noindex\n",
            ),
        )
        .unwrap();
        let h = rules.headers(&segs("/assets/app.js"));
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-frame-options", "cache-control", "x-robots-tag"]);
        assert_eq!(rules.headers(&segs("/")).len(), 1);
        for (text, line) in [
            ("  X-A: b\n", 1),
            ("/a\n  no colon here\n", 2),
            ("/a\n  Content-Length: 5\n", 2),
            ("/a\n  Bad Name: x\n", 2),
            ("/a\n  X-A: bad\u{7f}value\n", 2),
        ] {
            let e = Rules::parse(None, Some(text)).unwrap_err();
            assert_eq!((e.file, e.line), (HEADERS, line), "{text:?}: {e}");
        }
    }
}
