//! The `--storage-*` flags of `everlock serve` and the storage secrets, which only the
//! environment can give: a command line is visible to every user of the machine.

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use everlock_host::config::{
    BucketName, MetaKind, ObjectsKind, POSTGRES_PASSWORD_ENV, PostgresUrl, S3_SECRET_ENV,
    S3Endpoint, S3Prefix, Secret, StorageOverrides,
};

/// `[storage]` keys as flags (each also settable by its `EVERLOCK_STORAGE_*` variable).
#[derive(Debug, Args)]
pub(crate) struct StorageArgs {
    /// Objects younger than this many seconds survive maintenance.
    #[arg(
        long = "storage-maintenance-grace-secs",
        env = "EVERLOCK_STORAGE_MAINTENANCE_GRACE_SECS",
        value_name = "SECS"
    )]
    maintenance_grace_secs: Option<u64>,
    /// Where object bytes live: `file` or `s3`.
    #[arg(
        long = "storage-objects",
        env = "EVERLOCK_STORAGE_OBJECTS",
        value_name = "KIND"
    )]
    objects: Option<ObjectsKind>,
    /// Where metadata lives: `sqlite` or `postgres`.
    #[arg(
        long = "storage-meta",
        env = "EVERLOCK_STORAGE_META",
        value_name = "KIND"
    )]
    meta: Option<MetaKind>,
    /// S3 endpoint (`https://host[:port]`).
    #[arg(
        long = "storage-s3-endpoint",
        env = "EVERLOCK_STORAGE_S3_ENDPOINT",
        value_name = "URL"
    )]
    s3_endpoint: Option<S3Endpoint>,
    /// S3 bucket.
    #[arg(
        long = "storage-s3-bucket",
        env = "EVERLOCK_STORAGE_S3_BUCKET",
        value_name = "BUCKET"
    )]
    s3_bucket: Option<BucketName>,
    /// Key prefix inside the bucket.
    #[arg(
        long = "storage-s3-prefix",
        env = "EVERLOCK_STORAGE_S3_PREFIX",
        value_name = "PREFIX"
    )]
    s3_prefix: Option<S3Prefix>,
    /// S3 signing region.
    #[arg(
        long = "storage-s3-region",
        env = "EVERLOCK_STORAGE_S3_REGION",
        value_name = "REGION"
    )]
    s3_region: Option<String>,
    /// S3 access key id (the secret key only via EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY).
    #[arg(
        long = "storage-s3-access-key-id",
        env = "EVERLOCK_STORAGE_S3_ACCESS_KEY_ID",
        value_name = "ID"
    )]
    s3_access_key_id: Option<String>,
    /// Allow an http:// S3 endpoint (unencrypted).
    #[arg(
        long = "storage-s3-allow-http",
        env = "EVERLOCK_STORAGE_S3_ALLOW_HTTP",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    s3_allow_http: Option<bool>,
    /// PostgreSQL URL without a password (that goes in EVERLOCK_STORAGE_POSTGRES_PASSWORD).
    #[arg(
        long = "storage-postgres-url",
        env = "EVERLOCK_STORAGE_POSTGRES_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    postgres_url: Option<PostgresUrl>,
}

/// The storage secrets from the environment; every command reads them, so that `config
/// check` and the offline commands judge the same configuration `serve` runs.
pub(crate) fn secrets_from_env() -> StorageOverrides {
    let secret = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    };
    StorageOverrides {
        s3_secret_access_key: secret(S3_SECRET_ENV),
        postgres_password: secret(POSTGRES_PASSWORD_ENV),
        ..StorageOverrides::default()
    }
}

impl StorageArgs {
    /// Adds the flags' values to `o` (whose secrets come from `secrets_from_env`). A password
    /// inside `--storage-postgres-url` given on the command line ends the process like any
    /// other invalid flag: it would already be readable in the process list.
    pub(crate) fn fill(&self, matches: &ArgMatches, o: &mut StorageOverrides) {
        let on_command_line =
            matches.value_source("postgres_url") == Some(ValueSource::CommandLine);
        if on_command_line
            && self
                .postgres_url
                .as_ref()
                .is_some_and(PostgresUrl::has_password)
        {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--storage-postgres-url must not carry a password (command lines are visible to every user): put it in {POSTGRES_PASSWORD_ENV}\n"
                ),
            )
            .exit();
        }
        o.maintenance_grace_secs = self.maintenance_grace_secs;
        o.objects = self.objects;
        o.meta = self.meta;
        o.s3_endpoint.clone_from(&self.s3_endpoint);
        o.s3_bucket.clone_from(&self.s3_bucket);
        o.s3_prefix.clone_from(&self.s3_prefix);
        o.s3_region.clone_from(&self.s3_region);
        o.s3_access_key_id.clone_from(&self.s3_access_key_id);
        o.s3_allow_http = self.s3_allow_http;
        o.postgres_url.clone_from(&self.postgres_url);
    }
}
