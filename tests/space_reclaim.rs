//! Space comes back while the server runs (issue #11, item 1), on the real binary:
//! - a 50 MiB blob pushed, its manifest deleted, `/oci gc default --grace-secs 0` over SSH, and
//!   the registry store's bytes on disk drop by at least the blob's size while requests keep
//!   being answered;
//! - ten deploys of a site with `keep-deploys = 3` keep three deploys' bytes once the
//!   maintenance task has run, the history marks the purged deploys, and rolling back to one
//!   of them says its content was purged.

#![cfg(all(
    feature = "backend-oci-http",
    feature = "backend-site-http",
    feature = "backend-admin-ssh"
))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod oci_common;
mod ssh_util;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, get_as, http1};
use oci_common::{ADMIN, ALICE, seed_users, send, sha256_hex};

const MIB: u64 = 1024 * 1024;

/// The bytes of every file under `dir`, as `du --apparent-size` counts them.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    total
}

/// Distinct pseudo-random bytes for each `seed`.
fn noise(seed: u64, len: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

async fn console(server: &Server, line: &str) -> String {
    let conn = ssh_util::login(server.ssh, ADMIN.0, ADMIN.1).await;
    let out = conn.exec(line).await;
    conn.close().await;
    format!("{}{}", out.stdout, out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_gc_gives_the_blob_bytes_back_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(dir.path(), "", &[]);
    let big = noise(1, 50 * MIB);
    let big_digest = format!("sha256:{}", sha256_hex(&big));
    let config = b"{}".to_vec();
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    for (digest, data) in [(&big_digest, big.clone()), (&config_digest, config)] {
        let path = format!("/v2/app/blobs/uploads/?digest={digest}");
        let r = send(server.http, "POST", &path, ALICE, &[], data).await;
        assert_eq!(r.status, 201);
    }
    drop(big);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": big_digest, "size": 50 * MIB}],
    })
    .to_string()
    .into_bytes();
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let mtype = [("content-type", "application/vnd.oci.image.manifest.v1+json")];
    let r = send(
        server.http,
        "PUT",
        "/v2/app/manifests/v1",
        ALICE,
        &mtype,
        manifest,
    )
    .await;
    assert_eq!(r.status, 201);
    // A second image that stays (tagged), to pull while and after the collection runs.
    let keep = b"kept layer".to_vec();
    let keep_digest = format!("sha256:{}", sha256_hex(&keep));
    for data in [b"{}".to_vec(), keep.clone()] {
        let path = format!(
            "/v2/other/blobs/uploads/?digest=sha256:{}",
            sha256_hex(&data)
        );
        let r = send(server.http, "POST", &path, ALICE, &[], data).await;
        assert_eq!(r.status, 201);
    }
    let kept_manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": keep_digest, "size": keep.len()}],
    })
    .to_string()
    .into_bytes();
    let r = send(
        server.http,
        "PUT",
        "/v2/other/manifests/v1",
        ALICE,
        &mtype,
        kept_manifest,
    )
    .await;
    assert_eq!(r.status, 201);
    let path = format!("/v2/app/manifests/{manifest_digest}");
    assert_eq!(
        send(server.http, "DELETE", &path, ADMIN, &[], vec![])
            .await
            .status,
        202
    );

    let store_dir = server.data_dir.join("everlock-oci-local");
    let before = du(&store_dir);
    assert!(before > 50 * MIB, "{before}");
    // Requests keep being served while the collection runs.
    let pulls = tokio::spawn({
        let addr = server.http;
        let path = format!("/v2/other/blobs/{keep_digest}");
        async move {
            let mut served = 0;
            for _ in 0..20 {
                let r = send(addr, "GET", &path, ALICE, &[], vec![]).await;
                assert_eq!(r.status, 200);
                served += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            served
        }
    });
    let out = console(&server, "/oci gc default --grace-secs 0").await;
    assert_eq!(pulls.await.unwrap(), 20);
    assert!(
        out.contains(&format!("blob {big_digest}")),
        "{out}\n{}",
        server.log()
    );
    let freed: u64 = out
        .split("store: freed ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bytes freed line: {out}"));
    assert!(freed >= 50 * MIB, "{out}");
    let after = du(&store_dir);
    println!("registry store on disk: {before} bytes before, {after} after `/oci gc`");
    assert!(
        before - after >= 50 * MIB,
        "only {} bytes left the disk: {out}",
        before.saturating_sub(after)
    );
    let r = send(
        server.http,
        "GET",
        &format!("/v2/other/blobs/{keep_digest}"),
        ALICE,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        server.http,
        "GET",
        &format!("/v2/app/blobs/{big_digest}"),
        ALICE,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    // History keeps the record of who pushed and who deleted.
    let out = console(&server, "/oci gc default --grace-secs 0 --dry-run").await;
    assert!(out.contains("store: would free 0 bytes"), "{out}");
}

/// The files of deploy `i`: `index.html` plus a 1 MiB file of its own.
fn site_files(i: u64) -> [(&'static str, Vec<u8>); 2] {
    [
        ("index.html", format!("<h1>deploy {i}</h1>").into_bytes()),
        ("big.bin", noise(100 + i, MIB)),
    ]
}

fn site_archive(i: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in site_files(i) {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

async fn deploy(server: &Server, i: u64) -> String {
    use base64::Engine as _;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1));
    let req = hyper::Request::put("/.well-known/everlock/deploy")
        .header("host", "docs.localhost")
        .header("authorization", format!("Basic {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(site_archive(
            i,
        ))))
        .unwrap();
    let r = http1(server.http, req).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    json["commit"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_deploys_keep_three_deploys_bytes_after_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(
        dir.path(),
        "[storage]\nmaintenance-interval-secs = 1\nmaintenance-grace-secs = 2\n\
         [backends.site-http.instances.docs]\nvhosts = [\"docs.localhost\"]\n\
         [backends.site-http.instances.docs.settings]\nkeep-deploys = 3\n",
        &[],
    );
    // The maintenance task runs every second with a 2 s grace, so it also runs between and
    // during these deploys: the grace keeps each deploy's staged files until its commit.
    let mut commits = Vec::new();
    for i in 0..10 {
        commits.push(deploy(&server, i).await);
    }
    // Every deployed file is an object file (deploys stream them in), so three deploys'
    // bytes are exactly the files of deploys 7, 8 and 9.
    let deploy_bytes = |i| -> u64 { site_files(i).iter().map(|f| f.1.len() as u64).sum() };
    let kept: u64 = (7..10).map(deploy_bytes).sum();
    let all: u64 = (0..10).map(deploy_bytes).sum();
    let objects = server.data_dir.join("site-http-docs/objects");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bytes = du(&objects);
        if bytes <= kept {
            println!(
                "site objects on disk after maintenance: {bytes} bytes (all ten deploys: {all})"
            );
            assert_eq!(bytes, kept, "the last three deploys keep their bytes");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bytes} bytes still on disk; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        server.log().contains("store maintenance freed"),
        "{}",
        server.log()
    );
    let reply = http1(server.http, get_as("docs.localhost", "/", ADMIN.0, ADMIN.1)).await;
    assert_eq!(reply.body, "<h1>deploy 9</h1>");

    let history = console(&server, "/site history docs").await;
    for (i, c) in commits.iter().enumerate() {
        let line = history.lines().find(|l| l.contains(c.as_str())).unwrap();
        assert_eq!(line.contains("[content purged]"), i < 7, "{i}: {history}");
    }
    let out = console(&server, &format!("/site rollback docs {}", commits[0])).await;
    assert!(
        out.contains(&format!(
            "deploy {}'s content was purged by retention (keep-deploys = 3); history keeps its record",
            commits[0]
        )),
        "{out}"
    );
    let out = console(&server, &format!("/site rollback docs {}", commits[7])).await;
    assert!(out.contains("rolled back"), "{out}");
    let reply = http1(server.http, get_as("docs.localhost", "/", ADMIN.0, ADMIN.1)).await;
    assert_eq!(reply.body, "<h1>deploy 7</h1>");
}
