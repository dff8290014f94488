//! Incremental deploys (issue #16 item 5): `POST` a manifest, upload only the missing contents
//! behind it, one atomic commit; unchanged content commits nothing; the server's accounting of
//! received bytes shows what travelled.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{TestSite, basic, collect, tar, tar_gz};
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, Response, StatusCode};

const DEPLOY: &str = "/.well-known/everlock/deploy";

fn will() -> String {
    basic("will", "will-pw")
}

fn manifest(files: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(|(p, c)| {
            serde_json::json!({
                "path": p,
                "blake3": blake3::hash(c).to_hex().to_string(),
                "size": c.len(),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "files": files })).unwrap()
}

async fn send(
    s: &TestSite,
    method: &str,
    incremental: bool,
    body: Vec<u8>,
) -> (Response<()>, serde_json::Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(DEPLOY)
        .header("host", "site.example")
        .header("authorization", will());
    if incremental {
        b = b.header("everlock-deploy-manifest", "1");
    }
    let (r, body) = collect(s.send(b.body(Body::from(body)).unwrap()).await).await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (r, json)
}

/// An incremental upload: the manifest entry first, then `upload`.
fn upload(all: &[(&str, &[u8])], upload: &[(&str, &[u8])]) -> Vec<u8> {
    let m = manifest(all);
    let mut entries: Vec<(&str, &[u8])> = vec![(".everlock-deploy-manifest.json", &m)];
    entries.extend_from_slice(upload);
    tar_gz(&entries)
}

fn missing(json: &serde_json::Value) -> Vec<String> {
    json["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn commits(s: &TestSite) -> usize {
    s.store.get().await.unwrap().log(100).await.unwrap().len()
}

#[tokio::test]
async fn only_missing_contents_travel_and_one_commit_replaces_the_site() {
    let s = TestSite::new("web", "", false).await;
    let big: Vec<u8> = {
        let mut v = vec![0u8; 2 * 1024 * 1024];
        blake3::Hasher::new().finalize_xof().fill(&mut v);
        v
    };
    let v1: [(&str, &[u8]); 3] = [
        ("index.html", b"<p>one</p>"),
        ("big.bin", &big),
        ("old.txt", b"going away"),
    ];
    let (r, full) = send(&s, "PUT", false, tar(&v1)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{full}");
    let full_received = full["received_bytes"].as_u64().unwrap();
    assert!(full_received > big.len() as u64, "{full}");

    // A one-byte change to index.html, big.bin kept, old.txt dropped, copy.bin = big's bytes.
    let v2: [(&str, &[u8]); 3] = [
        ("index.html", b"<p>two</p>"),
        ("big.bin", &big),
        ("copy.bin", &big),
    ];
    let (r, answer) = send(&s, "POST", false, manifest(&v2)).await;
    assert_eq!(r.status(), StatusCode::OK, "{answer}");
    assert_eq!(
        missing(&answer),
        [blake3::hash(b"<p>two</p>").to_hex().to_string()]
    );
    assert_eq!(answer["unchanged"], false);
    assert_eq!(commits(&s).await, 1, "asking commits nothing");

    let (r, report) = send(
        &s,
        "PUT",
        true,
        upload(&v2, &[("index.html", b"<p>two</p>")]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{report}");
    assert_eq!(report["uploaded_files"], 1);
    assert_eq!(report["reused_files"], 2);
    assert_eq!(report["files"], 3);
    let received = report["received_bytes"].as_u64().unwrap();
    assert!(received < 4096, "the server received {received} bytes");
    assert_eq!(
        commits(&s).await,
        2,
        "one commit for the incremental deploy"
    );
    assert_eq!(s.get("/", &[]).await.1, b"<p>two</p>");
    assert_eq!(s.get("/copy.bin", &[]).await.1, big);
    assert_eq!(s.get("/big.bin", &[]).await.1, big);
    assert_eq!(
        s.get("/old.txt", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unchanged_content_uploads_nothing_and_commits_nothing() {
    let s = TestSite::new("web", "", false).await;
    let files: [(&str, &[u8]); 2] = [("index.html", b"<p>same</p>"), ("a/b.css", b"b{}")];
    assert_eq!(
        send(&s, "PUT", false, tar(&files)).await.0.status(),
        StatusCode::CREATED
    );
    let (r, answer) = send(&s, "POST", false, manifest(&files)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(answer["unchanged"], true);
    assert!(missing(&answer).is_empty());
    // Even an upload of the same site (full or incremental) commits nothing.
    let (r, report) = send(&s, "PUT", true, upload(&files, &[])).await;
    assert_eq!(r.status(), StatusCode::OK, "{report}");
    assert_eq!(report["unchanged"], true);
    let (r, report) = send(&s, "PUT", false, tar(&files)).await;
    assert_eq!(r.status(), StatusCode::OK, "{report}");
    assert_eq!(commits(&s).await, 1);
    // A changed manifest that only drops a path is not "unchanged".
    let (_, answer) = send(&s, "POST", false, manifest(&files[..1])).await;
    assert_eq!(answer["unchanged"], false);
}

#[tokio::test]
async fn uploads_that_do_not_match_their_manifest_change_nothing() {
    let s = TestSite::new("web", "", false).await;
    let v1: [(&str, &[u8]); 1] = [("index.html", b"v1")];
    send(&s, "PUT", false, tar(&v1)).await;
    let v2: [(&str, &[u8]); 2] = [("index.html", b"v1"), ("new.html", b"new")];
    for (body, why) in [
        (upload(&v2, &[]), "a missing content was not uploaded"),
        (
            upload(&v2, &[("new.html", b"not what the manifest says")]),
            "an upload that does not match its hash",
        ),
        (
            upload(&v2, &[("new.html", b"new"), ("extra.html", b"x")]),
            "a path the manifest does not list",
        ),
        (tar_gz(&[("new.html", b"new")]), "no manifest entry at all"),
    ] {
        let (r, report) = send(&s, "PUT", true, body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}: {report}");
        assert!(report["error"].is_string(), "{why}");
    }
    let (r, _) = send(&s, "POST", false, b"{\"files\":[]}".to_vec()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(commits(&s).await, 1);
    assert_eq!(
        s.get("/new.html", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn asking_needs_writer_access() {
    let s = TestSite::new("web", "", false).await;
    let req = Request::post(DEPLOY)
        .header("host", "site.example")
        .header("authorization", basic("rita", "rita-pw"))
        .body(Body::from(manifest(&[("a", b"a")])))
        .unwrap();
    assert_eq!(s.send(req).await.status(), StatusCode::FORBIDDEN);
    let req = Request::post(DEPLOY)
        .header("host", "site.example")
        .body(Body::from(manifest(&[("a", b"a")])))
        .unwrap();
    assert_eq!(s.send(req).await.status(), StatusCode::UNAUTHORIZED);
}

/// A Markdown site's `site.toml` and layouts are validated even when the incremental upload
/// does not carry them: the server reads the ones it reuses.
#[tokio::test]
async fn reused_markdown_config_is_still_validated() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    let layout: &[u8] = b"<html>{{ content }}</html>";
    let v1: [(&str, &[u8]); 3] = [
        ("site.toml", b"title = \"Docs\"\n"),
        ("layouts/page.html", layout),
        ("index.md", b"# Hi\n"),
    ];
    let (r, report) = send(&s, "PUT", false, tar(&v1)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{report}");
    let broken: &[u8] = b"<html>{% if %}</html>";
    let v2: [(&str, &[u8]); 3] = [
        ("site.toml", b"title = \"Docs\"\n"),
        ("layouts/page.html", broken),
        ("index.md", b"# Hi\n"),
    ];
    let (r, report) = send(
        &s,
        "PUT",
        true,
        upload(&v2, &[("layouts/page.html", broken)]),
    )
    .await;
    assert!(r.status().is_client_error(), "{report}");
    let v3: [(&str, &[u8]); 3] = [
        ("site.toml", b"title = \"Docs\"\n"),
        ("layouts/page.html", layout),
        ("index.md", b"# Hello\n"),
    ];
    let (r, report) = send(&s, "PUT", true, upload(&v3, &[("index.md", b"# Hello\n")])).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{report}");
    assert_eq!(report["reused_files"], 2);
}

/// Links from pages the incremental upload reuses are judged against the new file set: the
/// server reads those pages back, so deleting a page they link to is refused.
#[tokio::test]
async fn deleting_a_page_that_an_unchanged_page_links_to_is_refused() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    let a: &[u8] = b"# A\n\nSee [B](b.md).\n";
    let v1: [(&str, &[u8]); 3] = [
        ("index.md", b"# Home\n\n[A](a.md)\n"),
        ("a.md", a),
        ("b.md", b"# B\n"),
    ];
    let (r, report) = send(&s, "PUT", false, tar(&v1)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{report}");
    let before = commits(&s).await;
    let home: &[u8] = b"# Home again\n\n[A](a.md)\n";
    let v2: [(&str, &[u8]); 2] = [("index.md", home), ("a.md", a)];
    let (r, report) = send(&s, "PUT", true, upload(&v2, &[("index.md", home)])).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{report}");
    let e = report["error"].as_str().unwrap();
    assert!(e.starts_with("a.md:3: broken link to \"b.md\""), "{report}");
    assert_eq!(commits(&s).await, before, "nothing half-valid goes live");
    // Dropping the link with the page makes the same deletion fine.
    let a2: &[u8] = b"# A\n\nNo more B.\n";
    let v3: [(&str, &[u8]); 2] = [("index.md", home), ("a.md", a2)];
    let (r, report) = send(
        &s,
        "PUT",
        true,
        upload(&v3, &[("index.md", home), ("a.md", a2)]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{report}");
}

/// Dropping the `_redirects` rule that answered an unchanged page's link breaks that link,
/// though no page went away: the reused page is read back and the deploy refused.
#[tokio::test]
async fn dropping_the_redirect_an_unchanged_page_relies_on_is_refused() {
    let s = TestSite::new("docs", "mode = \"markdown\"", false).await;
    let a: &[u8] = b"# A\n\n[Old](/old/page)\n";
    let rules: &[u8] = b"/old/* /a 301\n";
    let v1: [(&str, &[u8]); 2] = [("a.md", a), ("_redirects", rules)];
    let (r, report) = send(&s, "PUT", false, tar(&v1)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{report}");
    let other: &[u8] = b"/elsewhere /a 301\n";
    let v2: [(&str, &[u8]); 2] = [("a.md", a), ("_redirects", other)];
    let (r, report) = send(&s, "PUT", true, upload(&v2, &[("_redirects", other)])).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{report}");
    let e = report["error"].as_str().unwrap();
    assert!(
        e.starts_with("a.md:3: broken link to \"/old/page\""),
        "{report}"
    );
}
