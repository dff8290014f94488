//! Self-service through the OpenSSH client (issue #16 items 7 and 11): every user changes
//! their own password (`/passwd`, prompted on a terminal, three stdin lines without one) and
//! manages their own SSH keys (`/keys`); a user who is not an administrator sees only
//! themselves; new passwords need 8 characters; the audit log names who did what, never a
//! password. Skipped locally when `ssh`, `sshpass` or `ssh-keygen` is missing; required in CI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

#[path = "ssh_util/cli.rs"]
mod cli;
mod common;
#[path = "ssh_util/openssh.rs"]
mod openssh;

use cli::{Out, run, with_key, with_password};
use common::Server;

const ADMIN_PW: &str = "admin-open-sesame";

fn admin(server: &Server, command: &str) -> Out {
    run(
        with_password(server.ssh, "admin", ADMIN_PW, &[command]),
        None,
    )
}

#[test]
fn users_change_their_own_password_and_see_only_themselves() {
    if !cli::have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", ADMIN_PW)]);
    let addr = server.ssh;

    // Item 11: one-character passwords are refused, eight characters are enough.
    let out = admin(&server, "/users add alice x");
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        "password too short: use at least 8 characters\n"
    );
    assert_eq!(admin(&server, "/users add alice alice-pw-1").code, 0);
    assert_eq!(admin(&server, "/groups add ops").code, 0);

    // Item 7: alice sees only herself.
    let alice = |password: &str, command: &str| {
        run(with_password(addr, "alice", password, &[command]), None)
    };
    for (command, refusal) in [
        (
            "/users list",
            "permission denied: alice may not read the user list (administrators only)\n",
        ),
        (
            "/users grants admin",
            "permission denied: alice may not read the grants of 'admin' (only administrators see other users)\n",
        ),
        (
            "/groups list",
            "permission denied: alice may not read the group list (administrators only)\n",
        ),
    ] {
        let out = alice("alice-pw-1", command);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (1, ""),
            "{command}: {out:?}"
        );
        assert_eq!(out.stderr, refusal, "{command}");
    }
    let out = alice("alice-pw-1", "/users grants alice");
    assert_eq!(out.code, 0, "{out:?}");

    // /passwd without a terminal: three lines on stdin (current, new, new).
    let out = run(
        with_password(addr, "alice", "alice-pw-1", &["/passwd"]),
        Some("wrong-pw\nalice-pw-2\nalice-pw-2\n"),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        "invalid password: the current password is wrong\n"
    );
    let out = run(
        with_password(addr, "alice", "alice-pw-1", &["/passwd"]),
        Some("alice-pw-1\nalice-pw-2\nalice-pw-2\n"),
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "password updated for 'alice'\n"),
        "{out:?}"
    );
    // The old password stops working at once (sshpass reports a refused password as 5).
    assert_eq!(alice("alice-pw-1", "/keys list").code, 5);
    assert_eq!(alice("alice-pw-2", "/keys list").code, 0);

    // /passwd on a terminal: prompts, nothing echoed.
    let out = run(
        with_password(addr, "alice", "alice-pw-2", &["-tt"]),
        Some("/passwd\ralice-pw-2\ralice-pw-3\ralice-pw-3\r/quit\r"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("current password: ")
            && out.stdout.contains("new password: ")
            && out.stdout.contains("repeat new password: ")
            && out.stdout.contains("password updated for 'alice'"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains("alice-pw-2") && !out.stdout.contains("alice-pw-3"),
        "a password was echoed: {out:?}"
    );
    assert_eq!(alice("alice-pw-3", "/keys list").code, 0);

    // Audit: who changed what, never a password; a prompted add names its login.
    let out = run(
        with_password(addr, "admin", ADMIN_PW, &["-tt"]),
        Some("/users add carol\rcarol-pw-1\rcarol-pw-1\r/quit\r"),
    );
    assert!(out.stdout.contains("user 'carol' created"), "{out:?}");
    let log = server.log();
    for password in ["alice-pw-1", "alice-pw-2", "alice-pw-3", "carol-pw-1"] {
        assert!(!log.contains(password), "{password} in the log:\n{log}");
    }
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("console command"))
        .collect();
    assert!(
        audit.iter().any(|l| l.contains("actor=alice")
            && l.contains("command=/passwd")
            && l.contains("status=0")),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("command=/users add carol <prompted>") && l.contains("status=0")),
        "{audit:#?}"
    );
}

#[test]
fn users_manage_their_own_keys() {
    if !cli::have_clients() || !common::have_binary("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", ADMIN_PW)]);
    let addr = server.ssh;
    assert_eq!(admin(&server, "/users add bob bob-pw-123").code, 0);
    let key = openssh::keygen(dir.path(), "bob_ed25519", "ed25519", None);
    let bob = |command: &str| run(with_password(addr, "bob", "bob-pw-123", &[command]), None);

    let out = bob("/keys list");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("no SSH keys"), "{out:?}");
    let out = bob(&format!("/keys add '{}'", key.public));
    assert_eq!(
        (out.code, out.stdout.clone()),
        (0, format!("key {} added\n", key.fingerprint)),
        "{out:?}"
    );
    // Bob logs in with his key and sees it listed.
    let out = run(
        with_key(addr, &key.private, "bob", &["/keys list --json"]),
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list[0]["fingerprint"], key.fingerprint.as_str());
    // The key opens bob's account only, and an administrator sees it.
    let out = run(with_key(addr, &key.private, "admin", &["/keys list"]), None);
    assert_eq!(out.code, 255, "{out:?}");
    let out = admin(&server, "/users list");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("bob ") && l.ends_with(" 1")),
        "{out:?}"
    );
    let out = bob(&format!("/keys remove {}", key.fingerprint));
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(with_key(addr, &key.private, "bob", &["/keys list"]), None);
    assert_eq!(
        out.code, 255,
        "a removed key still opens the account: {out:?}"
    );
    let out = bob("/keys remove SHA256:nope");
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "user 'bob' has no key SHA256:nope\n")
    );
}

/// The minimum is the console's setting `min-password-length`.
#[test]
fn the_minimum_password_length_is_configurable() {
    if !cli::have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(
        dir.path(),
        "[backends.admin-ssh.instances.console.settings]\nmin-password-length = 12\n",
        &[("EVERLOCK_ADMIN_PASSWORD", ADMIN_PW)],
    );
    let out = admin(&server, "/users add dave dave-pw-12");
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "password too short: use at least 12 characters\n"),
        "{out:?}"
    );
    assert_eq!(admin(&server, "/users add dave dave-pw-1234").code, 0);
}
