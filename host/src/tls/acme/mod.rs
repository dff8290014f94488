//! Automatic certificates: every public vhost of every HTTP instance gets one from the
//! configured ACME CA, including vhosts created live, and keeps it renewed.
//!
//! One background task looks at the live instance table every [`CHECK_INTERVAL`]. A name is
//! wanted when it is ACME-eligible (`names::is_acme_eligible`) and no configured certificate
//! covers it. For each wanted name it serves the certificate already in the system store, or
//! orders one (`order.rs`) when there is none or it is due for renewal
//! (`renew-before-days`). A failed order is logged, shown by `/tls list`, and retried with
//! exponential backoff; the certificate being served, if any, stays in service meanwhile.

mod order;
pub mod persist;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use everlock_storage::Store;
use instant_acme::{Account, NewAccount};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::TlsState;
use super::configured::certified_key_from_pem;
use super::names::is_acme_eligible;
use crate::api::Frontend;
use crate::config::AcmeConfig;
use crate::routes::InstanceTable;

/// How often the instance table is checked for new names and certificates for renewal.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The first retry delay after a failed order; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(10);

/// The longest wait between two attempts for one name.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Why an ACME step failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA or the connection to it.
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    /// The order did not reach a certificate.
    #[error("ACME order: {0}")]
    Order(String),
    /// A key, CSR or certificate could not be made or read.
    #[error("certificate: {0}")]
    Key(String),
    /// The system store.
    #[error("system store: {0}")]
    Store(String),
    /// Another node holds the ordering lease for the name (shared storage).
    #[error("another node is ordering this certificate")]
    Busy,
}

/// What is known about one certificate: a contract view (the console renders it), read here.
pub use crate::api::CertInfo;

impl CertInfo {
    /// `YYYY-MM-DD` (UTC) of the expiry.
    pub fn not_after_date(&self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.not_after).map_or_else(
            |_| "-".to_owned(),
            |t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        )
    }

    /// Reads the leaf of a DER chain.
    pub fn of(leaf: &[u8]) -> Option<CertInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
        Some(CertInfo {
            issuer: cert.issuer().to_string(),
            not_after: cert.validity().not_after.timestamp(),
            not_before: cert.validity().not_before.timestamp(),
            serial: cert.raw_serial_as_string(),
        })
    }
}

/// Whether `cert` must be renewed at `now`: when less than `renew_before_days` of validity
/// remain, or less than a third of its lifetime for certificates shorter than that window
/// (a 6-day certificate with the default 30 days would otherwise be ordered again on every
/// check, hammering the CA).
pub fn renewal_due(cert: &CertInfo, now: SystemTime, renew_before_days: u32) -> bool {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let lifetime = cert.not_after.saturating_sub(cert.not_before).max(0);
    let window = (i64::from(renew_before_days) * 86_400).min(lifetime / 3);
    cert.not_after.saturating_sub(now) < window
}

/// The state of one name, for `/tls list` and the retry schedule.
#[derive(Debug, Clone, Default)]
pub struct NameState {
    /// The certificate being served.
    pub cert: Option<CertInfo>,
    /// The last failure, until an order succeeds.
    pub last_error: Option<String>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// The ACME manager of one server.
pub struct AcmeManager {
    config: AcmeConfig,
    tls: Arc<TlsState>,
    table: Arc<InstanceTable>,
    system: Store,
    /// This node's name in ordering leases; `Some` only with shared storage, where several
    /// nodes could order the same name.
    lease_holder: Option<String>,
    account: tokio::sync::Mutex<Option<Account>>,
    names: Mutex<BTreeMap<String, NameState>>,
    forced: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl std::fmt::Debug for AcmeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeManager").finish_non_exhaustive()
    }
}

impl AcmeManager {
    /// Starts managing certificates in the background until `shutdown`.
    pub fn spawn(
        config: AcmeConfig,
        tls: Arc<TlsState>,
        table: Arc<InstanceTable>,
        system: Store,
        shared: bool,
        shutdown: CancellationToken,
    ) -> Arc<AcmeManager> {
        // instant-acme's HTTP client builds its rustls configuration with the process-wide
        // provider; install ring, the workspace's provider (a no-op when already installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let manager = Arc::new(AcmeManager {
            config,
            tls,
            table,
            system,
            lease_holder: shared.then(node_id),
            account: tokio::sync::Mutex::new(None),
            names: Mutex::new(BTreeMap::new()),
            forced: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
        });
        let running = Arc::clone(&manager);
        tokio::spawn(async move {
            loop {
                running.check().await;
                tokio::select! {
                    () = tokio::time::sleep(CHECK_INTERVAL) => {}
                    () = running.wake.notified() => {}
                    () = shutdown.cancelled() => return,
                }
            }
        });
        manager
    }

    /// Every wanted name with its state.
    pub fn names(&self) -> BTreeMap<String, NameState> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Asks for a new certificate for `name` now; false when `name` is not managed.
    pub fn renew(&self, name: &str) -> bool {
        let managed = self
            .names
            .lock()
            .is_ok_and(|mut n| n.get_mut(name).map(|s| s.retry_at = None).is_some());
        if managed && let Ok(mut forced) = self.forced.lock() {
            forced.insert(name.to_owned());
        }
        self.wake.notify_one();
        managed
    }

    /// The names ACME should cover now.
    fn wanted(&self) -> BTreeSet<String> {
        let configured = self.tls.configured();
        self.table
            .snapshot()
            .instances()
            .filter(|i| i.frontend == Frontend::Http)
            .flat_map(|i| i.vhosts.iter().map(|v| v.as_str().to_owned()))
            .filter(|v| is_acme_eligible(v) && !configured.covers(v))
            .collect()
    }

    /// One pass over every wanted name.
    async fn check(&self) {
        let wanted = self.wanted();
        if let Ok(mut names) = self.names.lock() {
            names.retain(|n, _| wanted.contains(n));
        }
        for name in wanted {
            self.check_name(&name).await;
        }
    }

    async fn check_name(&self, name: &str) {
        let now = SystemTime::now();
        let renew_before = self.config.renew_before_days.get();
        let forced = self.forced.lock().is_ok_and(|mut f| f.remove(name));
        // With shared storage another node may have stored a newer certificate: take it
        // before ordering one.
        let state = self.state(name);
        if state
            .cert
            .as_ref()
            .is_none_or(|c| renewal_due(c, now, renew_before))
        {
            self.load_stored(name).await;
        }
        let state = self.state(name);
        let due = state
            .cert
            .as_ref()
            .is_none_or(|c| renewal_due(c, now, renew_before));
        // A forced renewal (`/tls renew`) skips the backoff; anything else waits for it.
        let attempt = forced || due && state.retry_at.is_none_or(|at| Instant::now() >= at);
        if !attempt {
            return;
        }
        match self.order(name).await {
            Ok(info) => {
                tracing::info!(name, serial = %info.serial, "ACME certificate installed");
                self.update(name, |s| {
                    *s = NameState {
                        cert: Some(info),
                        ..NameState::default()
                    };
                });
            }
            Err(AcmeError::Busy) => {
                // Not a failure: the other node's certificate is picked up from the store.
                self.update(name, |s| s.retry_at = Some(Instant::now() + FIRST_BACKOFF));
            }
            Err(e) => {
                tracing::warn!(name, error = %e, "ACME order failed; the current certificate, if any, stays in service");
                self.update(name, |s| {
                    s.failures = s.failures.saturating_add(1);
                    let exp = s.failures.saturating_sub(1).min(16);
                    let delay = FIRST_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF);
                    s.retry_at = Some(Instant::now() + delay);
                    s.last_error = Some(e.to_string());
                });
            }
        }
    }

    fn state(&self, name: &str) -> NameState {
        self.names
            .lock()
            .ok()
            .and_then(|n| n.get(name).cloned())
            .unwrap_or_default()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut NameState)) {
        if let Ok(mut names) = self.names.lock() {
            f(names.entry(name.to_owned()).or_default());
        }
    }

    /// Serves the certificate the system store holds for `name`, if it is usable.
    async fn load_stored(&self, name: &str) {
        let stored = match persist::load_cert(&self.system, name).await {
            Ok(Some(pair)) => pair,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(name, error = %e, "cannot read the stored ACME certificate");
                return;
            }
        };
        if let Some(info) = self.install(name, &stored.0, &stored.1) {
            self.update(name, |s| s.cert = Some(info));
        }
    }

    /// Starts serving a chain and key; `None` (logged) when they are unusable or expired.
    fn install(&self, name: &str, chain: &[u8], key: &[u8]) -> Option<CertInfo> {
        let certified = match certified_key_from_pem(self.tls.provider(), chain, key) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(name, error = %e, "unusable ACME certificate");
                return None;
            }
        };
        let info = CertInfo::of(certified.cert.first()?.as_ref())?;
        if info.not_after <= unix_now() {
            return None;
        }
        self.tls.install_acme(name, Arc::new(certified));
        Some(info)
    }

    /// Orders, stores and installs a certificate for `name`.
    async fn order(&self, name: &str) -> Result<CertInfo, AcmeError> {
        if let Some(holder) = &self.lease_holder
            && !persist::take_lease(&self.system, name, holder, unix_now()).await?
        {
            return Err(AcmeError::Busy);
        }
        let account = self.account().await?;
        let issued = order::obtain(&account, name, self.config.challenge, &self.tls).await?;
        persist::save_cert(&self.system, name, &issued.chain_pem, &issued.key_pem).await?;
        self.install(name, issued.chain_pem.as_bytes(), issued.key_pem.as_bytes())
            .ok_or_else(|| AcmeError::Key("the CA returned an unusable certificate".to_owned()))
    }

    /// The account, restored from the system store or created (once) and stored.
    async fn account(&self) -> Result<Account, AcmeError> {
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.as_ref() {
            return Ok(account.clone());
        }
        let directory = self.config.directory_url.as_str();
        let account = match persist::load_account(&self.system, directory).await? {
            Some(stored) => self.builder()?.from_credentials(stored.credentials).await?,
            None => self.create_account().await?,
        };
        *slot = Some(account.clone());
        Ok(account)
    }

    async fn create_account(&self) -> Result<Account, AcmeError> {
        let directory = self.config.directory_url.as_str();
        let contact = self.config.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = self
            .builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                directory.to_owned(),
                None,
            )
            .await?;
        let replace = persist::load_account_any(&self.system).await?;
        let stored = persist::StoredAccount {
            directory: directory.to_owned(),
            credentials,
        };
        if persist::save_account(&self.system, &stored, replace).await? {
            tracing::info!(directory, "created an ACME account");
            return Ok(account);
        }
        // Another node stored its account first: use that one.
        match persist::load_account(&self.system, directory).await? {
            Some(theirs) => Ok(self.builder()?.from_credentials(theirs.credentials).await?),
            None => Err(AcmeError::Store(
                "the ACME account changed while being created".to_owned(),
            )),
        }
    }

    fn builder(&self) -> Result<instant_acme::AccountBuilder, AcmeError> {
        Ok(match &self.config.ca_roots {
            Some(roots) => Account::builder_with_root(roots)?,
            None => Account::builder()?,
        })
    }
}

/// A random name for this process in ordering leases.
fn node_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = std::process::id()
            .to_be_bytes()
            .repeat(2)
            .try_into()
            .unwrap_or_default();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_within_the_window_only() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let day = 86_400;
        let t = 1_000_000_000;
        // A 90-day certificate issued 59 days ago (31 left), then 61 days ago (29 left).
        let cert = |not_after: i64| CertInfo {
            issuer: String::new(),
            serial: String::new(),
            not_after,
            not_before: not_after - 90 * day,
        };
        assert!(!renewal_due(&cert(t + 31 * day), now, 30));
        assert!(renewal_due(&cert(t + 29 * day), now, 30));
        assert!(renewal_due(&cert(t - 1), now, 30), "expired");
        // The same certificate a controllable clock later.
        let later = now + Duration::from_secs(2 * 86_400);
        assert!(renewal_due(&cert(t + 31 * day), later, 30));
    }

    #[test]
    fn short_certificates_renew_in_their_last_third_only() {
        let day = 86_400;
        let issued = 1_000_000_000;
        let six_days = CertInfo {
            issuer: String::new(),
            serial: String::new(),
            not_before: issued,
            not_after: issued + 6 * day,
        };
        let at = |secs: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs());
        // Right after issue it is not due, although 30 days exceed its whole lifetime.
        assert!(!renewal_due(&six_days, at(issued + 60), 30));
        assert!(!renewal_due(&six_days, at(issued + 4 * day - 60), 30));
        assert!(renewal_due(&six_days, at(issued + 4 * day + 60), 30));
    }
}
