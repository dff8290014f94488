//! End to end with the real binary: the zero-config welcome site, `everlock site deploy` over
//! HTTPS with the generated CA, a deploy with curl, and the deployed site served at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::process::Command;

use common::{Server, get, have_binary, http1};

const PASSWORD: &str = "admin-pw";

#[tokio::test]
async fn welcome_page_then_cli_and_curl_deploys() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", PASSWORD)]);

    // Zero-config: the welcome site answers on localhost and 127.0.0.1, publicly.
    for host in ["localhost", "127.0.0.1"] {
        let reply = http1(server.http, get(host, "/")).await;
        assert_eq!(reply.status, 200, "{host}: {}", server.log());
        assert!(reply.body.contains("skopeo copy"), "{}", reply.body);
        assert!(
            reply.body.contains("ssh -p 2222 admin@localhost"),
            "{}",
            reply.body
        );
        assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    }

    // `everlock site deploy` over HTTPS, trusting the generated CA.
    let site = dir.path().join("public");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>Deployed by the CLI</h1>").unwrap();
    std::fs::write(site.join("assets/app.css"), "h1 { color: teal }").unwrap();
    let ca = server.data_dir.join("_host/tls/ca.pem");
    let deploy = |password: &str| {
        Command::new(common::everlock_bin())
            .args(["site", "deploy"])
            .arg(&site)
            .args([
                "--url",
                &format!("https://localhost:{}/", server.https.port()),
                "--user",
                "admin",
            ])
            .arg("--cacert")
            .arg(&ca)
            .env("EVERLOCK_PASSWORD", password)
            .output()
            .unwrap()
    };
    let out = deploy(PASSWORD);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {stderr}\nlog: {}",
        server.log()
    );
    assert!(stdout.contains("deployed 2 files (46 bytes)"), "{stdout}");
    let reply = http1(server.http, get("localhost", "/")).await;
    assert_eq!(reply.body, "<h1>Deployed by the CLI</h1>");
    let reply = http1(server.http, get("localhost", "/assets/app.css")).await;
    assert_eq!(reply.headers["content-type"], "text/css; charset=utf-8");

    // A wrong password is refused with a clear message and changes nothing.
    let out = deploy("wrong");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert_eq!(
        http1(server.http, get("localhost", "/")).await.body,
        "<h1>Deployed by the CLI</h1>"
    );

    // A tar.gz deploy with curl over plain HTTP, then conditional and range requests with curl.
    if have_binary("curl") {
        let archive = dir.path().join("site.tgz");
        let status = Command::new("tar")
            .args(["-czf"])
            .arg(&archive)
            .args(["-C"])
            .arg(&site)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let url = format!(
            "http://127.0.0.1:{}/.well-known/everlock/deploy",
            server.http.port()
        );
        let out = Command::new("curl")
            .args(["-sS", "-u", &format!("admin:{PASSWORD}"), "-T"])
            .arg(&archive)
            .arg(&url)
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.contains("\"files\":2"), "{body}");
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Range: bytes=4-11",
            ])
            .arg(format!("http://127.0.0.1:{}/", server.http.port()))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    }
}
