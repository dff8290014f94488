//! On-the-fly compression (issue #16 item 3): br, zstd or gzip per `Accept-Encoding`, with
//! `Vary`, a validator per coding, never for ranges, and precompressed sidecars first.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::io::Read;

use common::{TestSite, header};
use everlock_host::http::StatusCode;

fn page() -> Vec<u8> {
    let mut html = String::from("<!doctype html><title>t</title>");
    for i in 0..300 {
        html.push_str(&format!(
            "<p>Paragraph {i} of a page that compresses well.</p>\n"
        ));
    }
    html.into_bytes()
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::stream::decode_all(body).unwrap(),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("unexpected coding {other}"),
    }
    out
}

#[tokio::test]
async fn each_coding_is_negotiated_with_vary_and_its_own_etag() {
    let s = TestSite::new("web", "", false).await;
    s.write(&[("index.html", &page())]).await;
    let (plain, body) = s.get("/", &[]).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(header(&plain, "content-encoding"), "");
    assert_eq!(header(&plain, "vary"), "Accept-Encoding");
    assert_eq!(body, page());
    let mut etags = vec![header(&plain, "etag").to_owned()];
    for (accept, coding) in [
        ("gzip, deflate, br, zstd", "br"),
        ("zstd, gzip", "zstd"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip", "gzip"),
    ] {
        let (r, body) = s.get("/", &[("accept-encoding", accept)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{accept}");
        assert_eq!(header(&r, "content-encoding"), coding, "{accept}");
        assert_eq!(header(&r, "vary"), "Accept-Encoding");
        assert_eq!(
            header(&r, "content-length"),
            body.len().to_string(),
            "{accept}"
        );
        assert!(body.len() < page().len() / 4, "{coding}: {}", body.len());
        assert_eq!(decode(coding, &body), page(), "{coding}");
        // The cached compression is served again byte for byte.
        let (again, body2) = s.get("/", &[("accept-encoding", accept)]).await;
        assert_eq!(body2, body);
        assert_eq!(header(&again, "etag"), header(&r, "etag"));
        let etag = header(&r, "etag").to_owned();
        let (nm, _) = s
            .get(
                "/",
                &[("accept-encoding", accept), ("if-none-match", &etag)],
            )
            .await;
        assert_eq!(nm.status(), StatusCode::NOT_MODIFIED, "{accept}");
        if !etags.contains(&etag) {
            etags.push(etag);
        }
    }
    assert_eq!(etags.len(), 4, "identity, br, zstd and gzip: {etags:?}");
    let (head, body) = s.request("HEAD", "/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&head, "content-encoding"), "gzip");
    assert!(body.is_empty());
}

#[tokio::test]
async fn ranges_are_never_compressed() {
    let s = TestSite::new("web", "", false).await;
    s.write(&[("index.html", &page())]).await;
    let (r, body) = s
        .get(
            "/",
            &[("accept-encoding", "br, gzip"), ("range", "bytes=0-99")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-encoding"), "");
    assert_eq!(body, page()[..100]);
}

#[tokio::test]
async fn sidecars_win_and_small_or_compressed_types_stay_as_they_are() {
    let s = TestSite::new("web", "", false).await;
    let sidecar = b"precompressed by the author".to_vec();
    let png: Vec<u8> = page();
    s.write(&[
        ("app.js", &page()),
        ("app.js.gz", &sidecar),
        ("tiny.css", b"a{}"),
        ("pic.png", &png),
    ])
    .await;
    let (r, body) = s.get("/app.js", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(header(&r, "content-encoding"), "gzip");
    assert_eq!(body, sidecar, "the sidecar, not an on-the-fly br");
    let (r, body) = s.get("/app.js", &[("accept-encoding", "br")]).await;
    assert_eq!(header(&r, "content-encoding"), "");
    assert_eq!(body, page());
    let (r, _) = s.get("/tiny.css", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&r, "content-encoding"), "");
    let (r, body) = s.get("/pic.png", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&r, "content-encoding"), "");
    assert_eq!(header(&r, "vary"), "");
    assert_eq!(body, png);
}

#[tokio::test]
async fn rendered_markdown_pages_are_compressed_too() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    let mut md = String::from("---\ntitle: Guide\n---\n# Guide\n");
    for i in 0..200 {
        md.push_str(&format!("Line {i} of a guide that compresses well.\n\n"));
    }
    s.write(&[("index.md", md.as_bytes())]).await;
    let (plain, html) = s.get("/", &[]).await;
    assert_eq!(plain.status(), StatusCode::OK);
    let (r, body) = s.get("/", &[("accept-encoding", "zstd")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-encoding"), "zstd");
    assert_eq!(header(&r, "vary"), "Accept-Encoding");
    assert_eq!(decode("zstd", &body), html);
    assert_ne!(header(&r, "etag"), header(&plain, "etag"));
}
