//! End to end: `everlock config check`, `everlock backends` and startup errors of the real
//! binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::process::{Command, Output};

use common::everlock_bin;

fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, text).unwrap();
    Command::new(everlock_bin())
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_documented_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/everlock.toml");
    let out = Command::new(everlock_bin())
        .args(["config", "check", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Every backend documents at least one instance there.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": OK ("), "{stdout}");
}

#[test]
fn unknown_key_is_rejected_with_its_line() {
    let out = check(
        "data-dir = \"d\"\n\n[frontend-http]\nlisten-http = \"127.0.0.1:1\"\nlisten-htps = \"x\"\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("line 5, column 1"), "{err}");
    assert!(err.contains("unknown field `listen-htps`"), "{err}");
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
}

#[test]
fn malformed_listen_address_is_rejected() {
    let out = check("[frontend-http]\nlisten-https = \"127.0.0.1\"\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("invalid listen address `127.0.0.1`"), "{err}");
}

#[test]
fn unknown_backend_kind_and_bad_settings_are_rejected() {
    let out = check("[backends.nope-http]\nenabled = true\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown backend kind `nope-http`"),
        "{}",
        stderr(&out)
    );

    let out = check(
        "[backends.hello-http.instances.a]\nvhosts = [\"a.example\"]\n\n[backends.hello-http.instances.a.settings]\ngreting = \"typo\"\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("hello-http/a (line 4"), "{err}");
    assert!(err.contains("greting"), "{err}");
}

#[test]
fn duplicate_routes_are_rejected() {
    let out = check(
        "[backends.hello-http.instances.a]\nvhosts = [\"x.example\"]\n[backends.hello-http.instances.b]\nvhosts = [\"X.example.\"]\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("x.example/ is claimed by both hello-http/a and hello-http/b"),
        "{}",
        stderr(&out)
    );
}

/// The registry's web UI claims `/ui` next to its `/v2` (its settings say so, `ui = true` by
/// default): a site mounted at `localhost/ui` conflicts with it, and `config check` says so
/// before anything is built, as startup would.
#[test]
fn an_extra_prefix_conflict_is_found_before_building() {
    let out =
        check("[backends.site-http.instances.docs]\nvhosts = [\"localhost\"]\nprefix = \"/ui\"\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("localhost/ui is claimed by both oci-http/default and site-http/docs"),
        "{}",
        stderr(&out)
    );
    // With the UI off the registry claims only `/v2`, and the same site is fine.
    let out = check(
        "[backends.oci-http.instances.default]\nvhosts = [\"localhost\"]\nprefix = \"/v2\"\n\
         [backends.oci-http.instances.default.settings]\nui = false\n\
         [backends.site-http.instances.docs]\nvhosts = [\"localhost\"]\nprefix = \"/ui\"\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn backends_lists_compiled_in_kinds() {
    let out = Command::new(everlock_bin())
        .arg("backends")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("hello-http ")),
        "{stdout}"
    );
}

#[test]
fn busy_port_is_a_one_line_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(everlock_bin())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--frontend-http-listen-http")
        .arg(addr.to_string())
        .args(["--frontend-http-listen-https", "off"])
        .args(["--frontend-ssh-listen", "off"])
        .args(["--metrics-listen", "off"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: cannot listen on {addr}: ")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // The start failed before the administrator was created: no password was shown for a
    // server that never ran, and the next start creates (and shows) it.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("password"), "{stdout}");
    let users = everlock_storage::StoreManager::new(dir.path())
        .open_blocking("everlock-users", false)
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt.block_on(users.log(10)).unwrap().is_empty());
}

#[test]
fn error_chains_say_each_cause_once() {
    // Another process (this test) holds the users store, as a second server would.
    let dir = tempfile::tempdir().unwrap();
    let held = everlock_storage::StoreManager::new(dir.path())
        .open_blocking("everlock-users", true)
        .unwrap();
    let out = Command::new(everlock_bin())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--frontend-http-listen-http", "127.0.0.1:0"])
        .args(["--frontend-http-listen-https", "off"])
        .args(["--frontend-ssh-listen", "off"])
        .args(["--metrics-listen", "off"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    drop(held);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: users store: store in use"), "{err}");
    assert_eq!(err.matches("store in use").count(), 1, "{err}");
}

#[test]
fn flags_beat_env_which_beats_the_file() {
    // The file says 127.0.0.2, the environment 127.0.0.1, the flag turns HTTPS off: the
    // server must listen for HTTP on 127.0.0.1 only. Every listener asks for port 0 and the
    // ready file tells which address won, so no port is guessed free beforehand.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[frontend-http]\nlisten-http = \"127.0.0.2:0\"\nlisten-https = \"127.0.0.2:0\"\n",
    )
    .unwrap();
    let ready = dir.path().join("ready.json");
    let mut child = Command::new(everlock_bin())
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--frontend-http-listen-https", "off"])
        .arg("--ready-file")
        .arg(&ready)
        .env("EVERLOCK_FRONTEND_SSH_LISTEN", "off")
        .env("EVERLOCK_METRICS_LISTEN", "off")
        .env("EVERLOCK_FRONTEND_HTTP_LISTEN_HTTP", "127.0.0.1:0")
        .env("EVERLOCK_FRONTEND_HTTP_LISTEN_HTTPS", "127.0.0.1:1")
        .env("RUST_LOG", "off")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let listeners = common::wait_ready_file(&mut child, &ready, String::new);
    let _ = child.kill();
    let _ = child.wait();
    let http = listeners.http.expect("HTTP is on");
    assert_eq!(
        http.ip().to_string(),
        "127.0.0.1",
        "the file's address must lose"
    );
    assert_ne!(http.port(), 0);
    assert_eq!(listeners.https, None, "the flag must win");
    assert_eq!((listeners.ssh, listeners.metrics), (None, None));
}
