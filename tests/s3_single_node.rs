//! One node with its object bytes in S3 (`[storage] objects = "s3"`, `meta = "sqlite"`) on a
//! real SeaweedFS: the real binary serves an OCI push and pull, the blob bytes are in the
//! bucket and not in the data directory, a restart serves them again, `everlock store verify`
//! is clean, and an unreachable endpoint stops the start with one line. Also prints push and
//! pull throughput of a 64 MiB blob on S3 and on files (whatever profile the tests run in).

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
#[path = "../storage/tests/support/seaweedfs.rs"]
mod seaweedfs;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, everlock_bin};
use oci_common::{send, sha256_hex};

const ADMIN: (&str, &str) = ("admin", "admin-pw-s3");
const BLOB_SIZE: usize = 64 * 1024 * 1024;

fn s3_section(endpoint: &str) -> String {
    format!(
        "[storage]\nobjects = \"s3\"\n[storage.s3]\nendpoint = \"{endpoint}\"\nbucket = \"{}\"\nprefix = \"node1/\"\naccess-key-id = \"{}\"\nallow-http = true\n",
        seaweedfs::BUCKET,
        seaweedfs::ACCESS_KEY
    )
}

fn env() -> [(&'static str, &'static str); 2] {
    [
        (
            "EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY",
            seaweedfs::SECRET_KEY,
        ),
        ("EVERLOCK_ADMIN_PASSWORD", ADMIN.1),
    ]
}

/// Pseudo-random bytes, so that nothing along the way can compress or dedupe them.
fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Pushes `bytes` as a blob of `repo` in one monolithic upload; returns its digest and the
/// time the push took.
async fn push_blob(server: &Server, repo: &str, bytes: &[u8]) -> (String, Duration) {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    let started = Instant::now();
    let r = send(
        server.http,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        ADMIN,
        &[("content-type", "application/octet-stream")],
        bytes.to_vec(),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}\n{}", r.body, server.log());
    (digest, started.elapsed())
}

/// Pushes a manifest naming `layer` under `repo:tag`; returns the manifest bytes.
async fn push_manifest(server: &Server, repo: &str, tag: &str, layer: (&str, usize)) -> Vec<u8> {
    let config = b"{}".to_vec();
    let (config_digest, _) = push_blob(server, repo, &config).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer.0,
            "size": layer.1,
        }],
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    let r = send(
        server.http,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        ADMIN,
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    body
}

/// Pulls a blob; returns its bytes and the time the pull took.
async fn pull(server: &Server, path: &str) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let r = send(server.http, "GET", path, ADMIN, &[], vec![]).await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    (r.body.to_vec(), started.elapsed())
}

fn mib_per_s(d: Duration) -> f64 {
    (BLOB_SIZE as f64 / (1024.0 * 1024.0)) / d.as_secs_f64()
}

/// Runs `everlock store <args>` with the server's configuration file.
fn store_cmd(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(everlock_bin())
        .arg("store")
        .args(args)
        .arg("--config")
        .arg(dir.join("everlock.toml"))
        .env(
            "EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY",
            seaweedfs::SECRET_KEY,
        )
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_s3_objects_serves_pushes_across_restarts() {
    let Some(weed) = seaweedfs::SeaweedFs::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = s3_section(&weed.endpoint);
    let server = Server::start_env(dir.path(), &config, &env());
    let bytes = blob(BLOB_SIZE, 1);
    let (digest, pushed) = push_blob(&server, "app", &bytes).await;
    // The first write into a fresh SeaweedFS also allocates its volumes: time a second blob.
    let (_, warm) = push_blob(&server, "other", &blob(BLOB_SIZE, 2)).await;
    let manifest = push_manifest(&server, "app", "v1", (&digest, bytes.len())).await;
    let (back, pulled) = pull(&server, &format!("/v2/app/blobs/{digest}")).await;
    assert!(back == bytes, "the blob came back different");
    let (m, _) = pull(&server, "/v2/app/manifests/v1").await;
    assert_eq!(m, manifest);
    eprintln!(
        "THROUGHPUT s3 (SeaweedFS): push 64 MiB {pushed:?} ({:.0} MiB/s; next blob {warm:?}, {:.0} MiB/s), pull {pulled:?} ({:.0} MiB/s)",
        mib_per_s(pushed),
        mib_per_s(warm),
        mib_per_s(pulled)
    );

    // The bytes are in the bucket, under the prefix; no store keeps an objects/ directory.
    let data = dir.path().join("data");
    let mut s3_stores = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.join("FORMAT").is_file() {
            assert!(!path.join("objects").exists(), "{}", path.display());
            assert!(path.join("OBJECTS-S3").is_file(), "{}", path.display());
            s3_stores.push(path.file_name().unwrap().to_str().unwrap().to_owned());
        }
    }
    assert!(s3_stores.len() >= 2, "{s3_stores:?}");
    let du = weed
        .shell(&format!("fs.du /buckets/{}/node1", seaweedfs::BUCKET))
        .unwrap();
    // `block:  17	logical size:  67108866	/buckets/everlock/node1`
    let stored: u64 = du
        .split("logical size:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no logical size in {du}"));
    assert!(stored >= 2 * BLOB_SIZE as u64, "{du}");
    // Under `<prefix><store>/objects/<fan>/<blake3>`.
    let tree = weed
        .shell(&format!("fs.tree /buckets/{}/node1", seaweedfs::BUCKET))
        .unwrap();
    assert!(
        tree.contains("everlock-oci-local") && tree.contains("objects"),
        "{tree}"
    );

    // A restart serves everything again from the bucket.
    let mut server = server;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    drop(server);
    let server = Server::start_env(dir.path(), &config, &env());
    let (again, _) = pull(&server, &format!("/v2/app/blobs/{digest}")).await;
    assert!(
        again == bytes,
        "the blob came back different after a restart"
    );
    let (m, _) = pull(&server, "/v2/app/manifests/v1").await;
    assert_eq!(m, manifest);

    // The offline commands read the same storage (next to the running server).
    let list = store_cmd(dir.path(), &["list"]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    for name in &s3_stores {
        assert!(listed.contains(name.as_str()), "{listed}");
        let v = store_cmd(dir.path(), &["verify", name]);
        assert!(
            v.status.success(),
            "verify {name}: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
    drop(server);

    // The same blob on files, for comparison.
    let files_dir = tempfile::tempdir().unwrap();
    let files = Server::start_env(files_dir.path(), "", &env());
    let (digest, pushed) = push_blob(&files, "app", &bytes).await;
    let (back, pulled) = pull(&files, &format!("/v2/app/blobs/{digest}")).await;
    assert!(back == bytes);
    eprintln!(
        "THROUGHPUT file: push 64 MiB {pushed:?} ({:.0} MiB/s), pull {pulled:?} ({:.0} MiB/s)",
        mib_per_s(pushed),
        mib_per_s(pulled)
    );
}

#[test]
fn an_unreachable_bucket_stops_the_start_with_one_line() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("everlock.toml");
    let text = format!(
        "data-dir = {:?}\n{}",
        dir.path().join("data").display().to_string(),
        s3_section(&format!("http://127.0.0.1:{port}"))
    );
    std::fs::write(&file, text).unwrap();
    let started = Instant::now();
    let out = Command::new(everlock_bin())
        .args(["serve", "--config"])
        .arg(&file)
        .args(["--frontend-http-listen-http", "off"])
        .args(["--frontend-http-listen-https", "off"])
        .args(["--frontend-ssh-listen", "off", "--metrics-listen", "off"])
        .envs(env())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: invalid object storage: bucket everlock at http://127.0.0.1:{port} is unusable: "
        )),
        "{err}"
    );
    assert!(!err.contains(seaweedfs::SECRET_KEY), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    eprintln!("unreachable bucket refused after {:?}", started.elapsed());
}
