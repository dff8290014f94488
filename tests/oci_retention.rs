//! Retention rules end to end (issue #15 item 2): skopeo pushes tags to the real server; over
//! SSH `/oci retention default --dry-run --json` lists what the rules would remove and why
//! and changes nothing; then the server's maintenance task applies the rules on its own.

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

use std::path::Path;
use std::time::Duration;

use common::{Server, have_binary};
use oci_common::{ADMIN, ALICE, Layout, PULLER, cert_dir, seed_users, send, skopeo};

/// The default registry with a rule for `team/*`: the newest tag plus `v1` stay.
fn config(maintenance_secs: u64) -> String {
    format!(
        "[storage]\nmaintenance-interval-secs = {maintenance_secs}\nmaintenance-grace-secs = 0\n[backends.oci-http.instances.default]\nvhosts = [\"localhost\"]\nprefix = \"/v2\"\nstore = \"everlock-oci-local\"\n[backends.oci-http.instances.default.settings]\ngc-grace-secs = 0\n[[backends.oci-http.instances.default.settings.retention]]\nrepositories = \"team/*\"\nkeep-last = 1\nkeep-tags = \"v1\"\nuntagged-after-days = 0\n"
    )
}

async fn tags(server: &Server, repo: &str) -> Vec<String> {
    let r = send(
        server.http,
        "GET",
        &format!("/v2/{repo}/tags/list"),
        PULLER,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn push(work: &Path, layout: &Layout, certs: &str, server: &Server, tag: &str, repo: &str) {
    let src = format!("oci:{}:{tag}", layout.dir.display());
    let dest = format!("docker://localhost:{}/{repo}:{tag}", server.https.port());
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    let out = skopeo(
        work,
        &[
            "copy",
            "--dest-cert-dir",
            certs,
            "--dest-creds",
            &creds,
            &src,
            &dest,
        ],
    );
    assert!(out.status.success(), "skopeo copy {repo}:{tag}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_and_maintenance_applies_the_rules() {
    if !have_binary("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let mut server = Server::start_env(dir.path(), &config(0), &[]);
    let certs = cert_dir(&server.ca_pem(), &work);
    let certs = certs.to_str().unwrap().to_owned();
    let mut layout = Layout::new(&work.join("layout"));
    let mut images = Vec::new();
    for tag in ["v1", "v2", "v3"] {
        images.push(layout.image("amd64", format!("image {tag}").as_bytes(), Some(tag)));
    }
    for tag in ["v1", "v2", "v3"] {
        push(&work, &layout, &certs, &server, tag, "team/app");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    push(&work, &layout, &certs, &server, "v1", "other");

    let admin = ssh_util::login(server.ssh, ADMIN.0, ADMIN.1).await;
    let out = admin.exec("/oci retention default --dry-run --json").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let plan = plan.as_array().unwrap();
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0]["repository"], "team/app");
    assert_eq!(plan[0]["tag"], "v2");
    assert!(
        plan[0]["reason"].as_str().unwrap().contains("keep-last 1"),
        "{plan:?}"
    );
    let out = admin.exec("/oci retention default --dry-run").await;
    assert!(
        out.stdout.contains("retention would remove 1 tags"),
        "{out:?}"
    );
    assert_eq!(tags(&server, "team/app").await, ["v1", "v2", "v3"]);
    // A writer may not apply the rules.
    let alice = ssh_util::login(server.ssh, ALICE.0, ALICE.1).await;
    let out = alice.exec("/oci retention default").await;
    assert_eq!(out.status, Some(1), "{out:?}");
    drop((admin, alice));
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    // With maintenance every second, the server applies the rules by itself.
    let server = Server::start_env(dir.path(), &config(1), &[]);
    // The first pass removes the tag; a later one the manifest it left untagged (its day
    // count started at the untagging; here the period is 0) and the blobs only it used.
    let v2 = format!("/v2/team/app/manifests/{}", images[1].manifest_digest);
    let layer = format!("/v2/team/app/blobs/{}", images[1].blobs.last().unwrap());
    for _ in 0..100 {
        let gone = send(server.http, "GET", &v2, PULLER, &[], vec![])
            .await
            .status
            == 404;
        if gone && tags(&server, "team/app").await == ["v1", "v3"] {
            assert_eq!(tags(&server, "other").await, ["v1"], "no rule");
            let log = server.log();
            assert!(log.contains("retention: removed 1 tags"), "{log}");
            assert!(
                log.contains("retention: removed 0 tags and 1 untagged manifests"),
                "{log}"
            );
            // Nothing else used v2's config and layer: the same pass collected them.
            assert!(log.contains("gc: 2 blobs"), "{log}");
            let r = send(server.http, "HEAD", &layer, PULLER, &[], vec![]).await;
            assert_eq!(r.status, 404);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "maintenance did not apply the rules: {:?}",
        tags(&server, "team/app").await
    );
}
