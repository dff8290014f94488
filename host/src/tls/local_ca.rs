//! The local certificate authority: created once in `<data-dir>/_host/tls/` (`ca.pem`,
//! `ca-key.pem`), long-lived, and used to issue a short leaf certificate for each name a client
//! asks for (SNI) the moment it asks, so `https://<anything>.localhost/` verifies against
//! `ca.pem` alone. A wildcard `*.localhost` certificate cannot do that: `localhost` is a
//! one-label parent, which OpenSSL and rustls refuse to match a wildcard under.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TlsError;
use super::files::{write_private, write_public};

/// How long a leaf is valid. Apple clients refuse server certificates valid for more than 825
/// days; a year keeps well inside that.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// A cached leaf is issued again once it is this old, so a server running for a year never
/// serves an expired one.
const LEAF_REISSUE_AFTER: Duration = Duration::from_secs(180 * 24 * 3600);

/// At most this many issued leaves are kept; any client can send any SNI name, so the cache
/// must not grow with them. The oldest entry makes room.
const LEAF_CACHE_MAX: usize = 4096;

/// The CA's name, also what a re-loaded CA is rebuilt with (see [`ca_params`]).
const CA_NAME: &str = "Everlock local CA";

/// Where the local CA's files are kept.
#[derive(Debug, Clone)]
pub struct GeneratedCertPaths {
    /// The CA certificate clients can trust (`curl --cacert`).
    pub ca_cert: PathBuf,
    /// The CA's private key (0600).
    pub ca_key: PathBuf,
}

impl GeneratedCertPaths {
    /// The paths under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("_host").join("tls");
        GeneratedCertPaths {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
        }
    }
}

/// The local CA, ready to issue leaves.
pub struct LocalCa {
    /// The CA as rcgen needs it for signing (rebuilt from the stored key).
    issuer: rcgen::Certificate,
    issuer_key: rcgen::KeyPair,
    /// The CA certificate exactly as clients trust it, sent after each leaf.
    ca_der: CertificateDer<'static>,
    /// One key for every leaf: issuing then costs one signature, not a key generation, which
    /// keeps a handshake with a never-seen name cheap.
    leaf_key: rcgen::KeyPair,
    leaf_signer: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<HashMap<String, (Arc<CertifiedKey>, SystemTime)>>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

impl LocalCa {
    /// Loads the CA from `paths`, creating it on first use.
    pub fn load_or_create(
        paths: &GeneratedCertPaths,
        provider: &CryptoProvider,
    ) -> Result<LocalCa, TlsError> {
        ensure_ca(paths)?;
        let load = |path: &Path, reason: String| TlsError::Load {
            path: path.to_owned(),
            reason,
        };
        let key_pem =
            fs::read_to_string(&paths.ca_key).map_err(|e| load(&paths.ca_key, e.to_string()))?;
        let issuer_key =
            rcgen::KeyPair::from_pem(&key_pem).map_err(|e| load(&paths.ca_key, e.to_string()))?;
        let ca_der = CertificateDer::from_pem_file(&paths.ca_cert)
            .map_err(|e| load(&paths.ca_cert, e.to_string()))?;
        let issuer = ca_params()
            .and_then(|p| p.self_signed(&issuer_key))
            .map_err(|e| load(&paths.ca_key, e.to_string()))?;
        LocalCa::from_parts(issuer, issuer_key, ca_der, provider)
    }

    /// A CA kept only in memory (tests, and the shared-mode path that loads the CA from the
    /// system store).
    pub fn from_pem(
        ca_pem: &str,
        ca_key_pem: &str,
        provider: &CryptoProvider,
    ) -> Result<LocalCa, TlsError> {
        let bad = |reason: String| TlsError::Load {
            path: PathBuf::from("(local CA)"),
            reason,
        };
        let issuer_key = rcgen::KeyPair::from_pem(ca_key_pem).map_err(|e| bad(e.to_string()))?;
        let ca_der =
            CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let issuer = ca_params()
            .and_then(|p| p.self_signed(&issuer_key))
            .map_err(|e| bad(e.to_string()))?;
        LocalCa::from_parts(issuer, issuer_key, ca_der, provider)
    }

    fn from_parts(
        issuer: rcgen::Certificate,
        issuer_key: rcgen::KeyPair,
        ca_der: CertificateDer<'static>,
        provider: &CryptoProvider,
    ) -> Result<LocalCa, TlsError> {
        let generate = |reason: String| TlsError::Generate {
            dir: PathBuf::from("(memory)"),
            reason,
        };
        let leaf_key = rcgen::KeyPair::generate().map_err(|e| generate(e.to_string()))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let leaf_signer = provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| generate(e.to_string()))?;
        Ok(LocalCa {
            issuer,
            issuer_key,
            ca_der,
            leaf_key,
            leaf_signer,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The leaf for `name` (a DNS name or an IP address), from the cache or issued now.
    /// `None` only if signing fails, which is logged.
    pub fn leaf(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let now = SystemTime::now();
        if let Ok(cache) = self.cache.lock()
            && let Some((key, issued)) = cache.get(name)
            && now.duration_since(*issued).unwrap_or_default() < LEAF_REISSUE_AFTER
        {
            return Some(Arc::clone(key));
        }
        let key = match self.issue(&[name], now) {
            Ok(k) => Arc::new(k),
            Err(e) => {
                tracing::warn!(name, error = %e, "cannot issue a local certificate");
                return None;
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= LEAF_CACHE_MAX
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (_, issued))| *issued)
                    .map(|(n, _)| n.clone())
            {
                cache.remove(&oldest);
            }
            cache.insert(name.to_owned(), (Arc::clone(&key), now));
        }
        Some(key)
    }

    /// A leaf for several names at once (the certificate for clients that send no SNI).
    pub fn issue(&self, names: &[&str], now: SystemTime) -> Result<CertifiedKey, rcgen::Error> {
        let owned: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(owned)?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        // Backdated an hour against clients whose clock is a little behind.
        params.not_before = offset(now, -3600);
        params.not_after = offset(now, i64::try_from(LEAF_VALIDITY.as_secs()).unwrap_or(0));
        params.serial_number = Some(random_serial());
        let leaf = params.signed_by(&self.leaf_key, &self.issuer, &self.issuer_key)?;
        Ok(CertifiedKey::new(
            vec![leaf.der().clone(), self.ca_der.clone()],
            Arc::clone(&self.leaf_signer),
        ))
    }

    /// How many leaves are cached (tests).
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// The parameters every copy of the CA is built from. A stored CA is rebuilt with its stored
/// key and these parameters only to sign with: leaves name the issuer by distinguished name
/// and key identifier, both of which come out identical, while clients receive the stored
/// `ca.pem` bytes themselves.
fn ca_params() -> Result<rcgen::CertificateParams, rcgen::Error> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, CA_NAME);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

/// A new CA as (certificate PEM, key PEM).
pub fn generate_ca() -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = ca_params()?;
    params.serial_number = Some(random_serial());
    let ca = params.self_signed(&key)?;
    Ok((ca.pem(), key.serialize_pem()))
}

/// `now + secs` as rcgen's time type; saturates at the epoch rather than failing.
pub(crate) fn offset(now: SystemTime, secs: i64) -> time::OffsetDateTime {
    let base = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(base.saturating_add(secs))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A random positive 16-byte serial (RFC 5280 allows up to 20 bytes; the top bit is cleared
/// so the DER integer stays positive). Falls back to the clock if no randomness is available.
pub(crate) fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(1);
        bytes = nanos.to_be_bytes();
    }
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x01;
    }
    rcgen::SerialNumber::from_slice(&bytes)
}

/// Creates the CA files unless both exist. Older versions also wrote `cert.pem`/`key.pem` (a
/// `*.localhost` server certificate); they are no longer used and left alone.
fn ensure_ca(paths: &GeneratedCertPaths) -> Result<(), TlsError> {
    if paths.ca_cert.exists() && paths.ca_key.exists() {
        return Ok(());
    }
    let dir = paths
        .ca_cert
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let gen_err = |reason: String| TlsError::Generate {
        dir: dir.clone(),
        reason,
    };
    fs::create_dir_all(&dir).map_err(|e| gen_err(e.to_string()))?;
    // `_host/` and `_host/tls/` hold the CA key: private to the server's user, whatever the
    // umask or an older version left behind.
    for private in [Some(dir.as_path()), dir.parent()].into_iter().flatten() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(private, fs::Permissions::from_mode(0o700))
            .map_err(|e| gen_err(e.to_string()))?;
    }
    let (ca_pem, key_pem) = generate_ca().map_err(|e| gen_err(e.to_string()))?;
    // Key first, certificate last: a crash in between leaves `ca.pem` missing, so the next
    // start generates both again instead of pairing a certificate with a stale key.
    write_private(&paths.ca_key, key_pem.as_bytes()).map_err(|e| gen_err(e.to_string()))?;
    write_public(&paths.ca_cert, ca_pem.as_bytes()).map_err(|e| gen_err(e.to_string()))?;
    tracing::info!(ca = %paths.ca_cert.display(), "generated a local certificate authority");
    Ok(())
}
