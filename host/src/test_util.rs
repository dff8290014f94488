//! Helpers for tests of the host and of backends: a throwaway store directory with an auth
//! service, and a ready-made `BackendContext`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure"
)]

use everlock_auth::{Auth, AuthOptions};
use everlock_storage::StoreManager;

use crate::api::BackendContext;
use crate::api::InstanceStore;

/// A temporary data directory with a store manager and an auth service using cheap bcrypt.
#[derive(Debug)]
pub struct TestEnv {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// Stores under `dir`.
    pub stores: StoreManager,
    /// Auth backed by `dir`.
    pub auth: Auth,
}

impl TestEnv {
    /// Creates the environment.
    pub async fn new() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreManager::new(dir.path());
        let auth = Auth::open(
            &stores,
            AuthOptions {
                bcrypt_cost: 4,
                ..AuthOptions::default()
            },
        )
        .await
        .unwrap();
        TestEnv { dir, stores, auth }
    }

    /// A context for instance `name` of `kind` on `vhost` under `prefix`.
    pub fn context(
        &self,
        kind: &'static str,
        name: &str,
        vhost: &str,
        prefix: &str,
    ) -> BackendContext {
        BackendContext {
            kind,
            instance: name.parse().unwrap(),
            vhosts: vec![vhost.parse().unwrap()],
            prefix: prefix.parse().unwrap(),
            store: InstanceStore::new(
                self.stores.clone(),
                format!("{kind}-{name}").parse().unwrap(),
            ),
            auth: self.auth.access_control(),
            shutdown: Default::default(),
            admin: None,
        }
    }
}
