//! The ready file (`everlock serve --ready-file FILE`, or `EVERLOCK_READY_FILE`): once startup
//! has finished, the addresses the listeners really bound, as one JSON object:
//!
//! ```json
//! {"pid":4242,"http":"127.0.0.1:39017","https":"127.0.0.1:41231","ssh":"127.0.0.1:35565","metrics":null}
//! ```
//!
//! A listener that is `off` is `null`. With it, a supervisor or a test can configure port 0
//! and learn the real ports without guessing free ones beforehand (a race with every other
//! process on the machine) or parsing log lines. The file appears only when the instances are
//! installed and the listeners are about to serve; it is written under a temporary name and
//! renamed, so a reader never sees half of it; a file left by an earlier run is removed before
//! anything starts, and this run's file is removed again when the server stops.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The bound address of each listener; `None` when it is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Listeners {
    /// Plain HTTP.
    pub(crate) http: Option<SocketAddr>,
    /// HTTPS.
    pub(crate) https: Option<SocketAddr>,
    /// The SSH console.
    pub(crate) ssh: Option<SocketAddr>,
    /// `/metrics`, `/healthz` and `/readyz`.
    pub(crate) metrics: Option<SocketAddr>,
}

/// The ready file of this run: claimed at the start, published once startup has finished,
/// removed when dropped (after a graceful stop or a failed start).
#[derive(Debug)]
pub(crate) struct ReadyFile {
    path: PathBuf,
    published: bool,
}

impl ReadyFile {
    /// Removes a file an earlier run left at `path`: until this run publishes, nobody may
    /// mistake the old addresses for this server's.
    pub(crate) fn claim(path: PathBuf) -> anyhow::Result<ReadyFile> {
        remove_if_present(&path)
            .with_context(|| format!("cannot remove the old ready file {}", path.display()))?;
        Ok(ReadyFile {
            path,
            published: false,
        })
    }

    /// Writes the addresses (0600, like every file the server writes) and renames the file
    /// into place.
    pub(crate) fn publish(&mut self, listeners: &Listeners) -> anyhow::Result<()> {
        let text = serde_json::json!({
            "pid": std::process::id(),
            "http": listeners.http.map(|a| a.to_string()),
            "https": listeners.https.map(|a| a.to_string()),
            "ssh": listeners.ssh.map(|a| a.to_string()),
            "metrics": listeners.metrics.map(|a| a.to_string()),
        })
        .to_string();
        let mut name = self.path.as_os_str().to_owned();
        name.push(".tmp");
        let temporary = PathBuf::from(name);
        write_new(&temporary, text.as_bytes())
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .with_context(|| format!("cannot write the ready file {}", self.path.display()))?;
        self.published = true;
        Ok(())
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        // Only our own file: a start that failed before publishing must not delete the file
        // of another server that was given the same path.
        if self.published
            && let Err(e) = remove_if_present(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the ready file");
        }
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn publishes_bound_addresses_and_null_for_off_listeners() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        let mut ready = ReadyFile::claim(path.clone()).unwrap();
        assert!(!path.exists(), "nothing before startup has finished");
        let listeners = Listeners {
            http: Some("127.0.0.1:40001".parse().unwrap()),
            ssh: Some("[::1]:2222".parse().unwrap()),
            ..Listeners::default()
        };
        ready.publish(&listeners).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["pid"], std::process::id());
        assert_eq!(json["http"], "127.0.0.1:40001");
        assert_eq!(json["ssh"], "[::1]:2222");
        assert!(
            json["https"].is_null() && json["metrics"].is_null(),
            "{json}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("ready.json.tmp").exists());
        drop(ready);
        assert!(!path.exists(), "removed when the server stops");
    }

    #[test]
    fn a_stale_file_is_removed_at_once_and_a_foreign_one_is_kept_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        std::fs::write(&path, "{\"pid\":1}").unwrap();
        let ready = ReadyFile::claim(path.clone()).unwrap();
        assert!(
            !path.exists(),
            "a reader must not see the old run's addresses"
        );
        // Another server wrote the file meanwhile; this start fails before publishing.
        std::fs::write(&path, "{\"pid\":2}").unwrap();
        drop(ready);
        assert!(path.exists());
    }
}
