//! `everlock backup` and `everlock restore` refuse shared storage (`meta = "postgres"`): they
//! copy store files of one data directory, which in shared mode hold only spool files, so a
//! "backup" would silently miss every store. The refusal is one line, exit 1, and comes before
//! any connection: the test's listeners stand in for the database and the bucket and must
//! never see one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use common::everlock_bin;

/// A listener nothing should connect to, and its port.
fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn shared_config(dir: &Path, pg_port: u16, s3_port: u16) -> std::path::PathBuf {
    let text = format!(
        "[storage]\nobjects = \"s3\"\nmeta = \"postgres\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:{s3_port}\"\nallow-http = true\nbucket = \"everlock\"\naccess-key-id = \"AKIDEXAMPLE\"\nsecret-access-key = \"s3-very-secret\"\n[storage.postgres]\nurl = \"postgres://everlock:pg-very-secret@127.0.0.1:{pg_port}/everlock\"\nmax-connections = 4\n"
    );
    let path = dir.join("everlock.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(everlock_bin())
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("EVERLOCK_STORAGE_OBJECTS")
        .env_remove("EVERLOCK_STORAGE_META")
        .env_remove("EVERLOCK_STORAGE_POSTGRES_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Runs `args` on shared storage and checks the refusal: one line, exit 1, no secret, and
/// neither the database nor the bucket contacted.
fn refused(args: &[&str], dir: &Path) {
    let (pg, pg_port) = listener();
    let (s3, s3_port) = listener();
    let config = shared_config(dir, pg_port, s3_port);
    let out = run(&config, &dir.join("data"), args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains("meta = \"postgres\""), "{args:?}: {err}");
    assert!(err.contains("refusing"), "{args:?}: {err}");
    assert!(!err.contains("very-secret"), "{args:?}: {err}");
    for (what, l) in [("PostgreSQL", &pg), ("S3", &s3)] {
        let e = l.accept().map(|_| ()).unwrap_err();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::WouldBlock,
            "{args:?} contacted {what}"
        );
    }
    assert!(!dir.join("data").exists(), "{args:?} created the data dir");
}

#[test]
fn backup_refuses_shared_storage_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("backup");
    refused(&["backup", target.to_str().unwrap()], dir.path());
    assert!(!target.exists(), "the backup dir was created");
}

#[test]
fn restore_refuses_shared_storage_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("backup");
    std::fs::create_dir(&source).unwrap();
    refused(&["restore", source.to_str().unwrap()], dir.path());
}
