//! End to end with the OpenSSH client (and sshpass): exec exit statuses and quoting, a piped
//! shell, a refused password, public-key login, and the host key surviving a restart.
//! ssh-agent keys are never offered (ssh-console reference §8). Skipped locally when `ssh`
//! or `sshpass` is missing; required in CI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod ssh_util;

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::Server;

const PASSWORD: &str = "open-sesame";

fn have_clients() -> bool {
    common::have_binary("ssh") && common::have_binary("sshpass")
}

/// `ssh` with the options every test needs; `known_hosts` is `/dev/null` unless given.
fn ssh(addr: SocketAddr, known_hosts: Option<&Path>) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-p", &addr.port().to_string()])
        .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
        .args(["-o", "IdentityAgent=none", "-o", "ForwardAgent=no"])
        .args(["-F", "/dev/null"]);
    match known_hosts {
        Some(file) => c
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", file.display()))
            .args(["-o", "HostKeyAlias=everlock-test"]),
        None => c.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ]),
    };
    c.env_remove("SSH_AUTH_SOCK");
    c
}

/// Password login through sshpass (the password travels in the environment, not argv).
fn with_password(addr: SocketAddr, password: &str, known_hosts: Option<&Path>) -> Command {
    let inner = ssh(addr, known_hosts);
    let mut c = Command::new("sshpass");
    c.arg("-e")
        .env("SSHPASS", password)
        .env_remove("SSH_AUTH_SOCK")
        .arg(inner.get_program())
        .args(inner.get_args())
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
        ]);
    c
}

fn run(mut c: Command, stdin: Option<&str>) -> Output {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "ssh did not finish: {:?}",
                child.wait_with_output().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn exec(addr: SocketAddr, command: &str) -> (i32, String, String) {
    let mut c = with_password(addr, PASSWORD, None);
    c.arg("admin@127.0.0.1").arg(command);
    let out = run(c, None);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn openssh_exec_piped_shell_password_and_key() {
    if !have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", PASSWORD)]);
    let addr = server.ssh;

    // Exec: status, stdout and stderr as a script sees them.
    assert_eq!(
        exec(addr, "/groups add backend-team"),
        (0, "created group 'backend-team'\n".into(), String::new())
    );
    let (rc, out, err) = exec(addr, "/groups add backend-team");
    assert_eq!((rc, out.as_str()), (1, ""), "{err}");
    assert_eq!(err, "group 'backend-team' already exists\n");
    let (rc, _, err) = exec(addr, "/nope");
    assert_eq!(rc, 1);
    assert!(err.starts_with("unknown command `/nope`\nusage:"), "{err}");
    // Quotes inside the one remote argument keep a password with a space together.
    assert_eq!(exec(addr, "/users add bob 'bob pw 1'").0, 0);
    assert_eq!(
        exec(addr, "/groups assign backend-team bob"),
        (
            0,
            "added 'bob' to group 'backend-team'\n".into(),
            String::new()
        )
    );

    // Piped shell: no banner, no prompt, no echo; the last status is the exit code.
    let mut c = with_password(addr, "bob pw 1", None);
    c.args(["-T", "bob@127.0.0.1"]);
    let out = run(c, Some("/users grants bob\n"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        // The zero-config welcome site was provisioned public at install, so bob, like
        // everyone, reads it through anon's grant.
        "http/site/welcome reader (anon)\n"
    );
    let mut c = with_password(addr, "bob pw 1", None);
    c.args(["-T", "bob@127.0.0.1"]);
    let out = run(c, Some("/users grants bob\n/groups add x\n"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        "permission denied: bob may not write groups\n"
    );

    // A wrong password is refused (sshpass reports 5).
    let mut c = with_password(addr, "wrong", None);
    c.arg("admin@127.0.0.1").arg("/users list");
    let out = run(c, None);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(out.stdout.is_empty());

    // Public-key login with a key registered through the console.
    let key = ssh_util::test_key(42);
    let key_file = dir.path().join("id_ed25519");
    std::fs::write(
        &key_file,
        key.to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = key.public_key().to_openssh().unwrap();
    assert_eq!(exec(addr, &format!("/users key add bob '{public}'")).0, 0);
    let mut c = ssh(addr, None);
    c.arg("-i")
        .arg(&key_file)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .args(["-o", "PreferredAuthentications=publickey"])
        .args(["bob@127.0.0.1", "/users grants bob --json"]);
    let out = run(c, None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "[\n  {\n    \"path\": \"http/site/welcome\",\n    \"role\": \"reader\",\n    \"source\": \"anon\"\n  }\n]\n"
    );
    // The same key does not open another account.
    let mut c = ssh(addr, None);
    c.arg("-i")
        .arg(&key_file)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .args(["-o", "PreferredAuthentications=publickey"])
        .args(["admin@127.0.0.1", "/users list"]);
    assert_eq!(run(c, None).status.code(), Some(255));
}

#[test]
fn host_key_is_kept_across_restarts() {
    if !have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [("EVERLOCK_ADMIN_PASSWORD", PASSWORD)];
    let known_hosts = dir.path().join("known_hosts");
    let connect = |server: &Server, policy: &str| {
        let mut c = with_password(server.ssh, PASSWORD, Some(&known_hosts));
        c.args(["-o", &format!("StrictHostKeyChecking={policy}")])
            .args(["admin@127.0.0.1", "/help users"]);
        run(c, None)
    };
    let mut server = Server::start_env(dir.path(), "", &env);
    let out = connect(&server, "accept-new");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let key_file = server.data_dir.join("_host/ssh/host_ed25519.pem");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(15)).success());
    drop(server);

    let server = Server::start_env(dir.path(), "", &env);
    let out = connect(&server, "yes");
    assert_eq!(out.status.code(), Some(0), "host key changed? {out:?}");
    assert!(
        text(&out.stdout).starts_with("usage: /users list"),
        "{out:?}"
    );
}
