//! The `LOCK` file: one process owns a store at a time.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Result, StorageError};

/// An exclusive `flock()` on `<store>/LOCK`, released when dropped or when the process dies
/// (so a SIGKILLed owner never leaves a stale lock behind).
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Takes the lock, waiting up to `wait` for a holder to let go; a process that still holds
    /// it afterwards gets [`StorageError::InUse`].
    pub(crate) fn acquire(path: &Path, wait: Duration) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(crate::perms::FILE_MODE)
            .open(path)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StorageError::InUse(
                        path.parent().unwrap_or(path).display().to_string(),
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let first = StoreLock::acquire(&path, Duration::ZERO).unwrap();
        let err = StoreLock::acquire(&path, Duration::ZERO).unwrap_err();
        assert!(matches!(err, StorageError::InUse(_)), "{err}");
        assert!(err.to_string().contains("store in use"));
        drop(first);
        StoreLock::acquire(&path, Duration::ZERO).unwrap();
    }
}
