//! Response header policy: content types, `Cache-Control` and security headers.

use everlock_host::http::{HeaderMap, HeaderValue, header};

use crate::settings::Settings;

/// The `Content-Type` for a store key, by extension (`mime_guess`), with `charset=utf-8` on
/// text, JavaScript, JSON and XML. `.md` is `text/markdown` and `.wasm` `application/wasm`.
pub fn content_type(key: &str) -> String {
    let ext = extension(key);
    let essence = match ext.as_deref() {
        Some("md" | "markdown") => "text/markdown".to_owned(),
        Some("wasm") => "application/wasm".to_owned(),
        Some("mjs") => "text/javascript".to_owned(),
        _ => mime_guess::from_path(key)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned(),
    };
    if needs_charset(&essence) {
        format!("{essence}; charset=utf-8")
    } else {
        essence
    }
}

fn needs_charset(essence: &str) -> bool {
    essence.starts_with("text/")
        || essence == "application/javascript"
        || essence == "application/json"
        || essence.ends_with("+xml")
        || essence == "application/xml"
        || essence.ends_with("+json")
}

/// The lowercase extension of the last segment, if any.
fn extension(key: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (_, ext) = name.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

/// The `Cache-Control` policy (reference §10): fingerprinted assets are immutable for a year,
/// HTML and rendered pages revalidate, feeds/sitemaps/JSON cache an hour, other files follow
/// `static-max-age`; private sites add `private` so shared caches never store them.
pub fn cache_control(key: &str, content_type: &str, settings: &Settings, private: bool) -> String {
    let policy = if content_type.starts_with("text/html") {
        "no-cache".to_owned()
    } else if is_fingerprinted(key) {
        "public, max-age=31536000, immutable".to_owned()
    } else if is_feed(key, content_type) {
        "max-age=3600".to_owned()
    } else if settings.static_max_age == 0 {
        "no-cache".to_owned()
    } else {
        format!("max-age={}", settings.static_max_age)
    };
    if private {
        format!("private, {}", policy.trim_start_matches("public, "))
    } else {
        policy
    }
}

fn is_feed(key: &str, content_type: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name == "sitemap.xml"
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/rss+xml")
        || content_type.starts_with("application/atom+xml")
        || name.ends_with(".xml")
            && (name.contains("feed") || name.contains("rss") || name.contains("atom"))
}

/// A file name carries a content hash when one of its `.`/`-`/`_`-separated parts is 8 to 64
/// hex digits mixing letters and digits (`app.3f2a9c1b.js`, `main-5d41402abc4b.css`).
pub fn is_fingerprinted(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.split(['.', '-', '_']).any(|part| {
        (8..=64).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_hexdigit())
            && part.bytes().any(|b| b.is_ascii_digit())
            && part.bytes().any(|b| b.is_ascii_alphabetic())
    })
}

/// Adds the security headers every response carries, plus HSTS on HTTPS.
pub fn security(headers: &mut HeaderMap, settings: &Settings, https: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'self'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if https && settings.hsts {
        let mut value = String::from("max-age=63072000");
        if settings.hsts_include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if settings.hsts_preload {
            value.push_str("; preload");
        }
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("a/b.md"), "text/markdown; charset=utf-8");
        assert_eq!(content_type("app.wasm"), "application/wasm");
        assert_eq!(content_type("x.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.json"), "application/json; charset=utf-8");
        assert_eq!(content_type("x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.png"), "image/png");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert_eq!(content_type("x.unknownext"), "application/octet-stream");
    }

    #[test]
    fn cache_policies() {
        let s = Settings::default();
        assert_eq!(
            cache_control("index.html", "text/html; charset=utf-8", &s, false),
            "no-cache"
        );
        assert_eq!(
            cache_control("app.3f2a9c1b.js", "text/javascript", &s, false),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            cache_control("app.3f2a9c1b.js", "text/javascript", &s, true),
            "private, max-age=31536000, immutable"
        );
        assert_eq!(
            cache_control("sitemap.xml", "text/xml", &s, false),
            "max-age=3600"
        );
        assert_eq!(
            cache_control("d.json", "application/json", &s, false),
            "max-age=3600"
        );
        assert_eq!(
            cache_control("logo.png", "image/png", &s, false),
            "no-cache"
        );
        let s = Settings {
            static_max_age: 60,
            ..Settings::default()
        };
        assert_eq!(
            cache_control("logo.png", "image/png", &s, false),
            "max-age=60"
        );
        assert!(!is_fingerprinted("deadbeef.png"));
        assert!(!is_fingerprinted("20240101.png"));
    }
}
