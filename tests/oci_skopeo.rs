//! End to end with a real client: skopeo (containers/image) against the registry over HTTPS
//! with Basic auth: login, copy to and from an OCI layout, inspect, list-tags, delete, the
//! Docker schema 2 format, a multi-arch index, a pull-only user refused push (403), and
//! anonymous pulls once `anon` holds reader.

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

use bytes::Bytes;
use common::{Server, have_binary};
use http_body_util::Full;
use oci_common::{ADMIN, ALICE, Layout, PULLER, cert_dir, seed_users, skopeo};

fn creds(user: (&str, &str)) -> String {
    format!("{}:{}", user.0, user.1)
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "skopeo failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_push_pull_inspect_list_delete_and_anonymous_pull() {
    if !have_binary("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let mut server = Server::start_env(dir.path(), "", &[]);
    let certs = cert_dir(&server.ca_pem(), &work);
    let certs = certs.to_str().unwrap();
    let host = format!("localhost:{}", server.https.port());
    let image = |repo: &str| format!("docker://{host}/{repo}");

    // login: 200 with the right password, failure with a wrong one.
    ok(&skopeo(
        &work,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            ALICE.0,
            "-p",
            ALICE.1,
            &host,
        ],
    ));
    assert!(
        !skopeo(
            &work,
            &[
                "login",
                "--cert-dir",
                certs,
                "-u",
                ALICE.0,
                "-p",
                "wrong",
                &host
            ]
        )
        .status
        .success()
    );

    // Push an image from an OCI layout the test builds.
    let mut layout = Layout::new(&work.join("layout"));
    let v1 = layout.image("amd64", b"version one", Some("v1"));
    let v2 = layout.image("amd64", b"version two", Some("v2"));
    let layout_dir = layout.dir.clone();
    let src = |tag: &str| format!("oci:{}:{tag}", layout_dir.display());
    let alice = creds(ALICE);
    for (tag, repo) in [("v1", "team/app:v1"), ("v2", "team/app:v2")] {
        ok(&skopeo(
            &work,
            &[
                "copy",
                "--dest-cert-dir",
                certs,
                "--dest-creds",
                &alice,
                &src(tag),
                &image(repo),
            ],
        ));
    }
    // The Docker schema 2 format too (skopeo converts the manifest).
    ok(&skopeo(
        &work,
        &[
            "copy",
            "--format",
            "v2s2",
            "--dest-cert-dir",
            certs,
            "--dest-creds",
            &alice,
            &src("v1"),
            &image("team/docker:v1"),
        ],
    ));

    // inspect, raw bytes identical to what was pushed.
    let puller = creds(PULLER);
    let info: serde_json::Value = serde_json::from_str(&ok(&skopeo(
        &work,
        &[
            "inspect",
            "--cert-dir",
            certs,
            "--creds",
            &puller,
            &image("team/app:v1"),
        ],
    )))
    .unwrap();
    assert_eq!(info["Digest"], serde_json::json!(v1.manifest_digest));
    let raw = skopeo(
        &work,
        &[
            "inspect",
            "--raw",
            "--cert-dir",
            certs,
            "--creds",
            &puller,
            &image("team/app:v2"),
        ],
    );
    assert_eq!(
        raw.stdout, v2.manifest,
        "manifest bytes served exactly as pushed"
    );
    let docker: serde_json::Value = serde_json::from_slice(
        &skopeo(
            &work,
            &[
                "inspect",
                "--raw",
                "--cert-dir",
                certs,
                "--creds",
                &puller,
                &image("team/docker:v1"),
            ],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        docker["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // list-tags.
    let tags: serde_json::Value = serde_json::from_str(&ok(&skopeo(
        &work,
        &[
            "list-tags",
            "--cert-dir",
            certs,
            "--creds",
            &puller,
            &image("team/app"),
        ],
    )))
    .unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));

    // Pull back into a new layout: identical blobs.
    let out = work.join("pulled");
    ok(&skopeo(
        &work,
        &[
            "copy",
            "--src-cert-dir",
            certs,
            "--src-creds",
            &puller,
            &image("team/app:v1"),
            &format!("oci:{}:v1", out.display()),
        ],
    ));
    for d in &v1.blobs {
        assert_eq!(
            Layout::read_blob(&out, d),
            Layout::read_blob(&layout.dir, d),
            "{d}"
        );
    }

    // A pull-only user is refused push with 403 DENIED.
    let refused = skopeo(
        &work,
        &[
            "copy",
            "--dest-cert-dir",
            certs,
            "--dest-creds",
            &puller,
            &src("v1"),
            &image("team/other:v1"),
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        stderr.contains("denied") || stderr.contains("403"),
        "{stderr}"
    );

    // Multi-arch index, copied with --all both ways.
    let amd = layout.image("amd64", b"multi amd64", None);
    let arm = layout.image("arm64", b"multi arm64", None);
    let index_digest =
        layout.multi_arch(&[("amd64", amd.clone()), ("arm64", arm.clone())], "multi");
    ok(&skopeo(
        &work,
        &[
            "copy",
            "--all",
            "--dest-cert-dir",
            certs,
            "--dest-creds",
            &alice,
            &src("multi"),
            &image("team/multi:1"),
        ],
    ));
    let raw: serde_json::Value = serde_json::from_slice(
        &skopeo(
            &work,
            &[
                "inspect",
                "--raw",
                "--cert-dir",
                certs,
                "--creds",
                &puller,
                &image("team/multi:1"),
            ],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let arm_info: serde_json::Value = serde_json::from_str(&ok(&skopeo(
        &work,
        &[
            "inspect",
            "--override-arch",
            "arm64",
            "--cert-dir",
            certs,
            "--creds",
            &puller,
            &image("team/multi:1"),
        ],
    )))
    .unwrap();
    assert_eq!(arm_info["Digest"], serde_json::json!(index_digest));
    assert_eq!(arm_info["Architecture"], "arm64");
    let listed: Vec<_> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed,
        [amd.manifest_digest.clone(), arm.manifest_digest.clone()]
    );
    let multi_out = work.join("multi-out");
    ok(&skopeo(
        &work,
        &[
            "copy",
            "--all",
            "--src-cert-dir",
            certs,
            "--src-creds",
            &puller,
            &image("team/multi:1"),
            &format!("oci:{}:m", multi_out.display()),
        ],
    ));
    assert_eq!(
        Layout::read_blob(&multi_out, &index_digest),
        Layout::read_blob(&layout.dir, &index_digest)
    );

    // Anonymous pulls are refused until anon holds reader.
    assert!(
        !skopeo(
            &work,
            &[
                "inspect",
                "--no-creds",
                "--cert-dir",
                certs,
                &image("team/app:v1")
            ]
        )
        .status
        .success()
    );

    // HEAD over the wire keeps the real Content-Length (not the empty body's 0).
    let head = http::Request::head(format!("/v2/team/app/blobs/{}", v1.blobs[1]))
        .header("host", "localhost")
        .header("authorization", format!("Basic {}", base64_of(&puller)))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = common::https(
        server.https,
        "localhost",
        &server.ca_pem(),
        &[b"http/1.1"],
        head,
    )
    .await;
    assert_eq!(reply.status, 200);
    let size = Layout::read_blob(&layout.dir, &v1.blobs[1]).len();
    assert_eq!(reply.headers["content-length"], size.to_string().as_str());
    assert_eq!(reply.headers["docker-content-digest"], v1.blobs[1].as_str());

    // delete: writers may not, owners may; skopeo resolves the tag and deletes by digest.
    assert!(
        !skopeo(
            &work,
            &[
                "delete",
                "--cert-dir",
                certs,
                "--creds",
                &alice,
                &image("team/app:v2")
            ]
        )
        .status
        .success()
    );
    ok(&skopeo(
        &work,
        &[
            "delete",
            "--cert-dir",
            certs,
            "--creds",
            &creds(ADMIN),
            &image("team/app:v2"),
        ],
    ));
    assert!(
        !skopeo(
            &work,
            &[
                "inspect",
                "--cert-dir",
                certs,
                "--creds",
                &puller,
                &image("team/app:v2")
            ]
        )
        .status
        .success()
    );

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    seed_users(&dir.path().join("data"), true).await;
    let _server = Server::start_env(dir.path(), "", &[]);
    let host = format!("localhost:{}", _server.https.port());
    let anon_image = format!("docker://{host}/team/app:v1");
    let certs2 = cert_dir(&_server.ca_pem(), &work.join("again"));
    let certs2 = certs2.to_str().unwrap();
    let info: serde_json::Value = serde_json::from_str(&ok(&skopeo(
        &work,
        &["inspect", "--no-creds", "--cert-dir", certs2, &anon_image],
    )))
    .unwrap();
    assert_eq!(info["Digest"], serde_json::json!(v1.manifest_digest));
    let anon_out = work.join("anon");
    ok(&skopeo(
        &work,
        &[
            "copy",
            "--src-no-creds",
            "--src-cert-dir",
            certs2,
            &anon_image,
            &format!("oci:{}:v1", anon_out.display()),
        ],
    ));
    assert!(
        !skopeo(
            &work,
            &[
                "copy",
                "--dest-no-creds",
                "--dest-cert-dir",
                certs2,
                &src("v1"),
                &format!("docker://{host}/team/anon:v1")
            ]
        )
        .status
        .success(),
        "anon may not push"
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
