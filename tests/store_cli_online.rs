//! `everlock store list|log|cat|verify|export` against the stores of a running server: they
//! open stores read-only (no `LOCK`), see each commit the server makes, and `store gc`, which
//! writes, is refused with a message that names the running server.

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

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Server, everlock_bin, have_binary};
use oci_common::{ALICE, seed_users, send, sha256_hex};

/// The registry instance `default` keeps its content in this store.
const REGISTRY_STORE: &str = "everlock-oci-local";

fn store_cmd(data: &Path, args: &[&str]) -> Output {
    Command::new(everlock_bin())
        .arg("store")
        .args(args)
        .env("EVERLOCK_DATA_DIR", data)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "status {}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

async fn push_blob(server: &Server, data: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_hex(data));
    let path = format!("/v2/online/app/blobs/uploads/?digest={digest}");
    let r = send(server.http, "POST", &path, ALICE, &[], data.to_vec()).await;
    assert_eq!(r.status, 201);
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_work_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_users(&data, false).await;
    let mut server = Server::start_env(dir.path(), "", &[]);
    let first = push_blob(&server, b"first layer").await;

    let list = ok(store_cmd(&data, &["list"]));
    assert!(
        list.lines().any(|l| l == REGISTRY_STORE) && list.lines().any(|l| l == "everlock-users"),
        "{list}"
    );
    let log = ok(store_cmd(&data, &["log", REGISTRY_STORE]));
    assert!(log.contains("alice: "), "{log}");
    let before = log.lines().count();

    // The server commits again; the next read-only open sees it.
    let second = push_blob(&server, b"second layer").await;
    let log = ok(store_cmd(&data, &["log", REGISTRY_STORE]));
    assert_eq!(log.lines().count(), before + 1, "{log}");
    for digest in [&first, &second] {
        let hex = digest.trim_start_matches("sha256:");
        let path = format!("blobs/sha256/{hex}");
        let content = ok(store_cmd(&data, &["cat", REGISTRY_STORE, &path]));
        let expected = if digest == &first {
            "first layer"
        } else {
            "second layer"
        };
        assert_eq!(content, expected);
    }
    let verify = ok(store_cmd(&data, &["verify", REGISTRY_STORE]));
    assert!(
        verify.starts_with(&format!("ok: {REGISTRY_STORE}: ")),
        "{verify}"
    );
    let users = ok(store_cmd(&data, &["verify", "everlock-users"]));
    assert!(users.starts_with("ok: everlock-users: "), "{users}");
    let export = ok(store_cmd(&data, &["export", REGISTRY_STORE]));
    assert!(export.contains("Everlock-Commit: "), "{export}");
    if have_binary("git") {
        let repo = dir.path().join("export.git");
        git_import(&data, &repo);
    }

    // Writing still needs the lock, and the refusal says who holds it and what to do.
    let gc = store_cmd(&data, &["gc", REGISTRY_STORE]);
    assert!(!gc.status.success());
    let err = String::from_utf8_lossy(&gc.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: store \"{REGISTRY_STORE}\" is in use by a running server; stop it or use \
             the console's /store gc {REGISTRY_STORE}"
        )
    );

    // The server never noticed the readers: it keeps serving and shuts down cleanly.
    push_blob(&server, b"third layer").await;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let log = ok(store_cmd(&data, &["log", REGISTRY_STORE]));
    assert_eq!(log.lines().count(), before + 2, "{log}");
    ok(store_cmd(&data, &["gc", REGISTRY_STORE, "--dry-run"]));
}

/// Exports the registry store of the running server into a fresh bare repository.
fn git_import(data: &Path, repo: &Path) {
    let init = Command::new("git")
        .args(["-c", "init.defaultBranch=master", "init", "-q", "--bare"])
        .arg(repo)
        .status()
        .unwrap();
    assert!(init.success());
    let mut export = Command::new(everlock_bin())
        .args(["store", "export", REGISTRY_STORE])
        .env("EVERLOCK_DATA_DIR", data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let import = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::from(export.stdout.take().unwrap()))
        .output()
        .unwrap();
    assert!(export.wait().unwrap().success());
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let log = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["log", "--format=%an"])
        .output()
        .unwrap();
    assert!(log.status.success(), "{log:?}");
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("alice"),
        "{log:?}"
    );
}
