//! `[storage]`: where the stores keep their bytes and metadata, and their background
//! maintenance.
//!
//! The file (and the flag/env layer) fills the loose `StorageConfig`, whose sections may be
//! partial; `StorageConfig::selection` checks the whole and returns a `StorageSelection` in
//! which every required value is present, so the storage implementations never re-validate.

mod values;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub use values::{BucketName, PostgresUrl, S3Endpoint, S3Prefix, Secret};

/// The environment variable holding the S3 secret access key (never a flag: command lines
/// are visible to every user of the machine).
pub const S3_SECRET_ENV: &str = "EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY";
/// The environment variable holding the PostgreSQL password (never a flag).
pub const POSTGRES_PASSWORD_ENV: &str = "EVERLOCK_STORAGE_POSTGRES_PASSWORD";

/// `[storage]`: where object bytes and metadata live, how often the server applies every
/// store's retention policy and removes the objects nothing references any more.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StorageConfig {
    /// Seconds between maintenance runs (retention + object GC of every store); `0` turns the
    /// background task off (on-demand GC still works).
    #[serde(default = "default_interval")]
    pub maintenance_interval_secs: u64,
    /// Objects (and leftover files) younger than this many seconds are never removed by
    /// maintenance, so content uploaded for a commit that has not happened yet (a push
    /// between its blobs and its manifest, a deploy being unpacked) survives.
    #[serde(default = "default_grace")]
    pub maintenance_grace_secs: u64,
    /// Where object bytes live: `file` (`<data-dir>/<store>/objects`) or `s3`.
    #[serde(default)]
    pub objects: ObjectsKind,
    /// Where metadata (commits, HEAD, the objects table, upload sessions) lives: `sqlite`
    /// (one file per store) or `postgres`.
    #[serde(default)]
    pub meta: MetaKind,
    /// `[storage.s3]`, required by `objects = "s3"`.
    #[serde(default)]
    pub s3: Option<S3Section>,
    /// `[storage.postgres]`, required by `meta = "postgres"`.
    #[serde(default)]
    pub postgres: Option<PostgresSection>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            maintenance_interval_secs: default_interval(),
            maintenance_grace_secs: default_grace(),
            objects: ObjectsKind::default(),
            meta: MetaKind::default(),
            s3: None,
            postgres: None,
        }
    }
}

impl StorageConfig {
    /// The time between runs, `None` when the task is off.
    pub fn interval(&self) -> Option<Duration> {
        (self.maintenance_interval_secs > 0)
            .then(|| Duration::from_secs(self.maintenance_interval_secs))
    }

    /// The objects' grace period of a maintenance run.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.maintenance_grace_secs)
    }
}

/// `[storage] objects`: where object bytes live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectsKind {
    /// `<data-dir>/<store>/objects` on the local disk (single node).
    #[default]
    File,
    /// An S3-compatible object store (`[storage.s3]`).
    S3,
}

/// `[storage] meta`: where the stores' metadata lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetaKind {
    /// One SQLite database per store under the data directory (single node).
    #[default]
    Sqlite,
    /// One PostgreSQL database shared by every node (`[storage.postgres]`).
    Postgres,
}

/// Implements `Display` and `FromStr` with the names the file uses, for flags and messages.
macro_rules! named_kind {
    ($ty:ident { $($variant:ident => $name:literal),+ }) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($ty::$variant => $name),+ })
            }
        }

        impl FromStr for $ty {
            type Err = super::ValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(super::ValueError::new(
                        stringify!($ty),
                        s,
                        concat!("expected one of:", $(" ", $name),+),
                    )),
                }
            }
        }
    };
}
named_kind!(ObjectsKind { File => "file", S3 => "s3" });
named_kind!(MetaKind { Sqlite => "sqlite", Postgres => "postgres" });

/// `[storage.s3]` as written: every key may also come from a flag or the environment, so
/// required keys are only enforced by `StorageConfig::selection`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3Section {
    /// `https://host[:port]` of the S3 API.
    pub endpoint: Option<S3Endpoint>,
    /// The bucket holding every store's objects.
    pub bucket: Option<BucketName>,
    /// Key prefix inside the bucket (default: none).
    pub prefix: Option<S3Prefix>,
    /// Signing region (default `us-east-1`, which most S3-compatible stores accept).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key, or `EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// Must be `true` for an `http://` endpoint (credentials and data travel unencrypted).
    pub allow_http: Option<bool>,
}

/// `[storage.postgres]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PostgresSection {
    /// `postgres://user[:password]@host[:port]/database`.
    pub url: Option<PostgresUrl>,
    /// `EVERLOCK_STORAGE_POSTGRES_PASSWORD`; never read from the file, where the URL may
    /// carry the password instead.
    #[serde(skip)]
    pub password: Option<Secret>,
    /// The most connections one node opens to the database, all stores together
    /// (`max-connections`, 3 to 1000, default 16).
    pub max_connections: Option<u32>,
}

/// The checked storage choice: what the server builds its stores on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSelection {
    /// Where object bytes live.
    pub objects: ObjectStorage,
    /// Where metadata lives.
    pub meta: MetaStorage,
}

/// Checked object storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectStorage {
    /// Local files under the data directory.
    File,
    /// An S3-compatible store.
    S3(S3Settings),
}

/// Checked metadata storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaStorage {
    /// SQLite files under the data directory.
    Sqlite,
    /// A shared PostgreSQL database.
    Postgres(PostgresSettings),
}

/// A complete S3 configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The endpoint (`http://` only when `allow_http`).
    pub endpoint: S3Endpoint,
    /// The bucket.
    pub bucket: BucketName,
    /// Key prefix inside the bucket.
    pub prefix: S3Prefix,
    /// Signing region.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Whether plain HTTP is allowed.
    pub allow_http: bool,
}

/// A complete PostgreSQL configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// The connection URL (may carry a password).
    pub url: PostgresUrl,
    /// The password from `EVERLOCK_STORAGE_POSTGRES_PASSWORD`; when set it replaces one in
    /// the URL.
    pub password: Option<Secret>,
    /// This node's connection budget (validated 3..=1000).
    pub max_connections: u32,
}

/// Why `[storage]` is unusable. Each message is one line naming the key to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageConfigError {
    /// `objects = "s3"` without `[storage.s3]`.
    #[error(
        "[storage] objects = \"s3\" needs a [storage.s3] section (endpoint, bucket, access-key-id, secret-access-key)"
    )]
    S3SectionMissing,
    /// `[storage.s3]` present while the bytes stay in files: almost certainly a mistake that
    /// would keep the bytes on one disk while the operator believes they are in the bucket.
    #[error(
        "[storage.s3] is configured but [storage] objects = \"file\"; set objects = \"s3\" or remove [storage.s3]"
    )]
    S3SectionUnused,
    /// A required `[storage.s3]` key is missing or empty.
    #[error("[storage.s3] {0} is required when objects = \"s3\"")]
    S3KeyMissing(&'static str),
    /// No secret access key in the file or the environment.
    #[error(
        "[storage.s3] secret-access-key is required: set it in the file or in EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY"
    )]
    S3SecretMissing,
    /// An `http://` endpoint without `allow-http = true`.
    #[error(
        "[storage.s3] endpoint {0} is plain HTTP: set allow-http = true to send credentials and data unencrypted, or use https://"
    )]
    PlainHttp(String),
    /// `meta = "postgres"` without a URL.
    #[error(
        "[storage] meta = \"postgres\" needs [storage.postgres] url = \"postgres://user@host/database\""
    )]
    PostgresUrlMissing,
    /// `[storage.postgres]` present while the metadata stays in SQLite.
    #[error(
        "[storage.postgres] is configured but [storage] meta = \"sqlite\"; set meta = \"postgres\" or remove [storage.postgres]"
    )]
    PostgresSectionUnused,
    /// Shared metadata over per-node bytes.
    #[error(
        "[storage] meta = \"postgres\" needs objects = \"s3\": nodes sharing the metadata must share the object bytes too, and \"file\" keeps them on one node's disk"
    )]
    PostgresWithFileObjects,
    /// `max-connections` out of range.
    #[error(
        "[storage.postgres] max-connections = {0} is out of range: use 3 to 1000 (one is the change listener's, and a store's maintenance holds one while it queries on another)"
    )]
    PostgresMaxConnections(u32),
}

impl StorageConfig {
    /// Checks the section as a whole (after the flag/env layer) and returns the storage the
    /// server must use. Nothing here contacts the services.
    pub fn selection(&self) -> Result<StorageSelection, StorageConfigError> {
        if self.objects == ObjectsKind::File && self.s3.is_some() {
            return Err(StorageConfigError::S3SectionUnused);
        }
        if self.meta == MetaKind::Sqlite && self.postgres.is_some() {
            return Err(StorageConfigError::PostgresSectionUnused);
        }
        if self.meta == MetaKind::Postgres && self.objects == ObjectsKind::File {
            return Err(StorageConfigError::PostgresWithFileObjects);
        }
        let objects = match (self.objects, &self.s3) {
            (ObjectsKind::File, _) => ObjectStorage::File,
            (ObjectsKind::S3, None) => return Err(StorageConfigError::S3SectionMissing),
            (ObjectsKind::S3, Some(s3)) => ObjectStorage::S3(s3.settings()?),
        };
        let meta = match self.meta {
            MetaKind::Sqlite => MetaStorage::Sqlite,
            MetaKind::Postgres => {
                let section = self.postgres.as_ref();
                let url = section
                    .and_then(|p| p.url.clone())
                    .ok_or(StorageConfigError::PostgresUrlMissing)?;
                let password = section
                    .and_then(|p| p.password.clone())
                    .filter(|p| !p.is_empty());
                let max_connections = section
                    .and_then(|p| p.max_connections)
                    .unwrap_or(everlock_storage::PostgresConfig::DEFAULT_MAX_CONNECTIONS);
                if !(3..=1000).contains(&max_connections) {
                    return Err(StorageConfigError::PostgresMaxConnections(max_connections));
                }
                MetaStorage::Postgres(PostgresSettings {
                    url,
                    password,
                    max_connections,
                })
            }
        };
        Ok(StorageSelection { objects, meta })
    }
}

impl S3Section {
    fn settings(&self) -> Result<S3Settings, StorageConfigError> {
        let endpoint = self
            .endpoint
            .clone()
            .ok_or(StorageConfigError::S3KeyMissing("endpoint"))?;
        let bucket = self
            .bucket
            .clone()
            .ok_or(StorageConfigError::S3KeyMissing("bucket"))?;
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let access_key_id = non_empty(&self.access_key_id)
            .ok_or(StorageConfigError::S3KeyMissing("access-key-id"))?;
        let secret_access_key = self
            .secret_access_key
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(StorageConfigError::S3SecretMissing)?;
        let allow_http = self.allow_http.unwrap_or(false);
        if endpoint.is_plain_http() && !allow_http {
            return Err(StorageConfigError::PlainHttp(endpoint.as_str().to_owned()));
        }
        let region = match &self.region {
            None => "us-east-1".to_owned(),
            Some(r) if r.trim().is_empty() => {
                return Err(StorageConfigError::S3KeyMissing("region"));
            }
            Some(r) => r.trim().to_owned(),
        };
        Ok(S3Settings {
            endpoint,
            bucket,
            prefix: self.prefix.clone().unwrap_or_default(),
            region,
            access_key_id,
            secret_access_key,
            allow_http,
        })
    }
}

impl PostgresSettings {
    /// The URL the database client connects with: the configured URL with the password from
    /// the environment (when set) in its user part, replacing one written there. Only a URL
    /// without a user part gets it as a `password` parameter instead (the client reads
    /// parameters after the user part).
    pub fn connection_url(&self) -> String {
        let url = self.url.expose();
        let Some(password) = &self.password else {
            return url.to_owned();
        };
        let password = percent_encode(password.expose());
        if let Some((scheme, rest)) = url.split_once("://") {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            if let Some((userinfo, host)) = authority.rsplit_once('@') {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                return format!("{scheme}://{user}:{password}@{host}{tail}");
            }
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}password={password}")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so any password survives
/// the URL intact.
fn percent_encode(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The flag/env layer of `[storage]` (see `ConfigOverrides`). Secrets only ever come from
/// the environment; they fill a section that exists but never create one, so a secret
/// exported for every process does not turn a file-backed server into a misconfigured one.
#[derive(Debug, Clone, Default)]
pub struct StorageOverrides {
    /// `--storage-maintenance-grace-secs`.
    pub maintenance_grace_secs: Option<u64>,
    /// `--storage-objects`.
    pub objects: Option<ObjectsKind>,
    /// `--storage-meta`.
    pub meta: Option<MetaKind>,
    /// `--storage-s3-endpoint`.
    pub s3_endpoint: Option<S3Endpoint>,
    /// `--storage-s3-bucket`.
    pub s3_bucket: Option<BucketName>,
    /// `--storage-s3-prefix`.
    pub s3_prefix: Option<S3Prefix>,
    /// `--storage-s3-region`.
    pub s3_region: Option<String>,
    /// `--storage-s3-access-key-id`.
    pub s3_access_key_id: Option<String>,
    /// `--storage-s3-allow-http`.
    pub s3_allow_http: Option<bool>,
    /// `EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY` (no flag).
    pub s3_secret_access_key: Option<Secret>,
    /// `--storage-postgres-url`.
    pub postgres_url: Option<PostgresUrl>,
    /// `EVERLOCK_STORAGE_POSTGRES_PASSWORD` (no flag).
    pub postgres_password: Option<Secret>,
}

impl StorageOverrides {
    /// Lays these values over `storage`.
    pub fn apply(&self, storage: &mut StorageConfig) {
        if let Some(v) = self.maintenance_grace_secs {
            storage.maintenance_grace_secs = v;
        }
        if let Some(v) = self.objects {
            storage.objects = v;
        }
        if let Some(v) = self.meta {
            storage.meta = v;
        }
        let s3_given = self.s3_endpoint.is_some()
            || self.s3_bucket.is_some()
            || self.s3_prefix.is_some()
            || self.s3_region.is_some()
            || self.s3_access_key_id.is_some()
            || self.s3_allow_http.is_some();
        if s3_given {
            let s3 = storage.s3.get_or_insert_with(S3Section::default);
            set(&mut s3.endpoint, &self.s3_endpoint);
            set(&mut s3.bucket, &self.s3_bucket);
            set(&mut s3.prefix, &self.s3_prefix);
            set(&mut s3.region, &self.s3_region);
            set(&mut s3.access_key_id, &self.s3_access_key_id);
            set(&mut s3.allow_http, &self.s3_allow_http);
        }
        if let Some(s3) = storage.s3.as_mut() {
            set(&mut s3.secret_access_key, &self.s3_secret_access_key);
        }
        if self.postgres_url.is_some() {
            let pg = storage
                .postgres
                .get_or_insert_with(PostgresSection::default);
            set(&mut pg.url, &self.postgres_url);
        }
        if let Some(pg) = storage.postgres.as_mut() {
            set(&mut pg.password, &self.postgres_password);
        }
    }
}

/// Replaces `slot` with `value` when one is given.
fn set<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        slot.clone_from(value);
    }
}

fn default_interval() -> u64 {
    3600
}

fn default_grace() -> u64 {
    everlock_storage::DEFAULT_GRACE.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_password_reaches_the_connection_url_encoded() {
        let settings = |url: &str, password: Option<&str>| PostgresSettings {
            url: url.parse().unwrap(),
            password: password.map(Secret::new),
            max_connections: 16,
        };
        assert_eq!(
            settings("postgres://u@h/db", None).connection_url(),
            "postgres://u@h/db"
        );
        assert_eq!(
            settings("postgres://u@h/db", Some("p@ss w/&rd")).connection_url(),
            "postgres://u:p%40ss%20w%2F%26rd@h/db"
        );
        assert_eq!(
            settings("postgres://u:old@h:5432/db?sslmode=disable", Some("new")).connection_url(),
            "postgres://u:new@h:5432/db?sslmode=disable"
        );
        assert_eq!(
            settings("postgresql://h/db", Some("pw")).connection_url(),
            "postgresql://h/db?password=pw"
        );
    }

    #[test]
    fn max_connections_is_checked_and_defaults_to_16() {
        let select = |extra: &str| {
            let toml = format!(
                "meta = \"postgres\"\nobjects = \"s3\"\n[s3]\nendpoint = \"https://s3.example\"\nbucket = \"everlock\"\naccess-key-id = \"k\"\nsecret-access-key = \"s\"\n[postgres]\nurl = \"postgres://u@h/db\"\n{extra}"
            );
            toml::from_str::<StorageConfig>(&toml).unwrap().selection()
        };
        let budget = |extra: &str| match select(extra).unwrap().meta {
            MetaStorage::Postgres(pg) => pg.max_connections,
            MetaStorage::Sqlite => unreachable!(),
        };
        assert_eq!(budget(""), 16);
        assert_eq!(budget("max-connections = 3"), 3);
        assert_eq!(budget("max-connections = 1000"), 1000);
        for bad in [0, 2, 1001] {
            let err = select(&format!("max-connections = {bad}")).unwrap_err();
            assert_eq!(err, StorageConfigError::PostgresMaxConnections(bad));
        }
    }

    #[test]
    fn defaults_and_off() {
        let c = StorageConfig::default();
        assert_eq!(c.interval(), Some(Duration::from_secs(3600)));
        assert_eq!(c.grace(), Duration::from_secs(3600));
        let off: StorageConfig = toml::from_str("maintenance-interval-secs = 0").unwrap();
        assert_eq!(off.interval(), None);
        let bad = toml::from_str::<StorageConfig>("maintenance-every = 1").unwrap_err();
        assert!(bad.to_string().contains("unknown field"), "{bad}");
    }

    #[test]
    fn the_file_section_and_the_flag_reach_the_config() {
        let mut c = super::super::Config::parse(
            "[storage]\nmaintenance-interval-secs = 60\nmaintenance-grace-secs = 5\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.storage.interval(), Some(Duration::from_secs(60)));
        assert_eq!(c.storage.grace(), Duration::from_secs(5));
        super::super::ConfigOverrides {
            storage_maintenance_interval_secs: Some(0),
            ..Default::default()
        }
        .apply(&mut c);
        assert_eq!(c.storage.interval(), None);
    }
}
