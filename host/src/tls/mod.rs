//! TLS for the HTTPS listener: which certificate each handshake gets, and where it comes from.
//!
//! A handshake is answered, in order, with: the TLS-ALPN-01 validation certificate when the
//! client is an ACME validator (`acme-tls/1`); a configured certificate
//! (`[[frontend-http.certificates]]`, reloaded when its files change: `configured.rs`); an
//! ACME certificate (`acme/`); else a leaf the local CA issues for that name on the spot
//! (`local_ca.rs`). Clients that send no SNI (they connected to an IP address) get a local
//! leaf for `localhost`, `127.0.0.1` and `::1`.
//!
//! # Layout
//! - `local_ca`: the long-lived local CA in `<data-dir>/_host/tls/` and its per-name leaves.
//! - `configured`: configured certificate files and their reload.
//! - `names`: local names (no HSTS, no ACME) and names ACME may certify.
//! - `redirect`: the plain-HTTP hooks (ACME HTTP-01 answers, the HTTPS redirect).
//! - `acme`: ordering and renewing certificates with `instant-acme`.

pub mod acme;
pub mod configured;
mod files;
pub mod local_ca;
pub mod names;
pub mod redirect;
pub mod shared;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::config::CertificateConfig;
pub use configured::Configured;
pub use local_ca::{GeneratedCertPaths, LocalCa};

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Names the certificate for clients without SNI is valid for.
pub const NO_SNI_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("cannot load {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The local CA could not be created or saved.
    #[error("cannot create the local certificate authority in {dir}: {reason}")]
    Generate {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls rejected the configuration.
    #[error("TLS configuration error: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Everything the HTTPS listener's certificate choice depends on; shared by the handshake
/// resolver, the reload watcher, the ACME manager and the HTTP frontend.
pub struct TlsState {
    provider: Arc<CryptoProvider>,
    local: LocalCa,
    no_sni: Arc<CertifiedKey>,
    configured: ArcSwap<Configured>,
    acme: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    /// Pending HTTP-01 answers: token → key authorization.
    http_challenges: Mutex<HashMap<String, String>>,
    /// Pending TLS-ALPN-01 validation certificates by name.
    alpn_challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState").finish_non_exhaustive()
    }
}

impl TlsState {
    /// Loads (or creates) the local CA under `data_dir` and the configured certificates.
    pub fn new(data_dir: &Path, certs: &[CertificateConfig]) -> Result<Arc<TlsState>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let local = LocalCa::load_or_create(&GeneratedCertPaths::new(data_dir), &provider)?;
        TlsState::with_ca(provider, local, certs)
    }

    /// A state around an already loaded local CA.
    pub fn with_ca(
        provider: Arc<CryptoProvider>,
        local: LocalCa,
        certs: &[CertificateConfig],
    ) -> Result<Arc<TlsState>, TlsError> {
        let no_sni =
            local
                .issue(NO_SNI_NAMES, SystemTime::now())
                .map_err(|e| TlsError::Generate {
                    dir: PathBuf::from("(memory)"),
                    reason: e.to_string(),
                })?;
        let configured = Configured::load(&provider, certs)?;
        Ok(Arc::new(TlsState {
            provider,
            local,
            no_sni: Arc::new(no_sni),
            configured: ArcSwap::from_pointee(configured),
            acme: ArcSwap::from_pointee(HashMap::new()),
            http_challenges: Mutex::new(HashMap::new()),
            alpn_challenges: Mutex::new(HashMap::new()),
        }))
    }

    /// The rustls configuration of the HTTPS listener: certificates chosen per handshake by
    /// this state; ALPN offers HTTP/2, HTTP/1.1 and, for ACME validators only, `acme-tls/1`
    /// (rustls picks the first of ours the client offers, so browsers never get it).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(Arc::clone(self))));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        Ok(Arc::new(config))
    }

    /// The crypto provider (ring).
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The local CA.
    pub fn local_ca(&self) -> &LocalCa {
        &self.local
    }

    /// The configured certificates as loaded now.
    pub fn configured(&self) -> Arc<Configured> {
        self.configured.load_full()
    }

    /// The ACME certificates being served, by name.
    pub fn acme_certs(&self) -> Arc<HashMap<String, Arc<CertifiedKey>>> {
        self.acme.load_full()
    }

    /// Whether `host` is served with an ACME certificate (the default HTTPS redirect rule).
    pub fn has_acme(&self, host: &str) -> bool {
        self.acme.load().contains_key(host)
    }

    /// Serves `key` for `name` from now on.
    pub fn install_acme(&self, name: &str, key: Arc<CertifiedKey>) {
        self.acme.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(name.to_owned(), Arc::clone(&key));
            next
        });
    }

    /// The key authorization for an HTTP-01 `token`, while its challenge is pending.
    pub fn http_challenge(&self, token: &str) -> Option<String> {
        self.http_challenges.lock().ok()?.get(token).cloned()
    }

    /// Starts or stops answering an HTTP-01 challenge.
    pub fn set_http_challenge(&self, token: &str, answer: Option<String>) {
        if let Ok(mut map) = self.http_challenges.lock() {
            match answer {
                Some(a) => map.insert(token.to_owned(), a),
                None => map.remove(token),
            };
        }
    }

    /// Starts or stops presenting a TLS-ALPN-01 validation certificate for `name`.
    pub fn set_alpn_challenge(&self, name: &str, cert: Option<Arc<CertifiedKey>>) {
        if let Ok(mut map) = self.alpn_challenges.lock() {
            match cert {
                Some(c) => map.insert(name.to_owned(), c),
                None => map.remove(name),
            };
        }
    }

    /// Checks the configured certificate files every [`configured::RELOAD_INTERVAL`] until
    /// `shutdown`, swapping in pairs whose files changed.
    pub fn spawn_reload(self: &Arc<Self>, shutdown: CancellationToken) {
        let state = Arc::clone(self);
        if state.configured.load().entries().next().is_none() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(configured::RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let current = state.configured.load_full();
                let provider = Arc::clone(&state.provider);
                // File reads and key parsing are blocking work.
                let next = tokio::task::spawn_blocking(move || current.reloaded(&provider)).await;
                if let Ok(Some(next)) = next {
                    state.configured.store(Arc::new(next));
                }
            }
        });
    }

    /// The certificate for one handshake (see the module documentation for the order).
    fn choose(&self, name: Option<&str>, acme_validation: bool) -> Option<Arc<CertifiedKey>> {
        let Some(name) = name else {
            return (!acme_validation).then(|| Arc::clone(&self.no_sni));
        };
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if acme_validation {
            // A validator must get the validation certificate or nothing at all.
            return self.alpn_challenges.lock().ok()?.get(name).cloned();
        }
        self.configured
            .load()
            .get(name)
            .or_else(|| self.acme.load().get(name).cloned())
            .or_else(|| self.local.leaf(name))
            .or_else(|| Some(Arc::clone(&self.no_sni)))
    }
}

/// The rustls hook: one certificate decision per handshake.
#[derive(Debug)]
struct Resolver(Arc<TlsState>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // RFC 8737: a validator offers `acme-tls/1` and nothing else.
        let acme_validation = hello.alpn().is_some_and(|protocols| {
            let mut only_acme = true;
            let mut any = false;
            for p in protocols {
                any = true;
                only_acme &= p == ACME_TLS_ALPN;
            }
            any && only_acme
        });
        self.0.choose(hello.server_name(), acme_validation)
    }
}

#[cfg(test)]
mod tests;
