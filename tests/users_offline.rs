//! `everlock users passwd <login>`: the lost-password recovery. It is refused while the server
//! runs (pointing at the console), works with the server stopped, is one commit by `system`,
//! and the restarted server accepts the new password and refuses the old one.

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

use common::{Server, everlock_bin};
use oci_common::send;

const OLD: &str = "old-admin-pw";
const NEW: &str = "new admin pw, typed twice";

/// `everlock users passwd <login>` with the server's own config file (and its data dir).
fn passwd(dir: &Path, login: &str, password: Option<&str>) -> Output {
    let mut cmd = Command::new(everlock_bin());
    cmd.arg("--config")
        .arg(dir.join("everlock.toml"))
        .args(["users", "passwd", login])
        .env_remove("EVERLOCK_PASSWORD")
        .stdin(Stdio::null());
    if let Some(p) = password {
        cmd.env("EVERLOCK_PASSWORD", p);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn registry_status(server: &Server, password: &str) -> u16 {
    send(server.http, "GET", "/v2/", ("admin", password), &[], vec![])
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_passwd_recovers_the_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", OLD)]);
    assert_eq!(registry_status(&server, OLD).await, 200);

    // While the server runs it owns the users store: the answer is the console.
    let busy = passwd(dir.path(), "admin", Some(NEW));
    assert_eq!(busy.status.code(), Some(1));
    assert_eq!(
        stderr(&busy),
        "error: the users store is in use by a running server; change the password in its \
         console instead: /users passwd admin <new password>\n"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    // Refusals change nothing: an unknown user, and no password at all (no terminal here).
    let unknown = passwd(dir.path(), "nobody", Some(NEW));
    assert!(stderr(&unknown).contains("no user 'nobody'"), "{unknown:?}");
    let no_password = passwd(dir.path(), "admin", None);
    assert_eq!(no_password.status.code(), Some(1));
    assert!(
        stderr(&no_password).contains("set EVERLOCK_PASSWORD"),
        "{no_password:?}"
    );
    let data = dir.path().join("data");
    let commits_before = users_log(&data).lines().count();

    let done = passwd(dir.path(), "admin", Some(NEW));
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        String::from_utf8_lossy(&done.stdout).contains("Password of 'admin' changed"),
        "{done:?}"
    );
    let log = users_log(&data);
    assert_eq!(log.lines().count(), commits_before + 1, "{log}");
    let head = log.lines().next().unwrap();
    assert!(
        head.ends_with("system: users passwd 'admin' (offline recovery)"),
        "{head}"
    );
    // The password never reaches a log line or the store's commit message.
    assert!(!log.contains(NEW));

    let server = Server::start_env(dir.path(), "", &[]);
    assert_eq!(registry_status(&server, NEW).await, 200);
    assert_eq!(registry_status(&server, OLD).await, 401);
}

fn users_log(data: &Path) -> String {
    let out = Command::new(everlock_bin())
        .args(["store", "log", "everlock-users"])
        .env("EVERLOCK_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}
