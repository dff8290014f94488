//! TLS for the HTTPS listener: PEM certificates selected by SNI, and a locally generated
//! certificate authority plus server certificate for the zero-config default.
//!
//! The generated files live in `<data-dir>/_host/tls/` (`_` keeps the directory out of the
//! store namespace) and are reused on every restart, so clients that trusted `ca.pem` once
//! keep trusting the server.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::CertificateConfig;

/// Names the generated server certificate is valid for.
pub const SELF_SIGNED_NAMES: &[&str] = &["localhost", "*.localhost", "127.0.0.1", "::1"];

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
    /// The generated certificate could not be created or saved.
    #[error("cannot create the self-signed certificate in {dir}: {reason}")]
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

/// Where the generated certificate authority and server certificate are kept.
#[derive(Debug, Clone)]
pub struct GeneratedCertPaths {
    /// The CA certificate clients can trust (`curl --cacert`).
    pub ca_cert: PathBuf,
    /// The server certificate chain (leaf, then CA).
    pub cert: PathBuf,
    /// The server key.
    pub key: PathBuf,
    ca_key: PathBuf,
}

impl GeneratedCertPaths {
    /// The paths under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("_host").join("tls");
        GeneratedCertPaths {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// Builds the rustls server configuration: configured certificates by SNI name, the
/// generated certificate for everything else (including clients that send no SNI, as happens
/// when they connect to an IP address). ALPN offers HTTP/2 and HTTP/1.1.
pub fn server_config(
    data_dir: &Path,
    certs: &[CertificateConfig],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let paths = GeneratedCertPaths::new(data_dir);
    ensure_generated(&paths)?;
    let fallback = Arc::new(load_certified_key(&provider, &paths.cert, &paths.key)?);
    let mut by_name = HashMap::new();
    for c in certs {
        let key = Arc::new(load_certified_key(&provider, &c.cert, &c.key)?);
        for name in &c.names {
            by_name.insert(name.as_str().to_owned(), Arc::clone(&key));
        }
    }
    let resolver = SniResolver { by_name, fallback };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Picks a certificate by SNI name: exact, then `*.parent` wildcard, then the fallback.
#[derive(Debug)]
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    fallback: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(Arc::clone(&self.fallback));
        };
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        self.by_name
            .get(name)
            .or_else(|| wildcard.and_then(|w| self.by_name.get(&w)))
            .cloned()
            .or_else(|| Some(Arc::clone(&self.fallback)))
    }
}

fn load_certified_key(
    provider: &rustls::crypto::CryptoProvider,
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

/// Creates the local CA and a server certificate signed by it, unless both already exist.
fn ensure_generated(paths: &GeneratedCertPaths) -> Result<(), TlsError> {
    if paths.cert.exists() && paths.key.exists() && paths.ca_cert.exists() {
        return Ok(());
    }
    let dir = paths
        .cert
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

    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| gen_err(e.to_string()))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Everlock local CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(|e| gen_err(e.to_string()))?;
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| gen_err(e.to_string()))?;

    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let mut leaf_params =
        rcgen::CertificateParams::new(names).map_err(|e| gen_err(e.to_string()))?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = rcgen::KeyPair::generate().map_err(|e| gen_err(e.to_string()))?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .map_err(|e| gen_err(e.to_string()))?;

    // Keys first, certificates last: a crash in between leaves `cert.pem` missing, so the
    // next start regenerates everything instead of pairing a certificate with a stale key.
    write_private(&paths.ca_key, ca_key.serialize_pem().as_bytes())
        .map_err(|e| gen_err(e.to_string()))?;
    write_private(&paths.key, leaf_key.serialize_pem().as_bytes())
        .map_err(|e| gen_err(e.to_string()))?;
    write_public(&paths.ca_cert, ca.pem().as_bytes()).map_err(|e| gen_err(e.to_string()))?;
    let chain = format!("{}{}", leaf.pem(), ca.pem());
    write_public(&paths.cert, chain.as_bytes()).map_err(|e| gen_err(e.to_string()))?;
    tracing::info!(ca = %paths.ca_cert.display(), "generated a local certificate authority and a server certificate for {}", SELF_SIGNED_NAMES.join(", "));
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, bytes, 0o600)
}

fn write_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, bytes, 0o644)
}

/// Writes via a temporary file, fsync and rename, so a crash never leaves a torn PEM file.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    // `mode` applies only when the file is created; a temporary file left by a crash keeps
    // whatever mode it had, so set it explicitly.
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path(), &[]).unwrap();
        let paths = GeneratedCertPaths::new(dir.path());
        let first = fs::read(&paths.cert).unwrap();
        server_config(dir.path(), &[]).unwrap();
        assert_eq!(fs::read(&paths.cert).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key must not be readable by others");
        let tls_dir = paths.key.parent().unwrap();
        for d in [tls_dir, tls_dir.parent().unwrap()] {
            let mode = fs::metadata(d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn configured_certificate_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CertificateConfig {
            names: vec!["example.com".parse().unwrap()],
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("missing-key.pem"),
        };
        let err = server_config(dir.path(), &[cfg]).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path(), &[]).unwrap();
        let paths = GeneratedCertPaths::new(dir.path());
        let cfg = CertificateConfig {
            names: vec!["example.com".parse().unwrap()],
            cert: paths.cert.clone(),
            key: paths.ca_key,
        };
        let err = server_config(dir.path(), &[cfg]).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }
}
