//! Failed-login throttling, shared by every frontend (HTTP Basic and SSH both go through
//! `Auth`), at two levels:
//!
//! - per (login, client address): an attacker hammering one account from one address is
//!   locked out with doubling lockouts, while the real user logging in from elsewhere is not;
//! - per client address, across logins: each address has a budget of unproven password
//!   checks per window. Without it, cycling logins made every request a full bcrypt run
//!   (the pair throttle never triggers), and legitimate logins slowed twentyfold. Once the
//!   budget is spent, every attempt from the address is refused without bcrypt until the
//!   window ends, whatever the login.
//!
//! Both tables are bounded and evict their oldest idle records (never clearing), so filling
//! them with new entries cannot lift existing lockouts.

mod table;

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use table::{Table, Tracked};

/// How forgiving the throttle is.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    /// Failures per (login, address) allowed within `window` before lockouts start.
    pub free_failures: u32,
    /// Lockout after the first failure beyond the free ones; doubles with each further one.
    pub base_lockout: Duration,
    /// Longest lockout.
    pub max_lockout: Duration,
    /// Failures older than this (and not locked) are forgotten.
    pub window: Duration,
    /// Password checks per client address, across all logins, that may fail within
    /// `address_window`; beyond it the address is refused until the window ends. `0` turns
    /// the per-address budget off (e.g. behind a proxy that hides client addresses).
    pub address_failures: u32,
    /// The window of the per-address budget; it starts at the address's first failure.
    pub address_window: Duration,
    /// Most records each throttle table keeps; beyond it the oldest idle record is evicted.
    pub max_tracked: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            base_lockout: Duration::from_secs(30),
            max_lockout: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
            address_failures: 20,
            address_window: Duration::from_secs(60),
            max_tracked: 100_000,
        }
    }
}

/// Failures of one (login, address) pair.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Tracked for Failures {
    fn last(&self) -> Instant {
        self.last
    }
    fn locked_until(&self) -> Option<Instant> {
        self.locked_until
    }
}

/// Unproven password checks of one client address in the current window.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Checks charged in this window (refunded when they succeed).
    spent: u32,
    window_end: Instant,
    last: Instant,
    /// Set while the budget is spent: the end of the window.
    locked_until: Option<Instant>,
}

impl Tracked for Budget {
    fn last(&self) -> Instant {
        self.last
    }
    fn locked_until(&self) -> Option<Instant> {
        self.locked_until
    }
}

/// Longest login kept as a key: valid logins are far shorter, and cutting longer ones
/// bounds the memory an attacker can pin with huge invalid logins.
const MAX_LOGIN_KEY: usize = 64;

/// Longest per-address window honoured.
const MAX_ADDRESS_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Tracks failures and lockouts.
#[derive(Debug)]
pub(crate) struct Throttle {
    policy: ThrottlePolicy,
    pairs: Mutex<Table<(String, IpAddr), Failures>>,
    addresses: Mutex<Table<IpAddr, Budget>>,
}

impl Throttle {
    pub(crate) fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle {
            pairs: Mutex::new(Table::new(policy.max_tracked)),
            addresses: Mutex::new(Table::new(policy.max_tracked)),
            policy,
        }
    }

    /// `Err(retry_after)` while the pair or the whole address is locked out.
    pub(crate) fn check(&self, login: &str, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let pair = {
            let pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
            pairs.get(&pair_key(login, ip)).and_then(|f| f.locked_until)
        };
        let address = {
            let addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
            addresses.get(&address_key(ip)).and_then(|b| b.locked_until)
        };
        match pair.max(address) {
            Some(until) if until > now => Err(round_up(until.saturating_duration_since(now))),
            _ => Ok(()),
        }
    }

    /// Charges one password check to the address's budget before it runs, or refuses it
    /// with `Err(retry_after)` when the budget is spent. Charging before the check (not
    /// after a failure) keeps concurrent attempts from all slipping past the budget.
    pub(crate) fn charge(&self, ip: IpAddr) -> Result<(), Duration> {
        let budget = self.policy.address_failures;
        if budget == 0 {
            return Ok(());
        }
        let now = Instant::now();
        // Clamped so `now + window` cannot overflow whatever the configuration says.
        let window = self.policy.address_window.min(MAX_ADDRESS_WINDOW);
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        addresses.update(
            &address_key(ip),
            now,
            || Budget {
                spent: 0,
                window_end: now + window,
                last: now,
                locked_until: None,
            },
            |b| {
                if b.window_end <= now {
                    *b = Budget {
                        spent: 0,
                        window_end: now + window,
                        last: now,
                        locked_until: None,
                    };
                }
                b.last = now;
                if b.spent >= budget {
                    return Err(round_up(b.window_end.saturating_duration_since(now)));
                }
                b.spent += 1;
                if b.spent >= budget {
                    b.locked_until = Some(b.window_end);
                }
                Ok(())
            },
        )
    }

    /// Gives back a charge whose check succeeded: only failures spend the budget, so a
    /// busy address with valid credentials is never refused.
    pub(crate) fn refund(&self, ip: IpAddr) {
        let budget = self.policy.address_failures;
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        let key = address_key(ip);
        if addresses.get(&key).is_none() {
            return;
        }
        let now = Instant::now();
        addresses.update(
            &key,
            now,
            || Budget {
                spent: 0,
                window_end: now,
                last: now,
                locked_until: None,
            },
            |b| {
                b.spent = b.spent.saturating_sub(1);
                if b.spent < budget {
                    b.locked_until = None;
                }
            },
        );
    }

    /// Records a failure of the pair; returns the lockout it starts, if any.
    pub(crate) fn failure(&self, login: &str, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let policy = &self.policy;
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        pairs.update(
            &pair_key(login, ip),
            now,
            || Failures {
                count: 0,
                last: now,
                locked_until: None,
            },
            |f| {
                let locked = f.locked_until.is_some_and(|u| u > now);
                if !locked && now - f.last > policy.window {
                    f.count = 0;
                }
                f.count = f.count.saturating_add(1);
                f.last = now;
                if f.count > policy.free_failures {
                    let doublings = (f.count - policy.free_failures - 1).min(20);
                    let lockout = policy
                        .base_lockout
                        .saturating_mul(1 << doublings)
                        .min(policy.max_lockout);
                    f.locked_until = Some(now + lockout);
                    Some(round_up(lockout))
                } else {
                    None
                }
            },
        )
    }

    /// A successful login clears the pair's record (not the address budget: one valid
    /// account must not let an attacker reset the budget for spraying others).
    pub(crate) fn success(&self, login: &str, ip: IpAddr) {
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        pairs.remove(&pair_key(login, ip));
    }
}

/// The pair's key: the login cut to `MAX_LOGIN_KEY` bytes, the canonical address.
fn pair_key(login: &str, ip: IpAddr) -> (String, IpAddr) {
    let end = login.floor_char_boundary(MAX_LOGIN_KEY);
    (
        login.get(..end).unwrap_or(login).to_owned(),
        ip.to_canonical(),
    )
}

/// The address budget's key. IPv4-mapped IPv6 counts as the IPv4 address, and other IPv6
/// addresses by their /64: a single host is usually given a whole /64, so counting each
/// address separately would hand it 2^64 budgets.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Whole seconds, at least one, as `Retry-After` wants.
fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests;
