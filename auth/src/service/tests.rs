//! Tests of the auth service: bootstrap, password and key verification, the credential
//! cache, throttling and the administration API.

use super::*;
use crate::admin::AdminPassword;
use base64::Engine as _;

fn options() -> AuthOptions {
    AuthOptions {
        bcrypt_cost: 4,
        ..AuthOptions::default()
    }
}

fn basic(login: &str, password: &str) -> Vec<u8> {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
    )
    .into_bytes()
}

const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

async fn setup() -> (tempfile::TempDir, Auth, Principal) {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::open(&StoreManager::new(dir.path()), options())
        .await
        .unwrap();
    auth.bootstrap("admin", AdminPassword::Given("admin-pw".into()))
        .await
        .unwrap();
    let admin = Principal::test_user("admin");
    (dir, auth, admin)
}

#[tokio::test]
async fn bootstrap_generates_once_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let manager = StoreManager::new(dir.path());
    let auth = Auth::open(&manager, options()).await.unwrap();
    let generated = auth
        .bootstrap("root", AdminPassword::Generate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(generated.len(), 24);
    assert!(auth.is_system_admin(&Principal::test_user("root")));
    // A second bootstrap sees the administrator and does nothing.
    assert_eq!(
        auth.bootstrap("root", AdminPassword::Generate)
            .await
            .unwrap(),
        None
    );
    let p = auth.verify_password("root", &generated, A).await.unwrap();
    assert_eq!(p.name(), "root");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_thousand_requests_cost_one_bcrypt_and_passwd_takes_effect_at_once() {
    let (_dir, auth, admin) = setup().await;
    auth.add_user(&admin, "alice", "old-pw").await.unwrap();
    let before = auth.bcrypt_verifications();
    let header = basic("alice", "old-pw");
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let auth = auth.clone();
        let header = header.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let p = auth.authenticate_http(Some(&header), A).await.unwrap();
                assert_eq!(p.name(), "alice");
            }
        }));
    }
    // The first verification must land before the others can hit the cache; concurrent
    // first requests could otherwise each run bcrypt once.
    auth.authenticate_http(Some(&header), A).await.unwrap();
    let warmed = auth.bcrypt_verifications();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(warmed - before >= 1);
    let sequential_before = auth.bcrypt_verifications();
    for _ in 0..1000 {
        auth.authenticate_http(Some(&header), A).await.unwrap();
    }
    assert_eq!(
        auth.bcrypt_verifications(),
        sequential_before,
        "cached: no further bcrypt"
    );

    auth.set_password(&admin, "alice", "new-pw").await.unwrap();
    assert_eq!(
        auth.authenticate_http(Some(&header), A).await,
        Err(LoginError::BadCredentials)
    );
    assert!(
        auth.authenticate_http(Some(&basic("alice", "new-pw")), A)
            .await
            .is_ok()
    );
    auth.remove_user(&admin, "alice").await.unwrap();
    assert_eq!(
        auth.authenticate_http(Some(&basic("alice", "new-pw")), A)
            .await,
        Err(LoginError::BadCredentials)
    );
}

#[tokio::test]
async fn exactly_one_bcrypt_for_a_thousand_sequential_requests() {
    let (_dir, auth, admin) = setup().await;
    auth.add_user(&admin, "bob", "pw-bob").await.unwrap();
    let header = basic("bob", "pw-bob");
    let before = auth.bcrypt_verifications();
    for _ in 0..1000 {
        auth.authenticate_http(Some(&header), A).await.unwrap();
    }
    assert_eq!(auth.bcrypt_verifications() - before, 1);
}

#[tokio::test]
async fn anonymous_malformed_and_unknown() {
    let (_dir, auth, _admin) = setup().await;
    assert_eq!(auth.authenticate_http(None, A).await, Ok(Principal::anon()));
    assert_eq!(
        auth.authenticate_http(Some(b"Basic Og=="), A).await,
        Ok(Principal::anon())
    );
    assert!(matches!(
        auth.authenticate_http(Some(b"Basic %%%"), A).await,
        Err(LoginError::Malformed(_))
    ));
    assert_eq!(
        auth.authenticate_http(Some(b"Bearer x"), A).await,
        Err(LoginError::BadCredentials)
    );
    // Unknown logins and `anon` cost a bcrypt run too and fail like wrong passwords.
    let before = auth.bcrypt_verifications();
    for login in ["nobody", "anon", "Not_A_Login", "system"] {
        assert_eq!(
            auth.authenticate_http(Some(&basic(login, "x")), A).await,
            Err(LoginError::BadCredentials)
        );
    }
    assert_eq!(auth.bcrypt_verifications() - before, 4);
}

#[tokio::test]
async fn throttling_is_per_login_and_address() {
    let (_dir, auth, admin) = setup().await;
    auth.add_user(&admin, "carol", "right").await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            auth.verify_password("carol", "wrong", A).await,
            Err(LoginError::BadCredentials)
        );
    }
    // The sixth failure starts a lockout; then even the right password waits.
    assert_eq!(
        auth.verify_password("carol", "wrong", A).await,
        Err(LoginError::BadCredentials)
    );
    match auth.verify_password("carol", "right", A).await {
        Err(LoginError::Throttled { retry_after }) => assert!(retry_after.as_secs() >= 1),
        other => panic!("expected throttling, got {other:?}"),
    }
    // From another address the right password still works.
    assert!(auth.verify_password("carol", "right", B).await.is_ok());
}

#[tokio::test]
async fn state_survives_reopen_and_every_change_is_a_commit_by_its_actor() {
    let dir = tempfile::tempdir().unwrap();
    {
        let manager = StoreManager::new(dir.path());
        let auth = Auth::open(&manager, options()).await.unwrap();
        auth.bootstrap("admin", AdminPassword::Given("pw-admin".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        auth.add_user(&admin, "alice", "pw-alice").await.unwrap();
        auth.grant(&admin, "alice", "http/oci/default", "writer")
            .await
            .unwrap();
        auth.grant(&admin, "anon", "http/site/docs", "reader")
            .await
            .unwrap();
        auth.add_group(&admin, "team").await.unwrap();
        auth.assign(&admin, "team", "alice").await.unwrap();
        auth.group_grant(&admin, "team", "http/site/team", "owner")
            .await
            .unwrap();
        auth.add_key(
            &admin,
            "alice",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJtf9yq1AWzgOm/d3FQdwxmzUfbFCh3ppQ/Z8zU0Q6t alice@laptop",
        )
        .await
        .unwrap();
    }
    let manager = StoreManager::new(dir.path());
    let auth = Auth::open(&manager, options()).await.unwrap();
    let alice = Principal::test_user("alice");
    let p = |s: &str| s.parse::<AccessPath>().unwrap();
    assert!(auth.authorize(&alice, &p("http/oci/default/x"), Action::Write));
    assert!(auth.authorize(&alice, &p("http/site/team"), Action::Delete));
    assert!(auth.authorize(&Principal::anon(), &p("http/site/docs"), Action::Read));
    assert_eq!(
        auth.verify_password("alice", "pw-alice", A).await.unwrap(),
        alice
    );
    let key: SshPublicKey =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJtf9yq1AWzgOm/d3FQdwxmzUfbFCh3ppQ/Z8zU0Q6t"
            .parse()
            .unwrap();
    assert_eq!(auth.verify_key("alice", &key), Some(alice.clone()));
    assert_eq!(auth.verify_key("admin", &key), None);

    let store = manager.open(USERS_STORE).await.unwrap();
    let log = store.log(100).await.unwrap();
    let lines: Vec<String> = log
        .iter()
        .map(|c| format!("{}: {}", c.principal, c.message))
        .collect();
    assert!(
        lines.contains(&"system: bootstrap: 'admin' is the system administrator".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"admin: users add 'alice'".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"admin: users grant 'alice' http/oci/default writer".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"admin: groups assign 'team' 'alice'".to_owned()),
        "{lines:?}"
    );
    // Records never contain a plaintext password.
    let record = String::from_utf8(store.read("users/alice.toml").await.unwrap()).unwrap();
    assert!(
        !record.contains("pw-alice") && record.contains("$2b$"),
        "{record}"
    );
}

#[tokio::test]
async fn tiers_and_guards() {
    let (_dir, auth, admin) = setup().await;
    auth.add_user(&admin, "alice", "pw").await.unwrap();
    let alice = Principal::test_user("alice");
    // Users see only themselves; only admins list and change; anon may do neither.
    assert!(matches!(
        auth.list_users(&alice),
        Err(AuthError::Forbidden { .. })
    ));
    assert!(matches!(
        auth.grants(&alice, "admin"),
        Err(AuthError::Forbidden { .. })
    ));
    assert!(auth.grants(&alice, "alice").is_ok());
    assert!(auth.list_users(&admin).is_ok());
    assert!(matches!(
        auth.list_users(&Principal::anon()),
        Err(AuthError::Forbidden { .. })
    ));
    assert!(matches!(
        auth.add_user(&alice, "eve", "pw").await,
        Err(AuthError::Forbidden { .. })
    ));
    assert!(matches!(
        auth.grant(&alice, "alice", "*/*/*", "owner").await,
        Err(AuthError::Forbidden { .. })
    ));
    assert!(matches!(
        auth.add_user(&Principal::anon(), "eve", "pw").await,
        Err(AuthError::Forbidden { .. })
    ));
    // anon cannot be removed, log in or get credentials; the last admin cannot go.
    assert!(matches!(
        auth.remove_user(&admin, "anon").await,
        Err(AuthError::Anon(_))
    ));
    assert!(matches!(
        auth.set_password(&admin, "anon", "x").await,
        Err(AuthError::Anon(_))
    ));
    assert!(matches!(
        auth.remove_user(&admin, "admin").await,
        Err(AuthError::LastAdmin)
    ));
    assert!(matches!(
        auth.revoke(&admin, "admin", "*/*/*").await,
        Err(AuthError::LastAdmin)
    ));
    // Bad input is a typed error.
    assert!(matches!(
        auth.add_user(&admin, "Bad Name", "pw").await,
        Err(AuthError::InvalidName { .. })
    ));
    assert!(matches!(
        auth.add_user(&admin, "long", &"x".repeat(73)).await,
        Err(AuthError::InvalidPassword(_))
    ));
    assert!(matches!(
        auth.add_user(&admin, "alice", "pw").await,
        Err(AuthError::UserExists(_))
    ));
    assert!(matches!(
        auth.grant(&admin, "alice", "http/oci", "reader").await,
        Err(AuthError::InvalidPath { .. })
    ));
    assert!(matches!(
        auth.grant(&admin, "alice", "http/oci/x", "god").await,
        Err(AuthError::InvalidRole(_))
    ));
    assert!(matches!(
        auth.assign(&admin, "nogroup", "alice").await,
        Err(AuthError::NoSuchGroup(_))
    ));
    // A second admin makes removing the first one possible.
    auth.grant(&admin, "alice", "*/*/*", "owner").await.unwrap();
    auth.remove_user(&alice, "admin").await.unwrap();
    assert!(!auth.is_system_admin(&admin));
}
