//! Completion and history on a terminal through the OpenSSH client (issue #16 item 10):
//! Tab completes logins, group names, instance names, roles and grant paths; the history is
//! kept per user across sessions; Ctrl-R searches it. `ssh -tt` with input from a pipe sends
//! the bytes as typed (Tab, Ctrl-R and arrows included). Skipped locally when `ssh` or
//! `sshpass` is missing; required in CI.

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

use cli::{Out, run, with_password};
use common::Server;

const ADMIN_PW: &str = "admin-open-sesame";

/// A terminal session as `login`, typing `keys`.
fn terminal(server: &Server, login: &str, password: &str, keys: &str) -> Out {
    let out = run(
        with_password(server.ssh, login, password, &["-tt"]),
        Some(keys),
    );
    assert_eq!(out.code, 0, "{out:?}");
    out
}

#[test]
fn tab_completes_names_and_history_survives_sessions() {
    if !cli::have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", ADMIN_PW)]);
    let setup = "/users add alice alice-pw-1\r/groups add operators\r/quit\r";
    terminal(&server, "admin", ADMIN_PW, setup);

    // Logins, group names, grant paths (common prefix first, then unique), roles.
    let out = terminal(
        &server,
        "admin",
        ADMIN_PW,
        "/groups assign op\tal\t\r\
         /users grant al\thttp/s\tw\trea\t\r\
         /site history wel\t\r\
         /quit\r",
    );
    let screen = out.stdout.replace("\r\n", "\n");
    assert!(
        screen.contains("> /groups assign operators alice \nadded 'alice' to group 'operators'"),
        "{screen}"
    );
    assert!(
        screen.contains(
            "> /users grant alice http/site/welcome reader \n\
             granted reader on http/site/welcome to 'alice'"
        ),
        "{screen}"
    );
    assert!(screen.contains("> /site history welcome \n"), "{screen}");

    // A new session: Up recalls the last session's lines, Ctrl-R finds an older one.
    let out = terminal(
        &server,
        "admin",
        ADMIN_PW,
        "\x1b[A\x1b[A\x03\x12assign\r/quit\r",
    );
    let screen = out.stdout.replace("\r\n", "\n");
    assert!(screen.contains("/site history welcome\x1b[K"), "{screen}");
    assert!(
        screen.contains("(reverse-i-search)'assign': /groups assign operators alice"),
        "{screen}"
    );
    assert!(
        screen.contains("> /groups assign operators alice\nadded 'alice' to group 'operators'"),
        "{screen}"
    );
    // Passwords typed on a line never enter the saved history.
    let history = terminal(&server, "admin", ADMIN_PW, "\x12alice-pw\r/quit\r");
    assert!(
        history
            .stdout
            .contains("(failed reverse-i-search)'alice-pw': "),
        "{history:?}"
    );

    // Alice's history is hers; logins are not completed for a user who may not list them.
    let out = terminal(
        &server,
        "alice",
        "alice-pw-1",
        "\x1b[A/users grants a\t\r/quit\r",
    );
    let screen = out.stdout.replace("\r\n", "\n");
    assert!(!screen.contains("/groups assign"), "{screen}");
    assert!(screen.contains("> /users grants a\x07"), "{screen}");
}
