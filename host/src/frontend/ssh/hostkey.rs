//! The SSH host key: generated once (Ed25519) and kept as PKCS#8 PEM, mode 0600, in
//! `<data-dir>/_host/ssh/host_ed25519.pem`, so clients see the same host key after every
//! restart instead of a "host identification has changed" warning.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};

/// Why the host key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The key file or its directory could not be read or written.
    #[error("SSH host key {path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The key file exists but is not a usable private key.
    #[error("SSH host key {path} is unreadable: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },
    /// No randomness for a new key.
    #[error("cannot generate the SSH host key: {0}")]
    Random(String),
    /// The shared key in the system store could not be read or created.
    #[error("SSH host key in the system store: {0}")]
    Store(String),
}

/// The key file's name inside `<data-dir>/_host/ssh/`.
pub const HOST_KEY_FILE: &str = "host_ed25519.pem";

/// The host key: with shared storage (several nodes) from the `everlock-system` store, so
/// every node presents the same key (`crate::tls::shared`), else from `data_dir`.
pub async fn load_or_create_for(
    stores: &everlock_storage::StoreManager,
    data_dir: &Path,
) -> Result<PrivateKey, HostKeyError> {
    if !stores.is_shared() {
        return load_or_create(data_dir);
    }
    let store = stores
        .open(crate::config::SYSTEM_STORE)
        .await
        .map_err(|e| HostKeyError::Store(e.to_string()))?;
    let values = crate::tls::shared::get_or_create(
        &store,
        &[crate::tls::shared::SSH_HOST_KEY_PATH],
        || {
            let key = generate().map_err(|e| e.to_string())?;
            let mut pem = Vec::new();
            russh::keys::encode_pkcs8_pem(&key, &mut pem).map_err(|e| e.to_string())?;
            Ok(vec![pem])
        },
        "ssh: host key",
    )
    .await
    .map_err(HostKeyError::Store)?;
    let text = values
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    russh::keys::decode_secret_key(&text, None).map_err(|e| HostKeyError::Store(e.to_string()))
}

/// Loads the host key from `data_dir`, generating and storing it on first use.
pub fn load_or_create(data_dir: &Path) -> Result<PrivateKey, HostKeyError> {
    let dir = data_dir.join("_host").join("ssh");
    let path = dir.join(HOST_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return russh::keys::decode_secret_key(&text, None).map_err(|e| {
                HostKeyError::Invalid {
                    path,
                    reason: e.to_string(),
                }
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(HostKeyError::Io { path, error }),
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| HostKeyError::Io { path, error }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    let key = generate()?;
    let mut pem = Vec::new();
    russh::keys::encode_pkcs8_pem(&key, &mut pem).map_err(|e| HostKeyError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    // Written to a temporary name with mode 0600 from the start, fsynced, then renamed, so a
    // crash never leaves a half-written key that would fail every later start.
    let tmp = dir.join(format!("{HOST_KEY_FILE}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(&pem).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    tracing::info!(path = %path.display(), "generated the SSH host key");
    Ok(key)
}

fn generate() -> Result<PrivateKey, HostKeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| HostKeyError::Random(e.to_string()))?;
    let pair = Ed25519Keypair::from_seed(&seed);
    PrivateKey::new(KeypairData::Ed25519(pair), "everlock host key")
        .map_err(|e| HostKeyError::Random(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_with_mode_0600_and_reloaded_identically() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let path = dir.path().join("_host/ssh").join(HOST_KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        let second = load_or_create(dir.path()).unwrap();
        assert_eq!(
            first.public_key().key_data(),
            second.public_key().key_data()
        );
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("_host/ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join(HOST_KEY_FILE), "garbage").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unreadable"), "{err}");
    }
}
