//! A real browser: headless Chromium loads a rendered Markdown page from the running server
//! and we check its DOM (title, heading, nav); the screenshot is kept under the target
//! directory as a CI artifact.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::io::Write as _;
use std::process::Command;

use bytes::Bytes;
use common::{Server, have_binary, http1};
use everlock_host::auth::{Auth, AuthOptions, Principal};
use everlock_host::storage::StoreManager;
use http_body_util::Full;

const CONFIG: &str = r#"
[backends.site-http.instances.docs]
vhosts = ["localhost"]
[backends.site-http.instances.docs.settings]
mode = "markdown"
"#;

fn archive() -> Vec<u8> {
    let files: &[(&str, &str)] = &[
        (
            "site.toml",
            "title = \"Handbook\"\n[nav]\nlinks = [{ name = \"Home\", url = \"/\" }, { name = \"Guide\", url = \"/guide\" }]\n",
        ),
        (
            "index.md",
            "# Welcome\n\nStart with the [guide](guide.md).\n",
        ),
        (
            "guide.md",
            "+++\ntitle = \"Guide\"\n+++\n# Getting started\n\n```rust\nfn main() { println!(\"hi\"); }\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        ),
    ];
    let mut b = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, text.as_bytes()).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn chromium_renders_a_markdown_page() {
    if !have_binary("chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Configured sites are private until someone grants anon reader (the console does that for
    // `/site create`); grant it directly before the server takes the lock on the users store.
    {
        let auth = Auth::open(
            &StoreManager::new(dir.path().join("data")),
            AuthOptions::default(),
        )
        .await
        .unwrap();
        auth.grant(
            &Principal::test_system(),
            "anon",
            "http/site/docs",
            "reader",
        )
        .await
        .unwrap();
    }
    let server = Server::start_env(
        dir.path(),
        CONFIG,
        &[("EVERLOCK_ADMIN_PASSWORD", "admin-pw")],
    );
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode("admin:admin-pw");
    let put = hyper::Request::put("/.well-known/everlock/deploy")
        .header("host", "localhost")
        .header("authorization", format!("Basic {token}"))
        .body(Full::new(Bytes::from(archive())))
        .unwrap();
    let reply = http1(server.http, put).await;
    assert_eq!(reply.status, 201, "{}\n{}", reply.body, server.log());

    let url = format!("http://localhost:{}/guide", server.http.port());
    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &str| {
        Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1024,768",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    let out = chromium("--dump-dom");
    let dom = String::from_utf8_lossy(&out.stdout).replace("&#x2F;", "/");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("<title>Guide · Handbook</title>"), "{dom}");
    assert!(
        dom.contains("<h1 id=\"getting-started\">Getting started</h1>"),
        "{dom}"
    );
    assert!(dom.contains("aria-current=\"page\">Guide</a>"), "{dom}");
    assert!(dom.contains(">Home</a>"), "{dom}");
    assert!(dom.contains("<table>"), "{dom}");
    assert!(dom.contains("class=\"hl-"), "{dom}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("site-chromium.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&format!("--screenshot={}", shot.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 1000 && png.starts_with(b"\x89PNG"),
        "screenshot at {}",
        shot.display()
    );
}
