//! `everlock oci gc` through the real binary, over a store that a real server filled and
//! then released: a dry run, a collection that removes only the unreferenced blob, and the
//! registry serving the rest afterwards.

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

use std::time::Duration;

use common::{Server, everlock_bin};
use oci_common::{ALICE, PULLER, seed_users, send, sha256_hex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_gc_removes_only_unreferenced_blobs() {
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let mut server = Server::start_env(dir.path(), "", &[]);
    let mut digests = Vec::new();
    for data in [&b"{}"[..], b"layer", b"stray"] {
        let d = format!("sha256:{}", sha256_hex(data));
        let path = format!("/v2/gc/app/blobs/uploads/?digest={d}");
        assert_eq!(
            send(server.http, "POST", &path, ALICE, &[], data.to_vec())
                .await
                .status,
            201
        );
        digests.push(d);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0], "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[1], "size": 5}],
    });
    let r = send(
        server.http,
        "PUT",
        "/v2/gc/app/manifests/v1",
        ALICE,
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 201);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    let data = dir.path().join("data");
    let gc = |dry_run: bool| -> String {
        let mut cmd = std::process::Command::new(everlock_bin());
        cmd.args(["oci", "gc", "default", "--untagged", "--grace-secs", "0"])
            .env("EVERLOCK_DATA_DIR", &data);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = gc(true);
    assert!(dry.contains(&format!("blob {}", digests[2])), "{dry}");
    let done = gc(false);
    assert!(done.contains("0 manifests, 1 blobs (5 bytes)"), "{done}");
    assert!(gc(false).contains("0 manifests, 0 blobs"));

    let server = Server::start_env(dir.path(), "", &[]);
    for (d, status) in [(&digests[0], 200), (&digests[1], 200), (&digests[2], 404)] {
        let r = send(
            server.http,
            "HEAD",
            &format!("/v2/gc/app/blobs/{d}"),
            PULLER,
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, status, "{d}");
    }
}
