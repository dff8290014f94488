//! [`StoreManager`]: named stores under one data directory.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::error::{Result, StorageError};
use crate::path::validate_store_name;
use crate::store::{Inner, Store, is_store};

/// How long an open waits for this process's own previous handle to finish closing.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

/// Opens stores by name as `<data_dir>/<name>/`. Cloning is cheap and clones share the map of
/// open stores, so one process always gets one shared handle per store.
#[derive(Clone, Debug)]
pub struct StoreManager {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    data_dir: PathBuf,
    /// Weak, so that a store closes (and releases its `LOCK`) when its last handle is dropped.
    open: Mutex<HashMap<String, Weak<Inner>>>,
}

impl StoreManager {
    /// A manager for `data_dir` (created on the first open).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            shared: Arc::new(Shared {
                data_dir: data_dir.into(),
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    /// Opens the store `name`, creating it if needed. A second open in this process returns
    /// the same shared handle; a store held by another process fails with `InUse`.
    pub async fn open(&self, name: &str) -> Result<Store> {
        let (this, name) = (self.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || this.open_blocking(&name, true))
            .await
            .map_err(|e| StorageError::Worker(e.to_string()))?
    }

    /// Opens an existing store; fails with `NoSuchStore` instead of creating one.
    pub async fn open_existing(&self, name: &str) -> Result<Store> {
        let (this, name) = (self.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || this.open_blocking(&name, false))
            .await
            .map_err(|e| StorageError::Worker(e.to_string()))?
    }

    /// Blocking version of [`StoreManager::open`] (`create`) and
    /// [`StoreManager::open_existing`] (`!create`).
    pub fn open_blocking(&self, name: &str, create: bool) -> Result<Store> {
        validate_store_name(name)?;
        let dir = self.shared.data_dir.join(name);
        let mut open = self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = open.get(name).cloned();
        if let Some(inner) = previous.as_ref().and_then(Weak::upgrade) {
            return Ok(Store { inner });
        }
        if !create && !is_store(&dir) {
            return Err(StorageError::NoSuchStore(name.to_owned()));
        }
        crate::perms::create_dir_all(&self.shared.data_dir)?;
        // The data directory is Everlock's alone (stores and `_host/`): closing it to other
        // users also covers whatever the host writes there with looser modes.
        crate::perms::tighten(&self.shared.data_dir)?;
        // A dead weak entry means our own last handle is being dropped right now, possibly on
        // another thread that has not released the LOCK yet: wait for it briefly.
        let wait = if previous.is_some() {
            REOPEN_WAIT
        } else {
            Duration::ZERO
        };
        let inner = Arc::new(Inner::open(&dir, wait)?);
        open.insert(name.to_owned(), Arc::downgrade(&inner));
        Ok(Store { inner })
    }

    /// The names of the stores in the data directory, sorted. Directories that are not valid
    /// store names (such as `_host/`) or hold no store are skipped.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.shared.data_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_store_name(&name).is_ok()
                && entry.file_type()?.is_dir()
                && is_store(&entry.path())
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CommitMeta;

    #[tokio::test]
    async fn open_shares_handles_and_lists_only_stores() {
        let dir = tempfile::tempdir().unwrap();
        let m = StoreManager::new(dir.path().join("data"));
        assert!(m.list().unwrap().is_empty());
        let a = m.open("alpha").await.unwrap();
        let a2 = m.clone().open("alpha").await.unwrap();
        assert!(Arc::ptr_eq(&a.inner, &a2.inner));
        a.write("x", b"1".to_vec(), CommitMeta::new("t", "m"))
            .await
            .unwrap();
        assert_eq!(a2.read("x").await.unwrap(), b"1");
        m.open("everlock-users").await.unwrap();
        fs::create_dir_all(dir.path().join("data/_host")).unwrap();
        fs::create_dir_all(dir.path().join("data/empty")).unwrap();
        fs::write(dir.path().join("data/file"), b"").unwrap();
        assert_eq!(
            m.list().unwrap(),
            vec!["alpha".to_owned(), "everlock-users".to_owned()]
        );
        for bad in ["_host", "Alpha", "a/b", "..", ""] {
            let err = m.open(bad).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    StorageError::Invalid {
                        what: "store name",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        let err = m.open_existing("nothing").await.unwrap_err();
        assert!(matches!(err, StorageError::NoSuchStore(_)), "{err}");
    }

    #[tokio::test]
    async fn reopen_after_drop_and_second_manager_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let m = StoreManager::new(dir.path());
        let a = m.open("s").await.unwrap();
        // A second manager stands for a second process: it does not share the map, and the
        // flock on a separate open file description conflicts just as across processes.
        let other = StoreManager::new(dir.path());
        let err = other.open("s").await.unwrap_err();
        assert!(err.to_string().contains("store in use"), "{err}");
        drop(a);
        let again = m.open("s").await.unwrap();
        drop(again);
        other.open("s").await.unwrap();
    }
}
