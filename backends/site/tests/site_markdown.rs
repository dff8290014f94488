//! Markdown mode: front matter, sections, layouts, sanitising, highlighting, nav, sitemap,
//! drafts, and `site.toml` changes visible on the next request.

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

async fn site() -> TestSite {
    let s = TestSite::new("md", "mode = \"markdown\"", false).await;
    s.write(&[
        (
            "site.toml",
            b"title = \"Handbook\"\nsitemap = true\nbase_url = \"https://docs.example\"\n[nav]\nlinks = [{ name = \"Docs\", url = \"/docs/\" }, { name = \"About\", url = \"/about\" }]\n",
        ),
        ("index.md", b"+++\ntitle = \"Welcome\"\n+++\n# Welcome home\n\nSee the [guide](docs/guide.md).\n"),
        ("about.md", b"---\ntitle: About us\ndescription: Who we are\n---\nWe are <b>bold</b> <script>alert(1)</script>\n"),
        ("docs/_index.md", b"+++\ntitle = \"Documentation\"\n+++\nAll the docs.\n"),
        ("docs/guide.md", b"+++\ntitle = \"Guide\"\nweight = 1\ndescription = \"Start here\"\n+++\n## Install\n\n```rust\nfn main() { println!(\"hi\"); }\n```\n"),
        ("docs/faq.md", b"+++\ntitle = \"FAQ\"\nweight = 2\n+++\nQuestions.\n"),
        ("docs/secret.md", b"+++\ntitle = \"Unreleased\"\ndraft = true\n+++\nNot yet.\n"),
        ("layouts/list.html", b"{% extends \"base.html\" %}{% block content %}<section id=\"custom-list\">{{ page.content | safe }}<ol>{% for p in section.pages %}<li data-url=\"{{ p.url }}\">{{ p.title }}</li>{% endfor %}</ol></section>{% endblock content %}"),
        ("img/logo.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
        ("404.md", b"# Lost?\n\nThis page does not exist.\n"),
    ])
    .await;
    s
}

/// The body as text, with the layout engine's escaping of `/` in values undone for
/// readability, and without the sidebar (which lists every page; `site_theme.rs` checks it),
/// so these tests see the page's own content.
fn text(body: &[u8]) -> String {
    let html = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("&#x2f;", "/");
    match (
        html.find("<aside class=\"sidebar\">"),
        html.find("</aside>"),
    ) {
        (Some(start), Some(end)) if start < end => format!("{}{}", &html[..start], &html[end..]),
        _ => html,
    }
}

#[tokio::test]
async fn pages_render_with_front_matter_title_nav_and_clean_links() {
    let s = site().await;
    let (r, body) = s.get("/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    let html = text(&body);
    assert!(html.contains("<title>Welcome · Handbook</title>"), "{html}");
    assert!(
        html.contains("<h1 id=\"welcome-home\">Welcome home</h1>"),
        "{html}"
    );
    assert!(html.contains("href=\"docs/guide\""), "{html}");
    assert!(html.contains("<a href=\"/docs/\">Docs</a>"), "{html}");
    assert!(html.contains("<a href=\"/about\">About</a>"), "{html}");
    let (r, body) = s.get("/about", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(&body);
    assert!(
        html.contains("<title>About us · Handbook</title>"),
        "{html}"
    );
    assert!(
        html.contains("<meta name=\"description\" content=\"Who we are\">"),
        "{html}"
    );
    assert!(html.contains("aria-current=\"page\">About</a>"), "{html}");
    // ETag from the rendered bytes, revalidated with 304.
    let etag = header(&r, "etag").to_owned();
    assert!(etag.starts_with('"'));
    assert_eq!(
        s.get("/about", &[("if-none-match", &etag)])
            .await
            .0
            .status(),
        StatusCode::NOT_MODIFIED
    );
}

#[tokio::test]
async fn raw_html_is_sanitised_by_default() {
    let s = site().await;
    let html = text(&s.get("/about", &[]).await.1);
    assert!(html.contains("<b>bold</b>"), "{html}");
    assert!(
        !html.contains("alert(1)") && !html.contains("<script>"),
        "{html}"
    );
    // Opting in through site.toml keeps raw HTML.
    s.write(&[(
        "site.toml",
        b"title = \"Handbook\"\n[markdown]\nunsafe_html = true\n",
    )])
    .await;
    let html = text(&s.get("/about", &[]).await.1);
    assert!(html.contains("<script>alert(1)</script>"), "{html}");
}

#[tokio::test]
async fn sections_list_their_pages_through_the_site_layout() {
    let s = site().await;
    let (r, _) = s.get("/docs", &[]).await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&r, "location"), "/docs/");
    let (r, body) = s.get("/docs/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(&body);
    assert!(
        html.contains("<section id=\"custom-list\">"),
        "the site's own list.html: {html}"
    );
    assert!(html.contains("All the docs."), "{html}");
    let guide = html
        .find("data-url=\"/docs/guide\">Guide</li>")
        .expect(&html);
    let faq = html.find("data-url=\"/docs/faq\">FAQ</li>").expect(&html);
    assert!(guide < faq, "sorted by weight: {html}");
    assert!(
        !html.contains("Unreleased"),
        "drafts are not listed: {html}"
    );
    // The built-in base layout still wraps it.
    assert!(
        html.contains("<title>Documentation · Handbook</title>"),
        "{html}"
    );
}

#[tokio::test]
async fn code_is_highlighted_and_headings_get_anchors() {
    let s = site().await;
    let html = text(&s.get("/docs/guide", &[]).await.1);
    assert!(
        html.contains("<h2 id=\"install\">Install<a class=\"anchor\" href=\"#install\""),
        "{html}"
    );
    assert!(html.contains("class=\"language-rust\""), "{html}");
    assert!(html.contains("<span class=\"hl-"), "{html}");
    // The highlight styles are in the site's one fingerprinted stylesheet, not in the page.
    assert!(!html.contains("<style>"), "{html}");
    let href = html
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no stylesheet link: {html}"))
        .to_owned();
    assert!(
        href.starts_with("/_everlock/style.") && href.ends_with(".css"),
        "{href}"
    );
    let (r, css) = s.get(&href, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "text/css; charset=utf-8");
    assert_eq!(
        header(&r, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let css = text(&css);
    assert!(css.contains(".hl-"), "{css}");
    assert!(css.contains("prefers-color-scheme: dark"), "{css}");
    // Another fingerprint is not served.
    let (r, _) = s.get("/_everlock/style.0000000000000000.css", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn drafts_internal_files_and_raw_sources() {
    let s = site().await;
    for hidden in [
        "/docs/secret",
        "/docs/secret.md",
        "/site.toml",
        "/layouts/list.html",
        "/layouts/",
    ] {
        let (r, body) = s.get(hidden, &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{hidden}");
        assert!(text(&body).contains("Lost?"), "custom 404.md for {hidden}");
    }
    let (r, body) = s.get("/docs/guide.md", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "text/markdown; charset=utf-8");
    assert!(text(&body).starts_with("+++\ntitle = \"Guide\""));
    let (r, _) = s.get("/img/logo.svg", &[]).await;
    assert_eq!(header(&r, "content-type"), "image/svg+xml; charset=utf-8");
    let (r, body) = s.get("/nope", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(text(&body).contains("<h1 id=\"lost\">Lost?</h1>"));
    let (r, _) = s.get("/index", &[]).await;
    assert_eq!(header(&r, "location"), "/");
}

#[tokio::test]
async fn sitemap_lists_pages_when_enabled() {
    let s = site().await;
    let (r, body) = s.get("/sitemap.xml", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "application/xml; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "max-age=3600");
    let xml = text(&body);
    assert!(
        xml.contains("<loc>https://docs.example/docs/guide</loc>"),
        "{xml}"
    );
    assert!(xml.contains("<loc>https://docs.example/</loc>"), "{xml}");
    assert!(!xml.contains("secret"), "{xml}");
    s.write(&[("site.toml", b"title = \"Handbook\"\n")]).await;
    assert_eq!(
        s.get("/sitemap.xml", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn site_toml_changes_show_on_the_next_request() {
    let s = site().await;
    let first = text(&s.get("/docs/faq", &[]).await.1);
    assert!(first.contains("<title>FAQ · Handbook</title>"), "{first}");
    s.write(&[(
        "site.toml",
        b"title = \"Renamed\"\n[nav]\nlinks = [{ name = \"Changelog\", url = \"/changelog\" }]\n",
    )])
    .await;
    let second = text(&s.get("/docs/faq", &[]).await.1);
    assert!(second.contains("<title>FAQ · Renamed</title>"), "{second}");
    assert!(
        second.contains(">Changelog</a>") && !second.contains(">Docs</a>"),
        "{second}"
    );
    // A page's own change shows too, and its ETag changes.
    let (r1, _) = s.get("/docs/faq", &[]).await;
    s.write(&[("docs/faq.md", b"+++\ntitle = \"FAQ\"\n+++\nNew answers.\n")])
        .await;
    let (r2, body) = s.get("/docs/faq", &[]).await;
    assert!(text(&body).contains("New answers."));
    assert_ne!(header(&r1, "etag"), header(&r2, "etag"));
}

#[tokio::test]
async fn bare_markdown_site_renders_with_builtin_layouts() {
    let s = TestSite::new("bare", "mode = \"markdown\"", false).await;
    s.write(&[
        ("index.md", b"# Hello\n\nPlain page.\n"),
        ("notes/setup.md", b"# Setup steps\n"),
    ])
    .await;
    let html = text(&s.get("/", &[]).await.1);
    assert!(
        html.contains("<!doctype html>") && html.contains("<title>Hello · Everlock site</title>"),
        "{html}"
    );
    let html = text(&s.get("/notes/setup", &[]).await.1);
    assert!(
        html.contains("<h1 id=\"setup-steps\">Setup steps</h1>"),
        "{html}"
    );
    // A broken site.toml written outside a deploy falls back to the defaults, never a 500.
    s.write(&[("site.toml", b"this is not toml")]).await;
    assert_eq!(s.get("/", &[]).await.0.status(), StatusCode::OK);
    // So does a layout that compiles but fails at render time (an undefined variable).
    s.write(&[(
        "layouts/single.html",
        b"{% extends \"base.html\" %}{% block content %}{{ page.nope.deeper }}{% endblock content %}",
    )])
    .await;
    let (r, body) = s.get("/notes/setup", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(&body).contains("Setup steps"));
}

#[tokio::test]
async fn sections_paginate_and_taxonomies_list_terms() {
    let s = TestSite::new("blog", "mode = \"markdown\"", false).await;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "site.toml".into(),
            b"title = \"Blog\"\npaginate_by = 2\ntaxonomies = [\"tags\", \"category\"]\n".to_vec(),
        ),
        (
            "posts/_index.md".into(),
            b"+++\ntitle = \"Posts\"\n+++\n".to_vec(),
        ),
    ];
    for i in 1..=5 {
        files.push((
            format!("posts/p{i}.md"),
            format!(
                "+++\ntitle = \"Post {i}\"\ndate = 2024-01-0{i}\ntags = [\"rust\"{}]\ntaxonomies = {{ category = [\"notes\"] }}\n+++\nBody {i}\n",
                if i % 2 == 0 { ", \"even\"" } else { "" }
            )
            .into_bytes(),
        ));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    s.write(&refs).await;

    // Newest first, two per page.
    let page1 = text(&s.get("/posts/", &[]).await.1);
    assert!(
        page1.contains("Post 5") && page1.contains("Post 4") && !page1.contains("Post 3"),
        "{page1}"
    );
    assert!(
        page1.contains("Page 1 of 3") && page1.contains("href=\"/posts/page/2/\""),
        "{page1}"
    );
    let (r, body) = s.get("/posts/page/3/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page3 = text(&body);
    assert!(
        page3.contains("Post 1") && !page3.contains("Post 2<"),
        "{page3}"
    );
    assert!(
        page3.contains("rel=\"prev\" href=\"/posts/page/2/\""),
        "{page3}"
    );
    assert_eq!(
        header(&s.get("/posts/page/1/", &[]).await.0, "location"),
        "/posts/"
    );
    assert_eq!(
        header(&s.get("/posts/page/2", &[]).await.0, "location"),
        "/posts/page/2/"
    );
    assert_eq!(
        s.get("/posts/page/4/", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );

    // Taxonomies: the term list, one term's pages, and term links on pages.
    let (r, body) = s.get("/tags/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tags = text(&body);
    assert!(
        tags.contains("href=\"/tags/rust/\">rust</a>") && tags.contains("5 pages"),
        "{tags}"
    );
    assert!(
        tags.contains("href=\"/tags/even/\">even</a>") && tags.contains("2 pages"),
        "{tags}"
    );
    let even = text(&s.get("/tags/even/", &[]).await.1);
    assert!(
        even.contains("Post 2") && even.contains("Post 4") && !even.contains("Post 3"),
        "{even}"
    );
    let notes = text(&s.get("/category/notes/", &[]).await.1);
    assert!(notes.contains("Post 1"), "{notes}");
    assert_eq!(
        s.get("/tags/nope/", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(header(&s.get("/tags", &[]).await.0, "location"), "/tags/");
    let post = text(&s.get("/posts/p2", &[]).await.1);
    assert!(post.contains("href=\"/tags/even/\">even</a>"), "{post}");
}
