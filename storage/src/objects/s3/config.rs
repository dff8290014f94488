//! The `[storage.s3]` settings and the client they build: endpoint checks, path-style
//! requests, conditional puts and the retry policy.

use std::time::Duration;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::S3Error;

/// Where the bucket is and how to reach it (the `[storage.s3]` section of issue #12).
#[derive(Clone)]
pub struct S3Config {
    /// Base URL, e.g. `https://s3.example.com`.
    pub endpoint: String,
    /// Bucket name; the bucket must exist.
    pub bucket: String,
    /// Key prefix inside the bucket, so that several deployments can share one (may be empty).
    pub prefix: String,
    /// Signing region.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Must be true for an `http://` endpoint, so plain HTTP is never used by accident.
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    /// Leaves the secret out, so that a logged configuration never leaks it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The prefix as a key path, refusing a prefix that is not a clean key path.
pub(super) fn base_key(prefix: &str) -> Result<Key, S3Error> {
    let trimmed = prefix.trim_matches('/');
    Key::parse(trimmed)
        .map_err(|e| S3Error::Config(format!("prefix {prefix:?} is not a valid key: {e}")))
}

/// The retries of the serving client: transient failures are ridden out for up to 30 s.
pub(super) fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 5,
        retry_timeout: Duration::from_secs(30),
        ..RetryConfig::default()
    }
}

pub(super) fn build_store(
    config: &S3Config,
    retry: RetryConfig,
) -> Result<impl ObjectStore, S3Error> {
    if config.endpoint.starts_with("http://") && !config.allow_http {
        return Err(S3Error::Config(format!(
            "endpoint {} is plain HTTP; set allow-http = true to use it",
            config.endpoint
        )));
    }
    for (name, value) in [
        ("endpoint", &config.endpoint),
        ("bucket", &config.bucket),
        ("region", &config.region),
        ("access-key-id", &config.access_key_id),
        ("secret-access-key", &config.secret_access_key),
    ] {
        if value.is_empty() {
            return Err(S3Error::Config(format!("{name} is required")));
        }
    }
    // reqwest is built without a bundled crypto provider; ring is the workspace's choice.
    // Another part of the process may have installed one already, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    AmazonS3Builder::new()
        // Client options first: setting them replaces `allow_http`, which lives among them.
        .with_client_options(ClientOptions::new().with_connect_timeout(Duration::from_secs(5)))
        .with_allow_http(config.allow_http)
        .with_endpoint(&config.endpoint)
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        // Path-style requests work on every S3-compatible server, without wildcard DNS.
        .with_virtual_hosted_style_request(false)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(retry)
        .build()
        .map_err(|e| S3Error::Config(e.to_string()))
}
