//! End to end: the first-start administrator, HTTP Basic authentication through a backend
//! (the private hello instance), 401/403/429 semantics, throttling per client address, and
//! users surviving a restart with an audit trail in `everlock store log everlock-users`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::time::Duration;

use common::{Server, get, get_as, http1, http1_from};
use everlock_host::auth::{Auth, AuthOptions, Principal};
use everlock_host::storage::StoreManager;

const PRIVATE: &str = r#"
[backends.hello-http.instances.vault]
vhosts = ["vault.localhost"]
[backends.hello-http.instances.vault.settings]
private = true
greeting = "secret page"
"#;

const HOST: &str = "vault.localhost";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_statuses_throttling_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("EVERLOCK_ADMIN_PASSWORD", "admin-secret")];
    let mut server = Server::start_env(dir.path(), PRIVATE, &env);
    // The password came from the environment: nothing is printed.
    assert!(!server.log().contains("admin-secret"), "{}", server.log());

    let anon = http1(server.http, get(HOST, "/")).await;
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.headers["www-authenticate"],
        "Basic realm=\"hello\", charset=\"UTF-8\""
    );
    let ok = http1(server.http, get_as(HOST, "/", "admin", "admin-secret")).await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.starts_with("secret page"));

    // Wrong passwords: 401 until the throttle kicks in, then 429 with Retry-After, even for
    // the right password from the same address...
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            http1(server.http, get_as(HOST, "/", "admin", "wrong"))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401]);
    let throttled = http1(server.http, get_as(HOST, "/", "admin", "admin-secret")).await;
    assert_eq!(throttled.status, 429);
    let retry: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // ...while the right password from another client address still works.
    let other = "127.0.0.2".parse().unwrap();
    let elsewhere = http1_from(
        other,
        server.http,
        get_as(HOST, "/", "admin", "admin-secret"),
    )
    .await;
    assert_eq!(elsewhere.status, 200);
    let malformed = http1_from(other, server.http, {
        let mut r = get(HOST, "/");
        r.headers_mut()
            .insert("authorization", "Basic %%%".parse().unwrap());
        r
    })
    .await;
    assert_eq!(malformed.status, 400);

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    // While the server is down, an administrator adds a user with no grant on the vault.
    {
        let stores = StoreManager::new(dir.path().join("data"));
        let auth = Auth::open(
            &stores,
            AuthOptions {
                bcrypt_cost: 4,
                ..AuthOptions::default()
            },
        )
        .await
        .unwrap();
        let admin = Principal::test_user("admin");
        auth.add_user(&admin, "bob", "bob-pw").await.unwrap();
        auth.add_user(&admin, "carol", "carol-pw").await.unwrap();
        auth.grant(&admin, "carol", "http/hello/vault", "reader")
            .await
            .unwrap();
    }

    let server = Server::start_env(dir.path(), PRIVATE, &[]);
    // Users and grants survived; a valid password without a grant is 403.
    assert_eq!(
        http1(server.http, get_as(HOST, "/", "bob", "bob-pw"))
            .await
            .status,
        403
    );
    assert_eq!(
        http1(server.http, get_as(HOST, "/", "carol", "carol-pw"))
            .await
            .status,
        200
    );
    assert_eq!(
        http1(server.http, get_as(HOST, "/", "admin", "admin-secret"))
            .await
            .status,
        200
    );
    // No new administrator was created on the second start.
    assert!(
        !server.log().contains("Created the administrator"),
        "{}",
        server.log()
    );
    drop(server);

    // The users store records who changed what.
    let out = std::process::Command::new(common::everlock_bin())
        .args(["store", "log", "everlock-users"])
        .env("EVERLOCK_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "system",
        "bootstrap: 'admin' is the system administrator",
        "users add 'bob'",
        "users grant 'carol' http/hello/vault reader",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    assert!(
        !log.contains("admin-secret") && !log.contains("bob-pw"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_admin_password_is_printed_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_env(dir.path(), PRIVATE, &[]);
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.starts_with("Created the administrator 'admin' with password: "))
        .unwrap_or_else(|| panic!("no password line in:\n{log}"));
    let password = line.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(password.len(), 24);
    assert_eq!(
        log.matches(&password).count(),
        1,
        "the password must appear exactly once"
    );
    let ok = http1(server.http, get_as(HOST, "/", "admin", &password)).await;
    assert_eq!(ok.status, 200);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    assert_eq!(server.log().matches(&password).count(), 1);

    let server = Server::start_env(dir.path(), PRIVATE, &[]);
    assert!(!server.log().contains("Created the administrator"));
}
