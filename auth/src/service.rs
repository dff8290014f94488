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

    /// Authenticates an HTTP request from its raw `Authorization` header value.
    pub async fn authenticate_http(
        &self,
        header: Option<&[u8]>,
        remote: IpAddr,
    ) -> Result<Principal, LoginError> {
        match parse_authorization(header).map_err(|e| LoginError::Malformed(e.to_string()))? {
            Credentials::Anonymous => Ok(Principal::anon()),
            Credentials::Unsupported => Err(LoginError::BadCredentials),
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
            .map_err(|retry_after| LoginError::Throttled { retry_after })?;
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
            .map_err(|retry_after| LoginError::Throttled { retry_after })?;
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
mod tests {
    use super::*;
    use crate::admin::AdminPassword;
    use base64::Engine as _;

    fn options() -> AuthOptions {
        AuthOptions {
            bcrypt_cost: 4,
            ..AuthOptions::default()
        }
    }

    fn basic(login: &str, password: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
        )
        .into_bytes()
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    async fn setup() -> (tempfile::TempDir, Auth, Principal) {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::open(&StoreManager::new(dir.path()), options())
            .await
            .unwrap();
        auth.bootstrap("admin", AdminPassword::Given("admin-pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        (dir, auth, admin)
    }

    #[tokio::test]
    async fn bootstrap_generates_once_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let manager = StoreManager::new(dir.path());
        let auth = Auth::open(&manager, options()).await.unwrap();
        let generated = auth
            .bootstrap("root", AdminPassword::Generate)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(generated.len(), 24);
        assert!(auth.is_system_admin(&Principal::test_user("root")));
        // A second bootstrap sees the administrator and does nothing.
        assert_eq!(
            auth.bootstrap("root", AdminPassword::Generate)
                .await
                .unwrap(),
            None
        );
        let p = auth.verify_password("root", &generated, A).await.unwrap();
        assert_eq!(p.name(), "root");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_thousand_requests_cost_one_bcrypt_and_passwd_takes_effect_at_once() {
        let (_dir, auth, admin) = setup().await;
        auth.add_user(&admin, "alice", "old-pw").await.unwrap();
        let before = auth.bcrypt_verifications();
        let header = basic("alice", "old-pw");
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let auth = auth.clone();
            let header = header.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..100 {
                    let p = auth.authenticate_http(Some(&header), A).await.unwrap();
                    assert_eq!(p.name(), "alice");
                }
            }));
        }
        // The first verification must land before the others can hit the cache; concurrent
        // first requests could otherwise each run bcrypt once.
        auth.authenticate_http(Some(&header), A).await.unwrap();
        let warmed = auth.bcrypt_verifications();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(warmed - before >= 1);
        let sequential_before = auth.bcrypt_verifications();
        for _ in 0..1000 {
            auth.authenticate_http(Some(&header), A).await.unwrap();
        }
        assert_eq!(
            auth.bcrypt_verifications(),
            sequential_before,
            "cached: no further bcrypt"
        );

        auth.set_password(&admin, "alice", "new-pw").await.unwrap();
        assert_eq!(
            auth.authenticate_http(Some(&header), A).await,
            Err(LoginError::BadCredentials)
        );
        assert!(
            auth.authenticate_http(Some(&basic("alice", "new-pw")), A)
                .await
                .is_ok()
        );
        auth.remove_user(&admin, "alice").await.unwrap();
        assert_eq!(
            auth.authenticate_http(Some(&basic("alice", "new-pw")), A)
                .await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn exactly_one_bcrypt_for_a_thousand_sequential_requests() {
        let (_dir, auth, admin) = setup().await;
        auth.add_user(&admin, "bob", "pw-bob").await.unwrap();
        let header = basic("bob", "pw-bob");
        let before = auth.bcrypt_verifications();
        for _ in 0..1000 {
            auth.authenticate_http(Some(&header), A).await.unwrap();
        }
        assert_eq!(auth.bcrypt_verifications() - before, 1);
    }

    #[tokio::test]
    async fn anonymous_malformed_and_unknown() {
        let (_dir, auth, _admin) = setup().await;
        assert_eq!(auth.authenticate_http(None, A).await, Ok(Principal::anon()));
        assert_eq!(
            auth.authenticate_http(Some(b"Basic Og=="), A).await,
            Ok(Principal::anon())
        );
        assert!(matches!(
            auth.authenticate_http(Some(b"Basic %%%"), A).await,
            Err(LoginError::Malformed(_))
        ));
        assert_eq!(
            auth.authenticate_http(Some(b"Bearer x"), A).await,
            Err(LoginError::BadCredentials)
        );
        // Unknown logins and `anon` cost a bcrypt run too and fail like wrong passwords.
        let before = auth.bcrypt_verifications();
        for login in ["nobody", "anon", "Not_A_Login", "system"] {
            assert_eq!(
                auth.authenticate_http(Some(&basic(login, "x")), A).await,
                Err(LoginError::BadCredentials)
            );
        }
        assert_eq!(auth.bcrypt_verifications() - before, 4);
    }

    #[tokio::test]
    async fn throttling_is_per_login_and_address() {
        let (_dir, auth, admin) = setup().await;
        auth.add_user(&admin, "carol", "right").await.unwrap();
        for _ in 0..5 {
            assert_eq!(
                auth.verify_password("carol", "wrong", A).await,
                Err(LoginError::BadCredentials)
            );
        }
        // The sixth failure starts a lockout; then even the right password waits.
        assert_eq!(
            auth.verify_password("carol", "wrong", A).await,
            Err(LoginError::BadCredentials)
        );
        match auth.verify_password("carol", "right", A).await {
            Err(LoginError::Throttled { retry_after }) => assert!(retry_after.as_secs() >= 1),
            other => panic!("expected throttling, got {other:?}"),
        }
        // From another address the right password still works.
        assert!(auth.verify_password("carol", "right", B).await.is_ok());
    }

    #[tokio::test]
    async fn state_survives_reopen_and_every_change_is_a_commit_by_its_actor() {
        let dir = tempfile::tempdir().unwrap();
        {
            let manager = StoreManager::new(dir.path());
            let auth = Auth::open(&manager, options()).await.unwrap();
            auth.bootstrap("admin", AdminPassword::Given("pw-admin".into()))
                .await
                .unwrap();
            let admin = Principal::test_user("admin");
            auth.add_user(&admin, "alice", "pw-alice").await.unwrap();
            auth.grant(&admin, "alice", "http/oci/default", "writer")
                .await
                .unwrap();
            auth.grant(&admin, "anon", "http/site/docs", "reader")
                .await
                .unwrap();
            auth.add_group(&admin, "team").await.unwrap();
            auth.assign(&admin, "team", "alice").await.unwrap();
            auth.group_grant(&admin, "team", "http/site/team", "owner")
                .await
                .unwrap();
            auth.add_key(
                &admin,
                "alice",
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJtf9yq1AWzgOm/d3FQdwxmzUfbFCh3ppQ/Z8zU0Q6t alice@laptop",
            )
            .await
            .unwrap();
        }
        let manager = StoreManager::new(dir.path());
        let auth = Auth::open(&manager, options()).await.unwrap();
        let alice = Principal::test_user("alice");
        let p = |s: &str| s.parse::<AccessPath>().unwrap();
        assert!(auth.authorize(&alice, &p("http/oci/default/x"), Action::Write));
        assert!(auth.authorize(&alice, &p("http/site/team"), Action::Delete));
        assert!(auth.authorize(&Principal::anon(), &p("http/site/docs"), Action::Read));
        assert_eq!(
            auth.verify_password("alice", "pw-alice", A).await.unwrap(),
            alice
        );
        let key: SshPublicKey =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJtf9yq1AWzgOm/d3FQdwxmzUfbFCh3ppQ/Z8zU0Q6t"
                .parse()
                .unwrap();
        assert_eq!(auth.verify_key("alice", &key), Some(alice.clone()));
        assert_eq!(auth.verify_key("admin", &key), None);

        let store = manager.open(USERS_STORE).await.unwrap();
        let log = store.log(100).await.unwrap();
        let lines: Vec<String> = log
            .iter()
            .map(|c| format!("{}: {}", c.principal, c.message))
            .collect();
        assert!(
            lines.contains(&"system: bootstrap: 'admin' is the system administrator".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"admin: users add 'alice'".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"admin: users grant 'alice' http/oci/default writer".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"admin: groups assign 'team' 'alice'".to_owned()),
            "{lines:?}"
        );
        // Records never contain a plaintext password.
        let record = String::from_utf8(store.read("users/alice.toml").await.unwrap()).unwrap();
        assert!(
            !record.contains("pw-alice") && record.contains("$2b$"),
            "{record}"
        );
    }

    #[tokio::test]
    async fn tiers_and_guards() {
        let (_dir, auth, admin) = setup().await;
        auth.add_user(&admin, "alice", "pw").await.unwrap();
        let alice = Principal::test_user("alice");
        // Any authenticated user may read; only admins change; anon may do neither.
        assert!(auth.list_users(&alice).is_ok());
        assert!(auth.grants(&alice, "admin").is_ok());
        assert!(matches!(
            auth.list_users(&Principal::anon()),
            Err(AuthError::Forbidden { .. })
        ));
        assert!(matches!(
            auth.add_user(&alice, "eve", "pw").await,
            Err(AuthError::Forbidden { .. })
        ));
        assert!(matches!(
            auth.grant(&alice, "alice", "*/*/*", "owner").await,
            Err(AuthError::Forbidden { .. })
        ));
        assert!(matches!(
            auth.add_user(&Principal::anon(), "eve", "pw").await,
            Err(AuthError::Forbidden { .. })
        ));
        // anon cannot be removed, log in or get credentials; the last admin cannot go.
        assert!(matches!(
            auth.remove_user(&admin, "anon").await,
            Err(AuthError::Anon(_))
        ));
        assert!(matches!(
            auth.set_password(&admin, "anon", "x").await,
            Err(AuthError::Anon(_))
        ));
        assert!(matches!(
            auth.remove_user(&admin, "admin").await,
            Err(AuthError::LastAdmin)
        ));
        assert!(matches!(
            auth.revoke(&admin, "admin", "*/*/*").await,
            Err(AuthError::LastAdmin)
        ));
        // Bad input is a typed error.
        assert!(matches!(
            auth.add_user(&admin, "Bad Name", "pw").await,
            Err(AuthError::InvalidName { .. })
        ));
        assert!(matches!(
            auth.add_user(&admin, "long", &"x".repeat(73)).await,
            Err(AuthError::InvalidPassword(_))
        ));
        assert!(matches!(
            auth.add_user(&admin, "alice", "pw").await,
            Err(AuthError::UserExists(_))
        ));
        assert!(matches!(
            auth.grant(&admin, "alice", "http/oci", "reader").await,
            Err(AuthError::InvalidPath { .. })
        ));
        assert!(matches!(
            auth.grant(&admin, "alice", "http/oci/x", "god").await,
            Err(AuthError::InvalidRole(_))
        ));
        assert!(matches!(
            auth.assign(&admin, "nogroup", "alice").await,
            Err(AuthError::NoSuchGroup(_))
        ));
        // A second admin makes removing the first one possible.
        auth.grant(&admin, "alice", "*/*/*", "owner").await.unwrap();
        auth.remove_user(&alice, "admin").await.unwrap();
        assert!(!auth.is_system_admin(&admin));
    }
}
