//! Two nodes on shared storage for the multi-node end-to-end tests, and the small OCI and
//! polling helpers they share.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: each test crate uses a subset, and a panic is a test failure"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{Server, everlock_bin};
use crate::oci_common::{send, sha256_hex};
use crate::shared_storage::SharedStorage;

/// The administrator every node shares (bootstrapped by the first node).
pub const ADMIN: (&str, &str) = ("admin", "admin-pw-multi-node");

/// Two running nodes and what they run on. Field order is drop order: the nodes stop before
/// the services they use.
pub struct Cluster {
    pub a: Server,
    pub b: Server,
    pub shared: SharedStorage,
    /// The `[storage]` section both nodes run with.
    pub section: String,
    pub a_dir: PathBuf,
    pub b_dir: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts PostgreSQL, SeaweedFS and two nodes, A first (it creates the administrator),
    /// with their objects under `prefix`. `None` after a SKIP line when a service is missing.
    pub async fn start(prefix: &str) -> Option<Cluster> {
        let shared = tokio::task::spawn_blocking(SharedStorage::start)
            .await
            .unwrap()?;
        let dir = tempfile::tempdir().unwrap();
        let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a_dir).unwrap();
        std::fs::create_dir_all(&b_dir).unwrap();
        let section = shared.section(prefix);
        let a = node(&a_dir, &section);
        let b = node(&b_dir, &section);
        Some(Cluster {
            a,
            b,
            shared,
            section,
            a_dir,
            b_dir,
            dir,
        })
    }

    /// Starts node A again on its directory (after it was killed).
    pub fn restart_a(&mut self) {
        let a = node(&self.a_dir, &self.section);
        self.a = a;
    }
}

/// One node: `everlock serve` in `dir` (its own data directory, ports and ready file).
pub fn node(dir: &std::path::Path, section: &str) -> Server {
    let mut env = SharedStorage::env();
    env.push(("EVERLOCK_ADMIN_PASSWORD", ADMIN.1));
    Server::start_env(dir, section, &env)
}

/// Runs `everlock store <args>` with node A's configuration file.
pub fn store_cmd(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(everlock_bin())
        .arg("store")
        .args(args)
        .arg("--config")
        .arg(cluster.a_dir.join("everlock.toml"))
        .envs(SharedStorage::env())
        .output()
        .unwrap()
}

/// Polls `check` every 10 ms for up to `limit`; how long it took to hold, `None` if it never
/// did.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A blob's digest and size.
pub type Descriptor = (String, usize);

/// Pushes `bytes` as a blob of `repo` in one request; returns its descriptor.
pub async fn push_blob(node: SocketAddr, repo: &str, bytes: &[u8]) -> Descriptor {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    let r = send(
        node,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        ADMIN,
        &[("content-type", "application/octet-stream")],
        bytes.to_vec(),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (digest, bytes.len())
}

/// Pushes a config and a layer blob to `repo`; returns their descriptors.
pub async fn push_image(node: SocketAddr, repo: &str, layer: &[u8]) -> (Descriptor, Descriptor) {
    let config = push_blob(node, repo, b"{\"architecture\":\"amd64\",\"os\":\"linux\"}").await;
    let layer = push_blob(node, repo, layer).await;
    (config, layer)
}

/// An image manifest over `config` and `layer`, made unique by `note`.
pub fn manifest(config: &Descriptor, layer: &Descriptor, note: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.0,
            "size": config.1,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer.0,
            "size": layer.1,
        }],
        "annotations": {"note": note},
    }))
    .unwrap()
}

/// Pushes a manifest to `repo:tag`; returns its digest.
pub async fn push_manifest(node: SocketAddr, repo: &str, tag: &str, manifest: Vec<u8>) -> String {
    let digest = format!("sha256:{}", sha256_hex(&manifest));
    let r = send(
        node,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        ADMIN,
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        manifest,
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    digest
}
