//! The verified-credential cache: bcrypt runs once per (user, password) per TTL.
//!
//! Entries hold a keyed SHA-256 of the password (the key is random per process), never the
//! password itself, so a memory dump does not reveal passwords and the cache cannot be used
//! as an offline oracle across restarts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::names::Login;

/// Most entries kept before the cache is flushed (a bound on memory under credential
/// stuffing with many valid accounts, which is unusual; misses only cost a bcrypt run).
const MAX_ENTRIES: usize = 10_000;
/// Most distinct passwords remembered per user (old ones stay valid only until changed).
const PER_USER: usize = 4;

/// Keyed password digests with their expiry, per login.
type Entries = HashMap<Login, Vec<([u8; 32], Instant)>>;

/// Remembers recently verified (login, password) pairs.
#[derive(Debug)]
pub(crate) struct CredentialCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl CredentialCache {
    pub(crate) fn new(ttl: Duration) -> CredentialCache {
        let mut key = [0u8; 32];
        // Without randomness the key is all zeros: entries are then plain SHA-256 digests,
        // still never the password itself.
        let _ = getrandom::fill(&mut key);
        CredentialCache {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The keyed digest entries are stored under; also names in-flight verifications.
    pub(crate) fn digest(&self, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Whether this pair was verified within the TTL.
    pub(crate) fn hit(&self, login: &Login, password: &str) -> bool {
        let d = self.digest(password);
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(login).is_some_and(|v| {
            v.iter()
                .any(|(digest, expires)| *digest == d && *expires > now)
        })
    }

    /// Records a successful verification.
    pub(crate) fn insert(&self, login: &Login, password: &str) {
        let d = self.digest(password);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let v = entries.entry(login.clone()).or_default();
        v.retain(|(digest, expires)| *expires > now && *digest != d);
        if v.len() >= PER_USER {
            v.remove(0);
        }
        v.push((d, now + self.ttl));
    }

    /// Forgets every cached password of `login` (password change, removal).
    pub(crate) fn invalidate(&self, login: &Login) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(login);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_insert_invalidate_expire() {
        let c = CredentialCache::new(Duration::from_secs(60));
        let alice: Login = "alice".parse().unwrap();
        assert!(!c.hit(&alice, "pw"));
        c.insert(&alice, "pw");
        assert!(c.hit(&alice, "pw"));
        assert!(!c.hit(&alice, "other"));
        assert!(!c.hit(&"bob".parse().unwrap(), "pw"));
        c.invalidate(&alice);
        assert!(!c.hit(&alice, "pw"));
        let short = CredentialCache::new(Duration::ZERO);
        short.insert(&alice, "pw");
        assert!(!short.hit(&alice, "pw"));
    }
}
