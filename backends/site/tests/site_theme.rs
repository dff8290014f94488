//! The default Markdown theme (issue #16 items 1 to 3): the front matter title is the page
//! heading, the stylesheet is one fingerprinted file shared by every page, pages link their
//! previous and next neighbours within their section, the sidebar lists the navigation tree,
//! pages carry a table of contents, alerts become admonitions, and the search index and script
//! are fingerprinted, immutable files.

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

/// The body as text, with the slashes minijinja escapes in attribute values restored.
fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec())
        .unwrap()
        .replace("&#x2f;", "/")
}

#[tokio::test]
async fn the_front_matter_title_is_the_heading() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    s.write(&[
        ("guide.md", b"---\ntitle: The guide\n---\nSome text.\n"),
        ("own.md", b"---\ntitle: Listed title\n---\n# Own heading\n"),
        ("plain.md", b"# Plain\n"),
    ])
    .await;
    let html = text(&s.get("/guide", &[]).await.1);
    assert!(
        html.contains("<h1 class=\"title\">The guide</h1>"),
        "{html}"
    );
    // A page with its own `# ` heading keeps it and gets no second one.
    let html = text(&s.get("/own", &[]).await.1);
    assert!(!html.contains("class=\"title\""), "{html}");
    assert!(html.contains(">Own heading</h1>"), "{html}");
    let html = text(&s.get("/plain", &[]).await.1);
    assert!(!html.contains("class=\"title\""), "{html}");
    // Every page links the same stylesheet.
    let link = |h: &str| {
        h.split("<link rel=\"stylesheet\"")
            .nth(1)
            .and_then(|rest| rest.split('>').next())
            .map(str::to_owned)
    };
    let a = link(&text(&s.get("/guide", &[]).await.1)).unwrap();
    let b = link(&text(&s.get("/plain", &[]).await.1)).unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn pages_link_their_neighbours_within_a_section_by_weight() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    s.write(&[
        ("guide/_index.md", b"---\ntitle: Guide\n---\n"),
        (
            "guide/install.md",
            b"---\ntitle: Install\nweight: 1\n---\nA\n",
        ),
        (
            "guide/configure.md",
            b"---\ntitle: Configure\nweight: 2\n---\nB\n",
        ),
        (
            "guide/deploy.md",
            b"---\ntitle: Deploy\nweight: 3\n---\nC\n",
        ),
        ("loose.md", b"# Loose\n"),
    ])
    .await;
    let html = text(&s.get("/guide/configure", &[]).await.1);
    assert!(html.contains("rel=\"prev\""), "{html}");
    assert!(html.contains("← Install</a>"), "{html}");
    assert!(html.contains("Deploy →</a>"), "{html}");
    let first = text(&s.get("/guide/install", &[]).await.1);
    assert!(!first.contains("rel=\"prev\""), "{first}");
    assert!(first.contains("Configure →</a>"), "{first}");
    let last = text(&s.get("/guide/deploy", &[]).await.1);
    assert!(!last.contains("rel=\"next\""), "{last}");
    // A page outside any section has no neighbours.
    let loose = text(&s.get("/loose", &[]).await.1);
    assert!(!loose.contains("pagenav"), "{loose}");
}

/// The value of the first `attr="..."` after `marker` in `html`.
fn attr_after(html: &str, marker: &str, attr: &str) -> String {
    let rest = html.split(marker).nth(1).unwrap();
    let rest = rest.split(&format!("{attr}=\"")).nth(1).unwrap();
    rest.split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_sidebar_lists_the_tree_by_weight_and_marks_the_current_page() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    s.write(&[
        ("index.md", b"# Home\n"),
        ("guide/_index.md", b"---\ntitle: Guide\nweight: 1\n---\n"),
        ("guide/b.md", b"---\ntitle: Second\nweight: 2\n---\nB\n"),
        ("guide/a.md", b"---\ntitle: First\nweight: 1\n---\nA\n"),
        ("about.md", b"---\ntitle: About\nweight: 5\n---\nC\n"),
        ("hidden.md", b"---\ntitle: Hidden\ndraft: true\n---\nD\n"),
    ])
    .await;
    let html = text(&s.get("/guide/b", &[]).await.1);
    let sidebar = html
        .split("<aside class=\"sidebar\">")
        .nth(1)
        .and_then(|r| r.split("</aside>").next())
        .unwrap();
    let order: Vec<usize> = ["Guide</a>", "First</a>", "Second</a>", "About</a>"]
        .iter()
        .map(|t| {
            sidebar
                .find(t)
                .unwrap_or_else(|| panic!("{t} in {sidebar}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{sidebar}");
    assert!(!sidebar.contains("Hidden"), "{sidebar}");
    // The section's pages nest under it; only the current page is marked.
    assert!(
        sidebar.contains("Guide</a><ul><li><a href=\"/guide/a\">First</a>"),
        "{sidebar}"
    );
    assert!(
        sidebar.contains("<a href=\"/guide/b\" aria-current=\"page\">Second</a>"),
        "{sidebar}"
    );
    assert_eq!(sidebar.matches("aria-current").count(), 1, "{sidebar}");
}

#[tokio::test]
async fn pages_have_a_toc_with_permalinks_and_styled_admonitions() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    s.write(&[(
        "page.md",
        b"# Page\n\n## Install it\n\n### On Linux\n\n> [!WARNING]\n> Mind the gap.\n\n## Use\n",
    )])
    .await;
    let html = text(&s.get("/page", &[]).await.1);
    let toc = html
        .split("<nav class=\"toc\"")
        .nth(1)
        .and_then(|r| r.split("</nav>").next())
        .unwrap();
    assert!(
        toc.contains("<a href=\"#install-it\">Install it</a>"),
        "{toc}"
    );
    assert!(
        toc.contains("class=\"toc-3\"><a href=\"#on-linux\">On Linux</a>"),
        "{toc}"
    );
    assert!(toc.contains("<a href=\"#use\">Use</a>"), "{toc}");
    assert!(
        html.contains("<h2 id=\"install-it\">Install it<a class=\"anchor\" href=\"#install-it\""),
        "{html}"
    );
    assert!(
        html.contains("<div class=\"admonition warning\">"),
        "{html}"
    );
    assert!(html.contains("Mind the gap."), "{html}");
    // The theme styles admonitions in both colour schemes.
    let css_url = attr_after(&html, "<link rel=\"stylesheet\"", "href");
    let css = text(&s.get(&css_url, &[]).await.1);
    assert!(css.contains(".admonition.warning"), "{css}");
    let dark = css.split("prefers-color-scheme: dark").last().unwrap();
    assert!(dark.contains(".admonition.warning"), "{css}");
}

#[tokio::test]
async fn the_search_index_and_script_are_fingerprinted_and_immutable() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    s.write(&[
        ("index.md", b"# Home\n\nWelcome.\n"),
        (
            "other.md",
            b"---\ntitle: Other\n---\nThe word zanzibar lives here.\n",
        ),
        ("draft.md", b"---\ndraft: true\n---\nsecretword\n"),
    ])
    .await;
    let html = text(&s.get("/", &[]).await.1);
    // Without JavaScript the search box stays hidden.
    assert!(html.contains(" hidden><input type=\"search\""), "{html}");
    let index_url = attr_after(&html, "<div class=\"search\"", "data-search-index");
    assert!(index_url.starts_with("/_everlock/search."), "{index_url}");
    let (resp, body) = s.get(&index_url, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "cache-control").contains("immutable"));
    assert!(header(&resp, "content-type").starts_with("application/json"));
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let pages = index["pages"].as_array().unwrap();
    let other = pages.iter().find(|p| p["url"] == "/other").unwrap();
    assert_eq!(other["title"], "Other");
    assert!(other["text"].as_str().unwrap().contains("zanzibar"));
    assert!(
        !text(&body).contains("secretword"),
        "drafts are not indexed"
    );

    let script_url = attr_after(&html, "<script", "src");
    let (resp, body) = s.get(&script_url, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "cache-control").contains("immutable"));
    assert!(header(&resp, "content-type").starts_with("text/javascript"));
    assert!(text(&body).contains("data-search-index"));

    // New content, new index name; the old name is gone.
    s.write(&[("other.md", b"---\ntitle: Other\n---\nChanged.\n")])
        .await;
    let html = text(&s.get("/", &[]).await.1);
    let new_url = attr_after(&html, "<div class=\"search\"", "data-search-index");
    assert_ne!(new_url, index_url);
    assert_eq!(s.get(&index_url, &[]).await.0.status(), 404);
}

#[tokio::test]
async fn a_deploy_with_a_broken_internal_link_is_refused() {
    let s = TestSite::new("md", "mode = \"markdown\"", false).await;
    let deploy = async |files: &[(&str, &[u8])]| {
        let req = Request::put("/.well-known/everlock/deploy")
            .header("host", "site.example")
            .header("authorization", basic("will", "will-pw"))
            .body(Body::from(tar(files)))
            .unwrap();
        let (r, body) = collect(s.send(req).await).await;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        (r.status(), json)
    };
    let (status, json) = deploy(&[
        (
            "index.md",
            b"# Home\n\n[Guide](guide.md) and [far](https://example.com/x.md)\n",
        ),
        (
            "guide.md",
            b"# Guide\n\nBack [home](/).\n\n[Gone](docs/missing.md)\n",
        ),
    ])
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    let e = json["error"].as_str().unwrap();
    assert!(
        e.starts_with("guide.md:5: broken link to \"docs/missing.md\""),
        "{json}"
    );
    // Nothing went live.
    assert_eq!(s.get("/guide", &[]).await.0.status(), StatusCode::NOT_FOUND);
    let (status, json) = deploy(&[
        ("index.md", b"# Home\n\n[Guide](guide.md)\n"),
        ("guide.md", b"# Guide\n\n[Missing](docs/missing.md)\n"),
        ("docs/missing.md", b"# Here now\n"),
    ])
    .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
}

/// The whole page is checked, not only the head the deploy keeps for front matter: a broken
/// link after 20 KiB of text is refused with its line.
#[tokio::test]
async fn a_broken_link_deep_in_a_page_is_refused_with_its_line() {
    let s = TestSite::new("md", "mode = \"markdown\"", false).await;
    let mut page = "---\ntitle: Long\n---\n# Long\n\n".to_owned();
    while page.len() < 20 * 1024 {
        page.push_str("An ordinary paragraph of documentation text.\n\n");
    }
    page.push_str("Finally [the end](gone.md).\n");
    let line = page.lines().count();
    let req = Request::put("/.well-known/everlock/deploy")
        .header("host", "site.example")
        .header("authorization", basic("will", "will-pw"))
        .body(Body::from(tar(&[
            ("index.md", b"# Home\n\n[Long](long.md)\n"),
            ("long.md", page.as_bytes()),
        ])))
        .unwrap();
    let (r, body) = collect(s.send(req).await).await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    let e = json["error"].as_str().unwrap();
    let want = format!("long.md:{line}: broken link to \"gone.md\"");
    assert!(e.starts_with(&want), "{json}");
    assert_eq!(s.get("/long", &[]).await.0.status(), StatusCode::NOT_FOUND);
}
