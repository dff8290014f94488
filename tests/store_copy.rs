//! `everlock store copy --from-data-dir <dir> --config <file>`: single-node stores (files and
//! SQLite) move into shared storage (SeaweedFS + PostgreSQL) with their complete history, so
//! `everlock store log` prints the very same lines (ids, times, principals, messages) before
//! and after; the copy verifies clean, and a second copy is refused without touching anything.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "../storage/tests/support/seaweedfs.rs"]
mod seaweedfs;
#[path = "support/shared_storage.rs"]
mod shared_storage;

use std::path::Path;
use std::process::{Command, Output};

use common::everlock_bin;
use everlock_host::storage::{CommitMeta, Op, StoreManager};
use shared_storage::SharedStorage;

/// A single-node data directory with two stores: small inline content, a large object, a
/// delete and an overwrite, by two principals.
async fn single_node(data: &Path) {
    let m = StoreManager::new(data);
    let a = m.open("site-http-docs").await.unwrap();
    a.write(
        "index.html",
        b"v1".to_vec(),
        CommitMeta::new("admin", "first"),
    )
    .await
    .unwrap();
    let big = big_content();
    let object = a.stage(&big[..], None).await.unwrap();
    a.commit(
        vec![
            Op::Put {
                path: "assets/big.bin".into(),
                object,
            },
            Op::PutBytes {
                path: "index.html".into(),
                bytes: b"v2".to_vec(),
            },
        ],
        Vec::new(),
        CommitMeta::new("alice", "second\nwith a body"),
    )
    .await
    .unwrap();
    a.delete("index.html", CommitMeta::new("admin", "third"))
        .await
        .unwrap();
    let b = m.open("everlock-users").await.unwrap();
    b.write(
        "users/admin.toml",
        b"login = \"admin\"\n".to_vec(),
        CommitMeta::new("system", "bootstrap"),
    )
    .await
    .unwrap();
}

fn everlock(args: &[&str], config: Option<&Path>, data_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(everlock_bin());
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    if let Some(dir) = data_dir {
        cmd.arg("--data-dir").arg(dir);
    }
    cmd.args(args)
        .envs(SharedStorage::env())
        .env_remove("EVERLOCK_STORAGE_OBJECTS")
        .env_remove("EVERLOCK_STORAGE_META")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_keeps_every_commit_id_and_refuses_a_second_copy() {
    let Some(shared) = tokio::task::spawn_blocking(SharedStorage::start)
        .await
        .unwrap()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("single");
    single_node(&source).await;
    let config = dir.path().join("shared.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = {:?}\n{}",
            dir.path().join("node").display().to_string(),
            shared.section("copy/")
        ),
    )
    .unwrap();
    let stores = ["everlock-users", "site-http-docs"];
    let before: Vec<String> = stores
        .iter()
        .map(|s| ok(&everlock(&["store", "log", s], None, Some(&source))))
        .collect();
    assert!(before[1].lines().count() == 3, "{}", before[1]);

    let copied = ok(&everlock(
        &["store", "copy", "--from-data-dir", source.to_str().unwrap()],
        Some(&config),
        None,
    ));
    assert!(
        copied.contains("copied site-http-docs: 3 commits"),
        "{copied}"
    );
    assert!(
        copied.contains("copied everlock-users: 1 commits"),
        "{copied}"
    );

    let listed = ok(&everlock(&["store", "list"], Some(&config), None));
    assert_eq!(listed.lines().collect::<Vec<_>>(), stores, "{listed}");
    for (store, log) in stores.iter().zip(&before) {
        let after = ok(&everlock(&["store", "log", store], Some(&config), None));
        assert_eq!(&after, log, "{store}: the history changed");
        ok(&everlock(&["store", "verify", store], Some(&config), None));
    }
    let big = everlock(
        &["store", "cat", "site-http-docs", "assets/big.bin"],
        Some(&config),
        None,
    );
    assert!(big.status.success());
    assert!(
        big.stdout == big_content(),
        "the large object came back different"
    );

    // A second copy finds commits in the destination and changes nothing.
    let again = everlock(
        &["store", "copy", "--from-data-dir", source.to_str().unwrap()],
        Some(&config),
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already has commits in everlock-users, site-http-docs"),
        "{err}"
    );
    for (store, log) in stores.iter().zip(&before) {
        let after = ok(&everlock(&["store", "log", store], Some(&config), None));
        assert_eq!(&after, log, "{store}: a refused copy changed the history");
    }
}

/// A database that is down stops `everlock store` with one line that names it without the
/// password from the environment (the bucket is reachable, so the database is what fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_one_line_without_the_password() {
    let Some(shared) = tokio::task::spawn_blocking(SharedStorage::start)
        .await
        .unwrap()
    else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shared.toml");
    let section = shared.section("down/").replace(
        &shared.pg.url(),
        &format!("postgres://everlock@127.0.0.1:{closed}/everlock"),
    );
    std::fs::write(
        &config,
        format!(
            "data-dir = {:?}\n{section}",
            dir.path().join("node").display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(everlock_bin())
        .args(["store", "list", "--config"])
        .arg(&config)
        .envs(SharedStorage::env())
        .env("EVERLOCK_STORAGE_POSTGRES_PASSWORD", "pg-hunter2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    eprintln!("{err}");
}

fn big_content() -> Vec<u8> {
    (0..600_000u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect()
}
