//! `everlock backup` while the server runs and a push is in flight, then `everlock restore`
//! into a new data directory: the restored server serves the image acknowledged before the
//! backup byte for byte, does not know the one acknowledged after it, keeps its TLS CA, and
//! every store verifies clean. Both commands refuse non-empty targets with one-line errors.

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

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, everlock_bin};
use oci_common::{ALICE, PULLER, seed_users, send, sha256_hex};

const REPO: &str = "backup/app";
const STORE: &str = "everlock-oci-local";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

fn everlock(data_dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(everlock_bin())
        .args(args)
        .env("EVERLOCK_DATA_DIR", data_dir)
        .env_remove("EVERLOCK_CONFIG")
        .output()
        .unwrap();
    eprintln!(
        "everlock {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asserts a failure with exit status 1 and exactly one line `error: ...` naming `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(needle),
        "{stderr}"
    );
}

/// A blob pushed in one monolithic POST; returns its digest.
async fn upload(addr: std::net::SocketAddr, data: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_hex(data));
    let path = format!("/v2/{REPO}/blobs/uploads/?digest={digest}");
    let r = send(addr, "POST", &path, ALICE, &[], data.to_vec()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    digest
}

/// An image manifest over a config and one layer, pushed under `tag`; returns its bytes.
async fn put_manifest(
    addr: std::net::SocketAddr,
    tag: &str,
    config: (&str, usize),
    layer: (&str, usize),
) -> Vec<u8> {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.0, "size": layer.1}],
    })
    .to_string()
    .into_bytes();
    let path = format!("/v2/{REPO}/manifests/{tag}");
    let headers = [("content-type", MANIFEST_TYPE)];
    let r = send(addr, "PUT", &path, ALICE, &headers, manifest.clone()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    manifest
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// Pushes a 48 MiB blob in 1 MiB chunks with a small image between chunks, so commits and an
/// upload session are in flight across the whole backup; the blob's manifest (`v2`) is only
/// put after `backup_done`. Returns the digest of v2's layer.
async fn slow_push(
    addr: std::net::SocketAddr,
    started: Arc<AtomicBool>,
    backup_done: Arc<AtomicBool>,
) -> String {
    const CHUNK: usize = 1 << 20;
    let big = pattern(48 * CHUNK, 7);
    let r = send(
        addr,
        "POST",
        &format!("/v2/{REPO}/blobs/uploads/"),
        ALICE,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 202);
    let mut location = r.headers["location"].to_str().unwrap().to_owned();
    for (i, chunk) in big.chunks(CHUNK).enumerate() {
        let range = format!("{}-{}", i * CHUNK, i * CHUNK + chunk.len() - 1);
        let headers = [("content-range", range.as_str())];
        let r = send(addr, "PATCH", &location, ALICE, &headers, chunk.to_vec()).await;
        assert_eq!(r.status, 202, "chunk {i}");
        location = r.headers["location"].to_str().unwrap().to_owned();
        let config = format!("{{\"side\":{i}}}").into_bytes();
        let layer = pattern(40_000, 1000 + i as u32);
        let (c, l) = (upload(addr, &config).await, upload(addr, &layer).await);
        put_manifest(
            addr,
            &format!("side{i}"),
            (&c, config.len()),
            (&l, layer.len()),
        )
        .await;
        started.store(true, Ordering::Release);
    }
    while !backup_done.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let digest = format!("sha256:{}", sha256_hex(&big));
    let r = send(
        addr,
        "PUT",
        &format!("{location}?digest={digest}"),
        ALICE,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 201);
    let config = b"{\"image\":2}".to_vec();
    let c = upload(addr, &config).await;
    put_manifest(addr, "v2", (&c, config.len()), (&digest, big.len())).await;
    digest
}

/// Every directory of the backup is 0700 and every file 0600, or 0400 for an object; files
/// under `_host/` keep the modes they had in the data directory.
fn assert_private(backup: &Path, data: &Path, rel: &Path) {
    for entry in std::fs::read_dir(backup.join(rel)).unwrap() {
        let entry = entry.unwrap();
        let rel = rel.join(entry.file_name());
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        if rel.starts_with("_host") {
            let original = std::fs::metadata(data.join(&rel)).unwrap().mode() & 0o777;
            assert_eq!(mode, original, "{}", rel.display());
        } else if entry.file_type().unwrap().is_dir() {
            assert_eq!(mode, 0o700, "{}", rel.display());
        } else if rel.components().any(|c| c.as_os_str() == "objects") {
            assert_eq!(mode, 0o400, "{}", rel.display());
        } else {
            assert_eq!(mode, 0o600, "{}", rel.display());
        }
        if entry.file_type().unwrap().is_dir() {
            assert_private(backup, data, &rel);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_during_a_push_then_restore_serves_the_earlier_image() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_users(&data, false).await;
    let mut server = Server::start_env(dir.path(), "", &[]);
    let addr = server.http;

    let config = b"{\"image\":1}".to_vec();
    let layer = pattern(3 << 20, 1);
    let (config_digest, layer_digest) = (upload(addr, &config).await, upload(addr, &layer).await);
    let manifest = put_manifest(
        addr,
        "v1",
        (&config_digest, config.len()),
        (&layer_digest, layer.len()),
    )
    .await;

    let (started, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let pusher = tokio::spawn(slow_push(addr, started.clone(), done.clone()));
    while !started.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let backup = dir.path().join("backup");
    let out = tokio::task::spawn_blocking({
        let (data, backup) = (data.clone(), backup.clone());
        move || everlock(&data, &["backup", backup.to_str().unwrap()])
    })
    .await
    .unwrap();
    done.store(true, Ordering::Release);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("backed up {STORE}: commit")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let big_digest = pusher.await.unwrap();

    let manifest_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("everlock-backup.json")).unwrap())
            .unwrap();
    assert_eq!(manifest_json["host"], true);
    assert_eq!(manifest_json["everlock-version"], env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> = manifest_json["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&STORE) && names.contains(&"everlock-users"),
        "{names:?}"
    );
    assert_private(&backup, &data, Path::new(""));
    assert_one_line_error(
        &everlock(&data, &["backup", backup.to_str().unwrap()]),
        "not empty",
    );

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    drop(server);

    let restored = dir.path().join("restored");
    let out = everlock(&restored, &["restore", backup.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("every store verified"), "{stdout}");
    assert_one_line_error(
        &everlock(&restored, &["restore", backup.to_str().unwrap()]),
        "not empty",
    );
    let incomplete = dir.path().join("incomplete");
    std::fs::create_dir(&incomplete).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let out = everlock(&elsewhere, &["restore", incomplete.to_str().unwrap()]);
    assert_one_line_error(&out, "not a complete backup");
    assert_eq!(
        std::fs::read(restored.join("_host/tls/ca.pem")).unwrap(),
        std::fs::read(data.join("_host/tls/ca.pem")).unwrap()
    );

    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let mut server = Server::start_in(&second, &restored, "", None);
    let addr = server.http;
    let r = send(
        addr,
        "GET",
        &format!("/v2/{REPO}/manifests/v1"),
        PULLER,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&manifest));
    assert_eq!(&r.body[..], &manifest[..]);
    for (digest, bytes) in [(&config_digest, &config), (&layer_digest, &layer)] {
        let r = send(
            addr,
            "GET",
            &format!("/v2/{REPO}/blobs/{digest}"),
            PULLER,
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200, "{digest}");
        assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), *digest);
        assert_eq!(&r.body[..], &bytes[..]);
    }
    // Acknowledged only after the backup had finished: not in it.
    let r = send(
        addr,
        "GET",
        &format!("/v2/{REPO}/manifests/v2"),
        PULLER,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    let r = send(
        addr,
        "HEAD",
        &format!("/v2/{REPO}/blobs/{big_digest}"),
        PULLER,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    let list = everlock(&restored, &["store", "list"]);
    assert!(list.status.success());
    let stores: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(stores.len() >= names.len(), "{stores:?} vs {names:?}");
    for store in &stores {
        assert!(
            everlock(&restored, &["store", "verify", store])
                .status
                .success(),
            "{store}"
        );
    }
}
