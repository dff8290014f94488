//! `Auth`: the shared handle every frontend and backend uses to authenticate and authorize.
//!
//! The directory lives in memory as an immutable `Arc<Directory>` that is replaced whole on
//! every change, after the change is committed to the `everlock-users` store; readers never
//! block on writers and never see half a change.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::OnceCell;

use everlock_storage::{CommitMeta, Op, Store, StoreManager};

use crate::access::{AccessPath, Action};
use crate::basic::{Credentials, parse_authorization};
use crate::cache::CredentialCache;
use crate::error::AuthError;
use crate::model::{Directory, Group, User};
use crate::names::Login;
use crate::password;
use crate::principal::{Principal, SystemAuthority};
use crate::sshkey::SshPublicKey;
use crate::throttle::{Throttle, ThrottlePolicy};

/// Shared bcrypt outcomes of verifications in progress, by (login, keyed password digest).
type InFlight = HashMap<(String, [u8; 32]), Arc<OnceCell<bool>>>;

/// The store holding users, groups and grants.
pub const USERS_STORE: &str = "everlock-users";

/// Tunables of the auth service.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// bcrypt cost for new hashes (each +1 doubles the work).
    pub bcrypt_cost: u32,
    /// How long a verified (login, password) pair skips bcrypt.
    pub cache_ttl: Duration,
    /// Failed-login throttling.
    pub throttle: ThrottlePolicy,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            bcrypt_cost: bcrypt::DEFAULT_COST,
            cache_ttl: Duration::from_secs(300),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// Why a login attempt did not produce a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The credentials could not be parsed (HTTP 400).
    #[error("{0}")]
    Malformed(String),
    /// Unknown login, wrong password or unsupported scheme (HTTP 401).
    #[error("invalid credentials")]
    BadCredentials,
    /// Too many failures from this address, for this login or across logins (HTTP 429 +
    /// Retry-After).
    #[error("too many failed logins; retry after {} s", .retry_after.as_secs())]
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
}

/// The auth service handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    directory: RwLock<Arc<Directory>>,
    /// Serialises changes so each starts from the latest directory.
    write: tokio::sync::Mutex<()>,
    cache: CredentialCache,
    throttle: Throttle,
    cost: u32,
    /// A valid hash of a random password: unknown logins are verified against it so they
    /// cost the same bcrypt work as known ones and timing reveals nothing. Computed on first
    /// need, so startup does not pay for it.
    dummy_hash: OnceCell<String>,
    /// Verifications in progress, by (login, keyed password digest): identical concurrent
    /// attempts wait for one bcrypt run instead of each starting their own.
    in_flight: Mutex<InFlight>,
    bcrypt_runs: AtomicU64,
    /// Logins refused for bad credentials (passwords and keys), for metrics.
    failures: AtomicU64,
    /// Logins refused by the throttle without being checked, for metrics.
    throttled: AtomicU64,
}

impl Auth {
    /// Opens (creating if needed) the users store under `manager` and loads the directory.
    pub async fn open(manager: &StoreManager, options: AuthOptions) -> Result<Auth, AuthError> {
        let store = manager.open(USERS_STORE).await?;
        let directory = load(&store).await?;
        let cost = options.bcrypt_cost;
        Ok(Auth {
            inner: Arc::new(Inner {
                store,
                directory: RwLock::new(Arc::new(directory)),
                write: tokio::sync::Mutex::new(()),
                cache: CredentialCache::new(options.cache_ttl),
                throttle: Throttle::new(options.throttle),
                cost,
                dummy_hash: OnceCell::new(),
                in_flight: Mutex::new(HashMap::new()),
                bcrypt_runs: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
            }),
        })
    }

    /// Like [`Auth::open`], and also mints the process's [`SystemAuthority`]: the right to
    /// act as the server itself. Only the binary's composition root calls this (a test of the
    /// binary crate checks the sources), and it hands the authority to the host alone.
    pub async fn open_with_authority(
        manager: &StoreManager,
        options: AuthOptions,
    ) -> Result<(Auth, SystemAuthority), AuthError> {
        Ok((Auth::open(manager, options).await?, SystemAuthority::mint()))
    }

    /// The current directory snapshot.
    pub fn directory(&self) -> Arc<Directory> {
        Arc::clone(
            &self
                .inner
                .directory
                .read()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// The one authorization entry point.
    pub fn authorize(&self, principal: &Principal, resource: &AccessPath, action: Action) -> bool {
        self.directory().authorize(principal, resource, action)
    }

    /// Whether `principal` owns `*/*/*`.
    pub fn is_system_admin(&self, principal: &Principal) -> bool {
        self.directory().is_system_admin(principal)
    }

    /// How many bcrypt verifications this process has run (cache misses).
    pub fn bcrypt_verifications(&self) -> u64 {
        self.inner.bcrypt_runs.load(Ordering::Relaxed)
    }

    /// How many logins (password or key, HTTP or SSH) this process refused for bad
    /// credentials.
    pub fn login_failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// How many logins this process refused because the throttle was closed.
    pub fn login_throttles(&self) -> u64 {
        self.inner.throttled.load(Ordering::Relaxed)
    }

    /// Counts a throttle refusal and passes it on.
    fn count_throttled(&self, retry_after: Duration) -> LoginError {
        self.inner.throttled.fetch_add(1, Ordering::Relaxed);
        LoginError::Throttled { retry_after }
    }

    /// Authenticates an HTTP request from its raw `Authorization` header value.
    pub async fn authenticate_http(
        &self,
        header: Option<&[u8]>,
        remote: IpAddr,
    ) -> Result<Principal, LoginError> {
        match parse_authorization(header).map_err(|e| LoginError::Malformed(e.to_string()))? {
            Credentials::Anonymous => Ok(Principal::anon()),
            Credentials::Unsupported => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                Err(LoginError::BadCredentials)
            }
            Credentials::Basic { login, password } => {
                self.verify_password(&login, &password, remote).await
            }
        }
    }

    /// Verifies a login and password (HTTP Basic, SSH password auth), with the cache and
    /// the throttle.
    pub async fn verify_password(
        &self,
        login: &str,
        password: &str,
        remote: IpAddr,
    ) -> Result<Principal, LoginError> {
        self.inner
            .throttle
            .check(login, remote)
            .map_err(|retry_after| self.count_throttled(retry_after))?;
        let parsed: Option<Login> = login.parse().ok().filter(|l: &Login| !l.is_anon());
        let known = parsed.as_ref().and_then(|l| {
            self.directory()
                .users
                .get(l)
                .and_then(|u| u.password_hash.clone())
                .map(|h| (l.clone(), h))
        });
        if let Some((login, _)) = known
            .as_ref()
            .filter(|(l, _)| self.inner.cache.hit(l, password))
        {
            self.inner.throttle.success(login.as_str(), remote);
            return Ok(Principal::user(login.clone()));
        }
        // Every bcrypt run is charged to the address's budget before it starts, so spraying
        // many logins from one address (or racing many attempts at once) is cut off
        // without bcrypt once the budget is spent.
        self.inner
            .throttle
            .charge(remote)
            .map_err(|retry_after| self.count_throttled(retry_after))?;
        // Unknown logins are checked against a dummy hash: the same work, always false.
        let hash = match &known {
            Some((_, h)) => h.clone(),
            None => self.dummy_hash().await?,
        };
        let ok = self.bcrypt_once(login, password, hash.clone()).await;
        // The user may have been removed or re-passworded while bcrypt ran: only a hash
        // that is still current proves anything, so the old password fails at once.
        let current = |login: &Login| {
            self.directory()
                .users
                .get(login)
                .and_then(|u| u.password_hash.clone())
                == Some(hash.clone())
        };
        match known {
            Some((login, _)) if ok && current(&login) => {
                self.inner.cache.insert(&login, password);
                self.inner.throttle.success(login.as_str(), remote);
                self.inner.throttle.refund(remote);
                Ok(Principal::user(login))
            }
            _ => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                if let Some(retry_after) = self.inner.throttle.failure(login, remote) {
                    tracing::warn!(login = %sanitize(login), %remote, "login throttled for {} s", retry_after.as_secs());
                }
                Err(LoginError::BadCredentials)
            }
        }
    }

    /// Runs bcrypt for (login, password), sharing one run among identical concurrent
    /// attempts.
    async fn bcrypt_once(&self, login: &str, password: &str, hash: String) -> bool {
        let candidate = password.to_owned();
        let run = || async {
            self.inner.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || password::verify(&candidate, &hash))
                .await
                .unwrap_or(false)
        };
        // Without a cache key (no randomness) identical attempts are not shared: naming
        // them would need an unkeyed digest of the password.
        let Some(digest) = self.inner.cache.digest(password) else {
            return run().await;
        };
        let key = (login.to_owned(), digest);
        let cell = {
            let mut in_flight = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            Arc::clone(in_flight.entry(key.clone()).or_default())
        };
        let ok = *cell.get_or_init(run).await;
        let mut in_flight = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(&key);
        }
        ok
    }

    async fn dummy_hash(&self) -> Result<String, LoginError> {
        let cost = self.inner.cost;
        self.inner
            .dummy_hash
            .get_or_try_init(|| async move {
                let dummy = password::generate()?;
                tokio::task::spawn_blocking(move || password::hash(&dummy, cost))
                    .await
                    .map_err(|e| AuthError::Hash(e.to_string()))?
            })
            .await
            .cloned()
            .map_err(|e: AuthError| {
                tracing::error!(error = %e, "cannot prepare the dummy password hash");
                LoginError::BadCredentials
            })
    }

    /// The user holding `key`, if `login` has registered it (SSH public-key login). The
    /// caller must already have verified the key's signature.
    pub fn verify_key(&self, login: &str, key: &SshPublicKey) -> Option<Principal> {
        let login: Login = login.parse().ok()?;
        let dir = self.directory();
        let user = dir.users.get(&login)?;
        user.keys
            .iter()
            .any(|k| k.same_key(key))
            .then(|| Principal::user(login.clone()))
    }

    /// Whether password/key checks would currently be refused for (login, remote).
    pub fn throttled(&self, login: &str, remote: IpAddr) -> Option<Duration> {
        self.inner.throttle.check(login, remote).err()
    }

    /// Records a failed non-password login (e.g. an unknown SSH key) in the throttle: for
    /// the pair and against the address's budget.
    pub fn record_failure(&self, login: &str, remote: IpAddr) {
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
        self.inner.throttle.failure(login, remote);
        // A spent budget only means the address is already refused.
        let _ = self.inner.throttle.charge(remote);
    }

    /// Applies `change` to a copy of the directory, commits the records it changed as
    /// `actor` with `message`, then publishes the new directory. Nothing changes on error.
    pub(crate) async fn change<T>(
        &self,
        actor: &Principal,
        message: String,
        change: impl FnOnce(&mut Directory) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let _guard = self.inner.write.lock().await;
        let old = self.directory();
        let mut new = (*old).clone();
        let out = change(&mut new)?;
        if old.has_admin() && !new.has_admin() {
            return Err(AuthError::LastAdmin);
        }
        let ops = diff(&old, &new)?;
        if !ops.is_empty() {
            self.inner
                .store
                .commit(ops, Vec::new(), CommitMeta::new(actor.name(), message))
                .await?;
        }
        *self
            .inner
            .directory
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        Ok(out)
    }

    pub(crate) fn cache(&self) -> &CredentialCache {
        &self.inner.cache
    }

    /// Hashes on the blocking pool with the configured cost.
    pub(crate) async fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        password::validate(password)?;
        let cost = self.inner.cost;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || password::hash(&password, cost))
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))?
    }
}

/// Logins from the network go to logs only in a harmless form.
fn sanitize(login: &str) -> String {
    login
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

fn user_path(login: &Login) -> String {
    format!("users/{login}.toml")
}

fn group_path(name: &crate::names::GroupName) -> String {
    format!("groups/{name}.toml")
}

/// Reads every user and group record; `anon` is implied when absent.
async fn load(store: &Store) -> Result<Directory, AuthError> {
    let mut dir = Directory::default();
    for entry in store.list("users/").await? {
        let text = store.read(&entry.path).await?;
        let user: User = decode(&entry.path, &text)?;
        if user_path(&user.login) != entry.path {
            return Err(AuthError::Corrupt {
                path: entry.path,
                reason: format!("holds user '{}'", user.login),
            });
        }
        dir.users.insert(user.login.clone(), user);
    }
    for entry in store.list("groups/").await? {
        let text = store.read(&entry.path).await?;
        let group: Group = decode(&entry.path, &text)?;
        if group_path(&group.name) != entry.path {
            return Err(AuthError::Corrupt {
                path: entry.path,
                reason: format!("holds group '{}'", group.name),
            });
        }
        dir.groups.insert(group.name.clone(), group);
    }
    dir.users
        .entry(Login::anon())
        .or_insert_with(|| User::new(Login::anon()));
    Ok(dir)
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, AuthError> {
    let text = std::str::from_utf8(bytes).map_err(|e| AuthError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    toml::from_str(text).map_err(|e| AuthError::Corrupt {
        path: path.to_owned(),
        reason: e.message().to_owned(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, AuthError> {
    toml::to_string(value)
        .map(String::into_bytes)
        .map_err(|e| AuthError::Hash(format!("cannot encode record: {e}")))
}

/// The store operations that turn `old` into `new`: one per changed record.
fn diff(old: &Directory, new: &Directory) -> Result<Vec<Op>, AuthError> {
    let mut ops = Vec::new();
    for (login, user) in &new.users {
        if old.users.get(login) != Some(user) {
            ops.push(Op::PutBytes {
                path: user_path(login),
                bytes: encode(user)?,
            });
        }
    }
    for login in old.users.keys().filter(|l| !new.users.contains_key(*l)) {
        ops.push(Op::Delete {
            path: user_path(login),
        });
    }
    for (name, group) in &new.groups {
        if old.groups.get(name) != Some(group) {
            ops.push(Op::PutBytes {
                path: group_path(name),
                bytes: encode(group)?,
            });
        }
    }
    for name in old.groups.keys().filter(|n| !new.groups.contains_key(*n)) {
        ops.push(Op::Delete {
            path: group_path(name),
        });
    }
    Ok(ops)
}

/// Login spraying and the shared per-address budget, end to end through `Auth`.
#[cfg(test)]
mod spray_tests;

#[cfg(test)]
mod tests;
