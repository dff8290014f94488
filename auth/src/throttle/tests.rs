use super::*;

const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

#[test]
fn locks_after_free_failures_per_pair() {
    let t = Throttle::new(ThrottlePolicy::default());
    for _ in 0..5 {
        assert_eq!(t.failure("alice", A), None);
        assert!(t.check("alice", A).is_ok());
    }
    let lock = t.failure("alice", A).unwrap();
    assert_eq!(lock, Duration::from_secs(30));
    let retry = t.check("alice", A).unwrap_err();
    assert!(retry <= Duration::from_secs(30) && retry >= Duration::from_secs(29));
    // Another address and another login are unaffected.
    assert!(t.check("alice", B).is_ok());
    assert!(t.check("bob", A).is_ok());
    // Further failures double the lockout, up to the cap.
    assert_eq!(t.failure("alice", A), Some(Duration::from_secs(60)));
    for _ in 0..20 {
        t.failure("alice", A);
    }
    assert_eq!(t.failure("alice", A), Some(Duration::from_secs(900)));
    t.success("alice", A);
    assert!(t.check("alice", A).is_ok());
}

#[test]
fn the_address_budget_spans_logins_and_addresses_are_independent() {
    let t = Throttle::new(ThrottlePolicy::default());
    for i in 0..20 {
        let login = format!("user{i}");
        assert!(t.check(&login, A).is_ok(), "attempt {i}");
        assert_eq!(t.charge(A), Ok(()), "attempt {i}");
        assert_eq!(t.failure(&login, A), None);
    }
    // The budget is spent: any login from A is refused, for at most the window.
    let retry = t.check("someone-new", A).unwrap_err();
    assert!(retry >= Duration::from_secs(59) && retry <= Duration::from_secs(60));
    assert!(t.charge(A).is_err());
    // A success of another pair does not reset the address budget.
    t.success("user0", A);
    assert!(t.check("user0", A).is_err());
    // Another address has its own budget.
    assert!(t.check("user0", B).is_ok());
    assert_eq!(t.charge(B), Ok(()));
}

#[test]
fn successful_checks_are_refunded() {
    let t = Throttle::new(ThrottlePolicy::default());
    for _ in 0..19 {
        t.charge(A).unwrap();
    }
    // A busy address with valid credentials never runs out.
    for _ in 0..100 {
        assert_eq!(t.charge(A), Ok(()));
        t.refund(A);
    }
    assert!(t.check("x", A).is_ok());
    // Spending the last unit locks; a refund of an attempt in flight lifts it again.
    t.charge(A).unwrap();
    assert!(t.check("x", A).is_err());
    t.refund(A);
    assert!(t.check("x", A).is_ok());
    // Refunding an address never charged creates nothing.
    t.refund(B);
    assert!(t.addresses.lock().unwrap().get(&B).is_none());
}

#[test]
fn a_zero_budget_turns_the_address_limit_off() {
    let t = Throttle::new(ThrottlePolicy {
        address_failures: 0,
        ..ThrottlePolicy::default()
    });
    for _ in 0..1000 {
        assert_eq!(t.charge(A), Ok(()));
    }
    assert!(t.check("x", A).is_ok());
}

#[test]
fn ipv6_addresses_share_their_slash_64_and_mapped_ipv4_is_ipv4() {
    let t = Throttle::new(ThrottlePolicy {
        address_failures: 2,
        ..ThrottlePolicy::default()
    });
    let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let two: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
    let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    t.charge(one).unwrap();
    t.charge(two).unwrap();
    assert!(t.check("x", one).is_err() && t.check("x", two).is_err());
    assert!(t.check("x", other).is_ok());
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    t.charge(mapped).unwrap();
    t.charge(A).unwrap();
    assert!(t.check("x", A).is_err() && t.check("x", mapped).is_err());
}

#[test]
fn a_full_table_evicts_the_oldest_and_keeps_existing_lockouts() {
    let t = Throttle::new(ThrottlePolicy {
        max_tracked: 8,
        address_failures: 0,
        ..ThrottlePolicy::default()
    });
    // Lock out (mallory, A).
    for _ in 0..6 {
        t.failure("mallory", A);
    }
    assert!(t.check("mallory", A).is_err());
    // One tracked failure of (alice, A), then far more new pairs than the table holds.
    t.failure("alice", A);
    for i in 0..1000 {
        t.failure(&format!("spray{i}"), B);
        assert!(
            t.pairs.lock().unwrap().len() <= 8,
            "the table stays bounded"
        );
    }
    // The lockout survives (clearing the table used to lift it); the oldest idle record,
    // alice's, was evicted; the newest entries are kept.
    assert!(t.check("mallory", A).is_err());
    let pairs = t.pairs.lock().unwrap();
    assert!(pairs.get(&pair_key("alice", A)).is_none());
    assert!(pairs.get(&pair_key("spray999", B)).is_some());
    assert!(pairs.get(&pair_key("spray992", B)).is_none());
}

#[test]
fn address_lockouts_survive_a_full_address_table() {
    let t = Throttle::new(ThrottlePolicy {
        max_tracked: 4,
        address_failures: 3,
        ..ThrottlePolicy::default()
    });
    for _ in 0..3 {
        t.charge(A).unwrap();
    }
    for i in 0..=255u8 {
        t.charge(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, i)))
            .unwrap();
    }
    assert!(t.check("anyone", A).is_err());
}

#[test]
fn long_logins_are_cut_to_a_bounded_key() {
    let long = "é".repeat(1000);
    let (key, ip) = pair_key(&long, "::ffff:10.0.0.1".parse().unwrap());
    assert!(key.len() <= MAX_LOGIN_KEY && long.starts_with(&key));
    assert_eq!(ip, A);
    assert_eq!(pair_key("alice", A).0, "alice");
}
