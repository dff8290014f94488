//! The label sets and the metric families updated on the hot paths, registered once.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// A listener of the server, for the open-connections gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// The plain-HTTP listener.
    Http,
    /// The HTTPS listener.
    Https,
    /// The SSH listener.
    Ssh,
}

impl Listener {
    fn as_str(self) -> &'static str {
        match self {
            Listener::Http => "http",
            Listener::Https => "https",
            Listener::Ssh => "ssh",
        }
    }
}

impl EncodeLabelValue for Listener {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// `listener="http"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ListenerLabel {
    pub(crate) listener: Listener,
}

/// The labels of every HTTP family: which backend kind and instance answered (`-` when no
/// instance did) and the status class (`2xx`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct HttpLabels {
    pub(crate) kind: &'static str,
    pub(crate) instance: String,
    pub(crate) status: &'static str,
}

/// `method="password", result="accepted"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct LoginLabels {
    pub(crate) method: &'static str,
    pub(crate) result: &'static str,
}

/// `store="everlock-oci-default"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct StoreLabel {
    pub(crate) store: String,
}

/// `version="0.1.0", commit="abc123"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct BuildLabels {
    pub(crate) version: &'static str,
    pub(crate) commit: &'static str,
}

impl Default for BuildLabels {
    /// The host crate's version; the commit is unknown until the binary says which.
    fn default() -> Self {
        BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            commit: "unknown",
        }
    }
}

/// Request durations from 1 ms to about 65 s in factors of 2: small files land in the
/// lowest buckets, a large blob push in the highest.
#[derive(Clone)]
pub(crate) struct DurationBuckets;

impl MetricConstructor<Histogram> for DurationBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.001, 2.0, 17))
    }
}

/// The status class label of an HTTP status code.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Every family the server updates as things happen.
pub(crate) struct Families {
    pub(crate) http_requests: Family<HttpLabels, Counter>,
    pub(crate) http_duration: Family<HttpLabels, Histogram, DurationBuckets>,
    pub(crate) http_request_bytes: Family<HttpLabels, Counter>,
    pub(crate) http_response_bytes: Family<HttpLabels, Counter>,
    pub(crate) open_connections: Family<ListenerLabel, Gauge>,
    pub(crate) ssh_sessions: Counter,
    pub(crate) ssh_open_sessions: Gauge,
    pub(crate) ssh_logins: Family<LoginLabels, Counter>,
    pub(crate) maintenance_runs: Family<StoreLabel, Counter>,
    pub(crate) maintenance_freed: Family<StoreLabel, Counter>,
}

impl Families {
    /// Creates the families and registers them (and the build info) in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Families {
        let f = Families {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(DurationBuckets),
            http_request_bytes: Family::default(),
            http_response_bytes: Family::default(),
            open_connections: Family::default(),
            ssh_sessions: Counter::default(),
            ssh_open_sessions: Gauge::default(),
            ssh_logins: Family::default(),
            maintenance_runs: Family::default(),
            maintenance_freed: Family::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by backend kind, instance and status class",
            f.http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request's arrival until its response body ended",
            Unit::Seconds,
            f.http_duration.clone(),
        );
        registry.register_with_unit(
            "http_request",
            "HTTP request body bytes received (pushed, for a registry)",
            Unit::Bytes,
            f.http_request_bytes.clone(),
        );
        registry.register_with_unit(
            "http_response",
            "HTTP response body bytes sent (pulled, for a registry)",
            Unit::Bytes,
            f.http_response_bytes.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open now, by listener",
            f.open_connections.clone(),
        );
        // Every listener shows up at 0 from the start, so dashboards see the series.
        for listener in [Listener::Http, Listener::Https, Listener::Ssh] {
            drop(
                f.open_connections
                    .get_or_create(&ListenerLabel { listener }),
            );
        }
        registry.register(
            "ssh_sessions",
            "SSH sessions (shell or exec channels) started",
            f.ssh_sessions.clone(),
        );
        registry.register(
            "ssh_open_sessions",
            "SSH sessions open now",
            f.ssh_open_sessions.clone(),
        );
        registry.register(
            "ssh_logins",
            "SSH login attempts decided, by method and result",
            f.ssh_logins.clone(),
        );
        registry.register(
            "maintenance_runs",
            "Maintenance runs (retention and object GC), by store",
            f.maintenance_runs.clone(),
        );
        registry.register_with_unit(
            "maintenance_freed",
            "Bytes freed by maintenance, by store",
            Unit::Bytes,
            f.maintenance_freed.clone(),
        );
        f
    }
}
