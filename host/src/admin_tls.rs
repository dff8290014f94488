//! The `/tls` operations for system administrators: which certificate each name gets and from
//! where (`acme`, `configured`, `local`), and renewing an ACME certificate now.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use everlock_auth::Principal;

use tokio_util::sync::CancellationToken;

pub use crate::api::{CertSource, TlsAdminError, TlsRow};
use crate::config::AcmeConfig;
use crate::runtime::Host;
use crate::runtime::TlsHandle;
use crate::tls::acme::{AcmeManager, CertInfo};
use crate::tls::names::is_acme_eligible;
use crate::tls::{NO_SNI_NAMES, TlsState};

impl Host {
    /// Records the running server's TLS (once; later calls are ignored).
    pub fn set_tls(&self, handle: TlsHandle) {
        let _ = self.tls_slot().set(handle);
    }

    fn tls(&self) -> Result<&TlsHandle, TlsAdminError> {
        self.tls_slot().get().ok_or(TlsAdminError::NoHttps)
    }

    /// Every name with a certificate source: configured names, the ACME names and every other
    /// vhost (local), sorted by name.
    pub async fn tls_list(&self, actor: &Principal) -> Result<Vec<TlsRow>, TlsAdminError> {
        self.require_admin(actor)?;
        let tls = self.tls()?;
        let mut rows: BTreeMap<String, TlsRow> = BTreeMap::new();
        let configured = tls.state.configured();
        for (config, key) in configured.entries() {
            let info = key.cert.first().and_then(|c| CertInfo::of(c.as_ref()));
            for name in &config.names {
                rows.insert(
                    name.as_str().to_owned(),
                    TlsRow {
                        name: name.as_str().to_owned(),
                        source: CertSource::Configured,
                        cert: info.clone(),
                        error: None,
                    },
                );
            }
        }
        if let Some(acme) = &tls.acme {
            for (name, state) in acme.names() {
                rows.insert(
                    name.clone(),
                    TlsRow {
                        name,
                        source: CertSource::Acme,
                        cert: state.cert,
                        error: state.last_error,
                    },
                );
            }
        }
        let vhosts: Vec<String> = self
            .table()
            .snapshot()
            .instances()
            .filter(|i| i.frontend == crate::api::Frontend::Http)
            .flat_map(|i| i.vhosts.iter().map(|v| v.as_str().to_owned()))
            .chain(NO_SNI_NAMES.first().map(|n| (*n).to_owned()))
            .collect();
        for name in vhosts {
            if name == "*" || rows.contains_key(&name) || configured.covers(&name) {
                continue;
            }
            let acme_pending = tls.acme.is_some() && is_acme_eligible(&name);
            let cert = (!acme_pending)
                .then(|| tls.state.local_ca().leaf(&name))
                .flatten()
                .and_then(|k| k.cert.first().and_then(|c| CertInfo::of(c.as_ref())));
            rows.insert(
                name.clone(),
                TlsRow {
                    name,
                    source: if acme_pending {
                        CertSource::Acme
                    } else {
                        CertSource::Local
                    },
                    cert,
                    error: None,
                },
            );
        }
        Ok(rows.into_values().collect())
    }

    /// Orders a new ACME certificate for `name` now (in the background; `/tls list` shows the
    /// outcome).
    pub async fn tls_renew(&self, actor: &Principal, name: &str) -> Result<(), TlsAdminError> {
        self.require_admin(actor)?;
        let acme = self.tls()?.acme.as_ref().ok_or(TlsAdminError::NoAcme)?;
        if acme.renew(name) {
            Ok(())
        } else {
            Err(TlsAdminError::NotManaged(name.to_owned()))
        }
    }
}

/// Seconds since the epoch now (for renderers that show "expires in").
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Records the server's TLS in `host` (for `/tls`) and starts the ACME manager when `[acme]
/// enabled`. The system store is opened here, after `Host::start` created it; if it cannot be
/// opened, ACME stays off with an error in the log (served certificates are unaffected).
pub async fn start(
    host: &Host,
    tls: &Arc<TlsState>,
    config: &AcmeConfig,
    shutdown: CancellationToken,
) {
    let mut acme = None;
    if config.enabled {
        match host.stores().open(crate::config::SYSTEM_STORE).await {
            Ok(system) => {
                acme = Some(AcmeManager::spawn(
                    config.clone(),
                    Arc::clone(tls),
                    Arc::clone(host.table()),
                    system,
                    host.stores().is_shared(),
                    shutdown,
                ));
            }
            Err(e) => tracing::error!(error = %e, "ACME is off: cannot open the system store"),
        }
    }
    host.set_tls(TlsHandle {
        state: Arc::clone(tls),
        acme,
    });
}
