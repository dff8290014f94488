//! HTTP semantics of the site backend, one test per rule of the reference, in process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{TestSite, header};
use everlock_host::Scheme;
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, StatusCode};

const INDEX: &[u8] = b"<!doctype html><title>Home</title><h1>Home</h1>";

fn big() -> Vec<u8> {
    (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

async fn site() -> TestSite {
    let s = TestSite::new("web", "", false).await;
    let big = big();
    s.write(&[
        ("index.html", INDEX),
        ("about.html", b"<h1>About</h1>"),
        ("docs/index.html", b"<h1>Docs</h1>"),
        ("docs/guide.html", b"<h1>Guide</h1>"),
        ("evil.example/index.html", b"<h1>dir named like a host</h1>"),
        ("404.html", b"<h1>Custom not found</h1>"),
        ("notes.md", b"# Notes\n"),
        ("app.wasm", b"\0asm\x01\0\0\0"),
        ("style.css", b"body { color: red }"),
        ("style.css.gz", b"GZIP-BYTES-OF-STYLE"),
        ("style.css.br", b"BR-BYTES"),
        ("app.3f2a9c1be4.js", b"console.log(1)"),
        ("big.bin", &big),
        ("site.toml", b"title = \"secret config\"\n"),
        (".git/config", b"[core]\n"),
        (".env", b"SECRET=1\n"),
        ("_underscored.html", b"underscore files are served"),
    ])
    .await;
    s
}

#[tokio::test]
async fn get_serves_files_with_validators_and_security_headers() {
    let s = site().await;
    let (r, body) = s.get("/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body, INDEX);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "content-length"), INDEX.len().to_string());
    let etag = header(&r, "etag");
    assert!(
        etag.starts_with('"') && etag.len() == 34 && !etag.starts_with("W/"),
        "{etag}"
    );
    assert!(!header(&r, "last-modified").is_empty());
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert_eq!(header(&r, "x-frame-options"), "SAMEORIGIN");
    assert_eq!(
        header(&r, "referrer-policy"),
        "strict-origin-when-cross-origin"
    );
    assert_eq!(
        header(&r, "strict-transport-security"),
        "",
        "no HSTS over plain HTTP"
    );
    // The ETag is the content hash: the same bytes under another name share it.
    s.write(&[("copy.html", INDEX)]).await;
    let (r2, _) = s.get("/copy", &[]).await;
    assert_eq!(header(&r2, "etag"), etag);
    let (r, _) = s.get("/_underscored", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn hsts_only_over_https() {
    let s = site().await;
    let mut req = Request::get("/")
        .header("host", "site.example")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(Scheme::Https);
    let (r, _) = common::collect(s.send(req).await).await;
    assert_eq!(header(&r, "strict-transport-security"), "max-age=63072000");
}

#[tokio::test]
async fn head_has_get_headers_and_no_body_and_ignores_range() {
    let s = site().await;
    let (get, _) = s.get("/big.bin", &[]).await;
    let (head, body) = s
        .request("HEAD", "/big.bin", &[("range", "bytes=0-9")])
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(body.is_empty());
    for h in [
        "content-length",
        "content-type",
        "etag",
        "cache-control",
        "accept-ranges",
    ] {
        assert_eq!(header(&head, h), header(&get, h), "{h}");
    }
    assert_eq!(header(&head, "content-length"), "1048576");
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let s = site().await;
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let (r, _) = s.request(m, "/", &[]).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m}");
        assert_eq!(header(&r, "allow"), "GET, HEAD");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    }
}

#[tokio::test]
async fn conditional_requests_follow_rfc_9110_precedence() {
    let s = site().await;
    let (r, _) = s.get("/about", &[]).await;
    let etag = header(&r, "etag").to_owned();
    let lm = header(&r, "last-modified").to_owned();
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let weak = format!("W/{etag}");

    let (r, body) = s.get("/about", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    // Weak comparison for If-None-Match.
    assert_eq!(
        s.get("/about", &[("if-none-match", &weak)])
            .await
            .0
            .status(),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        s.get("/about", &[("if-none-match", "*")]).await.0.status(),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        s.get("/about", &[("if-none-match", "\"other\"")])
            .await
            .0
            .status(),
        StatusCode::OK
    );
    // If-Match: strong comparison, weak never matches.
    assert_eq!(
        s.get("/about", &[("if-match", "\"other\"")])
            .await
            .0
            .status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        s.get("/about", &[("if-match", &weak)]).await.0.status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        s.get("/about", &[("if-match", &etag)]).await.0.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/about", &[("if-match", "*")]).await.0.status(),
        StatusCode::OK
    );
    // If-Match wins over If-None-Match's 304 when it fails.
    assert_eq!(
        s.get(
            "/about",
            &[("if-match", "\"other\""), ("if-none-match", &etag)]
        )
        .await
        .0
        .status(),
        StatusCode::PRECONDITION_FAILED
    );
    // If-Unmodified-Since only without If-Match.
    assert_eq!(
        s.get("/about", &[("if-unmodified-since", old)])
            .await
            .0
            .status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        s.get(
            "/about",
            &[("if-match", &etag), ("if-unmodified-since", old)]
        )
        .await
        .0
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/about", &[("if-unmodified-since", future)])
            .await
            .0
            .status(),
        StatusCode::OK
    );
    // If-Modified-Since only without If-None-Match.
    assert_eq!(
        s.get("/about", &[("if-modified-since", &lm)])
            .await
            .0
            .status(),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        s.get("/about", &[("if-modified-since", old)])
            .await
            .0
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get(
            "/about",
            &[("if-none-match", "\"other\""), ("if-modified-since", &lm)]
        )
        .await
        .0
        .status(),
        StatusCode::OK
    );
    // HEAD gets the same 304.
    assert_eq!(
        s.request("HEAD", "/about", &[("if-none-match", &etag)])
            .await
            .0
            .status(),
        StatusCode::NOT_MODIFIED
    );
}

#[tokio::test]
async fn ranges_single_suffix_multi_and_unsatisfiable() {
    let s = site().await;
    let big = big();
    let (r, body) = s.get("/big.bin", &[("range", "bytes=0-9")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 0-9/1048576");
    assert_eq!(header(&r, "content-length"), "10");
    assert_eq!(body, &big[..10]);
    let (r, body) = s.get("/big.bin", &[("range", "bytes=1048000-")]).await;
    assert_eq!(header(&r, "content-range"), "bytes 1048000-1048575/1048576");
    assert_eq!(body, &big[1_048_000..]);
    let (r, body) = s.get("/big.bin", &[("range", "bytes=-500")]).await;
    assert_eq!(header(&r, "content-range"), "bytes 1048076-1048575/1048576");
    assert_eq!(body, &big[1_048_076..]);
    let (r, body) = s
        .get("/big.bin", &[("range", "bytes=500000-99999999")])
        .await;
    assert_eq!(header(&r, "content-range"), "bytes 500000-1048575/1048576");
    assert_eq!(body.len(), 548_576);
    let (r, body) = s.get("/about", &[("range", "bytes=-100000")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, b"<h1>About</h1>");
    for bad in ["bytes=1048576-", "bytes=-0", "bytes=2000000-2000001"] {
        let (r, _) = s.get("/big.bin", &[("range", bad)]).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(header(&r, "content-range"), "bytes */1048576");
    }
    for ignored in ["items=0-1", "bytes=x-y", "bytes=5-1"] {
        let (r, body) = s.get("/big.bin", &[("range", ignored)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{ignored}");
        assert_eq!(body.len(), big.len());
    }
    // Several ranges: multipart/byteranges with each part's Content-Range.
    let (r, body) = s
        .get("/big.bin", &[("range", "bytes=0-4, 1000-1004")])
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let ct = header(&r, "content-type").to_owned();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
    assert_eq!(header(&r, "content-length"), body.len().to_string());
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(text.starts_with(&format!("--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-4/1048576\r\n\r\n")));
    assert!(text.contains("Content-Range: bytes 1000-1004/1048576\r\n\r\n"));
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    let first = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&body[first..first + 5], &big[..5]);
    // Overlapping ranges merge into one.
    let (r, body) = s.get("/big.bin", &[("range", "bytes=0-9,5-19")]).await;
    assert_eq!(header(&r, "content-range"), "bytes 0-19/1048576");
    assert_eq!(body, &big[..20]);
}

#[tokio::test]
async fn if_range_mismatch_sends_the_whole_file() {
    let s = site().await;
    let (r, _) = s.get("/big.bin", &[]).await;
    let etag = header(&r, "etag").to_owned();
    let lm = header(&r, "last-modified").to_owned();
    let (r, body) = s
        .get("/big.bin", &[("range", "bytes=0-9"), ("if-range", &etag)])
        .await;
    assert_eq!((r.status(), body.len()), (StatusCode::PARTIAL_CONTENT, 10));
    let (r, body) = s
        .get("/big.bin", &[("range", "bytes=0-9"), ("if-range", &lm)])
        .await;
    assert_eq!((r.status(), body.len()), (StatusCode::PARTIAL_CONTENT, 10));
    for other in ["\"stale\"", "W/\"x\"", "Mon, 01 Jan 2001 00:00:00 GMT"] {
        let (r, body) = s
            .get("/big.bin", &[("range", "bytes=0-9"), ("if-range", other)])
            .await;
        assert_eq!(
            (r.status(), body.len()),
            (StatusCode::OK, 1024 * 1024),
            "{other}"
        );
    }
    let weak = format!("W/{etag}");
    let (r, _) = s
        .get("/big.bin", &[("range", "bytes=0-9"), ("if-range", &weak)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn index_files_trailing_slash_redirects_and_clean_urls() {
    let s = site().await;
    let (r, body) = s.get("/docs/", &[]).await;
    assert_eq!(
        (r.status(), body.as_slice()),
        (StatusCode::OK, &b"<h1>Docs</h1>"[..])
    );
    let (r, _) = s.get("/docs?x=1&y=2", &[]).await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&r, "location"), "/docs/?x=1&y=2");
    // Clean URLs: /docs/guide serves guide.html; the .html spelling redirects to it.
    let (r, body) = s.get("/docs/guide", &[]).await;
    assert_eq!(
        (r.status(), body.as_slice()),
        (StatusCode::OK, &b"<h1>Guide</h1>"[..])
    );
    let (r, _) = s.get("/docs/guide.html?a=b", &[]).await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&r, "location"), "/docs/guide?a=b");
    let (r, _) = s.get("/docs/index.html", &[]).await;
    assert_eq!(header(&r, "location"), "/docs/");
    let (r, _) = s.get("/index.html", &[]).await;
    assert_eq!(header(&r, "location"), "/");
    // A file with a trailing slash is 404 (our documented choice).
    let (r, _) = s.get("/style.css/", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // No open redirect: leading slashes collapse and the Location is rebuilt from the path.
    for probe in ["//evil.example", "///evil.example", "/%2Fevil.example"] {
        let (r, _) = s.get(probe, &[]).await;
        let loc = header(&r, "location");
        assert!(!loc.starts_with("//"), "{probe} -> {loc}");
        if r.status() == StatusCode::PERMANENT_REDIRECT {
            assert_eq!(loc, "/evil.example/");
        } else {
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{probe}");
        }
    }
}

#[tokio::test]
async fn redirects_under_a_prefix_keep_the_prefix() {
    let s = TestSite::with_prefix("pre", "", false, "/sub").await;
    s.write(&[("a/index.html", b"A"), ("index.html", b"root")])
        .await;
    let (r, _) = s.get("/sub/a", &[]).await;
    assert_eq!(header(&r, "location"), "/sub/a/");
    let (r, body) = s.get("/sub", &[]).await;
    assert_eq!(
        (r.status(), body.as_slice()),
        (StatusCode::OK, &b"root"[..])
    );
    let (r, body) = s.get("/sub/a/", &[]).await;
    assert_eq!((r.status(), body.as_slice()), (StatusCode::OK, &b"A"[..]));
}

#[tokio::test]
async fn custom_404_page_has_status_404() {
    let s = site().await;
    let (r, body) = s.get("/nope", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body, b"<h1>Custom not found</h1>");
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    // Without a 404.html: a plain 404.
    let bare = TestSite::new("bare", "", false).await;
    bare.write(&[("index.html", b"x")]).await;
    let (r, body) = bare.get("/nope", &[]).await;
    assert_eq!(
        (r.status(), body.as_slice()),
        (StatusCode::NOT_FOUND, &b"not found\n"[..])
    );
}

#[tokio::test]
async fn mime_types() {
    let s = site().await;
    for (path, ct) in [
        ("/notes.md", "text/markdown; charset=utf-8"),
        ("/app.wasm", "application/wasm"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.3f2a9c1be4.js", "text/javascript; charset=utf-8"),
        ("/big.bin", "application/octet-stream"),
    ] {
        let (r, _) = s.get(path, &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&r, "content-type"), ct, "{path}");
    }
}

#[tokio::test]
async fn precompressed_sidecars_are_negotiated_with_vary() {
    let s = site().await;
    let (plain, body) = s.get("/style.css", &[]).await;
    assert_eq!(body, b"body { color: red }");
    assert_eq!(header(&plain, "vary"), "Accept-Encoding");
    assert_eq!(header(&plain, "content-encoding"), "");
    let (br, body) = s
        .get("/style.css", &[("accept-encoding", "gzip, deflate, br")])
        .await;
    assert_eq!(body, b"BR-BYTES");
    assert_eq!(header(&br, "content-encoding"), "br");
    assert_eq!(header(&br, "content-length"), "8");
    assert_eq!(header(&br, "content-type"), "text/css; charset=utf-8");
    assert_eq!(header(&br, "vary"), "Accept-Encoding");
    let (gz, body) = s
        .get("/style.css", &[("accept-encoding", "gzip, br;q=0")])
        .await;
    assert_eq!(body, b"GZIP-BYTES-OF-STYLE");
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    // Each variant has its own ETag, and a 304 names the variant.
    let etags = [
        header(&plain, "etag"),
        header(&br, "etag"),
        header(&gz, "etag"),
    ];
    assert!(etags[0] != etags[1] && etags[1] != etags[2] && etags[0] != etags[2]);
    let (r, _) = s
        .get(
            "/style.css",
            &[("accept-encoding", "br"), ("if-none-match", etags[1])],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&r, "vary"), "Accept-Encoding");
    // A range applies to the variant's bytes.
    let (r, body) = s
        .get(
            "/style.css",
            &[("accept-encoding", "br"), ("range", "bytes=0-1")],
        )
        .await;
    assert_eq!(
        (r.status(), body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"BR"[..])
    );
    assert_eq!(header(&r, "content-range"), "bytes 0-1/8");
    // Files without sidecars carry no Vary.
    let (r, _) = s.get("/about", &[("accept-encoding", "br")]).await;
    assert_eq!(header(&r, "vary"), "");
}

#[tokio::test]
async fn cache_control_policy() {
    let s = site().await;
    assert_eq!(
        header(&s.get("/app.3f2a9c1be4.js", &[]).await.0, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        header(&s.get("/style.css", &[]).await.0, "cache-control"),
        "no-cache"
    );
    let tuned = TestSite::new("tuned", "static-max-age = 300", false).await;
    tuned
        .write(&[("a.png", b"png"), ("feed.json", b"{}")])
        .await;
    assert_eq!(
        header(&tuned.get("/a.png", &[]).await.0, "cache-control"),
        "max-age=300"
    );
    assert_eq!(
        header(&tuned.get("/feed.json", &[]).await.0, "cache-control"),
        "max-age=3600"
    );
}

#[tokio::test]
async fn traversal_dotfiles_and_site_toml_are_404() {
    let s = site().await;
    for probe in [
        "/../index.html",
        "/docs/../../index.html",
        "/%2e%2e/index.html",
        "/docs/%2E%2E/%2e%2e/index.html",
        "/docs%2fguide.html",
        "/docs%2Fguide.html",
        "/docs\\guide.html",
        "/docs%5cguide.html",
        "/index.html%00",
        "/.git/config",
        "/.env",
        "/%2egit/config",
        "/docs/.hidden",
        "/site.toml",
        "/./site.toml",
    ] {
        let (r, body) = s.get(probe, &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{probe}");
        assert!(
            !String::from_utf8_lossy(&body).contains("SECRET"),
            "{probe}"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("secret config"),
            "{probe}"
        );
    }
}

#[tokio::test]
async fn large_files_stream_from_the_store_with_ranges() {
    // Above the in-memory cache limit, bodies are streamed from the store object.
    let s = TestSite::new("large", "", false).await;
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    s.write(&[("video.bin", &data)]).await;
    let (r, body) = s.get("/video.bin", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), data.len().to_string());
    assert!(body == data);
    let (r, body) = s
        .get("/video.bin", &[("range", "bytes=2000000-2000099")])
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[2_000_000..2_000_100]);
    let (r, body) = s.get("/video.bin", &[("range", "bytes=0-1,-2")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-length"), body.len().to_string());
    let text = String::from_utf8_lossy(&body).to_string();
    let n = data.len();
    assert!(
        text.contains(&format!("Content-Range: bytes {}-{}/{n}", n - 2, n - 1)),
        "{text}"
    );
    let (r, body) = s.request("HEAD", "/video.bin", &[]).await;
    assert_eq!((r.status(), body.len()), (StatusCode::OK, 0));
    assert_eq!(header(&r, "content-length"), data.len().to_string());
}
