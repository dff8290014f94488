//! `Auth`: the shared handle every frontend and backend uses to authenticate and authorize.
//!
//! The directory lives in memory as an immutable `Arc<Directory>` that is replaced whole on
//! every change, after the change is committed to the `everlock-users` store; readers never
//! block on writers and never see half a change.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::OnceCell;

use everlock_storage::{CommitMeta, Op, StorageError, Store, StoreManager};

use crate::access::AccessPath;
use crate::action::Action;
use crate::basic::{Credentials, parse_authorization};
use crate::cache::CredentialCache;
use crate::error::AuthError;
use crate::model::Directory;
use crate::names::Login;
use crate::password;
use crate::principal::{Principal, SystemAuthority};
use crate::reload::{Versions, changed_passwords, diff, head_seq, load};
use crate::sshkey::SshPublicKey;
use crate::throttle::{Throttle, ThrottlePolicy};

/// Shared bcrypt outcomes of verifications in progress, by (login, keyed password digest).
type InFlight = HashMap<(String, [u8; 32]), Arc<OnceCell<bool>>>;

/// How many times a change is retried after losing a race with another node's commit.
const CHANGE_ATTEMPTS: u32 = 16;

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
    /// The shortest new password a person may choose, in characters (see
    /// [`Auth::set_min_password_chars`]). The default, 1, only refuses empty passwords: the
    /// composition root sets the configured minimum.
    pub min_password_chars: usize,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            bcrypt_cost: bcrypt::DEFAULT_COST,
            cache_ttl: Duration::from_secs(300),
            throttle: ThrottlePolicy::default(),
            min_password_chars: 1,
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

/// A handle that does not keep the service (and its store) open: for background tasks that
/// must end when the server lets go of its `Auth`.
#[derive(Clone, Debug)]
pub struct WeakAuth {
    inner: std::sync::Weak<Inner>,
}

impl WeakAuth {
    /// The service, while any `Auth` clone is alive.
    pub fn upgrade(&self) -> Option<Auth> {
        self.inner.upgrade().map(|inner| Auth { inner })
    }
}

#[derive(Debug)]
struct Inner {
    store: Store,
    directory: RwLock<Arc<Directory>>,
    /// Serialises changes (and reloads) so each starts from the latest directory, and
    /// remembers which store state that directory was read from.
    write: tokio::sync::Mutex<Versions>,
    /// The newest HEAD seq the directory reflects, or will once this node's commit in
    /// flight returns; written under `write`, read by the follower task without it.
    seen: Arc<AtomicU64>,
    cache: CredentialCache,
    throttle: Throttle,
    cost: u32,
    /// The minimum length of new passwords; see `policy.rs`.
    min_password_chars: AtomicUsize,
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
        let (directory, versions) = load(&store).await?;
        let cost = options.bcrypt_cost;
        let auth = Auth {
            inner: Arc::new(Inner {
                store,
                directory: RwLock::new(Arc::new(directory)),
                seen: Arc::new(AtomicU64::new(versions.seq)),
                write: tokio::sync::Mutex::new(versions),
                cache: CredentialCache::new(options.cache_ttl),
                throttle: Throttle::new(options.throttle),
                cost,
                min_password_chars: AtomicUsize::new(options.min_password_chars),
                dummy_hash: OnceCell::new(),
                in_flight: Mutex::new(HashMap::new()),
                bcrypt_runs: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
            }),
        };
        auth.follow();
        Ok(auth)
    }

    /// Keeps the directory current when another node (or another handle on the same store)
    /// commits to `everlock-users`: the store's change watch fires within a second of such a
    /// commit. The task holds the handle weakly, so it ends with the last `Auth` clone or
    /// when the store closes.
    fn follow(&self) {
        let mut changes = self.inner.store.changes();
        let weak = Arc::downgrade(&self.inner);
        let seen = Arc::clone(&self.inner.seen);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let seq = *changes.borrow_and_update();
                // This node's own commits (and states it already read) need nothing; only
                // then is the handle held, so a closing `Auth` is not kept open by this task.
                if seq <= seen.load(Ordering::SeqCst) {
                    continue;
                }
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = (Auth { inner }).refresh(seq).await {
                    // The next notification, or the next change (which reloads when HEAD
                    // moved), tries again.
                    tracing::warn!(error = %e, "cannot reload the user directory");
                }
            }
        });
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

    /// A handle that does not keep this service alive.
    pub fn downgrade(&self) -> WeakAuth {
        WeakAuth {
            inner: Arc::downgrade(&self.inner),
        }
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
    ///
    /// Another node may commit to the same store at any time: the change starts from a
    /// directory reloaded whenever the store's HEAD moved, and commits with a precondition on
    /// every record it was computed from. When another commit wins the race, the directory is
    /// reloaded and `change` runs again on it (hence `Clone`), so no update is ever lost.
    pub(crate) async fn change<T>(
        &self,
        actor: &Principal,
        message: String,
        change: impl FnOnce(&mut Directory) -> Result<T, AuthError> + Clone,
    ) -> Result<T, AuthError> {
        let mut versions = self.inner.write.lock().await;
        let mut attempt = 0u32;
        loop {
            if head_seq(&self.inner.store).await? != versions.seq {
                self.reload_locked(&mut versions).await?;
            }
            let old = self.directory();
            let mut new = (*old).clone();
            let out = change.clone()(&mut new)?;
            if old.has_admin() && !new.has_admin() {
                return Err(AuthError::LastAdmin);
            }
            let ops = diff(&old, &new)?;
            if ops.is_empty() {
                return Ok(out);
            }
            let meta = CommitMeta::new(actor.name(), message.clone());
            match self.commit_locked(&mut versions, ops, meta).await {
                Ok(true) => {
                    self.publish(new);
                    return Ok(out);
                }
                // Another commit landed just before this one: the store holds both, and
                // the reload published them.
                Ok(false) => return Ok(out),
                Err(StorageError::Conflict { .. }) if attempt < CHANGE_ATTEMPTS => {
                    // Another node changed the directory since it was read: start over
                    // from the store, after a short pause that lets racing nodes part.
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5)).await;
                    self.reload_locked(&mut versions).await?;
                }
                Err(e) => {
                    // A failed commit may hide another node's commit the follower skipped
                    // as this node's own: look at the store once more.
                    self.inner.seen.store(versions.seq, Ordering::SeqCst);
                    if head_seq(&self.inner.store).await.ok() != Some(versions.seq) {
                        let _ = self.reload_locked(&mut versions).await;
                    }
                    return Err(e.into());
                }
            }
        }
    }

    /// Commits `ops` with the preconditions of `versions`. `Ok(true)` when the commit
    /// directly followed the state `versions` describes (the caller publishes its directory),
    /// `Ok(false)` when another came in between (the directory was reloaded from the store).
    async fn commit_locked(
        &self,
        versions: &mut Versions,
        ops: Vec<Op>,
        meta: CommitMeta,
    ) -> Result<bool, StorageError> {
        let preconditions = versions.preconditions(&ops);
        // Announced before the commit, so the follower ignores the notification of this
        // node's own commit instead of waking (and briefly holding the store) for it.
        self.inner
            .seen
            .fetch_max(versions.seq.saturating_add(1), Ordering::SeqCst);
        let info = self
            .inner
            .store
            .commit(ops.clone(), preconditions, meta)
            .await?;
        versions.committed(info.seq, &ops);
        if versions.seq == info.seq {
            return Ok(true);
        }
        if let Err(e) = self.reload_locked(versions).await {
            // The commit stands; the next change or notification reloads.
            tracing::warn!(error = %e, "cannot reload the user directory after a commit");
        }
        Ok(false)
    }

    fn publish(&self, directory: Directory) {
        *self
            .inner
            .directory
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
    }

    /// Reloads the directory when the store's HEAD `seq` is newer than the state it was read
    /// from, i.e. when another node (or another handle) committed. A notification of this
    /// node's own commit finds the directory current and reads nothing.
    pub(crate) async fn refresh(&self, seq: u64) -> Result<(), AuthError> {
        let mut versions = self.inner.write.lock().await;
        if seq > versions.seq {
            self.reload_locked(&mut versions).await?;
        }
        Ok(())
    }

    /// Reads the directory from the store and publishes it; cached verifications of
    /// passwords that changed or went away are dropped. The caller holds the write lock.
    async fn reload_locked(&self, versions: &mut Versions) -> Result<(), AuthError> {
        let (fresh, fresh_versions) = load(&self.inner.store).await?;
        let old = self.directory();
        for login in changed_passwords(&old, &fresh) {
            self.inner.cache.invalidate(&login);
        }
        self.publish(fresh);
        *versions = fresh_versions;
        self.inner.seen.store(versions.seq, Ordering::SeqCst);
        Ok(())
    }

    /// The minimum length of new passwords, read and set by `policy.rs`.
    pub(crate) fn min_password(&self) -> &AtomicUsize {
        &self.inner.min_password_chars
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

/// Login spraying and the shared per-address budget, end to end through `Auth`.
#[cfg(test)]
mod spray_tests;

#[cfg(test)]
mod tests;

/// Several handles on one users store, standing for several nodes.
#[cfg(test)]
mod node_tests;

/// Two `StoreManager`s on one PostgreSQL database.
#[cfg(test)]
mod pg_tests;
