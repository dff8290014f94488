//! Several `Auth` handles on one users store stand for several nodes: each has its own
//! in-memory directory, and none may lose another's update or keep serving a stale one.

use super::*;
use crate::admin::AdminPassword;

fn options() -> AuthOptions {
    AuthOptions {
        bcrypt_cost: 4,
        ..AuthOptions::default()
    }
}

/// Two handles on one store (one manager, so one shared `Store`), bootstrapped with `admin`.
async fn two_nodes(manager: &StoreManager) -> (Auth, Auth, Principal) {
    let a = Auth::open(manager, options()).await.unwrap();
    a.bootstrap("admin", AdminPassword::Given("admin-pw".into()))
        .await
        .unwrap();
    let b = Auth::open(manager, options()).await.unwrap();
    (a, b, Principal::test_user("admin"))
}

/// Waits up to `limit` for `cond` on a node's directory.
async fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Both nodes add members to one group at the same time. Before the compare-and-swap, each
/// node wrote the group record from its own stale copy and members vanished.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_on_two_nodes_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let manager = StoreManager::new(dir.path());
    let (a, b, admin) = two_nodes(&manager).await;
    a.add_group(&admin, "devs").await.unwrap();
    let logins: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
    for login in &logins {
        a.add_user(&admin, login, "password-1").await.unwrap();
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
    // The store holds every member, and a fresh reader agrees.
    let fresh = Auth::open(&manager, options()).await.unwrap();
    let members = fresh.list_groups(&admin).unwrap()[0].members.clone();
    assert_eq!(members.len(), logins.len(), "{members:?}");
    for node in [&a, &b] {
        node.refresh(u64::MAX).await.unwrap();
        assert_eq!(node.list_groups(&admin).unwrap()[0].members, members);
    }
}

/// Another node commits between this node's read and its commit (the worst moment): the
/// compare-and-swap fails, the change reruns on the reloaded directory, and both updates
/// survive. Without the precondition the second writer overwrote the record it had read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_racing_between_read_and_write_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let manager = StoreManager::new(dir.path());
    let (a, _b, admin) = two_nodes(&manager).await;
    a.add_group(&admin, "devs").await.unwrap();
    for login in ["x", "y"] {
        a.add_user(&admin, login, "password-1").await.unwrap();
    }
    let store = a.inner.store.clone();
    let raced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runs = Arc::new(AtomicU64::new(0));
    let (raced2, runs2) = (Arc::clone(&raced), Arc::clone(&runs));
    a.change(&admin, "assign y".into(), move |dir| {
        runs2.fetch_add(1, Ordering::SeqCst);
        if !raced2.swap(true, Ordering::SeqCst) {
            // "Node B" adds x to the group after this node read the directory.
            let mut group = dir.groups.values().next().unwrap().clone();
            group.members.insert("x".parse().unwrap());
            store
                .commit_blocking(
                    vec![Op::PutBytes {
                        path: "groups/devs.toml".into(),
                        bytes: toml::to_string(&group).unwrap().into_bytes(),
                    }],
                    &[],
                    &CommitMeta::new("admin", "node b: assign x"),
                )
                .unwrap();
        }
        let group = dir.groups.values_mut().next().unwrap();
        group.members.insert("y".parse().unwrap());
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the change must rerun once");
    let fresh = Auth::open(&manager, options()).await.unwrap();
    assert_eq!(
        fresh.list_groups(&admin).unwrap()[0].members,
        vec!["x".to_owned(), "y".to_owned()]
    );
}

/// A change made from a stale directory must not resurrect what another node removed, nor
/// break an invariant the other node's change relies on (the last administrator).
#[tokio::test]
async fn a_stale_node_reloads_before_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let manager = StoreManager::new(dir.path());
    let (a, b, admin) = two_nodes(&manager).await;
    a.add_user(&admin, "alice", "password-1").await.unwrap();
    a.grant(&admin, "alice", "*/*/*", "owner").await.unwrap();
    b.refresh(u64::MAX).await.unwrap();
    // Node A removes alice; node B, not yet told, grants her something: the grant must fail
    // as on a single node, never bring alice back.
    a.remove_user(&admin, "alice").await.unwrap();
    let err = b
        .grant(&admin, "alice", "http/site/x", "reader")
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::NoSuchUser(_)), "{err}");
    let fresh = Auth::open(&manager, options()).await.unwrap();
    assert!(
        !fresh
            .directory()
            .users
            .contains_key(&"alice".parse().unwrap())
    );
    // Now only admin is an administrator: node B cannot remove it even though its copy was
    // read when alice was one too.
    let err = b.remove_user(&admin, "admin").await.unwrap_err();
    assert!(matches!(err, AuthError::LastAdmin), "{err}");
}

/// A node learns of another node's change without changing anything itself, and a password
/// changed elsewhere stops working here at once (the credential cache is dropped).
#[tokio::test]
async fn a_node_follows_changes_made_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let manager = StoreManager::new(dir.path());
    let (a, b, admin) = two_nodes(&manager).await;
    let ip = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    a.add_user(&admin, "carol", "first-password").await.unwrap();
    let carol: Login = "carol".parse().unwrap();
    assert!(
        within(Duration::from_secs(1), || b
            .directory()
            .users
            .contains_key(&carol))
        .await,
        "node B never saw carol"
    );
    b.verify_password("carol", "first-password", ip)
        .await
        .unwrap();
    a.set_password(&admin, "carol", "second-password")
        .await
        .unwrap();
    let changed = || {
        b.directory()
            .users
            .get(&carol)
            .and_then(|u| u.password_hash.clone())
            != a.directory()
                .users
                .get(&carol)
                .and_then(|u| u.password_hash.clone())
    };
    assert!(
        within(Duration::from_secs(1), || !changed()).await,
        "node B kept the old password hash"
    );
    assert!(
        b.verify_password("carol", "first-password", ip)
            .await
            .is_err()
    );
}

#[test]
fn preconditions_cover_every_record_read_and_every_record_created() {
    let mut versions = Versions {
        seq: 4,
        records: HashMap::from([
            ("users/a.toml".to_owned(), 2),
            ("groups/g.toml".to_owned(), 4),
        ]),
    };
    let ops = vec![
        Op::PutBytes {
            path: "users/a.toml".into(),
            bytes: b"x".to_vec(),
        },
        Op::PutBytes {
            path: "users/new.toml".into(),
            bytes: b"y".to_vec(),
        },
    ];
    let mut pre = versions.preconditions(&ops);
    pre.sort_by(|x, y| x.path.cmp(&y.path));
    let expect = |path: &str, expected| everlock_storage::Precondition {
        path: path.into(),
        expected,
    };
    assert_eq!(
        pre,
        vec![
            expect("groups/g.toml", everlock_storage::Expected::Version(4)),
            expect("users/a.toml", everlock_storage::Expected::Version(2)),
            expect("users/new.toml", everlock_storage::Expected::Absent),
        ]
    );
    versions.committed(5, &ops);
    assert_eq!(versions.seq, 5);
    assert_eq!(versions.records.get("users/new.toml"), Some(&5));
    // A commit that is not the next one means another landed in between: stay behind.
    versions.committed(
        9,
        &[Op::Delete {
            path: "users/a.toml".into(),
        }],
    );
    assert_eq!(versions.seq, 5);
    assert!(!versions.records.contains_key("users/a.toml"));
}
