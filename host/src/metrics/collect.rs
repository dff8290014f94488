//! Values read at scrape time: the auth service's counters, each store's size and history,
//! and the open upload sessions of each instance.
//!
//! A scrape first [`ScrapeState::refresh`]es a snapshot (the only async part: store
//! queries on the blocking pool), then the registry's encoder reads that snapshot through
//! the registered [`Collector`]. Store statistics count rows, which grows with the store, so
//! they are cached per store and recomputed only when its HEAD moved or the cached figure
//! is a minute old (object GC frees bytes without a commit); a maintenance run drops the
//! cached figure at once. Scrapes are serialised, so a burst of scrapers costs one refresh
//! at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use everlock_storage::{StorageError, Store, StoreStats};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Unit;

use super::families::{BuildLabels, StoreLabel};
use crate::Host;

/// How long a store's cached statistics stay valid while its HEAD does not move.
const STATS_MAX_AGE: Duration = Duration::from_secs(60);

/// How long one store query may take before the scrape goes on without it.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// `kind="oci-http", instance="default"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InstanceLabels {
    kind: &'static str,
    instance: String,
}

/// One store as the last scrape saw it.
#[derive(Debug, Clone)]
struct StoreRow {
    store: String,
    /// `None` when the store cannot be opened.
    stats: Option<StoreStats>,
}

/// What the collector encodes: the result of the last refresh.
#[derive(Debug, Default)]
struct Snapshot {
    bcrypt_verifications: u64,
    login_failures: u64,
    login_throttles: u64,
    stores: Vec<StoreRow>,
    uploads: Vec<(InstanceLabels, u64)>,
}

/// A store's cached statistics and the HEAD they were taken at.
#[derive(Debug)]
struct Cached {
    seq: u64,
    at: Instant,
    stats: StoreStats,
}

#[derive(Debug, Default)]
struct Shared {
    /// Serialises refreshes.
    refresh: tokio::sync::Mutex<()>,
    latest: Mutex<Arc<Snapshot>>,
    cache: Mutex<HashMap<String, Cached>>,
    /// Stores opened for scrapes and readiness checks, kept so the next one does not open
    /// them again (the manager closes a store when its last handle drops).
    handles: Mutex<HashMap<String, Store>>,
    /// What `everlock_build_info` says.
    build: Mutex<BuildLabels>,
}

/// The scrape-time half of the metrics. Clones share one state.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScrapeState(Arc<Shared>);

/// Why a store is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreProblem {
    /// The store.
    pub(crate) store: String,
    /// The error, as one line.
    pub(crate) error: String,
}

/// The stores a scrape or a readiness check looks at: every live instance's store and the
/// server's own, each with the instance using it (`None` for the server's).
pub(crate) fn stores_of(host: &Host) -> BTreeMap<String, Option<(&'static str, String)>> {
    let mut stores: BTreeMap<String, Option<(&'static str, String)>> =
        crate::config::RESERVED_STORES
            .iter()
            .map(|s| ((*s).to_owned(), None))
            .collect();
    for instance in host.table().snapshot().instances() {
        stores.insert(
            instance.store.as_str().to_owned(),
            Some((instance.kind, instance.name.to_string())),
        );
    }
    stores
}

/// Opens `name` if it exists: `Ok(None)` for a store that was never created (instances
/// create theirs on first use, so that is not a fault).
async fn open_existing(host: &Host, name: &str) -> Result<Option<Store>, String> {
    match tokio::time::timeout(QUERY_TIMEOUT, host.stores().open_existing(name)).await {
        Ok(Ok(store)) => Ok(Some(store)),
        Ok(Err(StorageError::NoSuchStore(_))) => Ok(None),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "opening took more than {} s",
            QUERY_TIMEOUT.as_secs()
        )),
    }
}

impl ScrapeState {
    /// The collector that encodes the latest snapshot.
    pub(crate) fn collector(&self) -> ScrapeCollector {
        ScrapeCollector(self.clone())
    }

    /// Opens `name` if it exists (see [`open_existing`]), keeping the handle for next time.
    pub(crate) async fn open(&self, host: &Host, name: &str) -> Result<Option<Store>, String> {
        if let Some(store) = self.handles().get(name) {
            return Ok(Some(store.clone()));
        }
        let opened = open_existing(host, name).await?;
        if let Some(store) = &opened {
            self.handles().insert(name.to_owned(), store.clone());
        }
        Ok(opened)
    }

    /// Lets go of stores no instance uses any more.
    pub(crate) fn prune<V>(&self, keep: &BTreeMap<String, V>) {
        self.handles().retain(|name, _| keep.contains_key(name));
        self.0
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|name, _| keep.contains_key(name));
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, Store>> {
        self.0
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the version and commit `everlock_build_info` reports.
    pub(crate) fn set_build(&self, build: BuildLabels) {
        *self.0.build.lock().unwrap_or_else(PoisonError::into_inner) = build;
    }

    /// Drops `store`'s cached statistics.
    pub(crate) fn forget(&self, store: &str) {
        self.0
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(store);
    }

    /// Reads every scrape-time value from `host` into the snapshot the collector encodes.
    pub(crate) async fn refresh(&self, host: &Host) {
        let _serial = self.0.refresh.lock().await;
        let auth = host.auth();
        let mut snapshot = Snapshot {
            bcrypt_verifications: auth.bcrypt_verifications(),
            login_failures: auth.login_failures(),
            login_throttles: auth.login_throttles(),
            ..Snapshot::default()
        };
        let stores = stores_of(host);
        self.prune(&stores);
        for (name, user) in stores {
            let store = match self.open(host, &name).await {
                Ok(Some(store)) => store,
                Ok(None) => continue,
                Err(_) => {
                    snapshot.stores.push(StoreRow {
                        store: name,
                        stats: None,
                    });
                    continue;
                }
            };
            let stats = self.stats(&name, &store).await;
            snapshot.stores.push(StoreRow { store: name, stats });
            if let Some((kind, instance)) = user {
                let open = open_uploads(&store).await;
                snapshot
                    .uploads
                    .push((InstanceLabels { kind, instance }, open));
            }
        }
        *self.0.latest.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
    }

    /// `store`'s statistics, from the cache while its HEAD has not moved.
    async fn stats(&self, name: &str, store: &Store) -> Option<StoreStats> {
        let seq = store.head_seq();
        if let Some(c) = self
            .0
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .filter(|c| c.seq == seq && c.at.elapsed() < STATS_MAX_AGE)
        {
            return Some(c.stats.clone());
        }
        let stats = match tokio::time::timeout(QUERY_TIMEOUT, store.stats()).await {
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => {
                tracing::warn!(store = name, error = %e, "cannot read store statistics");
                return None;
            }
            Err(_) => return None,
        };
        self.0
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                name.to_owned(),
                Cached {
                    seq,
                    at: Instant::now(),
                    stats: stats.clone(),
                },
            );
        Some(stats)
    }

    fn latest(&self) -> Arc<Snapshot> {
        Arc::clone(&self.0.latest.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Upload sessions of `store` that have not expired. Only registries keep any; the table is
/// capped per repository, so the count costs little.
async fn open_uploads(store: &Store) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    match tokio::time::timeout(QUERY_TIMEOUT, store.uploads()).await {
        Ok(Ok(sessions)) => sessions
            .iter()
            .filter(|s| s.expires_ms > now_ms)
            .count()
            .try_into()
            .unwrap_or(u64::MAX),
        Ok(Err(_)) | Err(_) => 0,
    }
}

/// Encodes the latest [`Snapshot`] on each scrape.
#[derive(Debug)]
pub(crate) struct ScrapeCollector(ScrapeState);

impl prometheus_client::collector::Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.encode_build(&mut encoder)?;
        let snap = self.0.latest();
        encode_auth(&mut encoder, &snap)?;
        encode_stores(&mut encoder, &snap)?;
        gauges(
            &mut encoder,
            (
                "upload_sessions",
                "Upload sessions open now (registries), by instance",
                None,
            ),
            snap.uploads.iter().cloned(),
        )
    }
}

impl ScrapeCollector {
    /// `everlock_build_info`: the running binary's version and git commit.
    fn encode_build(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let build = Info::new(
            self.0
                .0
                .build
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        );
        let m = encoder.encode_descriptor(
            "build",
            "The running binary: its version and git commit",
            None,
            build.metric_type(),
        )?;
        build.encode(m)
    }
}

/// The login counters of the auth service.
fn encode_auth(
    encoder: &mut DescriptorEncoder<'_>,
    snap: &Snapshot,
) -> Result<(), std::fmt::Error> {
    counter(
        encoder,
        "auth_bcrypt_verifications",
        "Password checks that ran bcrypt (credential cache misses)",
        snap.bcrypt_verifications,
    )?;
    counter(
        encoder,
        "auth_failures",
        "Logins refused for bad credentials (HTTP and SSH, passwords and keys)",
        snap.login_failures,
    )?;
    counter(
        encoder,
        "auth_throttled",
        "Logins refused by the throttle without checking the credentials",
        snap.login_throttles,
    )
}

/// One gauge per store statistic, labelled by store; a store that does not open has only
/// `store_up 0`.
fn encode_stores(
    encoder: &mut DescriptorEncoder<'_>,
    snap: &Snapshot,
) -> Result<(), std::fmt::Error> {
    let label = |row: &StoreRow| StoreLabel {
        store: row.store.clone(),
    };
    let rows = |f: fn(&StoreStats) -> u64| {
        snap.stores
            .iter()
            .filter_map(move |r| r.stats.as_ref().map(|s| (label(r), f(s))))
    };
    gauges(
        encoder,
        ("store_up", "Whether the store opens (1) or not (0)", None),
        snap.stores
            .iter()
            .map(|r| (label(r), u64::from(r.stats.is_some()))),
    )?;
    gauges(
        encoder,
        ("store_commits", "Commits in the store's history", None),
        rows(|s| s.commits),
    )?;
    gauges(
        encoder,
        ("store_objects", "Distinct objects the store keeps", None),
        rows(|s| s.objects),
    )?;
    gauges(
        encoder,
        (
            "store",
            "Bytes of the objects the store keeps",
            Some(&Unit::Bytes),
        ),
        rows(|s| s.bytes),
    )
}

/// Encodes one counter without labels.
fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

/// Encodes one gauge family (skipped when it has no series, as the registry does).
fn gauges<S: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help, unit): (&str, &str, Option<&Unit>),
    series: impl Iterator<Item = (S, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut series = series.peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut m = encoder.encode_descriptor(name, help, unit, ConstGauge::new(0u64).metric_type())?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}
