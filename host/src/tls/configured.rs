//! Certificates from `[[frontend-http.certificates]]`: loaded at startup (a broken file stops
//! the start) and reloaded while the server runs whenever a file changes on disk, so renewing a
//! certificate by replacing its files needs no restart. A pair that fails to load during a
//! reload (typically: the certificate was replaced and the key not yet) is logged and the
//! previous pair keeps being served until both files agree.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;
use crate::config::CertificateConfig;

/// How often the files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// What identifies one version of a file: modification time, size and inode (a rename over
/// the file changes the inode even within one mtime tick).
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

/// One configured pair, its loaded key and the file versions it was loaded from.
#[derive(Debug)]
struct Loaded {
    config: CertificateConfig,
    key: Arc<CertifiedKey>,
    stamps: (Stamp, Stamp),
}

/// The configured certificates, by SNI name.
#[derive(Debug, Default)]
pub struct Configured {
    pairs: Vec<Loaded>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl Configured {
    /// Loads every pair; the first failure is the error.
    pub fn load(
        provider: &CryptoProvider,
        certs: &[CertificateConfig],
    ) -> Result<Configured, TlsError> {
        let mut pairs = Vec::with_capacity(certs.len());
        for c in certs {
            let stamps = (stamp(&c.cert), stamp(&c.key));
            let key = Arc::new(load_certified_key(provider, &c.cert, &c.key)?);
            pairs.push(Loaded {
                config: c.clone(),
                key,
                stamps,
            });
        }
        Ok(Configured::index(pairs))
    }

    fn index(pairs: Vec<Loaded>) -> Configured {
        let mut by_name = HashMap::new();
        for pair in &pairs {
            for name in &pair.config.names {
                by_name.insert(name.as_str().to_owned(), Arc::clone(&pair.key));
            }
        }
        Configured { pairs, by_name }
    }

    /// The certificate for `name`: exact, then the `*.parent` wildcard.
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        self.by_name
            .get(name)
            .or_else(|| wildcard.and_then(|w| self.by_name.get(&w)))
            .cloned()
    }

    /// Whether a configured certificate covers `name` (such names get no ACME certificate).
    pub fn covers(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every configured pair with its loaded chain (for `/tls list`).
    pub fn entries(&self) -> impl Iterator<Item = (&CertificateConfig, &Arc<CertifiedKey>)> {
        self.pairs.iter().map(|p| (&p.config, &p.key))
    }

    /// A new set with every pair whose files changed reloaded, or `None` when nothing changed
    /// (or nothing that changed could be loaded yet).
    pub fn reloaded(&self, provider: &CryptoProvider) -> Option<Configured> {
        let mut changed = false;
        let mut pairs = Vec::with_capacity(self.pairs.len());
        for pair in &self.pairs {
            let stamps = (stamp(&pair.config.cert), stamp(&pair.config.key));
            let mut key = Arc::clone(&pair.key);
            let mut kept = pair.stamps;
            if stamps != pair.stamps {
                match load_certified_key(provider, &pair.config.cert, &pair.config.key) {
                    Ok(k) => {
                        tracing::info!(cert = %pair.config.cert.display(), "reloaded a configured certificate");
                        key = Arc::new(k);
                        kept = stamps;
                        changed = true;
                    }
                    // Kept stamps make the next check try again.
                    Err(e) => {
                        tracing::warn!(error = %e, "a changed certificate cannot be loaded yet; still serving the previous one")
                    }
                }
            }
            pairs.push(Loaded {
                config: pair.config.clone(),
                key,
                stamps: kept,
            });
        }
        changed.then(|| Configured::index(pairs))
    }
}

/// Reads a PEM chain and key and checks that they belong together.
pub fn load_certified_key(
    provider: &CryptoProvider,
    cert: &Path,
    key: &Path,
) -> Result<CertifiedKey, TlsError> {
    let load_err = |path: &Path, reason: String| TlsError::Load {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| load_err(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(load_err(cert, "no certificate in file".to_owned()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| load_err(key, e.to_string()))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| load_err(key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| load_err(key, format!("key does not match {}: {e}", cert.display())))?;
    Ok(certified)
}

/// Parses a PEM chain and key held in memory (ACME certificates from the system store).
pub fn certified_key_from_pem(
    provider: &CryptoProvider,
    chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if chain.is_empty() {
        return Err("no certificate".to_owned());
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| e.to_string())?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| e.to_string())?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| e.to_string())?;
    Ok(certified)
}
