//! The test plumbing itself: servers bind port 0 and report what they bound in the ready file
//! only once startup has finished, and a skipped check shows in `cargo test` output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, get, http1};

#[tokio::test]
async fn the_ready_file_reports_every_listener_bound_on_port_zero() {
    let mut server = Server::start("");
    let ports = [server.http, server.https, server.ssh, server.metrics].map(|a| a.port());
    assert!(ports.iter().all(|&p| p != 0), "{ports:?}");
    let mut distinct = ports.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{ports:?}");
    for addr in [server.https, server.ssh] {
        tokio::net::TcpStream::connect(addr).await.unwrap();
    }
    // The file appears only after the instances are installed: the zero-config welcome site
    // answers the very first request, and the metrics listener reports ready.
    let reply = http1(server.http, get("localhost", "/")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ready = http1(server.metrics, get("127.0.0.1", "/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    assert!(
        !server.ready_file.exists(),
        "a stopped server must not leave addresses behind"
    );
}

#[test]
fn a_stale_ready_file_is_removed_even_when_the_start_fails() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    std::fs::write(&ready, "{\"pid\":1,\"http\":\"127.0.0.1:9\"}").unwrap();
    // This start fails (the users store is held), after the file was claimed.
    let held = everlock_storage::StoreManager::new(dir.path())
        .open_blocking("everlock-users", true)
        .unwrap();
    let out = Command::new(common::everlock_bin())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--frontend-http-listen-http", "127.0.0.1:0"])
        .args(["--frontend-http-listen-https", "off"])
        .args(["--frontend-ssh-listen", "off"])
        .args(["--metrics-listen", "off"])
        .arg("--ready-file")
        .arg(&ready)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    drop(held);
    assert_eq!(out.status.code(), Some(1));
    assert!(!ready.exists(), "the old run's addresses must be gone");
}

/// Not a test of its own: `skips_are_visible_even_when_output_is_captured` runs it in a child
/// process, where it reports a skip as any test missing a client does.
#[test]
#[ignore = "helper of skips_are_visible_even_when_output_is_captured"]
fn skip_probe() {
    if std::env::var_os("EVERLOCK_SKIP_PROBE").is_some() {
        common::skip("the probe skips");
    }
}

fn run_probe(ci: bool) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "skip_probe", "--ignored", "--test-threads", "1"])
        .env("EVERLOCK_SKIP_PROBE", "1")
        .env_remove("CI")
        .env_remove("RUST_TEST_NOCAPTURE");
    if ci {
        cmd.env("CI", "true");
    }
    cmd.output().unwrap()
}

#[test]
fn skips_are_visible_even_when_output_is_captured() {
    // Locally: the test passes and libtest captures its output, yet the SKIP line is shown.
    let out = run_probe(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("test skip_probe ... ok"), "{stdout}");
    assert!(
        stderr.contains("SKIP skip_probe: the probe skips"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Under CI nothing may be skipped: the same test fails.
    let out = run_probe(true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("required under CI"), "{stdout}");
}
