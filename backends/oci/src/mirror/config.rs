//! The mirror's settings as values: the upstream URL, the password that is never shown, and
//! the environment variable that may carry it. Nothing here depends on the rest of the
//! crate, so `settings` can use it.

use std::fmt;

use serde::Deserialize;

/// A secret setting: read from TOML as a string, never shown by `Debug` (settings are
/// logged on errors).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(pub(super) String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The upstream URL: `http(s)://host[:port]` with no path, query or credentials.
pub(crate) fn upstream_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("upstream {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "upstream {raw:?} must be an http:// or https:// URL"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "upstream {raw:?} must name a registry, not a path (no /v2, no query)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put upstream credentials in upstream-username/-password".into());
    }
    Ok(url)
}

/// Checks the mirror settings of an instance: its `upstream`, `upstream-username` and
/// `upstream-password` (the fields, not the whole settings, so that the settings can call
/// this without the mirror depending on them back).
pub(crate) fn validate(
    upstream: Option<&str>,
    username: Option<&str>,
    password: Option<&Secret>,
) -> Result<(), String> {
    match upstream {
        // Credentials without an upstream are unused (the console may set them first).
        None => Ok(()),
        Some(raw) => {
            upstream_url(raw)?;
            if password.is_some() && username.is_none() {
                return Err("upstream-password needs upstream-username".into());
            }
            Ok(())
        }
    }
}

/// The environment variable that may carry an instance's upstream password.
pub(crate) fn password_env(instance: &str) -> String {
    let suffix: String = instance
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("EVERLOCK_UPSTREAM_PASSWORD_{suffix}")
}

/// The mirror settings of an instance, borrowed from its settings.
pub(crate) struct MirrorConfig<'a> {
    pub(crate) upstream: Option<&'a str>,
    pub(crate) username: Option<&'a str>,
    pub(crate) password: Option<&'a Secret>,
    pub(crate) tag_ttl_secs: u64,
    pub(crate) allow_push: bool,
}
