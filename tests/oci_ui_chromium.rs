//! The registry's web UI in a real browser (issue #15 item 7): skopeo pushes an image and a
//! multi-arch index, then headless Chromium loads the repository page from the running
//! server; the DOM shows the tags with their platforms, digests and pull commands, and a
//! screenshot is kept under the target directory (its path is printed). The UI lives at
//! `localhost/ui/`, an extra prefix of the zero-config registry, while the welcome site keeps
//! `localhost/`.

#![cfg(feature = "backend-oci-http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod oci_common;

use std::process::Command;

use common::{Server, get, have_binary, http1};
use oci_common::{ALICE, Layout, cert_dir, seed_users, skopeo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_tags_of_a_repository() {
    if !have_binary("skopeo") || !have_binary("chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // `anon` reads the registry, so the browser needs no credentials.
    seed_users(&dir.path().join("data"), true).await;
    let server = Server::start_env(dir.path(), "", &[]);
    let certs = cert_dir(&server.ca_pem(), &work);
    let certs = certs.to_str().unwrap().to_owned();
    let mut layout = Layout::new(&work.join("layout"));
    let single = layout.image("amd64", b"ui single", Some("v1"));
    let amd = layout.image("amd64", b"ui amd64", None);
    let arm = layout.image("arm64", b"ui arm64", None);
    let index = layout.multi_arch(&[("amd64", amd), ("arm64", arm)], "multi");
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    for (tag, all) in [("v1", false), ("multi", true)] {
        let src = format!("oci:{}:{tag}", layout.dir.display());
        let dest = format!("docker://localhost:{}/team/app:{tag}", server.https.port());
        let mut args = vec!["copy", "--dest-cert-dir", &certs, "--dest-creds", &creds];
        if all {
            args.push("--all");
        }
        args.extend([src.as_str(), dest.as_str()]);
        assert!(skopeo(&work, &args).status.success(), "push {tag}");
    }

    let port = server.http.port();
    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &str, url: &str| {
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
                "--window-size=420,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(extra)
            .arg(url)
            .output()
            .unwrap()
    };
    let home = format!("http://localhost:{port}/ui/");
    let out = chromium("--dump-dom", &home);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<h1>Repositories</h1>"), "{dom}");
    assert!(dom.contains("href=\"/ui/r/team/app\""), "{dom}");
    assert!(dom.contains("signed in as anonymous"), "{dom}");

    let page = format!("http://localhost:{port}/ui/r/team/app");
    let out = chromium("--dump-dom", &page);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<html lang=\"en\">"), "{dom}");
    assert!(dom.contains("<caption>Tags of team/app</caption>"), "{dom}");
    assert!(dom.contains("<th scope=\"row\">v1</th>"), "{dom}");
    assert!(dom.contains("<th scope=\"row\">multi</th>"), "{dom}");
    assert!(dom.contains(&single.manifest_digest), "{dom}");
    assert!(dom.contains(&index), "{dom}");
    assert!(dom.contains("linux/amd64, linux/arm64"), "{dom}");
    assert!(
        dom.contains(&format!(
            "value=\"docker pull localhost:{port}/team/app:v1\""
        )),
        "{dom}"
    );

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("oci-ui-chromium.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&format!("--screenshot={}", shot.display()), &page);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 1000 && png.starts_with(b"\x89PNG"),
        "{}",
        shot.display()
    );
    eprintln!("screenshot of the registry UI: {}", shot.display());
}

/// Zero-config routing: the registry claims `localhost/v2/` and `localhost/ui/`, the welcome
/// site keeps everything else of `localhost/`, and `/v2/_ui/` is no longer the UI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_config_serves_ui_next_to_the_welcome_site() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[]);

    let welcome = http1(server.http, get("localhost", "/")).await;
    assert_eq!(welcome.status, 200, "{}", server.log());
    assert!(welcome.body.contains("skopeo copy"), "{}", welcome.body);
    let elsewhere = http1(server.http, get("localhost", "/uix")).await;
    assert!(
        !elsewhere
            .headers
            .contains_key("docker-distribution-api-version"),
        "/uix belongs to the welcome site: {:?}",
        elsewhere.headers
    );

    // An anonymous viewer who may read nothing is asked to log in, by the UI (HTML).
    let ui = http1(server.http, get("localhost", "/ui/")).await;
    assert_eq!(ui.status, 401, "{}", ui.body);
    assert!(
        ui.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"),
        "{:?}",
        ui.headers
    );
    assert!(
        ui.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        ui.headers
    );
    assert!(ui.body.contains("Log in"), "{}", ui.body);

    let api = http1(server.http, get("localhost", "/v2/")).await;
    assert_eq!(
        api.headers["docker-distribution-api-version"],
        "registry/2.0"
    );
    let old = http1(server.http, get("localhost", "/v2/_ui/")).await;
    assert!(!old.body.contains("<html"), "{}", old.body);
    assert!(
        !old.headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html")),
        "{:?}",
        old.headers
    );
}
