//! `everlock site deploy` end to end, incremental (issue #16 item 5): the second deploy of the
//! same directory uploads nothing and makes no commit; a one-byte change uploads that file
//! only, as the server's own accounting (`received_bytes`, in its reply and its log) shows;
//! `--password-stdin`; `--full` still sends everything.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{Server, get, http1};

const PASSWORD: &str = "admin-pw";

/// The figure after `label` in the client's report (`uploaded 1 files (1234 bytes sent)`).
fn figure(report: &str, label: &str) -> u64 {
    let at = report
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {report}"));
    report[at + label.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn second_deploys_send_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", PASSWORD)]);
    let site = dir.path().join("public");
    std::fs::create_dir_all(site.join("img")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>Version 1</h1>").unwrap();
    let mut big = vec![0u8; 4 * 1024 * 1024];
    blake3::Hasher::new().finalize_xof().fill(&mut big);
    std::fs::write(site.join("img/photo.jpg"), &big).unwrap();
    let url = format!("http://127.0.0.1:{}/", server.http.port());
    let deploy = |extra: &[&str]| -> Output {
        let mut child = Command::new(common::everlock_bin())
            .args(["site", "deploy"])
            .arg(&site)
            .args(["--url", &url, "--user", "admin", "--password-stdin"])
            .args(extra)
            .env_remove("EVERLOCK_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        child.wait_with_output().unwrap()
    };
    let report = |out: &Output| {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "stdout: {stdout}\nstderr: {}\nlog: {}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        stdout
    };

    let first = report(&deploy(&[]));
    assert!(first.contains("deployed 2 files"), "{first}");
    // The photo is stored in the upload, not gzipped: it travels at its own size, barely more.
    let first_sent = figure(&first[first.find("uploaded").unwrap()..], "(");
    assert!(
        first_sent > big.len() as u64 && first_sent < big.len() as u64 + 64 * 1024,
        "{first}"
    );

    let again = report(&deploy(&[]));
    assert!(again.contains("nothing uploaded, no new commit"), "{again}");

    std::fs::write(site.join("index.html"), "<h1>Version 2</h1>").unwrap();
    let second = report(&deploy(&[]));
    assert!(second.contains("uploaded 1 files"), "{second}");
    assert!(second.contains("1 unchanged"), "{second}");
    let sent = figure(&second[second.find("uploaded").unwrap()..], "(");
    assert!(
        sent < 16 * 1024,
        "one small file, yet {sent} bytes: {second}"
    );
    assert!(
        server.log().contains("received_bytes"),
        "the server logs what it received: {}",
        server.log()
    );
    assert_eq!(
        http1(server.http, get("127.0.0.1", "/")).await.body,
        "<h1>Version 2</h1>"
    );

    // --full sends everything again, and a wrong password on stdin is refused.
    let full = report(&deploy(&["--full"]));
    assert!(full.contains("no new commit"), "{full}");
    let mut child = Command::new(common::everlock_bin())
        .args(["site", "deploy"])
        .arg(&site)
        .args(["--url", &url, "--user", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "wrong").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}
