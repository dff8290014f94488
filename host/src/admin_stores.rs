//! Live administration of the stores themselves: list every store of the data directory with
//! its figures, read a store's log, verify it, collect its garbage and set its retention
//! policy, all while the server runs and for system administrators only.
//!
//! Stores are named as in the data directory, whether an instance uses them, they are the
//! reserved `everlock-users` / `everlock-system`, or nobody uses them any more (the store of a
//! deleted instance). A name is only ever opened, never created: a typo must not leave an
//! empty store behind. The store manager shares one handle per store per process, so these
//! operations work on the very handle an instance writes through, and GC keeps to the
//! grace-period rules that make it safe next to writes.

use std::time::Duration;

use everlock_auth::{Principal, USERS_STORE};
use everlock_storage::{CommitInfo, GcOptions, RetentionPolicy, StorageError, Store, VerifyReport};

pub use crate::api::{MAX_STORE_LOG, StoreAdminError, StoreDetails, StoreGc, StoreRow};
use crate::config::SYSTEM_STORE;
use crate::runtime::Host;

impl Host {
    /// The names of every store in the data directory, sorted; for tab completion, which
    /// shows only names an administrator would type (no figures, nothing opened).
    pub fn store_names(&self) -> Vec<String> {
        self.stores().list().unwrap_or_default()
    }

    /// Every store of the data directory with who uses it and its figures. A store that cannot
    /// be opened (held by another process, damaged) is listed with the reason instead of
    /// failing the whole listing.
    pub async fn store_list(&self, actor: &Principal) -> Result<Vec<StoreRow>, StoreAdminError> {
        self.require_admin(actor)?;
        let names = self
            .stores()
            .list()
            .map_err(|error| StoreAdminError::Storage {
                store: "*".to_owned(),
                error,
            })?;
        let instances = self.instances();
        let mut rows = Vec::with_capacity(names.len());
        for name in names {
            let used_by = match name.as_str() {
                SYSTEM_STORE => "(system)".to_owned(),
                USERS_STORE => "(users)".to_owned(),
                _ => instances
                    .iter()
                    .find(|i| i.store_name().as_str() == name)
                    .map_or_else(|| "-".to_owned(), |i| format!("{}/{}", i.kind, i.name)),
            };
            let details = self.details(&name).await.map_err(|e| e.to_string());
            rows.push(StoreRow {
                name,
                used_by,
                details,
            });
        }
        Ok(rows)
    }

    /// The newest `n` commits of store `name`, newest first (at most [`MAX_STORE_LOG`]).
    pub async fn store_log(
        &self,
        actor: &Principal,
        name: &str,
        n: u64,
    ) -> Result<Vec<CommitInfo>, StoreAdminError> {
        self.require_admin(actor)?;
        let store = self.open_store(name).await?;
        store
            .log(n.min(MAX_STORE_LOG))
            .await
            .map_err(|e| failed(name, e))
    }

    /// Re-hashes every object of store `name` and re-checks its hash chain; problems are in
    /// the report, errors are reading failures.
    pub async fn store_verify(
        &self,
        actor: &Principal,
        name: &str,
    ) -> Result<VerifyReport, StoreAdminError> {
        self.require_admin(actor)?;
        let store = self.open_store(name).await?;
        store.verify().await.map_err(|e| failed(name, e))
    }

    /// Applies the retention policy of store `name`, then removes objects nothing references
    /// that are older than `grace`; `dry_run` reports without changing anything.
    pub async fn store_gc(
        &self,
        actor: &Principal,
        name: &str,
        grace: Duration,
        dry_run: bool,
    ) -> Result<StoreGc, StoreAdminError> {
        self.require_admin(actor)?;
        let store = self.open_store(name).await?;
        let retention = store
            .retention_policy()
            .await
            .map_err(|e| failed(name, e))?;
        let report = store
            .gc(GcOptions { grace, dry_run })
            .await
            .map_err(|e| failed(name, e))?;
        tracing::info!(
            store = name,
            actor = %actor,
            dry_run,
            objects_removed = report.objects_removed,
            bytes_freed = report.bytes_freed,
            "store gc from the console"
        );
        Ok(StoreGc {
            retention: retention.to_string(),
            report,
        })
    }

    /// Sets the retention policy of store `name`; the next GC or maintenance run applies it.
    pub async fn store_set_retention(
        &self,
        actor: &Principal,
        name: &str,
        policy: RetentionPolicy,
    ) -> Result<(), StoreAdminError> {
        self.require_admin(actor)?;
        let store = self.open_store(name).await?;
        let text = policy.to_string();
        store
            .set_retention_policy(policy)
            .await
            .map_err(|e| failed(name, e))?;
        tracing::info!(store = name, actor = %actor, policy = %text, "store retention set");
        Ok(())
    }

    /// Opens an existing store by name; never creates one.
    async fn open_store(&self, name: &str) -> Result<Store, StoreAdminError> {
        match self.stores().open_existing(name).await {
            Ok(store) => Ok(store),
            Err(StorageError::NoSuchStore(_) | StorageError::Invalid { .. }) => {
                Err(StoreAdminError::NoSuchStore(name.to_owned()))
            }
            Err(error) => Err(failed(name, error)),
        }
    }

    async fn details(&self, name: &str) -> Result<StoreDetails, StoreAdminError> {
        let store = self.open_store(name).await?;
        let fail = |e| failed(name, e);
        Ok(StoreDetails {
            stats: store.stats().await.map_err(fail)?,
            disk_bytes: store.disk_bytes().await.map_err(fail)?,
            retention: store.retention_policy().await.map_err(fail)?.to_string(),
        })
    }
}

fn failed(store: &str, error: StorageError) -> StoreAdminError {
    StoreAdminError::Storage {
        store: store.to_owned(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use everlock_auth::AdminPassword;

    use crate::admin::AdminError;
    use everlock_storage::CommitMeta;

    use super::*;
    use crate::api::Frontend;
    use crate::api::{Backend, BackendContext, BackendFactory, BuildError, DefaultInstance};
    use crate::config::Config;
    use crate::registry::Registry;
    use crate::test_util::TestEnv;

    struct Empty;
    impl Backend for Empty {
        fn service(&self) -> crate::api::Service {
            crate::api::Service::Http(axum::Router::new())
        }
    }
    fn check(_: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
        Ok(Vec::new())
    }
    fn build(_: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
        Ok(Box::new(Empty))
    }
    fn defaults() -> Vec<DefaultInstance> {
        vec![DefaultInstance {
            name: "default",
            vhosts: &["localhost"],
            prefix: "/",
            store: "k-default",
            public: false,
            seed: &[],
        }]
    }
    static K: BackendFactory = BackendFactory {
        kind: "k-http",
        frontend: Frontend::Http,
        summary: "test kind",
        check,
        build,
        default_instances: defaults,
        example_settings: "",
        access_root: None,
        console: None,
    };

    async fn start(env: &TestEnv) -> (Host, Principal) {
        env.auth
            .bootstrap("admin", AdminPassword::Given("pw".into()))
            .await
            .unwrap();
        let host = Host::new(
            Registry::from_factories([&K]).unwrap(),
            env.stores.clone(),
            env.auth.clone(),
            everlock_auth::SystemAuthority::for_tests(),
            Default::default(),
        );
        host.start(Config::default()).await.unwrap();
        (host, Principal::test_user("admin"))
    }

    fn who() -> CommitMeta {
        CommitMeta::new("alice", "t")
    }

    fn row<'a>(rows: &'a [StoreRow], name: &str) -> &'a StoreRow {
        rows.iter().find(|r| r.name == name).unwrap()
    }

    #[tokio::test]
    async fn list_names_users_and_figures_of_every_store() {
        let env = TestEnv::new().await;
        let (host, admin) = start(&env).await;
        let site = env.stores.open("k-default").await.unwrap();
        site.write("a", vec![1u8; 40_000], who()).await.unwrap();
        // The store of a deleted instance: on disk, used by nobody.
        env.stores.open("old").await.unwrap();
        let rows = host.store_list(&admin).await.unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["everlock-system", "everlock-users", "k-default", "old"]
        );
        assert_eq!(row(&rows, "everlock-system").used_by, "(system)");
        assert_eq!(row(&rows, "everlock-users").used_by, "(users)");
        assert_eq!(row(&rows, "old").used_by, "-");
        let k = row(&rows, "k-default");
        assert_eq!(k.used_by, "k-http/default");
        let d = k.details.as_ref().unwrap();
        assert_eq!(
            (d.stats.objects, d.stats.bytes, d.stats.commits),
            (1, 40_000, 1)
        );
        assert!(d.disk_bytes >= 40_000, "{d:?}");
        assert_eq!(d.retention, RetentionPolicy::KeepAll.to_string());
        assert!(
            row(&rows, "everlock-users")
                .details
                .as_ref()
                .unwrap()
                .stats
                .commits
                > 0
        );
    }

    #[tokio::test]
    async fn only_system_administrators_and_only_existing_stores() {
        let env = TestEnv::new().await;
        let (host, admin) = start(&env).await;
        let alice = Principal::test_user("alice");
        let denied = |e: StoreAdminError| {
            assert!(
                matches!(e, StoreAdminError::Admin(AdminError::Denied(_))),
                "{e}"
            );
            assert_eq!(
                e.to_string(),
                "permission denied: alice is not a system administrator"
            );
        };
        denied(host.store_list(&alice).await.unwrap_err());
        denied(
            host.store_log(&alice, "everlock-users", 1)
                .await
                .unwrap_err(),
        );
        denied(
            host.store_verify(&alice, "everlock-users")
                .await
                .unwrap_err(),
        );
        let zero = Duration::ZERO;
        denied(
            host.store_gc(&alice, "everlock-users", zero, true)
                .await
                .unwrap_err(),
        );
        let keep = RetentionPolicy::KeepAll;
        denied(
            host.store_set_retention(&alice, "everlock-users", keep)
                .await
                .unwrap_err(),
        );
        for name in ["ghost", "Bad/Name", "_host"] {
            let e = host.store_log(&admin, name, 5).await.unwrap_err();
            assert_eq!(e.to_string(), format!("no store `{name}`"));
            let e = host.store_verify(&admin, name).await.unwrap_err();
            assert!(matches!(e, StoreAdminError::NoSuchStore(_)), "{e}");
        }
        // Asking never creates the store.
        assert!(!env.dir.path().join("ghost").exists());
        assert!(!host.store_names().contains(&"ghost".to_owned()));
    }

    #[tokio::test]
    async fn log_verify_retention_and_gc() {
        let env = TestEnv::new().await;
        let (host, admin) = start(&env).await;
        let store = env.stores.open("k-default").await.unwrap();
        let old = vec![2u8; 50_000];
        store.write("f", old.clone(), who()).await.unwrap();
        let last = store.write("f", b"new".to_vec(), who()).await.unwrap();
        let log = host.store_log(&admin, "k-default", 1).await.unwrap();
        assert_eq!(log, [last]);
        assert_eq!(
            host.store_log(&admin, "k-default", 100)
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(
            host.store_verify(&admin, "k-default")
                .await
                .unwrap()
                .is_ok()
        );

        let policy: RetentionPolicy = "purge-after=0s".parse().unwrap();
        host.store_set_retention(&admin, "k-default", policy)
            .await
            .unwrap();
        let rows = host.store_list(&admin).await.unwrap();
        let d = row(&rows, "k-default").details.clone().unwrap();
        assert_eq!(d.retention, policy.to_string());
        tokio::time::sleep(Duration::from_millis(5)).await;

        // A dry run reports the purge and changes nothing.
        let dry = host
            .store_gc(&admin, "k-default", Duration::ZERO, true)
            .await
            .unwrap();
        assert_eq!(dry.retention, policy.to_string());
        assert_eq!(dry.report.purged_versions, 1, "{dry:?}");
        assert_eq!(store.stats().await.unwrap(), d.stats);
        assert_eq!(
            store
                .read_at("f", log_first(&host, &admin).await)
                .await
                .unwrap(),
            old
        );

        let done = host
            .store_gc(&admin, "k-default", Duration::ZERO, false)
            .await
            .unwrap();
        assert_eq!(done.report.objects_removed, 1, "{done:?}");
        let after = store.stats().await.unwrap();
        assert_eq!(after.bytes, 3);
        assert!(
            host.store_verify(&admin, "k-default")
                .await
                .unwrap()
                .is_ok()
        );
    }

    async fn log_first(host: &Host, admin: &Principal) -> everlock_storage::CommitId {
        let log = host.store_log(admin, "k-default", 100).await.unwrap();
        log.last().unwrap().id
    }
}
