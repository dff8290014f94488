//! Validated values of `[storage.s3]` and `[storage.postgres]`, and `Secret`, the wrapper that
//! keeps credentials out of `Debug` output and therefore out of logs and error messages.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::super::ValueError;

/// A credential (S3 secret access key, PostgreSQL password). Its `Debug` prints `***` and it
/// has no `Display`, so a `{:?}` of the configuration or a log field can never show it; the
/// code that needs the value calls `expose`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends it to the service.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is the empty string (treated like a missing credential).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Implements `Deserialize` through `FromStr`, so the file, flags and environment variables
/// share one validation.
macro_rules! parsed_string {
    ($ty:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An S3 endpoint: `https://host[:port][/path]`, or `http://...` (only accepted together with
/// `allow-http = true`, checked with the whole section). The scheme is lower-cased and a
/// trailing `/` dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint(String);

impl S3Endpoint {
    /// The endpoint URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether requests would travel unencrypted.
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }
}

impl FromStr for S3Endpoint {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ValueError::new("S3 endpoint", s, reason);
        let (scheme, rest) = s
            .trim()
            .split_once("://")
            .ok_or_else(|| bad("expected https://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be https:// or http://"));
        }
        let rest = rest.trim_end_matches('/');
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        // Credentials belong in access-key-id/secret-access-key, where they are redacted.
        if host.contains('@') {
            return Err(bad(
                "credentials in the URL are not allowed; use access-key-id and secret-access-key",
            ));
        }
        if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("no query, fragment or spaces allowed"));
        }
        Ok(S3Endpoint(format!("{scheme}://{rest}")))
    }
}
parsed_string!(S3Endpoint);

/// An S3 bucket name: 3-63 lowercase letters, digits, `.` and `-`, starting and ending with a
/// letter or digit (the rules every S3 implementation accepts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketName(String);

impl BucketName {
    /// The bucket name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BucketName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok = (3..=63).contains(&s.len())
            && s.chars().all(|c| alnum(c) || c == '.' || c == '-')
            && s.starts_with(alnum)
            && s.ends_with(alnum);
        if ok {
            Ok(BucketName(s.to_owned()))
        } else {
            Err(ValueError::new(
                "S3 bucket",
                s,
                "use 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
            ))
        }
    }
}
parsed_string!(BucketName);

/// The key prefix inside the bucket, so several deployments can share one: empty, or
/// `/`-separated segments without empty, `.` or `..` parts. Stored without a trailing `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Prefix(String);

impl S3Prefix {
    /// The prefix without a trailing `/` (empty for the bucket's root).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for S3Prefix {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.strip_suffix('/').unwrap_or(s);
        if trimmed.is_empty() {
            return Ok(S3Prefix::default());
        }
        let segments_ok = trimmed
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        let chars_ok = trimmed.chars().all(|c| c.is_ascii_graphic() && c != '\\');
        if segments_ok && chars_ok && trimmed.len() <= 512 {
            Ok(S3Prefix(trimmed.to_owned()))
        } else {
            Err(ValueError::new(
                "S3 prefix",
                s,
                "use printable ASCII segments separated by '/', without a leading '/', empty, '.' or '..' segments",
            ))
        }
    }
}
parsed_string!(S3Prefix);

/// A PostgreSQL connection URL (`postgres://user[:password]@host[:port]/database[?...]`).
/// It may carry a password, so its `Debug` and every error about it show the redacted form.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL as given, password included: only for the database client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`, for logs and messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// Whether the URL carries a password (in the user part or as a `password=` parameter).
    pub fn has_password(&self) -> bool {
        redact_url(&self.0) != self.0
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl FromStr for PostgresUrl {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The value may hold a password: every error shows the redacted form only.
        let bad = |reason: &str| ValueError::new("PostgreSQL url", &redact_url(s), reason);
        let rest = s
            .strip_prefix("postgres://")
            .or_else(|| s.strip_prefix("postgresql://"))
            .ok_or_else(|| bad("expected postgres://user@host[:port]/database"))?;
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("no spaces allowed (percent-encode them)"));
        }
        Ok(PostgresUrl(s.to_owned()))
    }
}
parsed_string!(PostgresUrl);

/// The storage crate's one redaction of a PostgreSQL connection string's passwords, so config
/// errors and storage errors hide the same things.
pub(crate) use everlock_storage::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://u:p/w@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://h/db?sslmode=require&password=x"),
            "postgres://h/db?sslmode=require&password=***"
        );
        assert_eq!(redact_url("not a url pw"), "***");
        let url: PostgresUrl = "postgresql://a:b@c/d".parse().unwrap();
        assert!(url.has_password());
        assert!(!format!("{url:?}").contains(":b@"));
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(
            "HTTPS://s3.example.com/"
                .parse::<S3Endpoint>()
                .unwrap()
                .as_str(),
            "https://s3.example.com"
        );
        assert!("ftp://x".parse::<S3Endpoint>().is_err());
        assert!("https://k:s@x".parse::<S3Endpoint>().is_err());
        assert!("Bucket".parse::<BucketName>().is_err());
        assert!("ab".parse::<BucketName>().is_err());
        assert!("a-b.c".parse::<BucketName>().is_ok());
        assert_eq!("a/b/".parse::<S3Prefix>().unwrap().as_str(), "a/b");
        assert!("/a".parse::<S3Prefix>().is_err());
        assert!("a/../b".parse::<S3Prefix>().is_err());
        assert!("mysql://x".parse::<PostgresUrl>().is_err());
    }
}
