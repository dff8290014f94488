//! End to end over SSH with the russh client against the real binary: exec requests with
//! exit status, stdout/stderr and EOF before close; password and public-key login (and
//! refusals); tiers; and an interactive PTY session typed key by key (backspace, history
//! recall, Ctrl-C, Tab, Ctrl-D), checked on the rendered screen.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod ssh_util;

use common::Server;
use ssh_util::{connect, login, login_key, test_key};

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", "secret")]);
    (dir, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_logins_and_tiers() {
    let (_dir, server) = start();
    let admin = login(server.ssh, "admin", "secret").await;

    let out = admin.exec("/users add alice 'alice pw'").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(out.stdout, "user 'alice' created\n");
    assert!(out.stderr.is_empty() && out.eof, "{out:?}");

    let out = admin.exec("/users add alice long-enough").await;
    assert_eq!(out.status, Some(1), "{out:?}");
    assert_eq!(out.stderr, "user 'alice' already exists\n");
    assert!(out.stdout.is_empty() && out.eof, "{out:?}");

    let out = admin.exec("/frob").await;
    assert_eq!(out.status, Some(1));
    assert!(
        out.stderr.starts_with("unknown command `/frob`\nusage: "),
        "{out:?}"
    );

    let out = admin.exec("/users list --json").await;
    assert_eq!(out.status, Some(0));
    let users: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert!(users.iter().any(|u| u["login"] == "alice"), "{users:?}");

    // Wrong passwords and unknown users are refused.
    for (user, password) in [("admin", "wrong"), ("nobody", "secret"), ("alice", "alice")] {
        let mut conn = connect(server.ssh).await;
        let result = conn
            .handle
            .authenticate_password(user, password)
            .await
            .unwrap();
        assert!(!result.success(), "{user}/{password} accepted");
    }

    // Public-key login: only the key registered for that user opens a session.
    let key = test_key(7);
    let public = key.public_key().to_openssh().unwrap();
    let out = admin
        .exec(&format!("/users key add alice '{public}'"))
        .await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("key SHA256:"), "{out:?}");
    let (alice, ok) = login_key(server.ssh, "alice", &key).await;
    assert!(ok, "alice's key refused");
    let (_, ok) = login_key(server.ssh, "admin", &key).await;
    assert!(!ok, "alice's key opened admin's account");
    let (_, ok) = login_key(server.ssh, "alice", &test_key(8)).await;
    assert!(!ok, "an unregistered key was accepted");

    // Alice may read but not change.
    let out = alice.exec("/users grants alice").await;
    assert_eq!(out.status, Some(0), "{out:?}");
    let out = alice.exec("/users add eve pw").await;
    assert_eq!(out.status, Some(1));
    assert_eq!(out.stderr, "permission denied: alice may not write users\n");
    // Her password still works too, and a removed user can no longer log in.
    login(server.ssh, "alice", "alice pw").await.close().await;
    assert_eq!(admin.exec("/users remove alice").await.status, Some(0));
    let (_, ok) = login_key(server.ssh, "alice", &key).await;
    assert!(!ok, "a removed user's key still works");
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_session_line_editing() {
    let (_dir, server) = start();
    let conn = login(server.ssh, "admin", "secret").await;
    let mut term = conn.shell(100, 30).await;
    term.wait_for("> ").await;
    assert!(
        term.screen().starts_with("Everlock Admin\n"),
        "{}",
        term.screen()
    );

    // Typing with a typo fixed by Backspace.
    term.send(b"/groups add opz").await;
    term.send(b"\x7fs\r").await;
    term.wait_for("created group 'ops'\r\n> ").await;

    // Left-arrow editing in the middle of a line: "/users lst" -> "/users list".
    term.send(b"/users lst\x1b[D\x1b[Di\r").await;
    term.wait_for("anon   -      -       0\r\n> ").await;

    // History: Up twice recalls the group command; running it again proves the recall.
    term.send(b"\x1b[A\x1b[A").await;
    term.wait_for("/groups add ops").await;
    term.send(b"\r").await;
    term.wait_for("group 'ops' already exists\r\n> ").await;

    // Ctrl-C drops a typed line: the user is never created.
    term.send(b"/users add mallory pw").await;
    term.send(b"\x03").await;
    term.wait_for("^C\r\n> ").await;

    // Tab completes the family and the sub-command.
    term.send(b"/gro\tl\t\r").await;
    term.wait_for("ops  members: -  grants: -\r\n> ").await;
    term.send(b"/users list\r").await;
    term.wait_for("anon   -      -       0\r\n> ").await;

    let screen = term.screen();
    assert!(
        screen.contains("\n> /groups add ops\ncreated group 'ops'\n"),
        "{screen}"
    );
    assert!(
        screen.contains(
            "\n> /users list\nLOGIN  ADMIN  GROUPS  KEYS\nadmin  yes    -       0\nanon   -      -       0\n"
        ),
        "{screen}"
    );
    assert!(screen.contains("\n> /users add mallory pw^C\n"), "{screen}");
    assert!(
        screen.contains("\n> /groups list\nops  members: -  grants: -\n"),
        "{screen}"
    );
    assert!(!screen.contains("mallory\n"), "{screen}");

    // Ctrl-D on the empty line ends the session with status 0.
    term.send(b"\x04").await;
    assert_eq!(term.wait_close().await, Some(0));
    conn.close().await;
}

#[test]
fn busy_ssh_port_is_a_one_line_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "data-dir = {:?}\n[frontend-http]\nlisten-http = \"127.0.0.1:0\"\nlisten-https = \"off\"\n[frontend-ssh]\nlisten = \"{addr}\"\n",
            dir.path().join("data").display().to_string(),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::everlock_bin())
        .args(["serve", "--config"])
        .arg(&file)
        .env("RUST_LOG", "off")
        .env("EVERLOCK_ADMIN_PASSWORD", "x")
        .env("EVERLOCK_METRICS_LISTEN", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: cannot listen on {addr}: ")),
        "{err}"
    );
}
