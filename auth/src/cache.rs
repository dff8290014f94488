//! The verified-credential cache: bcrypt runs once per (user, password) per TTL.
//!
//! Entries hold HMAC-SHA256 of the password under a random per-process key, never the
//! password itself, so a memory dump does not reveal passwords and the cache cannot be used
//! as an offline oracle across restarts. HMAC (not `sha256(key || password)`) is the
//! construction built to be a keyed pseudo-random function.
//!
//! Without a random key the cache is disabled (fail closed): a fixed or zero key would turn
//! the digests into an unkeyed, precomputable hash of each password. A disabled cache only
//! costs a bcrypt run per login, and refusing to start over a performance feature would turn
//! a transient entropy failure into an outage.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::names::Login;

/// Most entries kept before the cache is flushed (a bound on memory under credential
/// stuffing with many valid accounts, which is unusual; misses only cost a bcrypt run).
const MAX_ENTRIES: usize = 10_000;
/// Most distinct passwords remembered per user (old ones stay valid only until changed).
const PER_USER: usize = 4;

/// Keyed password digests with their expiry, per login.
type Entries = HashMap<Login, Vec<([u8; 32], Instant)>>;

/// Remembers recently verified (login, password) pairs.
pub(crate) struct CredentialCache {
    /// HMAC state keyed with the per-process key; `None` when no random key could be
    /// generated, which disables the cache.
    mac: Option<Hmac<Sha256>>,
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl fmt::Debug for CredentialCache {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialCache")
            .field("enabled", &self.mac.is_some())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    /// A cache keyed with a fresh random key, or a disabled one if the system cannot
    /// provide randomness.
    pub(crate) fn new(ttl: Duration) -> CredentialCache {
        let mut key = [0u8; 32];
        match getrandom::fill(&mut key) {
            Ok(()) => CredentialCache::with_key(ttl, Some(key)),
            Err(e) => {
                tracing::error!(error = %e, "no randomness for the credential cache key; caching disabled, every login runs bcrypt");
                CredentialCache::with_key(ttl, None)
            }
        }
    }

    /// A cache keyed with `key`; `None` disables it. Only `new` and tests choose the key.
    fn with_key(ttl: Duration, key: Option<[u8; 32]>) -> CredentialCache {
        CredentialCache {
            // HMAC accepts keys of any length, so this never fails; if it did, the cache
            // would be disabled rather than run with a weaker key.
            mac: key.and_then(|k| Hmac::<Sha256>::new_from_slice(&k).ok()),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The keyed digest entries are stored under; also names in-flight verifications.
    /// `None` when the cache is disabled.
    pub(crate) fn digest(&self, password: &str) -> Option<[u8; 32]> {
        let mut mac = self.mac.clone()?;
        mac.update(password.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// Whether this pair was verified within the TTL.
    pub(crate) fn hit(&self, login: &Login, password: &str) -> bool {
        let Some(d) = self.digest(password) else {
            return false;
        };
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(login).is_some_and(|v| {
            v.iter()
                .any(|(digest, expires)| *digest == d && *expires > now)
        })
    }

    /// Records a successful verification.
    pub(crate) fn insert(&self, login: &Login, password: &str) {
        let Some(d) = self.digest(password) else {
            return;
        };
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

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_digest_is_hmac_sha256_under_the_key() {
        // RFC 4231 test case 1: key 0x0b * 20, data "Hi There". HMAC pads short keys with
        // zeros to the block size, so the same key padded to 32 bytes gives the same MAC.
        let mut key = [0u8; 32];
        key[..20].fill(0x0b);
        let c = CredentialCache::with_key(Duration::from_secs(60), Some(key));
        assert_eq!(
            hex(&c.digest("Hi There").unwrap()),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // And it agrees with the hmac crate for an arbitrary key and password.
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7 + 1) as u8);
        let c = CredentialCache::with_key(Duration::from_secs(60), Some(key));
        let want = Hmac::<Sha256>::new_from_slice(&key)
            .unwrap()
            .chain_update("pässwörd".as_bytes())
            .finalize()
            .into_bytes();
        assert_eq!(c.digest("pässwörd").unwrap(), <[u8; 32]>::from(want));
        // Not the old `sha256(key || password)` construction.
        use sha2::Digest as _;
        let old: [u8; 32] = Sha256::new()
            .chain_update(key)
            .chain_update("pässwörd")
            .finalize()
            .into();
        assert_ne!(c.digest("pässwörd").unwrap(), old);
    }

    #[test]
    fn every_instance_has_its_own_random_key() {
        let a = CredentialCache::new(Duration::from_secs(60));
        let b = CredentialCache::new(Duration::from_secs(60));
        let (da, db) = (a.digest("pw").unwrap(), b.digest("pw").unwrap());
        assert_ne!(da, db);
        // Not a zero key either.
        let zero = CredentialCache::with_key(Duration::from_secs(60), Some([0; 32]));
        assert_ne!(da, zero.digest("pw").unwrap());
        // Stable within an instance, so lookups find their entries.
        assert_eq!(a.digest("pw"), Some(da));
        // Debug output never shows key material.
        assert!(!format!("{a:?}").contains("Hmac"));
    }

    #[test]
    fn without_a_key_the_cache_never_hits() {
        let c = CredentialCache::with_key(Duration::from_secs(60), None);
        let alice: Login = "alice".parse().unwrap();
        c.insert(&alice, "pw");
        assert!(!c.hit(&alice, "pw"));
        assert_eq!(c.digest("pw"), None);
    }
}
