//! Quotas end to end (issue #15 item 3): skopeo pushes into `team/*` until the quota is
//! reached; the push that would exceed it fails with 403 DENIED "quota exceeded for team/*",
//! a push elsewhere still works, and `/oci usage default --json` over SSH shows the bytes per
//! repository and per quota, the image shared by two repositories counted once.

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

use common::{Server, have_binary};
use oci_common::{ADMIN, ALICE, Layout, cert_dir, seed_users, skopeo};

/// Room for one image of about 100 KB (layer, config and manifest), not for two.
const LIMIT: u64 = 150_000;

fn config() -> String {
    format!(
        "[backends.oci-http.instances.default]\nvhosts = [\"localhost\"]\nprefix = \"/v2\"\nstore = \"everlock-oci-local\"\n[backends.oci-http.instances.default.settings]\n[[backends.oci-http.instances.default.settings.quota]]\nrepositories = \"team/*\"\nbytes = {LIMIT}\n"
    )
}

fn push(
    work: &Path,
    layout: &Layout,
    certs: &str,
    server: &Server,
    tag: &str,
    repo: &str,
) -> std::process::Output {
    let src = format!("oci:{}:{tag}", layout.dir.display());
    let dest = format!("docker://localhost:{}/{repo}:{tag}", server.https.port());
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    skopeo(
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
    )
}

/// Content that does not compress, so the layer keeps its size whatever the client does.
fn noise(seed: u8, len: usize) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_beyond_the_quota_is_refused_and_usage_counts_shared_blobs_once() {
    if !have_binary("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(dir.path(), &config(), &[]);
    let certs = cert_dir(&server.ca_pem(), &work);
    let certs = certs.to_str().unwrap().to_owned();
    let mut layout = Layout::new(&work.join("layout"));
    layout.image("amd64", &noise(1, 100_000), Some("one"));
    layout.image("amd64", &noise(2, 100_000), Some("two"));

    assert!(
        push(&work, &layout, &certs, &server, "one", "team/a")
            .status
            .success()
    );
    // The same image in another repository of the quota adds only nothing new but a manifest.
    assert!(
        push(&work, &layout, &certs, &server, "one", "team/b")
            .status
            .success()
    );
    let refused = push(&work, &layout, &certs, &server, "two", "team/a");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("quota exceeded for team/*: used ")
            && stderr.contains(&format!(" of {LIMIT} bytes")),
        "{stderr}"
    );
    assert!(
        push(&work, &layout, &certs, &server, "two", "elsewhere")
            .status
            .success()
    );

    let admin = ssh_util::login(server.ssh, ADMIN.0, ADMIN.1).await;
    let out = admin.exec("/oci usage default --json").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    let usage: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let repos = usage["repositories"].as_array().unwrap();
    let bytes = |name: &str| {
        repos
            .iter()
            .find(|r| r["repository"] == name)
            .unwrap_or_else(|| panic!("{name} in {usage}"))["bytes"]
            .as_u64()
            .unwrap()
    };
    let (a, b) = (bytes("team/a"), bytes("team/b"));
    assert!(a > 100_000 && a == b, "{usage}");
    assert!(bytes("elsewhere") > 100_000);
    let quota = &usage["quotas"][0];
    assert_eq!(quota["repositories"], "team/*");
    assert_eq!(quota["limit"], LIMIT);
    let used = quota["used"].as_u64().unwrap();
    assert!(used < a + b && used > a, "shared blobs count once: {usage}");
    let out = admin.exec("/oci usage default").await;
    assert!(out.stdout.contains("QUOTA  USED  LIMIT"), "{out:?}");
}
