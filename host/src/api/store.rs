//! The store handle an instance receives: its own store only, opened on first use.
//!
//! Opening lazily keeps startup fast with many instances (an instance that never stores
//! anything never creates a database) while the host still decides which store it gets.

use std::sync::Arc;

use everlock_storage::{StorageError, Store, StoreManager};
use tokio::sync::OnceCell;

use super::names::StoreName;

/// One instance's store.
#[derive(Debug, Clone)]
pub struct InstanceStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    manager: StoreManager,
    name: StoreName,
    store: OnceCell<Store>,
}

impl InstanceStore {
    /// The store `name` under `manager`, not yet opened.
    pub fn new(manager: StoreManager, name: StoreName) -> InstanceStore {
        InstanceStore {
            inner: Arc::new(Inner {
                manager,
                name,
                store: OnceCell::new(),
            }),
        }
    }

    /// The store's name.
    pub fn name(&self) -> &StoreName {
        &self.inner.name
    }

    /// The open store, opening (and creating) it on the first call.
    pub async fn get(&self) -> Result<&Store, StorageError> {
        self.inner
            .store
            .get_or_try_init(|| self.inner.manager.open(self.inner.name.as_str()))
            .await
    }
}
