//! Two `everlock serve` processes on one configuration (different data directories and ports,
//! the same `[storage]`: objects in SeaweedFS, metadata in PostgreSQL) serve one set of
//! registries, sites, users and instances: a push through A is pulled through B with the same
//! digests, console changes on A are live on B within a second, a deploy on A is served by B,
//! an upload session spans both nodes, twenty concurrent pushes to one tag through both nodes
//! all succeed and both agree on the winner, and `everlock store verify` is clean next to
//! the running nodes. `multi_node_crash.rs` kills a node mid-push.

#![cfg(all(feature = "backend-oci-http", feature = "backend-site-http"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod oci_common;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "../storage/tests/support/seaweedfs.rs"]
mod seaweedfs;
#[path = "support/shared_storage.rs"]
mod shared_storage;
mod ssh_util;

#[path = "support/multi_node.rs"]
mod multi_node;

use std::time::{Duration, Instant};

use common::{Server, get, get_as, have_binary, http1, https};
use multi_node::{ADMIN, Cluster, eventually, push_image, store_cmd};
use oci_common::{Layout, send, sha256_hex, skopeo};

/// skopeo push through A, pull through B: the same manifest digest and the same blobs.
fn skopeo_push_a_pull_b(cluster: &Cluster) {
    if !have_binary("skopeo") {
        return;
    }
    let work = cluster.dir.path().join("skopeo");
    std::fs::create_dir_all(&work).unwrap();
    let mut layout = Layout::new(&work.join("layout"));
    let image = layout.image("amd64", b"pushed through node A", Some("v1"));
    let creds = format!("{}:{}", ADMIN.0, ADMIN.1);
    let at = |s: &Server| format!("docker://localhost:{}/app:v1", s.http.port());
    let src = format!("oci:{}:v1", layout.dir.display());
    let push = skopeo(
        &work,
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &src,
            &at(&cluster.a),
        ],
    );
    assert!(push.status.success());
    let raw = skopeo(
        &work,
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &at(&cluster.b),
        ],
    );
    assert!(raw.status.success());
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw.stdout)),
        image.manifest_digest
    );
    let out = work.join("pulled");
    let pull = skopeo(
        &work,
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &at(&cluster.b),
            &format!("oci:{}:v1", out.display()),
        ],
    );
    assert!(pull.status.success());
    for blob in &image.blobs {
        assert_eq!(
            Layout::read_blob(&out, blob),
            Layout::read_blob(&layout.dir, blob),
            "{blob}"
        );
    }
}

/// Runs one console line on `server` as the administrator.
async fn console(server: &Server, line: &str) -> ssh_util::Output {
    let conn = ssh_util::login(server.ssh, ADMIN.0, ADMIN.1).await;
    let out = conn.exec(line).await;
    conn.close().await;
    assert_eq!(out.status, Some(0), "{line}: {out:?}\n{}", server.log());
    out
}

/// A user and a grant made in A's console, and an instance created there, work on B within a
/// second of the command's answer.
async fn console_changes_reach_b(cluster: &Cluster) {
    console(&cluster.a, "/users add bob bob-password-1").await;
    console(&cluster.a, "/users grant bob http/oci/default reader").await;
    let answered = Instant::now();
    let bob = ("bob", "bob-password-1");
    let b = cluster.b.http;
    let took = eventually(Duration::from_secs(1), || async move {
        send(b, "GET", "/v2/", bob, &[], vec![]).await.status == 200
    })
    .await;
    let took = took.unwrap_or_else(|| panic!("bob cannot log in on B 1 s after A made him"));
    eprintln!(
        "user made on A usable on B after {took:?} ({:?} since the console answered)",
        answered.elapsed()
    );

    console(&cluster.a, "/oci create team vhost=team.localhost").await;
    let took = eventually(Duration::from_secs(1), || async move {
        let r = http1(b, get_as("team.localhost", "/v2/", ADMIN.0, ADMIN.1)).await;
        r.status == 200
    })
    .await;
    let took = took.unwrap_or_else(|| panic!("B does not serve A's new instance after 1 s"));
    eprintln!("instance created on A served by B after {took:?}");
}

/// A deploy to the welcome site through A is what B serves.
async fn deploy_a_served_by_b(cluster: &Cluster) {
    let tar = oci_common::tar_with("index.html", b"deployed through node A");
    let r = send(
        cluster.a.http,
        "PUT",
        "/.well-known/everlock/deploy",
        ADMIN,
        &[("content-type", "application/x-tar")],
        tar,
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = cluster.b.http;
    let took = eventually(Duration::from_secs(1), || async move {
        http1(b, get("localhost", "/")).await.body == "deployed through node A"
    })
    .await;
    let took = took.unwrap_or_else(|| panic!("B does not serve A's deploy after 1 s"));
    eprintln!("deploy on A served by B after {took:?}");
}

/// POST on A, PATCH on B, PUT on A: one blob.
async fn upload_spans_nodes(cluster: &Cluster) {
    let (a, b) = (cluster.a.http, cluster.b.http);
    let first: Vec<u8> = (0..300_000u32)
        .map(|i| u8::try_from(i % 241).unwrap())
        .collect();
    let second = b"and the rest, through node A".to_vec();
    let whole = [first.clone(), second.clone()].concat();
    let digest = format!("sha256:{}", sha256_hex(&whole));
    let r = send(a, "POST", "/v2/app/blobs/uploads/", ADMIN, &[], vec![]).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    let range = format!("0-{}", first.len() - 1);
    let r = send(
        b,
        "PATCH",
        &location,
        ADMIN,
        &[
            ("content-type", "application/octet-stream"),
            ("content-range", &range),
        ],
        first,
    )
    .await;
    assert_eq!(r.status, 202, "PATCH on B: {:?}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = send(
        a,
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        ADMIN,
        &[("content-type", "application/octet-stream")],
        second,
    )
    .await;
    assert_eq!(r.status, 201, "PUT on A: {:?}", r.body);
    for node in [a, b] {
        let r = send(
            node,
            "GET",
            &format!("/v2/app/blobs/{digest}"),
            ADMIN,
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(r.body == whole, "the blob came back different");
    }
}

/// Twenty manifests pushed to one tag at once, alternating nodes: every push is acknowledged
/// and both nodes then serve the same one of them.
async fn concurrent_pushes_agree(cluster: &Cluster) {
    let (config, layer) = push_image(cluster.a.http, "race", b"race layer").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 {
            cluster.a.http
        } else {
            cluster.b.http
        };
        let manifest = multi_node::manifest(&config, &layer, &format!("push {i}"));
        tasks.push(tokio::spawn(async move {
            let digest = format!("sha256:{}", sha256_hex(&manifest));
            let r = send(
                node,
                "PUT",
                "/v2/race/manifests/latest",
                ADMIN,
                &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                manifest,
            )
            .await;
            assert_eq!(r.status, 201, "push {i}: {:?}", r.body);
            digest
        }));
    }
    let mut pushed = Vec::new();
    for t in tasks {
        pushed.push(t.await.unwrap());
    }
    let mut served = Vec::new();
    for node in [cluster.a.http, cluster.b.http] {
        let r = send(node, "GET", "/v2/race/manifests/latest", ADMIN, &[], vec![]).await;
        assert_eq!(r.status, 200);
        served.push(format!("sha256:{}", sha256_hex(&r.body)));
    }
    assert_eq!(served[0], served[1], "the nodes disagree on the tag");
    assert!(pushed.contains(&served[0]));
}

/// The host key an `ssh-keyscan` of `port` reports: `<type> <base64>`, without the host name.
fn scanned_host_key(port: u16) -> String {
    let out = std::process::Command::new("ssh-keyscan")
        .args([
            "-T",
            "5",
            "-t",
            "ed25519",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_else(|| panic!("ssh-keyscan -p {port}: no key: {out:?}"));
    line.split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Both nodes are one server to clients: the same SSH host key and the same local CA, whose
/// certificate (node A's `ca.pem`) verifies a TLS handshake to either node.
async fn nodes_share_identity(cluster: &Cluster) {
    let ca = cluster.a.ca_pem();
    assert_eq!(
        ca,
        cluster.b.ca_pem(),
        "the nodes wrote different ca.pem files"
    );
    for node in [&cluster.a, &cluster.b] {
        let reply = https(
            node.https,
            "localhost",
            &ca,
            &[b"http/1.1"],
            get("localhost", "/"),
        )
        .await;
        assert!(reply.status < 500, "{reply:?}");
    }
    if have_binary("ssh-keyscan") {
        let (a, b) = (
            scanned_host_key(cluster.a.ssh.port()),
            scanned_host_key(cluster.b.ssh.port()),
        );
        assert!(a.starts_with("ssh-ed25519 "), "{a}");
        assert_eq!(a, b, "the nodes present different SSH host keys");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_serve_one_set_of_stores() {
    let started = Instant::now();
    let Some(cluster) = Cluster::start("mn/").await else {
        return;
    };
    eprintln!("cluster up after {:?}", started.elapsed());
    nodes_share_identity(&cluster).await;
    skopeo_push_a_pull_b(&cluster);
    console_changes_reach_b(&cluster).await;
    deploy_a_served_by_b(&cluster).await;
    upload_spans_nodes(&cluster).await;
    concurrent_pushes_agree(&cluster).await;
    // The offline commands read the shared stores next to both running nodes.
    let listed = store_cmd(&cluster, &["list"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("everlock-oci-local"), "{listed}");
    for store in listed.lines() {
        let v = store_cmd(&cluster, &["verify", store]);
        assert!(
            v.status.success(),
            "verify {store}: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
    eprintln!("multi-node test took {:?}", started.elapsed());
}
