//! Metrics of the running server, exposed in the Prometheus text format (and OpenMetrics on
//! request) by the metrics listener.
//!
//! [`Metrics`] is one explicit `prometheus-client` registry owned by the [`Host`]: no global
//! state, so two servers in one process (tests) never share counters. Hot-path values
//! (requests, bytes, connections, SSH logins, maintenance) are updated where they happen;
//! values that already live elsewhere (auth counters, store sizes, upload sessions) are read
//! at scrape time by [`collect`], so the request path pays nothing for them.
//!
//! # Layout
//! - `families`: the label sets and the metric families, registered once.
//! - `exchange`: one HTTP exchange as the frontend observes it (bytes, duration, verified login)
//!   and the access log line written when its response body ends.
//! - `collect`: the scrape-time collector (auth counters, per-store statistics, uploads).
//! - `server`: the metrics listener (`/metrics`, `/healthz`, `/readyz`).
//!
//! [`Host`]: crate::Host

mod collect;
pub(crate) mod exchange;
mod families;
pub mod server;

use std::sync::Arc;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::text as openmetrics_text;

pub use families::Listener;
use families::{Families, LoginLabels, StoreLabel};

/// `Content-Type` of the Prometheus text exposition.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;
/// `Content-Type` of the OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The server's metrics: cheap to clone, all clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: prometheus_client::registry::Registry,
    families: Families,
    scrape: collect::ScrapeState,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (the default).
    Prometheus,
    /// OpenMetrics 1.0 text, when the scraper's `Accept` header asks for it.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

impl Metrics {
    /// A fresh registry with every family registered and zeroed.
    pub fn new() -> Metrics {
        let mut registry = prometheus_client::registry::Registry::with_prefix("everlock");
        let families = Families::register(&mut registry);
        let scrape = collect::ScrapeState::default();
        registry.register_collector(Box::new(scrape.collector()));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                families,
                scrape,
            }),
        }
    }

    /// Records one maintenance run (retention + object GC) of `store` and the bytes it
    /// freed. The store's cached statistics are dropped, so the next scrape shows the new
    /// size at once.
    pub fn maintenance_run(&self, store: &str, bytes_freed: u64) {
        let label = StoreLabel {
            store: store.to_owned(),
        };
        let f = &self.inner.families;
        f.maintenance_runs.get_or_create(&label).inc();
        f.maintenance_freed
            .get_or_create(&label)
            .inc_by(bytes_freed);
        self.inner.scrape.forget(store);
    }

    /// Names the running binary in `everlock_build_info`: its version and the git commit
    /// it was built from (the host crate cannot know the binary's commit).
    pub fn set_build(&self, version: &'static str, commit: &'static str) {
        self.inner
            .scrape
            .set_build(families::BuildLabels { version, commit });
    }

    /// Counts one SSH login attempt that was decided: `method` is `password` or
    /// `publickey`, `accepted` whether it succeeded.
    pub(crate) fn ssh_login(&self, method: &'static str, accepted: bool) {
        let labels = LoginLabels {
            method,
            result: if accepted { "accepted" } else { "refused" },
        };
        self.inner.families.ssh_logins.get_or_create(&labels).inc();
    }

    /// Counts an SSH session (a shell or exec channel) as open until the guard drops.
    pub(crate) fn ssh_session(&self) -> Open {
        let f = &self.inner.families;
        f.ssh_sessions.inc();
        f.ssh_open_sessions.inc();
        Open {
            gauge: f.ssh_open_sessions.clone(),
        }
    }

    /// Counts a connection on `listener` as open until the guard drops.
    pub(crate) fn connection(&self, listener: Listener) -> Open {
        let gauge = self
            .inner
            .families
            .open_connections
            .get_or_create_owned(&families::ListenerLabel { listener });
        gauge.inc();
        Open { gauge }
    }

    /// The families the HTTP frontend records into.
    pub(crate) fn families(&self) -> &Families {
        &self.inner.families
    }

    /// Refreshes the scrape-time values from `host`, then encodes everything in `format`.
    pub async fn render(&self, host: &crate::Host, format: Format) -> String {
        self.inner.scrape.refresh(host).await;
        self.encode(format)
    }

    /// Encodes the registry as it is (without refreshing the scrape-time values).
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        let encoded = match format {
            Format::Prometheus => prometheus_text::encode(&mut out, &self.inner.registry),
            Format::OpenMetrics => openmetrics_text::encode(&mut out, &self.inner.registry),
        };
        // Writing into a String cannot fail; an error would be a bug in the encoder, and
        // a partial exposition is still better than none for the operator debugging it.
        if let Err(e) = encoded {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Decrements an open-things gauge when dropped.
#[derive(Debug)]
pub(crate) struct Open {
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests;
