//! One canonical URL per page (issue #16 item 1): `/dir/page/` answers 308 to `/dir/page` when
//! the page is a file (`page.md`, `page.html`), and directories keep their slash form.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{TestSite, header};
use everlock_host::http::StatusCode;

#[tokio::test]
async fn markdown_pages_with_a_trailing_slash_redirect_to_their_canonical_form() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    s.write(&[
        ("guide/page.md", b"# Page\n"),
        ("guide/_index.md", b"# Guide\n"),
        ("about.md", b"# About\n"),
    ])
    .await;
    for (path, location) in [("/guide/page/", "/guide/page"), ("/about/", "/about")] {
        let (r, _) = s.get(path, &[]).await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(header(&r, "location"), location, "{path}");
    }
    assert_eq!(s.get("/guide/page", &[]).await.0.status(), StatusCode::OK);
    let (r, _) = s.get("/guide", &[]).await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&r, "location"), "/guide/");
    assert_eq!(s.get("/guide/", &[]).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn html_pages_with_a_trailing_slash_redirect_to_their_canonical_form() {
    let s = TestSite::new("web", "", false).await;
    s.write(&[("about.html", b"about"), ("docs/index.html", b"docs")])
        .await;
    let (r, _) = s.get("/about/", &[]).await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&r, "location"), "/about");
    assert_eq!(s.get("/about", &[]).await.1, b"about");
    assert_eq!(s.get("/docs/", &[]).await.1, b"docs");
}
