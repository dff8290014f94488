//! Crash safety of the registry: `kill -9` while images are being pushed (and a large blob is
//! half uploaded), restart, then every acknowledged manifest pulls back intact with all its
//! blobs, the half-written blob is not readable, an interrupted upload session resumes, and
//! `everlock store verify everlock-oci-local` passes.

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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, everlock_bin};
use oci_common::{ALICE, PULLER, seed_users, send, sha256_hex, try_send};

/// One acknowledged image: tag, manifest bytes, and its blobs.
type Pushed = (String, Vec<u8>, Vec<(String, Vec<u8>)>);

async fn push_image(
    addr: std::net::SocketAddr,
    i: usize,
) -> Option<(String, Vec<u8>, Vec<(String, Vec<u8>)>)> {
    let config = format!("{{\"image\":{i}}}").into_bytes();
    let layer: Vec<u8> = (0..20_000 + i * 997).map(|j| (j * 31 + i) as u8).collect();
    let mut blobs = Vec::new();
    for data in [config.clone(), layer.clone()] {
        let d = format!("sha256:{}", sha256_hex(&data));
        let Ok(r) = try_send(
            addr,
            "POST",
            &format!("/v2/crash/app/blobs/uploads/?digest={d}"),
            ALICE,
            &[],
            data.clone(),
        )
        .await
        else {
            return None;
        };
        if r.status != 201 {
            return None;
        }
        blobs.push((d, data));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0].0, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blobs[1].0, "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let tag = format!("t{i}");
    let r = try_send(
        addr,
        "PUT",
        &format!("/v2/crash/app/manifests/{tag}"),
        ALICE,
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.clone(),
    )
    .await
    .ok()?;
    (r.status == 201).then_some((tag, manifest, blobs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_pushes_then_everything_acknowledged_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(dir.path(), "", &[]);
    let addr = server.http;

    // A session with a durable first chunk, which must survive the crash.
    let r = send(
        addr,
        "POST",
        "/v2/crash/app/blobs/uploads/",
        ALICE,
        &[],
        vec![],
    )
    .await;
    let resumable = r.headers["location"].to_str().unwrap().to_owned();
    let first = vec![1u8; 100_000];
    let r = send(
        addr,
        "PATCH",
        &resumable,
        ALICE,
        &[("content-range", "0-99999")],
        first.clone(),
    )
    .await;
    assert_eq!(r.status, 202);

    // A large single-POST upload that the kill interrupts half-way.
    let big: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let big_digest = format!("sha256:{}", sha256_hex(&big));
    let half = tokio::spawn({
        let path = format!("/v2/crash/app/blobs/uploads/?digest={big_digest}");
        async move {
            // The connection dies with the server; the outcome does not matter.
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                tokio::spawn(async move { try_send(addr, "POST", &path, ALICE, &[], big).await }),
            )
            .await;
        }
    });

    let acknowledged: Arc<Mutex<Vec<Pushed>>> = Arc::default();
    let pusher = tokio::spawn({
        let acknowledged = acknowledged.clone();
        async move {
            for i in 0.. {
                match push_image(addr, i).await {
                    Some(p) => acknowledged.lock().unwrap().push(p),
                    None => break,
                }
            }
        }
    });
    // Let pushes run, then kill without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 15 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut server = server;
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    // Requests in flight fail now (connection refused or reset); a panic inside a send only
    // ends the pushing task.
    let _ = pusher.await;
    let _ = half.await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 15,
        "only {} pushes before the kill",
        acknowledged.len()
    );
    drop(server);

    let mut server = Server::start_env(dir.path(), "", &[]);
    let addr = server.http;
    for (tag, manifest, blobs) in &acknowledged {
        let r = send(
            addr,
            "GET",
            &format!("/v2/crash/app/manifests/{tag}"),
            PULLER,
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200, "{tag}");
        assert_eq!(&r.body[..], &manifest[..], "{tag}");
        for (d, data) in blobs {
            let r = send(
                addr,
                "GET",
                &format!("/v2/crash/app/blobs/{d}"),
                PULLER,
                &[],
                vec![],
            )
            .await;
            assert_eq!(r.status, 200, "{tag} {d}");
            assert_eq!(&r.body[..], &data[..], "{tag} {d}");
        }
    }
    // The interrupted upload left nothing readable.
    let r = send(
        addr,
        "HEAD",
        &format!("/v2/crash/app/blobs/{big_digest}"),
        PULLER,
        &[],
        vec![],
    )
    .await;
    assert!(r.status == 404 || r.status == 200, "{}", r.status);
    if r.status == 200 {
        // It completed before the kill: then it must be whole.
        let r = send(
            addr,
            "GET",
            &format!("/v2/crash/app/blobs/{big_digest}"),
            PULLER,
            &[],
            vec![],
        )
        .await;
        assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), big_digest);
    }
    // The session resumes where its last acknowledged chunk ended.
    let r = send(addr, "GET", &resumable, ALICE, &[], vec![]).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["range"], "0-99999");
    let second = vec![2u8; 5_000];
    let mut all = first.clone();
    all.extend_from_slice(&second);
    let d = format!("sha256:{}", sha256_hex(&all));
    let r = send(
        addr,
        "PUT",
        &format!("{resumable}?digest={d}"),
        ALICE,
        &[("content-range", "100000-104999")],
        second,
    )
    .await;
    assert_eq!(r.status, 201);

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let verify = std::process::Command::new(everlock_bin())
        .args(["store", "verify", "everlock-oci-local"])
        .env("EVERLOCK_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "store verify failed: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
