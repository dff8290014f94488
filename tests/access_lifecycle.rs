//! Access across an instance's life, end to end with the real binary and the SSH console: the
//! zero-config welcome site is provisioned once at install (never by a request), a private
//! choice made before the first request survives a deploy, deleting an instance takes its
//! grants along, re-creating a name starts from an empty store, and reserved or shared stores
//! are refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod ssh_util;

use base64::Engine as _;
use bytes::Bytes;
use common::{Server, get, get_as, http1};
use http_body_util::Full;

const PASSWORD: &str = "admin-pw";

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

fn deploy(host: &str, files: &[(&str, &[u8])]) -> hyper::Request<Full<Bytes>> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    hyper::Request::put("/.well-known/everlock/deploy")
        .header("host", host)
        .header("authorization", format!("Basic {auth}"))
        .header("content-type", "application/x-tar")
        .body(Full::new(Bytes::from(tar(files))))
        .unwrap()
}

async fn console(server: &Server, line: &str) -> ssh_util::Output {
    let conn = ssh_util::login(server.ssh, "admin", PASSWORD).await;
    let out = conn.exec(line).await;
    conn.close().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_welcome_site_stays_private_through_a_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", PASSWORD)]);
    // No HTTP request has reached the server yet.
    let out = console(&server, "/site set welcome auth=private").await;
    assert_eq!(out.status, Some(0), "{out:?}\n{}", server.log());
    let reply = http1(server.http, deploy("localhost", &[("index.html", b"mine")])).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = http1(server.http, get("localhost", "/")).await;
    assert_eq!(reply.status, 401, "anon must not read a private site");
    let reply = http1(server.http, get_as("localhost", "/", "admin", PASSWORD)).await;
    assert_eq!(reply.body, "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_site_takes_its_grants_and_content_along() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", PASSWORD)]);
    let host = "docs.localhost";
    let out = console(&server, "/site create docs vhost=docs.localhost mode=html").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    let reply = http1(server.http, deploy(host, &[("index.html", b"old secret")])).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(http1(server.http, get(host, "/")).await.body, "old secret");

    let out = console(&server, "/site delete docs").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    let out = console(
        &server,
        "/site create docs vhost=docs.localhost mode=html auth=private",
    )
    .await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(http1(server.http, get(host, "/")).await.status, 401);
    // The re-created site starts empty: the old content is not reattached.
    let reply = http1(server.http, get_as(host, "/", "admin", PASSWORD)).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    let out = console(&server, "/site list").await;
    assert!(out.stdout.contains("store=site-http-docs-2"), "{out:?}");

    // Reserved and shared stores are refused with one clear line.
    let out = console(
        &server,
        "/site create evil vhost=evil.localhost mode=html store=everlock-users",
    )
    .await;
    assert_eq!(out.status, Some(1));
    assert!(
        out.stderr
            .contains("may not use store `everlock-users`: it is reserved for the server"),
        "{out:?}"
    );
    let out = console(
        &server,
        "/site create twin vhost=twin.localhost mode=html store=site-http-docs-2",
    )
    .await;
    assert_eq!(out.status, Some(1));
    assert!(out.stderr.contains("is used by both"), "{out:?}");
}

#[test]
fn config_check_refuses_reserved_shared_stores_and_a_second_console() {
    let dir = tempfile::tempdir().unwrap();
    for (config, message) in [
        (
            "[backends.site-http.instances.a]\nvhosts = [\"a.example\"]\nstore = \"everlock-system\"\n",
            "instance site-http/a may not use store `everlock-system`: it is reserved for the server",
        ),
        (
            "[backends.site-http.instances.a]\nvhosts = [\"a.example\"]\nstore = \"s\"\n[backends.oci-http.instances.b]\nvhosts = [\"b.example\"]\nstore = \"s\"\n",
            "store `s` is used by both",
        ),
        (
            "[backends.admin-ssh.instances.one]\n[backends.admin-ssh.instances.two]\n",
            "admin-ssh/two is a second SSH instance besides admin-ssh/one",
        ),
    ] {
        let file = dir.path().join("everlock.toml");
        std::fs::write(&file, config).unwrap();
        let out = std::process::Command::new(common::everlock_bin())
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config}");
        assert!(stderr.contains(message), "{stderr}");
    }
}
