//! Console content management end to end (issue #15 item 8): over SSH against the real
//! binary, `/oci repos`, `/oci tags` (text and JSON) and `/oci rm` of a tag and of a manifest
//! by digest; a pull-only user is refused.

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
mod ssh_util;

use common::Server;
use oci_common::{ADMIN, ALICE, PULLER, seed_users, send, sha256_hex};

/// Pushes a one-layer image under `tag` with plain HTTP requests; returns its digest.
async fn push(server: &Server, repo: &str, tag: &str) -> String {
    let mut digests = Vec::new();
    for data in [
        format!("{{\"t\":\"{tag}\"}}").into_bytes(),
        format!("layer {tag}").into_bytes(),
    ] {
        let d = format!("sha256:{}", sha256_hex(&data));
        let path = format!("/v2/{repo}/blobs/uploads/?digest={d}");
        assert_eq!(
            send(server.http, "POST", &path, ALICE, &[], data.clone())
                .await
                .status,
            201
        );
        digests.push((d, data.len()));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0].0, "size": digests[0].1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[1].0, "size": digests[1].1}],
    })
    .to_string()
    .into_bytes();
    let r = send(
        server.http,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        ALICE,
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.clone(),
    )
    .await;
    assert_eq!(r.status, 201);
    format!("sha256:{}", sha256_hex(&manifest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repos_tags_and_rm_over_ssh() {
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(dir.path(), "", &[]);
    let d1 = push(&server, "team/app", "v1").await;
    let d2 = push(&server, "team/app", "v2").await;
    push(&server, "tools/ci", "latest").await;

    let admin = ssh_util::login(server.ssh, ADMIN.0, ADMIN.1).await;
    let out = admin.exec("/oci repos default").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("team/app  2  2"), "{out:?}");
    assert!(out.stdout.contains("tools/ci  1  1"), "{out:?}");
    let out = admin.exec("/oci tags default team/app --json").await;
    let tags: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(tags[0]["tag"], "v1");
    assert_eq!(tags[0]["digest"], d1.as_str());
    assert_eq!(tags[1]["tag"], "v2");

    // The console runs instance commands for system administrators only: a pull-only user
    // is refused before the registry is asked (the registry checks again: unit tests).
    let puller = ssh_util::login(server.ssh, PULLER.0, PULLER.1).await;
    for line in ["/oci tags default team/app", "/oci rm default team/app:v2"] {
        let out = puller.exec(line).await;
        assert_eq!(out.status, Some(1), "{out:?}");
        assert!(out.stderr.contains("permission denied"), "{out:?}");
    }

    let out = admin.exec("/oci rm default team/app:v2").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("removed tag team/app:v2"), "{out:?}");
    let out = admin.exec(&format!("/oci rm default team/app@{d1}")).await;
    assert_eq!(out.status, Some(0), "{out:?}");
    // Removing a tag leaves its manifest; removing a manifest takes its tags along.
    let by_digest = format!("/v2/team/app/manifests/{d2}");
    for (path, status) in [
        ("/v2/team/app/manifests/v1", 404),
        ("/v2/team/app/manifests/v2", 404),
        (by_digest.as_str(), 200),
    ] {
        assert_eq!(
            send(server.http, "GET", path, PULLER, &[], vec![])
                .await
                .status,
            status,
            "{path}"
        );
    }
    let out = admin.exec("/oci tags default team/app --json").await;
    let tags: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(tags.as_array().unwrap().len(), 0, "{tags}");
    let out = admin.exec("/oci rm default team/app").await;
    assert_eq!(out.status, Some(1), "{out:?}");
}
