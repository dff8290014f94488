//! What the store and TLS administration report, as the contract carries it: plain views the
//! console renders, free of the host's store manager and certificate state.

use everlock_storage::{GcReport, StoreStats};

/// The most commits `store_log` returns, so one request cannot pull a whole history of
/// millions of commits into memory.
pub const MAX_STORE_LOG: u64 = 10_000;

/// One store as `store_list` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRow {
    /// The store's name (its directory in the data directory).
    pub name: String,
    /// Who uses it: `kind/name` of the instance, `(users)` or `(system)` for the reserved
    /// stores, `-` for none.
    pub used_by: String,
    /// Its figures, or why the store could not be read (one line).
    pub details: Result<StoreDetails, String>,
}

/// The figures of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDetails {
    /// Objects, bytes, commits and HEAD.
    pub stats: StoreStats,
    /// Space taken on disk by the whole store directory.
    pub disk_bytes: u64,
    /// The retention policy in its canonical text form (`keep-all`, `keep-commits=20`, ...).
    pub retention: String,
}

/// What `store_gc` did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreGc {
    /// The policy that was applied, as text.
    pub retention: String,
    /// The outcome.
    pub report: GcReport,
}

/// Where a name's certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertSource {
    /// Ordered from the ACME CA.
    Acme,
    /// A `[[frontend-http.certificates]]` file.
    Configured,
    /// Issued by the local CA at handshake time.
    Local,
}

impl CertSource {
    /// The word `/tls list` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            CertSource::Acme => "acme",
            CertSource::Configured => "configured",
            CertSource::Local => "local",
        }
    }
}

/// What is known about one certificate (the host's TLS layer reads it from a DER leaf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Expiry, in seconds since the Unix epoch.
    pub not_after: i64,
    /// Start of validity, in seconds since the Unix epoch.
    pub not_before: i64,
    /// The serial number in hex.
    pub serial: String,
}

/// One row of `/tls list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRow {
    /// The name (a vhost or a configured certificate name).
    pub name: String,
    /// Where its certificate comes from.
    pub source: CertSource,
    /// The certificate being served, if any yet (ACME names wait for their first order).
    pub cert: Option<CertInfo>,
    /// The last ACME failure, until an order succeeds.
    pub error: Option<String>,
}
