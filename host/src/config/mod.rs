//! Process configuration: a strict TOML file, overridden by environment variables and then by
//! command-line flags, on top of built-in defaults.
//!
//! # Layout
//! - `types`: validated newtypes (`Vhost`, `ListenAddr`, `PathPrefix`, `StoreName`, ...).
//! - `overrides`: the flag/env layer applied on top of the file.
//! - `instances`: the `[backends.<kind>]` sections, the file's way of writing instance specs.
//! - `plan`: the effective instances (configured or zero-config defaults) as `InstanceSpec`s
//!   and `plan()`, the one validation of the whole set, whose `Plan` the host installs.

mod acme;
mod instances;
mod metrics;
mod overrides;
mod ownership;
mod plan;
mod settings_location;
mod ssh;
mod storage;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use acme::{
    AcmeChallenge, AcmeConfig, AcmeOverrides, DirectoryUrl, HttpsRedirect, LETS_ENCRYPT_PRODUCTION,
    RenewBeforeDays,
};
pub use instances::{BackendKindConfig, InstanceConfig};
pub use metrics::{LogConfig, LogFormat, MetricsConfig};
pub use overrides::{ConfigOverrides, KindOverrides};
use ownership::check_ownership;
pub use ownership::{RESERVED_STORES, SYSTEM_STORE};
pub use plan::{Plan, Planned, plan};
pub(crate) use ssh::SSH_MAX_CONNECTIONS;
pub use ssh::SshFrontendConfig;
pub use storage::{
    BucketName, MetaKind, MetaStorage, ObjectStorage, ObjectsKind, POSTGRES_PASSWORD_ENV,
    PostgresSection, PostgresSettings, PostgresUrl, S3_SECRET_ENV, S3Endpoint, S3Prefix, S3Section,
    S3Settings, Secret, StorageConfig, StorageConfigError, StorageOverrides, StorageSelection,
};
pub use types::{
    CertName, InstanceName, ListenAddr, PathPrefix, StoreName, ValueError, Vhost, check_kind,
};

/// The whole process configuration after all layers are applied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Directory holding every store (`<data-dir>/<store>/`) and host state (`_host/`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The HTTP(S) frontend.
    #[serde(default)]
    pub frontend_http: HttpFrontendConfig,
    /// The SSH frontend (admin console).
    #[serde(default)]
    pub frontend_ssh: SshFrontendConfig,
    /// Password hashing, the credential cache and login throttling.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Per backend kind: whether it is enabled, and its instances.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendKindConfig>,
    /// Background maintenance of the stores (retention and object GC).
    #[serde(default)]
    pub storage: StorageConfig,
    /// The metrics listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The server's log.
    #[serde(default)]
    pub log: LogConfig,
    /// Automatic certificates (`[acme]`).
    #[serde(default)]
    pub acme: AcmeConfig,
}

/// Settings of the HTTP(S) frontend (`[frontend-http]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpFrontendConfig {
    /// Plain-HTTP listener, or `off`.
    #[serde(default = "default_listen_http")]
    pub listen_http: ListenAddr,
    /// HTTPS listener, or `off`.
    #[serde(default = "default_listen_https")]
    pub listen_https: ListenAddr,
    /// Seconds a client may take to finish the TLS handshake, to send its first bytes after
    /// connecting, and to send a request's headers before the connection is closed; defeats
    /// slowloris and silent connections.
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before the process exits.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Maximum number of simultaneously open client connections per listener.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a connection may stay open with no request in progress (an HTTP/1.1
    /// keep-alive connection between requests, an HTTP/2 connection with no open stream)
    /// before the server closes it, so idle clients cannot hold connection slots forever.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// PEM certificates selected by SNI. Names without a certificate get the generated
    /// self-signed one.
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
    /// Which plain-HTTP requests get a 308 to HTTPS: `acme` (vhosts with an ACME
    /// certificate, the default), `always` or `never`. ACME challenges are never redirected.
    #[serde(default)]
    pub https_redirect: HttpsRedirect,
}

/// Settings of authentication (`[auth]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthConfig {
    /// bcrypt cost for new password hashes (4-31, default 12; each step doubles the work;
    /// use 10 or more in production).
    #[serde(default = "default_bcrypt_cost")]
    pub bcrypt_cost: BcryptCost,
    /// Seconds a verified (login, password) pair is trusted without running bcrypt again.
    #[serde(default = "default_credential_cache_secs")]
    pub credential_cache_secs: u64,
    /// Failed logins allowed per (login, client address) before lockouts start.
    #[serde(default = "default_throttle_free_failures")]
    pub throttle_free_failures: u32,
    /// First lockout in seconds; it doubles with each further failure, up to 15 minutes.
    #[serde(default = "default_throttle_lockout_secs")]
    pub throttle_lockout_secs: u64,
    /// Failed password checks per client address, across all logins, within
    /// `throttle-address-window-secs` before that address is refused (429); `0` turns the
    /// budget off (behind a proxy that hides client addresses).
    #[serde(default = "default_throttle_address_failures")]
    pub throttle_address_failures: u32,
    /// The window of the per-address budget, in seconds.
    #[serde(default = "default_throttle_address_window_secs")]
    pub throttle_address_window_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            bcrypt_cost: default_bcrypt_cost(),
            credential_cache_secs: default_credential_cache_secs(),
            throttle_free_failures: default_throttle_free_failures(),
            throttle_lockout_secs: default_throttle_lockout_secs(),
            throttle_address_failures: default_throttle_address_failures(),
            throttle_address_window_secs: default_throttle_address_window_secs(),
        }
    }
}

impl AuthConfig {
    /// The auth service options these settings describe.
    pub fn options(&self) -> everlock_auth::AuthOptions {
        let defaults = everlock_auth::ThrottlePolicy::default();
        everlock_auth::AuthOptions {
            bcrypt_cost: self.bcrypt_cost.0,
            cache_ttl: std::time::Duration::from_secs(self.credential_cache_secs),
            throttle: everlock_auth::ThrottlePolicy {
                free_failures: self.throttle_free_failures,
                base_lockout: std::time::Duration::from_secs(self.throttle_lockout_secs.max(1)),
                address_failures: self.throttle_address_failures,
                address_window: std::time::Duration::from_secs(
                    self.throttle_address_window_secs.max(1),
                ),
                ..defaults
            },
            // The minimum length of new passwords is the console's setting, applied when the
            // console is built.
            ..everlock_auth::AuthOptions::default()
        }
    }
}

/// A bcrypt cost. Production floors at 10; tests may use 4 to stay fast, which only the
/// configuration file can ask for (and `config check` accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BcryptCost(u32);

impl BcryptCost {
    fn new(cost: u32) -> Result<BcryptCost, ValueError> {
        if (4..=31).contains(&cost) {
            Ok(BcryptCost(cost))
        } else {
            Err(ValueError::new(
                "bcrypt cost",
                &cost.to_string(),
                "use 4-31 (10 or more in production)",
            ))
        }
    }
}

impl std::str::FromStr for BcryptCost {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cost = s
            .trim()
            .parse::<u32>()
            .map_err(|_| ValueError::new("bcrypt cost", s, "expected a number from 4 to 31"))?;
        BcryptCost::new(cost)
    }
}

impl<'de> Deserialize<'de> for BcryptCost {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BcryptCost::new(u32::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn default_bcrypt_cost() -> BcryptCost {
    BcryptCost(12)
}

fn default_credential_cache_secs() -> u64 {
    300
}

fn default_throttle_free_failures() -> u32 {
    5
}

fn default_throttle_lockout_secs() -> u64 {
    30
}

fn default_throttle_address_failures() -> u32 {
    everlock_auth::ThrottlePolicy::default().address_failures
}

fn default_throttle_address_window_secs() -> u64 {
    everlock_auth::ThrottlePolicy::default()
        .address_window
        .as_secs()
}

/// One certificate/key pair and the SNI names it serves (`[[frontend-http.certificates]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CertificateConfig {
    /// Hostnames (SNI) this certificate is presented for; `*.example.com` covers one label.
    pub names: Vec<CertName>,
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for HttpFrontendConfig {
    fn default() -> Self {
        HttpFrontendConfig {
            listen_http: default_listen_http(),
            listen_https: default_listen_https(),
            header_read_timeout_secs: default_header_read_timeout_secs(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            max_connections: default_max_connections(),
            idle_timeout_secs: default_idle_timeout_secs(),
            certificates: Vec::new(),
            https_redirect: HttpsRedirect::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            frontend_http: HttpFrontendConfig::default(),
            frontend_ssh: SshFrontendConfig::default(),
            auth: AuthConfig::default(),
            backends: BTreeMap::new(),
            storage: StorageConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            acme: AcmeConfig::default(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

fn default_listen_http() -> ListenAddr {
    ListenAddr::on(std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
}

fn default_listen_https() -> ListenAddr {
    ListenAddr::on(std::net::SocketAddr::from(([127, 0, 0, 1], 8443)))
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

fn default_shutdown_timeout_secs() -> u64 {
    30
}

fn default_max_connections() -> usize {
    4096
}

fn default_idle_timeout_secs() -> u64 {
    60
}

/// Why a configuration could not be loaded or validated.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or bad values. The message carries
    /// the line and column.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and a snippet.
        message: String,
    },
    /// A `[backends.<kind>]` section names a kind this binary does not have.
    #[error("unknown backend kind `{kind}` (compiled-in kinds: {known})")]
    UnknownKind {
        /// The unknown kind.
        kind: String,
        /// The kinds that exist.
        known: String,
    },
    /// An instance's settings table was rejected by its backend.
    #[error("instance {kind}/{instance}{location}: {error}")]
    Settings {
        /// Backend kind.
        kind: String,
        /// Instance name.
        instance: String,
        /// ` (line L, column C)` when known.
        location: String,
        /// The backend's error.
        error: crate::api::BuildError,
    },
    /// `[storage]` is incomplete or inconsistent.
    #[error(transparent)]
    Storage(#[from] StorageConfigError),
    /// Two instances claim the same vhost and path prefix.
    #[error("{vhost}{prefix} is claimed by both {first} and {second}")]
    DuplicateRoute {
        /// The vhost.
        vhost: String,
        /// The prefix.
        prefix: String,
        /// One claimant (`kind/instance`).
        first: String,
        /// The other claimant.
        second: String,
    },
    /// An instance names a store that belongs to the server (users or system).
    #[error("instance {instance} may not use store `{store}`: it is reserved for the server")]
    ReservedStore {
        /// The reserved store.
        store: String,
        /// `kind/instance`.
        instance: String,
    },
    /// Two instances name the same store.
    #[error(
        "store `{store}` is used by both {first} and {second}; every instance needs its own store"
    )]
    SharedStore {
        /// The store.
        store: String,
        /// One user (`kind/instance`).
        first: String,
        /// The other.
        second: String,
    },
    /// More than one instance of an SSH kind.
    #[error(
        "{second} is a second SSH instance besides {first}; the SSH frontend serves exactly one"
    )]
    SecondSsh {
        /// The first SSH instance.
        first: String,
        /// The second.
        second: String,
    },
    /// A kind proposes a zero-config instance whose names do not parse: a defect of the
    /// binary, reported at startup rather than serving without the instance.
    #[error("backend kind {kind} proposes an invalid default instance `{instance}`: {error}")]
    BadDefault {
        /// Backend kind.
        kind: String,
        /// The default's name as declared.
        instance: String,
        /// What does not parse.
        error: ValueError,
    },
    /// An HTTP instance has no vhost, so nothing could ever reach it.
    #[error("instance {kind}/{instance} has no vhosts")]
    NoVhosts {
        /// Backend kind.
        kind: String,
        /// Instance name.
        instance: String,
    },
}

impl Config {
    /// Parses a TOML document strictly. `path` only labels errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let location = e
                .span()
                .map(|span| {
                    let (line, col) = line_col(text, span.start);
                    format!("line {line}, column {col}: ")
                })
                .unwrap_or_default();
            ConfigError::Parse {
                path: path.to_owned(),
                message: format!("{location}{}", one_paragraph(e.message())),
            }
        })
    }

    /// Reads and parses a TOML file strictly.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Joins a multi-line parser message into one line, so CLI errors stay one line long.
fn one_paragraph(message: &str) -> String {
    message
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && l.trim() != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.frontend_http.listen_http.to_string(), "127.0.0.1:8080");
        assert_eq!(c.frontend_http.listen_https.to_string(), "127.0.0.1:8443");
        assert_eq!(c.frontend_http.header_read_timeout_secs, 10);
    }

    #[test]
    fn unknown_key_names_key_line_and_column() {
        let err = parse("data-dir = \"d\"\n\n[frontend-http]\nlisten-htp = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen-htp"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("column 1"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn malformed_listen_address_is_rejected() {
        let err = parse("[frontend-http]\nlisten-http = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid listen address `localhost`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn instances_parse() {
        let c = parse(
            "[backends.hello-http.instances.www]\nvhosts = [\"WWW.Example.com.\"]\nprefix = \"/hi/\"\n[backends.hello-http.instances.www.settings]\ngreeting = \"x\"\n",
        )
        .unwrap();
        let inst = &c.backends["hello-http"].instances.as_ref().unwrap()
            [&"www".parse::<InstanceName>().unwrap()];
        assert_eq!(inst.vhosts[0].as_str(), "www.example.com");
        assert_eq!(inst.prefix.as_str(), "/hi");
        assert_eq!(inst.settings_table()["greeting"].as_str(), Some("x"));
    }

    #[test]
    fn bad_instance_names_and_vhosts_are_rejected() {
        assert!(parse("[backends.k.instances.Bad]\nvhosts=[\"a\"]\n").is_err());
        assert!(parse("[backends.k.instances.ok]\nvhosts=[\"a b\"]\n").is_err());
        assert!(parse("[backends.k.instances.ok]\nvhosts=[\"a\"]\nextra=1\n").is_err());
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
