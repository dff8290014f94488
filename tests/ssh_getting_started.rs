//! The getting-started flow end to end, with no restart: an administrator types commands in
//! an interactive SSH console (russh client with a PTY) while skopeo pushes to the registry:
//! a new user with a grant can push at once, a registry created from the console serves
//! immediately, and a revoked grant refuses the next push.
//!
//! The issue's flow names the vhost `team.localhost`; this machine's resolver does not map
//! `*.localhost` to loopback, so the new registry takes the vhost `127.0.0.1` instead (the
//! zero-config registry `default` answers only on `localhost`), which proves the same thing:
//! a vhost that routed to no registry before the command routes to the new one right after.

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

use common::{Server, have_binary};
use oci_common::{Layout, cert_dir, skopeo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getting_started_over_ssh_and_skopeo() {
    if !have_binary("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", "admin-pw")]);
    let certs = cert_dir(&server.ca_pem(), &work);
    let certs = certs.to_str().unwrap();
    let port = server.https.port();
    let default_registry = format!("localhost:{port}");
    let mut layout = Layout::new(&work.join("layout"));
    layout.image("amd64", b"getting started", Some("v1"));
    let src = format!("oci:{}:v1", layout.dir.display());
    let push = |registry: &str, repo: &str| {
        skopeo(
            &work,
            &[
                "copy",
                "--dest-cert-dir",
                certs,
                &src,
                &format!("docker://{registry}/{repo}:v1"),
            ],
        )
        .status
        .success()
    };

    let conn = ssh_util::login(server.ssh, "admin", "admin-pw").await;
    let mut console = conn.shell(120, 40).await;
    console.wait_for("> ").await;
    console.send(b"/users add alice alice-pw\r").await;
    console.wait_for("user 'alice' created\r\n> ").await;
    console
        .send(b"/users grant alice http/oci/default writer\r")
        .await;
    console
        .wait_for("granted writer on http/oci/default to 'alice'\r\n> ")
        .await;

    // skopeo login as alice, then push with the stored credentials.
    let login = skopeo(
        &work,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "-p",
            "alice-pw",
            &default_registry,
        ],
    );
    assert!(login.status.success(), "skopeo login failed");
    assert!(
        push(&default_registry, "alice/app"),
        "alice's first push failed"
    );

    // A registry created from the console serves at once.
    let team_registry = format!("127.0.0.1:{port}");
    let login = skopeo(
        &work,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "-p",
            "alice-pw",
            &team_registry,
        ],
    );
    assert!(
        !login.status.success(),
        "a registry answered before it was created"
    );
    assert!(
        !push(&team_registry, "team/app"),
        "pushed before the registry existed"
    );
    console.send(b"/oci create team vhost=127.0.0.1\r").await;
    console
        .wait_for("registry 'team' created (private)\r\n> ")
        .await;
    console
        .send(b"/users grant alice http/oci/team writer\r")
        .await;
    console
        .wait_for("granted writer on http/oci/team to 'alice'\r\n> ")
        .await;
    let login = skopeo(
        &work,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "-p",
            "alice-pw",
            &team_registry,
        ],
    );
    assert!(
        login.status.success(),
        "skopeo login to the new registry failed"
    );
    assert!(
        push(&team_registry, "team/app"),
        "push to the new registry failed"
    );
    console.send(b"/oci list\r").await;
    console
        .wait_for("team  vhosts=127.0.0.1  prefix=/v2  store=oci-http-team")
        .await;

    // Revoking the grant refuses alice's next push.
    console
        .send(b"/users revoke alice http/oci/default\r")
        .await;
    console
        .wait_for("revoked http/oci/default from 'alice'\r\n> ")
        .await;
    assert!(
        !push(&default_registry, "alice/app2"),
        "push allowed after the revoke"
    );

    console.send(b"/quit\r").await;
    assert_eq!(console.wait_close().await, Some(0));
    conn.close().await;
}
