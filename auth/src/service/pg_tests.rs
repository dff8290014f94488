//! Two nodes for real: two `StoreManager`s (standing for two processes) on one PostgreSQL
//! database, each with its own `Auth`. A user made on one logs in on the other within a
//! second, and concurrent changes through both lose nothing. SKIPs without PostgreSQL 15
//! locally; fails under `CI`.

use super::*;
use crate::admin::AdminPassword;

#[path = "../../../tests/support/postgres.rs"]
mod postgres;

fn options() -> AuthOptions {
    AuthOptions {
        bcrypt_cost: 4,
        ..AuthOptions::default()
    }
}

/// A node: its own data directory (spool files only) and its own connection to `url`. The
/// manager is returned too: it carries the listener that follows the other node's commits,
/// as the server keeps it for as long as it runs.
async fn node(url: String, dir: std::path::PathBuf) -> (Auth, StoreManager) {
    let manager = tokio::task::spawn_blocking(move || {
        StoreManager::new_with_meta(
            dir,
            everlock_storage::ObjectsConfig::File,
            everlock_storage::MetaConfig::Postgres(everlock_storage::PostgresConfig::new(url)),
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert!(manager.is_shared());
    (Auth::open(&manager, options()).await.unwrap(), manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_managers_on_one_database_share_users_and_lose_no_update() {
    let Some(pg) = tokio::task::spawn_blocking(postgres::Postgres::start)
        .await
        .unwrap()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, _a) = node(pg.url(), dir.path().join("a")).await;
    a.bootstrap("admin", AdminPassword::Given("admin-pw".into()))
        .await
        .unwrap();
    let (b, _b) = node(pg.url(), dir.path().join("b")).await;
    let admin = Principal::test_user("admin");
    let ip = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    // Made on A, usable on B within a second, without B changing anything.
    a.add_user(&admin, "carol", "carol-password").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let carol: Login = "carol".parse().unwrap();
    // The directory is polled, not logins: failed logins would close the throttle.
    while !b.directory().users.contains_key(&carol) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B does not know carol 1 s after A made her"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.verify_password("carol", "carol-password", ip)
        .await
        .unwrap();

    // Both nodes add members to one group at once; every member survives.
    a.add_group(&admin, "devs").await.unwrap();
    let logins: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for login in &logins {
        b.add_user(&admin, login, "password-1").await.unwrap();
    }
    let mut tasks = Vec::new();
    for (i, login) in logins.iter().enumerate() {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (admin, login) = (admin.clone(), login.clone());
        tasks.push(tokio::spawn(async move {
            node.assign(&admin, "devs", &login).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for node in [&a, &b] {
        node.refresh(u64::MAX).await.unwrap();
        assert_eq!(
            node.list_groups(&admin).unwrap()[0].members.len(),
            logins.len()
        );
    }
    drop((a, b));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
