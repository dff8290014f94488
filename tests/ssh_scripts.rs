//! Scripts and site maintenance through the OpenSSH client (issue #16 items 8, 9 and 11): a
//! piped session stops at the first failing command and exits 1, `ssh host -- --keep-going`
//! runs every line; `/site rollback` takes `#<seq>` or a commit prefix as `/site history`
//! prints them, `--json` history, "already at" for the current state; usage lines keep their
//! family; listings have headers and no `null` settings; instance names are 1-32 everywhere.
//! Skipped locally when `ssh` or `sshpass` is missing; required in CI.

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
use common::{Server, http1};

const ADMIN_PW: &str = "admin-open-sesame";

fn admin(server: &Server, command: &str) -> Out {
    run(
        with_password(server.ssh, "admin", ADMIN_PW, &[command]),
        None,
    )
}

fn groups(server: &Server) -> String {
    admin(server, "/groups list").stdout
}

#[test]
fn a_script_stops_at_the_first_failure_unless_keep_going() {
    if !cli::have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", ADMIN_PW)]);
    let script = "/groups add one\n/groups add 'Bad Name'\n/groups add two\n";

    let out = run(
        with_password(server.ssh, "admin", ADMIN_PW, &["-T"]),
        Some(script),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "created group 'one'\n");
    assert!(
        out.stderr.starts_with("invalid group name `Bad Name`"),
        "{out:?}"
    );
    let listed = groups(&server);
    assert!(
        listed.contains("one") && !listed.contains("two"),
        "{listed}"
    );

    // `--keep-going` after `--`: every line runs; the last one succeeded, so the exit is 0.
    let mut c = with_password(server.ssh, "admin", ADMIN_PW, &[]);
    c.args(["--", "--keep-going"]);
    let out = run(c, Some("/groups add three\n/nope\n/groups add four\n"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.starts_with("unknown command `/nope`"), "{out:?}");
    let listed = groups(&server);
    assert!(
        listed.contains("three") && listed.contains("four"),
        "{listed}"
    );

    // The help says how.
    let out = admin(&server, "/help");
    assert!(out.stdout.contains("--keep-going"), "{out:?}");

    // Item 11: `/users list` has column headers.
    let out = admin(&server, "/users list");
    assert_eq!(
        out.stdout.lines().next(),
        Some("LOGIN  ADMIN  GROUPS  KEYS"),
        "{out:?}"
    );
}

fn tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

async fn deploy(server: &Server, index: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PW}"));
    let req = hyper::Request::put("/.well-known/everlock/deploy")
        .header("host", "docs.localhost")
        .header("authorization", format!("Basic {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(tar(&[(
            "index.html",
            index,
        )]))))
        .unwrap();
    let r = http1(server.http, req).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    json["commit"].as_str().unwrap().to_owned()
}

/// The newest commit's message, as `/site history --json` shows it.
fn newest(server: &Server) -> String {
    let out = admin(server, "/site history docs --json");
    let history: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    history[0]["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_rollback_by_what_history_shows() {
    if !cli::have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(
        dir.path(),
        "[backends.site-http.instances.docs]\nvhosts = [\"docs.localhost\"]\n",
        &[("EVERLOCK_ADMIN_PASSWORD", ADMIN_PW)],
    );
    let first = deploy(&server, "one").await;
    let second = deploy(&server, "two").await;

    let out = admin(&server, "/site history docs --json");
    assert_eq!(out.code, 0, "{out:?}");
    let history: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(history[0]["commit"], second.as_str());
    assert_eq!(history[1]["commit"], first.as_str());
    let first_seq = history[1]["seq"].as_u64().unwrap();
    let text = admin(&server, "/site history docs").stdout;
    assert!(text.contains(&format!("#{first_seq}  {first}")), "{text}");

    // `#<seq>` as history prints it.
    let out = admin(&server, &format!("/site rollback docs #{first_seq}"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .starts_with(&format!("site 'docs' rolled back to {first} ")),
        "{out:?}"
    );
    assert_eq!(newest(&server), format!("site: rollback to {first}"));
    // Rolling back to where the site is answers "already at" and succeeds.
    let out = admin(&server, &format!("/site rollback docs {}", &first[..7]));
    assert_eq!(
        (out.code, out.stdout.clone()),
        (0, format!("site 'docs' is already at {first}\n")),
        "{out:?}"
    );
    // A 7-digit prefix of the second deploy.
    let out = admin(&server, &format!("/site rollback docs {}", &second[..7]));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(newest(&server), format!("site: rollback to {second}"));
    // Too short a prefix is a usage error whose usage keeps the family.
    let out = admin(&server, "/site rollback docs abc");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("\nusage: /site rollback <name> #<seq>|<commit prefix>"),
        "{out:?}"
    );
    let out = admin(&server, "/site history docs extra");
    assert_eq!(
        out.stderr,
        "unexpected argument `extra`\nusage: /site history <name> [--json]\n"
    );

    // Item 11: no `null` settings in JSON listings (the welcome site runs on defaults).
    let out = admin(&server, "/site list --json");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("null"), "{}", out.stdout);
    let out = admin(&server, "/oci list --json");
    assert!(!out.stdout.contains("null"), "{}", out.stdout);
    // Instance names: 1-32 characters, and the message says so.
    let long = "a".repeat(33);
    for name in [long.as_str(), "Bad_Name"] {
        let out = admin(
            &server,
            &format!("/site create {name} vhost=x.localhost mode=html"),
        );
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains("use 1-32 lowercase letters"), "{out:?}");
    }
    let ok = "a".repeat(32);
    let out = admin(
        &server,
        &format!("/site create {ok} vhost=y.localhost mode=html"),
    );
    assert_eq!(out.code, 0, "{out:?}");
}
