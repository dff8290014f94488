//! Whatever a client sends (any method, path, query, validators, ranges, codings or
//! credentials), the site answers with a status for the client (2xx, 3xx or 4xx), never a 500:
//! a client's mistake is never the server's error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::TestSite;
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, Uri};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// One request as a client may send it.
#[derive(Debug, Clone)]
struct Input {
    method: &'static str,
    segments: Vec<String>,
    query: Option<String>,
    headers: Vec<(&'static str, String)>,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("..".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%2F".to_owned()),
        Just("%00".to_owned()),
        Just("%ff%fe".to_owned()),
        Just("%".to_owned()),
        Just("docs".to_owned()),
        Just("guide".to_owned()),
        Just("guide.md".to_owned()),
        Just("index.html".to_owned()),
        Just("tags".to_owned()),
        Just("rust".to_owned()),
        Just("page".to_owned()),
        Just("2".to_owned()),
        Just("sitemap.xml".to_owned()),
        Just("_everlock".to_owned()),
        Just("old".to_owned()),
        Just(".well-known".to_owned()),
        "[a-zA-Z0-9._~!$&'()*+,;=:@-]{1,12}",
    ]
}

fn header() -> impl Strategy<Value = (&'static str, String)> {
    let name = prop_oneof![
        Just("range"),
        Just("if-range"),
        Just("if-match"),
        Just("if-none-match"),
        Just("if-modified-since"),
        Just("if-unmodified-since"),
        Just("accept-encoding"),
        Just("accept"),
        Just("authorization"),
    ];
    let value = prop_oneof![
        "[ -~]{0,40}",
        Just("bytes=0-0,2-1,-0,5-".to_owned()),
        Just("bytes=99999999999999999999-".to_owned()),
        Just("*".to_owned()),
        Just("W/\"x\", \"y\"".to_owned()),
        Just("Sun, 06 Nov 1994 08:49:37 GMT".to_owned()),
        Just("br;q=0, gzip;q=1.5, zstd;q=abc".to_owned()),
        Just("Basic !!!".to_owned()),
        Just("Basic YWRtaW46d3Jvbmc=".to_owned()),
        Just("Bearer x".to_owned()),
    ];
    (name, value)
}

fn input() -> impl Strategy<Value = Input> {
    (
        prop_oneof![
            4 => Just("GET"),
            2 => Just("HEAD"),
            1 => Just("POST"),
            1 => Just("PUT"),
            1 => Just("DELETE"),
            1 => Just("OPTIONS"),
        ],
        prop::collection::vec(segment(), 0..5),
        prop::option::of("[a-zA-Z0-9=&%+._~-]{0,20}"),
        prop::collection::vec(header(), 0..4),
    )
        .prop_map(|(method, segments, query, headers)| Input {
            method,
            segments,
            query,
            headers,
        })
}

/// A Markdown site with sections, taxonomies, a 404 page and redirect rules, so that every
/// kind of target is reachable.
async fn markdown_site() -> TestSite {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    s.write(&[
        (
            "site.toml",
            b"title = \"Docs\"\ntaxonomies = [\"tags\"]\npaginate_by = 1\n",
        ),
        ("index.md", b"# Home\n\n[Guide](guide.md)\n"),
        (
            "guide.md",
            b"+++\ntags = [\"rust\"]\n+++\n# Guide\n\n```rust\nfn main() {}\n```\n",
        ),
        ("docs/_index.md", b"# Docs\n"),
        ("docs/a.md", b"# A\n"),
        ("docs/b.md", b"# B\n"),
        ("404.md", b"# Not here\n"),
        ("raw.txt", &[b'x'; 4096]),
        (
            "_redirects",
            b"/old /guide 301\n/app/* /index.md 200\n/gone /404.md 410\n",
        ),
        ("_headers", b"/*\n  X-Test: yes\n"),
    ])
    .await;
    s
}

async fn status_of(site: &TestSite, input: &Input) -> Option<u16> {
    let mut uri = format!("/{}", input.segments.join("/"));
    if let Some(q) = &input.query {
        uri.push('?');
        uri.push_str(q);
    }
    // Only what a client can put on the wire: an unparsable URI never reaches the site.
    let uri: Uri = uri.parse().ok()?;
    let mut b = Request::builder()
        .method(input.method)
        .uri(uri)
        .header("host", "site.example");
    for (name, value) in &input.headers {
        b = b.header(*name, value.as_str());
    }
    let response = site.send(b.body(Body::empty()).ok()?).await;
    Some(response.status().as_u16())
}

#[test]
fn no_client_request_is_a_server_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let site = rt.block_on(markdown_site());
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let (sent, ok) = (AtomicUsize::new(0), AtomicUsize::new(0));
    runner
        .run(&input(), |input| {
            let Some(status) = rt.block_on(status_of(&site, &input)) else {
                return Ok(());
            };
            sent.fetch_add(1, Ordering::Relaxed);
            if (200..300).contains(&status) {
                ok.fetch_add(1, Ordering::Relaxed);
            }
            if status >= 500 {
                return Err(TestCaseError::fail(format!("{status} for {input:?}")));
            }
            Ok(())
        })
        .unwrap();
    // The inputs must reach the site, and some must be served, or the property says nothing.
    let (sent, ok) = (sent.into_inner(), ok.into_inner());
    assert!(sent >= 200, "only {sent} requests reached the site");
    assert!(ok >= 20, "only {ok} of {sent} requests were served");
}
