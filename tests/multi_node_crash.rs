//! A node killed with SIGKILL in the middle of a push loses nothing it acknowledged: the other
//! node keeps accepting pushes and serves everything either node acknowledged, and the killed
//! node, started again on its directory, rejoins without any manual step.

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
#[path = "support/postgres.rs"]
mod postgres;
#[path = "../storage/tests/support/seaweedfs.rs"]
mod seaweedfs;
#[path = "support/shared_storage.rs"]
mod shared_storage;

#[path = "support/multi_node.rs"]
mod multi_node;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use multi_node::{ADMIN, Cluster, manifest, push_image, push_manifest, store_cmd};
use oci_common::{send, sha256_hex, try_send};

/// What one acknowledged push consists of.
struct Pushed {
    repo: &'static str,
    manifest: String,
    blobs: Vec<String>,
}

async fn push(node: SocketAddr, repo: &'static str, layer: &[u8]) -> Pushed {
    let (config, layer) = push_image(node, repo, layer).await;
    let digest = push_manifest(node, repo, "v1", manifest(&config, &layer, repo)).await;
    Pushed {
        repo,
        manifest: digest,
        blobs: vec![config.0, layer.0],
    }
}

/// Asserts that `node` serves every part of `pushed`.
async fn serves(node: SocketAddr, pushed: &Pushed) {
    let r = send(
        node,
        "GET",
        &format!("/v2/{}/manifests/v1", pushed.repo),
        ADMIN,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}: {:?}", pushed.repo, r.body);
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), pushed.manifest);
    for blob in &pushed.blobs {
        let r = send(
            node,
            "GET",
            &format!("/v2/{}/blobs/{blob}", pushed.repo),
            ADMIN,
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200, "{}: {blob}", pushed.repo);
        assert_eq!(&format!("sha256:{}", sha256_hex(&r.body)), blob);
    }
}

/// Pseudo-random bytes, so nothing along the way can compress them.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_push_loses_nothing_acknowledged_and_rejoins() {
    let started = Instant::now();
    let Some(mut cluster) = Cluster::start("crash/").await else {
        return;
    };
    let (a, b) = (cluster.a.http, cluster.b.http);
    let before = push(a, "before", b"acknowledged by A before the crash").await;

    // A large push through A, killed part-way; B takes its own push meanwhile.
    let big = noise(48 * 1024 * 1024, 7);
    let big_digest = format!("sha256:{}", sha256_hex(&big));
    let uri = format!("/v2/interrupted/blobs/uploads/?digest={big_digest}");
    let interrupted = tokio::spawn(async move {
        try_send(a, "POST", &uri, ADMIN, &[], big)
            .await
            .map(|r| r.status)
    });
    let during = tokio::spawn(push(b, "during", b"pushed through B while A dies"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    cluster.a.signal("KILL");
    let status = cluster.a.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    let during = during.await.unwrap();
    // Acknowledged means served, even if the push finished before the kill.
    let interrupted = interrupted.await.unwrap();
    eprintln!("push interrupted by SIGKILL ended with {interrupted:?}");

    let after = push(b, "after", b"pushed through B after A died").await;
    for pushed in [&before, &during, &after] {
        serves(b, pushed).await;
    }
    if matches!(interrupted, Ok(201)) {
        let r = send(
            b,
            "HEAD",
            &format!("/v2/interrupted/blobs/{big_digest}"),
            ADMIN,
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200, "an acknowledged blob is missing");
    }

    // A restarts on its directory and rejoins: it serves what B took while it was down, and
    // takes pushes again.
    cluster.restart_a();
    let a = cluster.a.http;
    for pushed in [&before, &during, &after] {
        serves(a, pushed).await;
    }
    let rejoined = push(a, "rejoined", b"pushed through A after its restart").await;
    serves(b, &rejoined).await;
    for store in ["everlock-oci-local", "everlock-users", "everlock-system"] {
        let v = store_cmd(&cluster, &["verify", store]);
        assert!(
            v.status.success(),
            "verify {store}: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
    eprintln!("crash test took {:?}", started.elapsed());
}
