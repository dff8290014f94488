//! The state behind `auth = "token"`: the authentication mode setting, the instance's
//! signing key and its live sessions. It sits below `settings` and `registry` (which hold
//! it) and imports only bottom modules, so the token flow above can use all three without an
//! import circle.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use everlock_host::auth::Principal;
use everlock_host::storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};
use serde::Deserialize;

use crate::error::{OciError, OciResult};
use crate::respond::unauthorized;

/// Where the signing key lives in the instance's store.
const KEY_PATH: &str = "token/hs256.key";
/// Bytes of the signing key.
const KEY_LEN: usize = 32;
/// Sessions kept at most; beyond it the one expiring first goes.
pub(crate) const MAX_SESSIONS: usize = 65_536;

/// How clients authenticate to an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum AuthMode {
    /// HTTP Basic on every request (the default).
    #[default]
    Basic,
    /// The Docker token flow.
    Token,
}

/// The principal behind an issued token.
struct Session {
    principal: Principal,
    until: u64,
}

/// The token state of an instance: its signing key (loaded once) and live sessions.
#[derive(Default)]
pub(crate) struct Tokens {
    key: tokio::sync::OnceCell<Vec<u8>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Tokens {
    /// The instance's signing key, created (as `who`) the first time it is needed.
    pub(crate) async fn key(&self, store: &Store, who: &Principal) -> OciResult<&[u8]> {
        self.key
            .get_or_try_init(|| load_or_create_key(store, who))
            .await
            .map(Vec::as_slice)
    }

    /// Records the principal behind token `jti` until `until` (Unix seconds), evicting expired
    /// sessions, then the one expiring first, when the cap is reached.
    pub(crate) fn open_session(&self, jti: String, principal: Principal, until: u64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.len() >= MAX_SESSIONS {
            let now = now_secs();
            sessions.retain(|_, s| s.until > now);
        }
        if sessions.len() >= MAX_SESSIONS
            && let Some(first) = sessions
                .iter()
                .min_by_key(|(_, s)| s.until)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&first);
        }
        sessions.insert(jti, Session { principal, until });
    }

    /// How many sessions are held (expired ones included), for the bound's test.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The principal behind token `jti`, while its session lasts.
    pub(crate) fn session(&self, jti: &str) -> Option<Principal> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions
            .get(jti)
            .filter(|s| s.until > now_secs())
            .map(|s| s.principal.clone())
    }
}

/// Reads the instance's signing key, creating it when absent; a concurrent creator wins and
/// its key is read back.
async fn load_or_create_key(store: &Store, who: &Principal) -> OciResult<Vec<u8>> {
    for _ in 0..3 {
        match store.read(KEY_PATH).await {
            Ok(k) if k.len() == KEY_LEN => return Ok(k),
            Ok(_) => {
                return Err(OciError::internal(&StorageError::Corrupt(format!(
                    "{KEY_PATH} is not a {KEY_LEN}-byte key"
                ))));
            }
            Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(OciError::internal(&e)),
        }
        let mut key = vec![0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| {
            OciError::internal(&StorageError::Io(std::io::Error::other(e.to_string())))
        })?;
        let created = store
            .commit(
                vec![Op::PutBytes {
                    path: KEY_PATH.to_owned(),
                    bytes: key.clone(),
                }],
                vec![Precondition {
                    path: KEY_PATH.to_owned(),
                    expected: Expected::Absent,
                }],
                CommitMeta::new(who.name(), "oci: create the token signing key"),
            )
            .await;
        match created {
            Ok(_) => return Ok(key),
            // Another request created it first: read that one.
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(OciError::internal(&e)),
        }
    }
    Err(unauthorized("the token signing key is not available"))
}

/// Seconds since the Unix epoch (0 on a clock set before it).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
