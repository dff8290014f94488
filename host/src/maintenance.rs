//! Store maintenance while the server runs: every store's retention policy and object GC, on
//! a schedule (`[storage] maintenance-interval-secs`) and on demand ([`Host::maintain`]).
//!
//! It runs next to live traffic without any lock of its own: the store's GC is safe against
//! concurrent commits and stages by construction (each deletion re-checks "unreferenced?"
//! inside a write transaction, under the object's stripe lock, and objects younger than the
//! grace period are never candidates), so a push or deploy in flight keeps its content.

use std::time::Duration;

use everlock_storage::{GcOptions, GcReport, Store};
use tokio_util::sync::CancellationToken;

use crate::admin::AdminError;
use crate::config::StorageConfig;
use crate::runtime::Host;

impl Host {
    /// Runs retention + object GC on one store (or every store of the data directory), as the
    /// maintenance task does. With `None`, a store that fails (held by another process, say)
    /// is logged and skipped so that the others are still maintained; a named store's
    /// failure is returned.
    pub async fn maintain(
        &self,
        store: Option<&str>,
        opts: GcOptions,
    ) -> Result<Vec<(String, GcReport)>, AdminError> {
        if let Some(name) = store {
            let report = maintain_one(self, name, &opts)
                .await
                .map_err(|e| AdminError::Invalid(format!("store {name}: {e}")))?;
            return Ok(vec![(name.to_owned(), report)]);
        }
        let names = self
            .stores()
            .list()
            .map_err(|e| AdminError::Invalid(format!("cannot list the stores: {e}")))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match maintain_one(self, &name, &opts).await {
                Ok(report) => out.push((name, report)),
                Err(e) => tracing::warn!(store = %name, error = %e, "store maintenance skipped"),
            }
        }
        Ok(out)
    }
}

async fn maintain_one(
    host: &Host,
    name: &str,
    opts: &GcOptions,
) -> Result<GcReport, everlock_storage::StorageError> {
    // The manager hands out the very handle the instance serving this store uses, so the GC
    // and the instance's commits share one writer connection and one set of stripe locks.
    let store: Store = host.stores().open_existing(name).await?;
    let report = store.gc(opts.clone()).await?;
    if !opts.dry_run {
        host.metrics()
            .maintenance_run(name, report.file_bytes_freed);
    }
    Ok(report)
}

/// Starts the background task unless `config` turns it off. The first run happens one
/// interval after startup (a restart loop must not turn into a GC loop); the task ends when
/// `shutdown` is cancelled, between two stores at the latest.
pub(crate) fn spawn(host: &Host, config: &StorageConfig, shutdown: CancellationToken) {
    let Some(every) = config.interval() else {
        tracing::info!("store maintenance is off ([storage] maintenance-interval-secs = 0)");
        return;
    };
    let host = host.clone();
    let grace = config.grace();
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut ticker = tokio::time::interval_at(start, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            run_once(&host, grace, &shutdown).await;
        }
    });
}

/// One pass over every store; one log line per store that gave space back, and a summary.
async fn run_once(host: &Host, grace: Duration, shutdown: &CancellationToken) {
    let names = match host.stores().list() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "store maintenance: cannot list the stores");
            return;
        }
    };
    let opts = GcOptions {
        grace,
        dry_run: false,
    };
    maintain_instances(host, shutdown).await;
    let (mut stores, mut freed) = (0u64, 0u64);
    for name in names {
        if shutdown.is_cancelled() {
            return;
        }
        match maintain_one(host, &name, &opts).await {
            Ok(r) => {
                stores += 1;
                freed += r.file_bytes_freed;
                if r.purged_versions + r.objects_removed + r.orphan_files_removed > 0 {
                    tracing::info!(
                        store = %name,
                        bytes_freed = r.file_bytes_freed,
                        objects_removed = r.objects_removed,
                        purged_versions = r.purged_versions,
                        "store maintenance freed {} bytes on disk",
                        r.file_bytes_freed
                    );
                }
            }
            Err(e) => tracing::warn!(store = %name, error = %e, "store maintenance skipped"),
        }
    }
    tracing::info!(
        stores,
        bytes_freed = freed,
        "store maintenance done: {freed} bytes freed"
    );
}

/// Runs every live instance's own upkeep (`Backend::maintain`), logging each outcome.
async fn maintain_instances(host: &Host, shutdown: &CancellationToken) {
    let snapshot = host.table().snapshot();
    for instance in snapshot.instances() {
        if shutdown.is_cancelled() {
            return;
        }
        let Some(work) = instance.backend.maintain() else {
            continue;
        };
        match work.await {
            Ok(out) if out.trim().is_empty() => {}
            Ok(out) => tracing::info!(instance = %instance.id(), "maintenance: {}", out.trim()),
            Err(e) => {
                tracing::warn!(instance = %instance.id(), error = %e, "instance maintenance failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use everlock_storage::{CommitMeta, RetentionPolicy};

    use crate::registry::Registry;

    fn host(env: &crate::test_util::TestEnv, shutdown: &CancellationToken) -> Host {
        Host::new(
            Registry::from_factories([]).unwrap(),
            env.stores.clone(),
            env.auth.clone(),
            everlock_auth::SystemAuthority::for_tests(),
            shutdown.clone(),
        )
    }

    /// Writes three versions of a file too big to be inlined, keeping only the last commit.
    async fn churn(env: &crate::test_util::TestEnv, name: &str) -> Store {
        let store = env.stores.open(name).await.unwrap();
        for i in 0..3u8 {
            store
                .write("f", vec![i; 64 * 1024], CommitMeta::new("t", "w"))
                .await
                .unwrap();
        }
        store
            .set_retention_policy(RetentionPolicy::KeepCommits(1))
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn maintain_applies_every_stores_policy() {
        let env = crate::test_util::TestEnv::new().await;
        let shutdown = CancellationToken::new();
        let host = host(&env, &shutdown);
        churn(&env, "site-a").await;
        churn(&env, "site-b").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let zero = GcOptions {
            grace: Duration::ZERO,
            dry_run: false,
        };
        let one = host.maintain(Some("site-a"), zero.clone()).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].1.file_bytes_freed, 2 * 64 * 1024);
        let all = host.maintain(None, zero.clone()).await.unwrap();
        let b = all.iter().find(|(n, _)| n == "site-b").unwrap();
        assert_eq!(b.1.file_bytes_freed, 2 * 64 * 1024);
        // The users store is there too, and keeps everything (no policy).
        assert!(all.iter().any(|(n, _)| n == "everlock-users"));
        let err = host.maintain(Some("nothing"), zero).await.unwrap_err();
        assert!(err.to_string().contains("no such store"), "{err}");
    }

    #[tokio::test]
    async fn the_task_runs_on_its_interval_and_stops_on_shutdown() {
        let env = crate::test_util::TestEnv::new().await;
        let shutdown = CancellationToken::new();
        let host = host(&env, &shutdown);
        let store = churn(&env, "site-a").await;
        let config: StorageConfig =
            toml::from_str("maintenance-interval-secs = 1\nmaintenance-grace-secs = 0").unwrap();
        spawn(&host, &config, shutdown.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.log(1).await.unwrap()[0].principal != "system" {
            assert!(tokio::time::Instant::now() < deadline, "no maintenance run");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        let off: StorageConfig = toml::from_str("maintenance-interval-secs = 0").unwrap();
        // Turned off, nothing is spawned (and nothing panics without a schedule).
        spawn(&host, &off, CancellationToken::new());
    }
}
