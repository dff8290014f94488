use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::admin::AdminPassword;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const ADMIN_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// An `Auth` with fast bcrypt, an administrator and the user `alice`.
async fn setup(throttle: ThrottlePolicy) -> (tempfile::TempDir, Auth) {
    let dir = tempfile::tempdir().unwrap();
    let options = AuthOptions {
        bcrypt_cost: 4,
        throttle,
        ..AuthOptions::default()
    };
    let auth = Auth::open(&StoreManager::new(dir.path()), options)
        .await
        .unwrap();
    auth.bootstrap("admin", AdminPassword::Given("admin-pw".into()))
        .await
        .unwrap();
    let admin = auth
        .verify_password("admin", "admin-pw", ADMIN_IP)
        .await
        .unwrap();
    auth.add_user(&admin, "alice", "alice-pw").await.unwrap();
    (dir, auth)
}

fn throttled(result: &Result<Principal, LoginError>) -> bool {
    matches!(result, Err(LoginError::Throttled { retry_after })
        if *retry_after >= Duration::from_secs(1) && *retry_after <= Duration::from_secs(60))
}

#[tokio::test]
async fn cycling_logins_from_one_address_stops_running_bcrypt_after_the_budget() {
    let (_dir, auth) = setup(ThrottlePolicy::default()).await;
    let before = auth.bcrypt_verifications();
    let mut refused = 0;
    for i in 0..100 {
        let result = auth
            .verify_password(&format!("user{i}"), "guess", ATTACKER)
            .await;
        if throttled(&result) {
            refused += 1;
        } else {
            assert_eq!(result, Err(LoginError::BadCredentials), "attempt {i}");
        }
    }
    // The default budget is 20 failures per address per minute: the other 80 attempts
    // are refused without a bcrypt run (before the fix all 100 ran bcrypt).
    assert_eq!(auth.bcrypt_verifications() - before, 20);
    assert_eq!(refused, 80);

    // Every login from that address is refused now, even a right password, without bcrypt;
    // SSH asks the same throttle (`throttled`) before its key and password checks.
    let before = auth.bcrypt_verifications();
    assert!(throttled(
        &auth.verify_password("alice", "alice-pw", ATTACKER).await
    ));
    assert!(auth.throttled("alice", ATTACKER).is_some());
    assert!(matches!(
        auth.authenticate_http(Some(b"Basic YWxpY2U6YWxpY2UtcHc="), ATTACKER)
            .await,
        Err(LoginError::Throttled { .. })
    ));
    assert_eq!(auth.bcrypt_verifications(), before);

    // Another address is unaffected.
    assert!(auth.throttled("alice", OTHER).is_none());
    let alice = auth
        .verify_password("alice", "alice-pw", OTHER)
        .await
        .unwrap();
    assert_eq!(alice.name(), "alice");
    assert_eq!(
        auth.verify_password("nobody", "guess", OTHER).await,
        Err(LoginError::BadCredentials)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_spraying_cannot_outrun_the_budget() {
    let (_dir, auth) = setup(ThrottlePolicy::default()).await;
    let before = auth.bcrypt_verifications();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.verify_password(&format!("user{i}"), "guess", ATTACKER)
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_err());
    }
    // The budget is charged before bcrypt starts, so racing attempts do not slip past it.
    assert_eq!(auth.bcrypt_verifications() - before, 20);
}

#[tokio::test]
async fn successful_logins_do_not_spend_the_budget_and_ssh_key_failures_do() {
    let (_dir, auth) = setup(ThrottlePolicy {
        address_failures: 3,
        ..ThrottlePolicy::default()
    })
    .await;
    // Many cache misses that succeed (each a fresh password check) leave the budget whole.
    let admin = auth
        .verify_password("admin", "admin-pw", ADMIN_IP)
        .await
        .unwrap();
    for i in 0..5 {
        let pw = format!("alice-pw-{i}");
        auth.set_password(&admin, "alice", &pw).await.unwrap();
        assert!(auth.verify_password("alice", &pw, ATTACKER).await.is_ok());
    }
    // Failed key logins (SSH) count against the same budget as passwords.
    auth.record_failure("bob", ATTACKER);
    auth.record_failure("carol", ATTACKER);
    assert!(auth.throttled("dave", ATTACKER).is_none());
    assert_eq!(
        auth.verify_password("dave", "guess", ATTACKER).await,
        Err(LoginError::BadCredentials)
    );
    assert!(auth.throttled("erin", ATTACKER).is_some());
    // A valid login does not reset the budget for the address.
    assert!(throttled(
        &auth.verify_password("alice", "alice-pw-4", ATTACKER).await
    ));
}
