//! End to end over SSH against the real binary: the `/store` console family lists every store
//! with its figures, reads a log, verifies, sets a retention policy and runs a dry-run GC
//! that changes nothing, while the server serves; strangers and unknown stores are refused
//! with one clear line and exit status 1.

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
use ssh_util::{Conn, Output, login};

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", "secret")]);
    (dir, server)
}

async fn ok(conn: &Conn, line: &str) -> Output {
    let out = conn.exec(line).await;
    assert_eq!(out.status, Some(0), "{line}: {out:?}");
    assert!(out.stderr.is_empty(), "{line}: {out:?}");
    out
}

async fn list_json(conn: &Conn) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(conn, "/store list --json").await.stdout).unwrap()
}

fn find<'a>(list: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no store {name} in {list:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_family_over_ssh() {
    let (_dir, server) = start();
    let admin = login(server.ssh, "admin", "secret").await;

    // The listing names the reserved stores and the welcome site's store, with figures.
    let out = ok(&admin, "/store list").await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("STORE"), "{out:?}");
    for (name, used_by) in [
        ("everlock-users", "(users)"),
        ("everlock-system", "(system)"),
        ("site-http-welcome", "site-http/welcome"),
    ] {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed: {out:?}"));
        assert!(line.contains(used_by), "{line}");
    }
    let list = list_json(&admin).await;
    let welcome = find(&list, "site-http-welcome");
    assert!(welcome["commits"].as_u64().unwrap() > 0, "{welcome}");
    assert!(welcome["objects"].as_u64().unwrap() > 0, "{welcome}");
    assert!(find(&list, "everlock-users")["commits"].as_u64().unwrap() > 0);

    let out = ok(&admin, "/store log site-http-welcome -n 1 --json").await;
    let log: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(log.len(), 1, "{out:?}");
    assert_eq!(log[0]["seq"], welcome["head"]["seq"]);
    assert_eq!(log[0]["id"].as_str().unwrap().len(), 64);

    let out = ok(&admin, "/store verify everlock-users").await;
    assert!(out.stdout.starts_with("ok: `everlock-users`: "), "{out:?}");

    let out = ok(&admin, "/store retention site-http-welcome keep-commits=5").await;
    assert!(out.stdout.contains("set to keep-commits=5"), "{out:?}");
    let list = list_json(&admin).await;
    assert_eq!(
        find(&list, "site-http-welcome")["retention"],
        "keep-commits=5"
    );
    // The audit log records the parsed command.
    assert!(
        server
            .log()
            .contains("/store retention site-http-welcome keep-commits=5"),
        "{}",
        server.log()
    );

    // A dry run reports and leaves every figure as it was.
    let before = list_json(&admin).await;
    let out = ok(
        &admin,
        "/store gc site-http-welcome --grace-secs 0 --dry-run",
    )
    .await;
    assert!(out.stdout.contains("dry run, nothing changed"), "{out:?}");
    assert!(out.stdout.contains("retention keep-commits=5"), "{out:?}");
    let after = list_json(&admin).await;
    for name in ["site-http-welcome", "everlock-users", "everlock-system"] {
        for field in ["objects", "bytes", "commits", "head"] {
            assert_eq!(
                find(&before, name)[field],
                find(&after, name)[field],
                "{name} {field}"
            );
        }
    }
    // The site still serves after all this.
    let reply = common::http1(server.http, common::get("localhost", "/")).await;
    assert_eq!(reply.status, 200);

    // Unknown stores: one clear line, exit 1, and nothing created.
    for line in [
        "/store log ghost",
        "/store verify ghost",
        "/store gc ghost --dry-run",
    ] {
        let out = admin.exec(line).await;
        assert_eq!(out.status, Some(1), "{line}: {out:?}");
        assert_eq!(out.stderr, "no store `ghost`\n", "{line}: {out:?}");
    }
    assert!(!server.data_dir.join("ghost").exists());
    let out = admin
        .exec("/store retention site-http-welcome keep-some")
        .await;
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        out.stderr
            .starts_with("invalid retention policy \"keep-some\"")
            && out.stderr.contains("\nusage: /store retention <store>"),
        "{out:?}"
    );

    // A user who is not a system administrator is refused.
    ok(&admin, "/users add bob 'bob pw 1'").await;
    let bob = login(server.ssh, "bob", "bob pw 1").await;
    for line in [
        "/store list",
        "/store log site-http-welcome",
        "/store retention site-http-welcome keep-all",
    ] {
        let out = bob.exec(line).await;
        assert_eq!(out.status, Some(1), "{line}: {out:?}");
        assert_eq!(
            out.stderr, "permission denied: bob is not a system administrator\n",
            "{line}"
        );
        assert!(out.stdout.is_empty(), "{line}: {out:?}");
    }
}
