//! `_redirects` and `_headers` (issue #16 item 4): Netlify's format served through the site's
//! router, and validated at deploy with `file:line: message` (422).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{TestSite, basic, collect, header, tar};
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, StatusCode};

const REDIRECTS: &str = "\
# Moved and renamed pages
/old-page            /new-page
/blog/:year/:slug    /posts/:slug  302
/docs/*              /v2/:splat    308
/spa/*               /app.html     200
/removed             /gone.html    410
/forced.html         /new-page     301!
/home                https://example.com/welcome  307
";

const HEADERS: &str = "\
/*
  X-Frame-Options: DENY
  Content-Security-Policy: default-src 'self'
/assets/*
  Cache-Control: public, max-age=600
  X-Robots-Tag: noindex
";

async fn site() -> TestSite {
    let s = TestSite::with_prefix("web", "", false, "/site").await;
    s.write(&[
        ("_redirects", REDIRECTS.as_bytes()),
        ("_headers", HEADERS.as_bytes()),
        ("new-page.html", b"new"),
        ("app.html", b"<div id=app></div>"),
        ("gone.html", b"this page is gone"),
        ("forced.html", b"never served"),
        ("v2/intro.html", b"intro"),
        (
            "docs/kept.html",
            b"a file wins over a rule that is not forced",
        ),
        ("assets/app.js", b"console.log(1)"),
    ])
    .await;
    s
}

#[tokio::test]
async fn redirects_with_status_codes_splats_and_placeholders() {
    let s = site().await;
    for (path, status, location) in [
        ("/site/old-page", 301, "/site/new-page"),
        ("/site/old-page?x=1", 301, "/site/new-page?x=1"),
        ("/site/blog/2024/hello", 302, "/site/posts/hello"),
        ("/site/docs/a/b.html", 308, "/site/v2/a/b.html"),
        ("/site/forced.html", 301, "/site/new-page"),
        ("/site/home", 307, "https://example.com/welcome"),
    ] {
        let (r, _) = s.get(path, &[]).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(header(&r, "location"), location, "{path}");
    }
    let (r, body) = s.get("/site/spa/any/route", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body, b"<div id=app></div>");
    let (r, body) = s.get("/site/removed", &[]).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(body, b"this page is gone");
    // A file shadows a rule that is not forced.
    let (r, body) = s.get("/site/docs/kept", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(body.starts_with(b"a file wins"));
    // The rule files themselves are never served.
    for path in ["/site/_redirects", "/site/_headers"] {
        assert_eq!(s.get(path, &[]).await.0.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn headers_apply_per_path_and_may_replace_the_defaults() {
    let s = site().await;
    let (r, _) = s.get("/site/assets/app.js", &[]).await;
    assert_eq!(header(&r, "cache-control"), "public, max-age=600");
    assert_eq!(header(&r, "x-robots-tag"), "noindex");
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    assert_eq!(header(&r, "content-security-policy"), "default-src 'self'");
    let (r, _) = s.get("/site/new-page", &[]).await;
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    assert_eq!(header(&r, "x-robots-tag"), "");
    // Still there on a 404 and on a 304.
    let (r, _) = s.get("/site/missing", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    let (r, _) = s.get("/site/assets/app.js", &[]).await;
    let etag = header(&r, "etag").to_owned();
    let (r, _) = s
        .get("/site/assets/app.js", &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&r, "x-robots-tag"), "noindex");
}

#[tokio::test]
async fn invalid_rule_files_reject_the_deploy_with_file_and_line() {
    let s = TestSite::new("web", "", false).await;
    let deploy = async |files: &[(&str, &[u8])]| {
        let req = Request::put("/.well-known/everlock/deploy")
            .header("host", "site.example")
            .header("authorization", basic("will", "will-pw"))
            .body(Body::from(tar(files)))
            .unwrap();
        let (r, body) = collect(s.send(req).await).await;
        (r.status(), String::from_utf8(body).unwrap())
    };
    let (status, body) =
        deploy(&[("index.html", b"ok"), ("_redirects", b"/a /b\n/c /d 299\n")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("_redirects:2: status 299 is not supported"),
        "{body}"
    );
    let (status, body) = deploy(&[
        ("index.html", b"ok"),
        ("_headers", b"/a\n  Content-Length: 1\n"),
    ])
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("_headers:2: "), "{body}");
    assert!(
        s.store.get().await.unwrap().head().await.unwrap().is_none(),
        "nothing went live"
    );
    let (status, body) = deploy(&[("index.html", b"ok"), ("_redirects", b"/a /b\n")]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
