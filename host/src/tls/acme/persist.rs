//! ACME material in the `everlock-system` store, so a restart (or, with shared storage,
//! another node) reuses the account and serves the same certificates:
//!
//! - `tls/acme/account.json`: the directory URL and the account credentials;
//! - `tls/acme/certs/<name>/chain.pem` and `key.pem`: one certificate per name, written
//!   together in one commit.
//!
//! The account is created with an `Absent` precondition: two nodes starting together agree on
//! the first one committed.

use everlock_storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};
use instant_acme::AccountCredentials;
use serde::{Deserialize, Serialize};

use super::AcmeError;

/// Where the account is kept.
pub const ACCOUNT_PATH: &str = "tls/acme/account.json";

/// The stored account.
#[derive(Serialize, Deserialize)]
pub struct StoredAccount {
    /// The directory the account belongs to; another directory needs another account.
    pub directory: String,
    /// The key and account URL.
    pub credentials: AccountCredentials,
}

fn chain_path(name: &str) -> String {
    format!("tls/acme/certs/{name}/chain.pem")
}

fn key_path(name: &str) -> String {
    format!("tls/acme/certs/{name}/key.pem")
}

fn commit_meta(message: String) -> CommitMeta {
    CommitMeta::new("system", message)
}

/// Reads a path, `None` when it does not exist.
async fn read_optional(store: &Store, path: &str) -> Result<Option<Vec<u8>>, AcmeError> {
    match store.read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(AcmeError::Store(e.to_string())),
    }
}

/// The stored account for `directory`, if any.
pub async fn load_account(
    store: &Store,
    directory: &str,
) -> Result<Option<StoredAccount>, AcmeError> {
    let Some(bytes) = read_optional(store, ACCOUNT_PATH).await? else {
        return Ok(None);
    };
    let account: StoredAccount =
        serde_json::from_slice(&bytes).map_err(|e| AcmeError::Store(e.to_string()))?;
    Ok((account.directory == directory).then_some(account))
}

/// Stores a new account. `replace` is false for the first account (then a concurrent writer
/// wins and `Ok(false)` says to read theirs) and true when the directory changed.
pub async fn save_account(
    store: &Store,
    account: &StoredAccount,
    replace: bool,
) -> Result<bool, AcmeError> {
    let bytes = serde_json::to_vec(account).map_err(|e| AcmeError::Store(e.to_string()))?;
    let preconditions = if replace {
        Vec::new()
    } else {
        vec![Precondition {
            path: ACCOUNT_PATH.to_owned(),
            expected: Expected::Absent,
        }]
    };
    let ops = vec![Op::PutBytes {
        path: ACCOUNT_PATH.to_owned(),
        bytes,
    }];
    let meta = commit_meta(format!("acme: account at {}", account.directory));
    match store.commit(ops, preconditions, meta).await {
        Ok(_) => Ok(true),
        Err(StorageError::Conflict { .. }) => Ok(false),
        Err(e) => Err(AcmeError::Store(e.to_string())),
    }
}

/// The stored certificate of `name` as (chain PEM, key PEM).
pub async fn load_cert(store: &Store, name: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>, AcmeError> {
    let Some(chain) = read_optional(store, &chain_path(name)).await? else {
        return Ok(None);
    };
    let Some(key) = read_optional(store, &key_path(name)).await? else {
        return Ok(None);
    };
    Ok(Some((chain, key)))
}

/// Stores `name`'s new certificate and key in one commit.
pub async fn save_cert(
    store: &Store,
    name: &str,
    chain_pem: &str,
    key_pem: &str,
) -> Result<(), AcmeError> {
    let ops = vec![
        Op::PutBytes {
            path: chain_path(name),
            bytes: chain_pem.as_bytes().to_vec(),
        },
        Op::PutBytes {
            path: key_path(name),
            bytes: key_pem.as_bytes().to_vec(),
        },
    ];
    store
        .commit(
            ops,
            Vec::new(),
            commit_meta(format!("acme: certificate for {name}")),
        )
        .await
        .map(|_| ())
        .map_err(|e| AcmeError::Store(e.to_string()))
}

/// Whether any account (for any directory) is stored.
pub async fn load_account_any(store: &Store) -> Result<bool, AcmeError> {
    Ok(read_optional(store, ACCOUNT_PATH).await?.is_some())
}

/// How long an ordering lease lasts: longer than one order with its retries takes.
pub const LEASE_SECS: i64 = 300;

fn lease_path(name: &str) -> String {
    format!("tls/acme/lease/{name}")
}

/// Takes (or extends) the lease that lets `holder` order `name`'s certificate until `now +
/// LEASE_SECS`, so that with shared storage one node at a time orders a name. False when
/// another holder's lease has not expired, or another node took it at the same moment.
pub async fn take_lease(
    store: &Store,
    name: &str,
    holder: &str,
    now: i64,
) -> Result<bool, AcmeError> {
    let path = lease_path(name);
    let store_err = |e: StorageError| AcmeError::Store(e.to_string());
    let expected = match store.stat(&path).await.map_err(store_err)? {
        None => Expected::Absent,
        Some(entry) => {
            let current = read_optional(store, &path).await?.unwrap_or_default();
            let text = String::from_utf8_lossy(&current);
            let mut words = text.split_whitespace();
            let theirs = words.next().unwrap_or_default();
            let until = words
                .next()
                .and_then(|u| u.parse::<i64>().ok())
                .unwrap_or(0);
            if theirs != holder && until > now {
                return Ok(false);
            }
            Expected::Version(entry.version)
        }
    };
    let ops = vec![Op::PutBytes {
        path: path.clone(),
        bytes: format!("{holder} {}", now.saturating_add(LEASE_SECS)).into_bytes(),
    }];
    let preconditions = vec![Precondition { path, expected }];
    match store
        .commit(
            ops,
            preconditions,
            commit_meta(format!("acme: ordering {name}")),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(StorageError::Conflict { .. }) => Ok(false),
        Err(e) => Err(store_err(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_until_the_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let stores = everlock_storage::StoreManager::new(dir.path());
        let store = stores.open("everlock-system").await.unwrap();
        let t = 1_000_000;
        assert!(take_lease(&store, "a.example", "node-a", t).await.unwrap());
        assert!(
            !take_lease(&store, "a.example", "node-b", t + 1)
                .await
                .unwrap()
        );
        // Another name is independent; the holder may extend its own lease.
        assert!(
            take_lease(&store, "b.example", "node-b", t + 1)
                .await
                .unwrap()
        );
        assert!(
            take_lease(&store, "a.example", "node-a", t + 2)
                .await
                .unwrap()
        );
        assert!(
            !take_lease(&store, "a.example", "node-b", t + LEASE_SECS)
                .await
                .unwrap()
        );
        // Expired: the other node takes over.
        assert!(
            take_lease(&store, "a.example", "node-b", t + 3 + LEASE_SECS)
                .await
                .unwrap()
        );
        assert!(
            !take_lease(&store, "a.example", "node-a", t + 4 + LEASE_SECS)
                .await
                .unwrap()
        );
    }
}
