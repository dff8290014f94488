//! Registry settings edited live from the console (issue #15: "editable live once the console
//! can set kind settings"), through OpenSSH against the real binary: a quota typed as a TOML
//! value refuses a push with 403 DENIED, `unset` lets it pass; `auth=token` makes `/v2/` answer
//! a Bearer challenge and `auth=basic` switches back.

#![cfg(feature = "backend-oci-http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

#[path = "ssh_util/cli.rs"]
mod cli;
mod common;
mod oci_common;

use common::Server;
use oci_common::{ADMIN, ALICE, seed_users, send, sha256_hex};

/// Runs one console line as the administrator through OpenSSH; the line travels as the
/// remote command, so its single quotes reach the console's own word splitter.
fn console(server: &Server, line: &str) -> cli::Out {
    let out = cli::run(
        cli::with_password(server.ssh, ADMIN.0, ADMIN.1, &[line]),
        None,
    );
    assert_eq!(out.code, 0, "{line}: {out:?}");
    out
}

/// Uploads a one-layer image's blobs and PUTs its manifest under `tag`; returns the
/// manifest PUT's status and body.
async fn push(server: &Server, repo: &str, tag: &str) -> (u16, String) {
    let mut digests = Vec::new();
    for data in [
        format!("{{\"t\":\"{tag}\"}}").into_bytes(),
        format!("layer {tag}").into_bytes(),
    ] {
        let d = format!("sha256:{}", sha256_hex(&data));
        let path = format!("/v2/{repo}/blobs/uploads/?digest={d}");
        let r = send(server.http, "POST", &path, ALICE, &[], data.clone()).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
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
        manifest,
    )
    .await;
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_token_mode_set_from_the_console_apply_live() {
    if !cli::have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(dir.path(), "", &[]);

    // A quota far below one image's size, typed as one quoted TOML word.
    console(
        &server,
        r#"/oci set default 'quota=[{repositories="team/*", bytes=100}]'"#,
    );
    let listed = console(&server, "/oci list");
    assert!(listed.stdout.contains("quota=[{ bytes = 100"), "{listed:?}");
    let (status, body) = push(&server, "team/app", "v1").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("DENIED"), "{body}");
    assert!(body.contains("quota exceeded for team/*"), "{body}");

    // Back to the default (no quota): the same push passes.
    console(&server, "/oci unset default quota");
    let (status, body) = push(&server, "team/app", "v1").await;
    assert_eq!(status, 201, "{body}");

    // The token flow: Basic credentials count only at the token endpoint, so `/v2/` answers
    // with the Bearer challenge that tells `docker login` where to go.
    console(&server, "/oci set default auth=token");
    let r = send(server.http, "GET", "/v2/", ALICE, &[], Vec::new()).await;
    assert_eq!(r.status, 401);
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    console(&server, "/oci set default auth=basic");
    let r = send(server.http, "GET", "/v2/", ALICE, &[], Vec::new()).await;
    assert_eq!(r.status, 200);
}
