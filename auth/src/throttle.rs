//! Failed-login throttling per (login, client address), shared by every frontend.
//!
//! Keying on the pair means an attacker hammering one account from one address is slowed
//! down, while the real user logging in from elsewhere is not locked out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How forgiving the throttle is.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    /// Failures allowed within `window` before lockouts start.
    pub free_failures: u32,
    /// Lockout after the first failure beyond the free ones; doubles with each further one.
    pub base_lockout: Duration,
    /// Longest lockout.
    pub max_lockout: Duration,
    /// Failures older than this (and not locked) are forgotten.
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            base_lockout: Duration::from_secs(30),
            max_lockout: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Most tracked pairs; beyond it, stale ones are pruned and, if still full, the oldest go.
const MAX_TRACKED: usize = 100_000;

/// Tracks failures and lockouts.
#[derive(Debug)]
pub(crate) struct Throttle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<(String, IpAddr), Failures>>,
}

impl Throttle {
    pub(crate) fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` while the pair is locked out.
    pub(crate) fn check(&self, login: &str, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries
            .get(&(login.to_owned(), ip))
            .and_then(|f| f.locked_until)
        {
            Some(until) if until > now => Err(round_up(until - now)),
            _ => Ok(()),
        }
    }

    /// Records a failure; returns the lockout it starts, if any.
    pub(crate) fn failure(&self, login: &str, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_TRACKED {
            let window = self.policy.window;
            entries.retain(|_, f| f.locked_until.is_some_and(|u| u > now) || now - f.last < window);
            if entries.len() >= MAX_TRACKED {
                entries.clear();
            }
        }
        let f = entries.entry((login.to_owned(), ip)).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        let locked = f.locked_until.is_some_and(|u| u > now);
        if !locked && now - f.last > self.policy.window {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count > self.policy.free_failures {
            let doublings = (f.count - self.policy.free_failures - 1).min(20);
            let lockout = self
                .policy
                .base_lockout
                .saturating_mul(1 << doublings)
                .min(self.policy.max_lockout);
            f.locked_until = Some(now + lockout);
            Some(round_up(lockout))
        } else {
            None
        }
    }

    /// A successful login clears the pair's record.
    pub(crate) fn success(&self, login: &str, ip: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&(login.to_owned(), ip));
    }
}

/// Whole seconds, at least one, as `Retry-After` wants.
fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_free_failures_per_pair() {
        let t = Throttle::new(ThrottlePolicy::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(t.failure("alice", a), None);
            assert!(t.check("alice", a).is_ok());
        }
        let lock = t.failure("alice", a).unwrap();
        assert_eq!(lock, Duration::from_secs(30));
        let retry = t.check("alice", a).unwrap_err();
        assert!(retry <= Duration::from_secs(30) && retry >= Duration::from_secs(29));
        // Another address and another login are unaffected.
        assert!(t.check("alice", b).is_ok());
        assert!(t.check("bob", a).is_ok());
        // Further failures double the lockout, up to the cap.
        assert_eq!(t.failure("alice", a), Some(Duration::from_secs(60)));
        for _ in 0..20 {
            t.failure("alice", a);
        }
        assert_eq!(t.failure("alice", a), Some(Duration::from_secs(900)));
        t.success("alice", a);
        assert!(t.check("alice", a).is_ok());
    }
}
