//! The kind-specific settings of an `oci-http` instance (strict TOML).

use std::time::Duration;

use serde::Deserialize;

/// Documented example, parsed by a test with `check`.
pub(crate) const EXAMPLE_SETTINGS: &str = r#"# Upload sessions (chunked and streamed blob uploads) expire this many seconds after their
# last chunk; expired sessions and their data are removed.
upload-expiry-secs = 86400
# Open upload sessions allowed per repository; one more gets 429 TOOMANYREQUESTS until a
# session finishes, is cancelled or expires. Each open session holds a file and a row.
max-open-uploads = 1000
# Largest manifest accepted, in bytes; larger ones get 413. The spec asks for at least 4 MB.
max-manifest-bytes = 8388608
# Whether DELETE of manifests, tags and blobs is allowed (405 UNSUPPORTED otherwise).
allow-delete = true
# `gc` never removes blobs or manifests written less than this many seconds ago, so that a
# push in progress (blobs uploaded, manifest not yet) is never collected.
gc-grace-secs = 3600
# Pull-through mirror: a manifest or blob this registry lacks is fetched from this upstream
# registry (streamed to the client while it is stored), later pulls are served locally.
# Unset (the default): not a mirror.
upstream = "https://registry-1.docker.io"
# Credentials for the upstream (Basic, or traded for Bearer tokens); used only with upstream.
upstream-username = "me"
# The password may instead come from the environment variable
# EVERLOCK_UPSTREAM_PASSWORD_<INSTANCE> (instance name upper-cased, `-` as `_`).
# upstream-password = "secret"
# A tag is checked upstream again once it is this many seconds old; if upstream is down the
# cached manifest is served. The upstream's tag list (merged into tags/list) is cached as long.
upstream-tag-ttl-secs = 300
# Whether clients may push to a mirror (405 UNSUPPORTED otherwise); no effect without upstream.
allow-push = false
# "basic" (HTTP Basic on every request) or "token" (the Docker token flow: a Bearer challenge
# and short-lived tokens from /v2/token, as Docker Hub does).
auth = "basic"
# The web UI (server-rendered, no JavaScript) under /ui/: the repositories a viewer may
# read, their tags, sizes, platforms, referrers and pull commands; Basic login.
ui = true
# Retention rules, applied by `gc` and the maintenance task; each repository follows the
# first rule whose pattern matches it (`*` = one path segment, `**` = any depth).
[[retention]]
repositories = "team/*"
# Keep the 10 most recently pushed tags...
keep-last = 10
# ...plus every tag matching this regex (anchored), which is never removed.
keep-tags = "v[0-9]+\\.[0-9]+\\.[0-9]+|latest"
# Remove manifests no tag reaches once they have been untagged for 14 days.
untagged-after-days = 14
# Quotas: the repositories matching the pattern may hold this many bytes together (blobs
# shared between them counted once); a manifest push beyond it gets 403 DENIED.
[[quota]]
repositories = "team/*"
bytes = 10737418240
# Webhooks: push, delete and pull events POSTed as JSON, retried with backoff, queued in the
# store across restarts; with a secret, signed in X-Everlock-Signature-256.
[[webhooks]]
url = "https://ci.example.com/hooks/registry"
events = ["push", "delete"]
secret = "change-me"
# (Keep these [[tables]] last: a plain key below one of them would belong to it.)
"#;

/// Parsed settings with their defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Settings {
    #[serde(default = "default_upload_expiry")]
    pub(crate) upload_expiry_secs: u64,
    #[serde(default = "default_max_open_uploads")]
    pub(crate) max_open_uploads: u64,
    #[serde(default = "default_max_manifest")]
    pub(crate) max_manifest_bytes: u64,
    #[serde(default = "default_true")]
    pub(crate) allow_delete: bool,
    #[serde(default = "default_grace")]
    pub(crate) gc_grace_secs: u64,
    /// The registry this instance mirrors (pull-through); `None`: not a mirror.
    #[serde(default)]
    pub(crate) upstream: Option<String>,
    #[serde(default)]
    pub(crate) upstream_username: Option<String>,
    /// Never logged: its `Debug` is redacted.
    #[serde(default)]
    pub(crate) upstream_password: Option<crate::mirror::config::Secret>,
    #[serde(default = "default_tag_ttl")]
    pub(crate) upstream_tag_ttl_secs: u64,
    #[serde(default)]
    pub(crate) allow_push: bool,
    #[serde(default)]
    pub(crate) auth: crate::token::state::AuthMode,
    /// `[[retention]]`: which tags and untagged manifests `gc` and maintenance remove.
    #[serde(default)]
    pub(crate) retention: Vec<crate::retention::RetentionRule>,
    /// `[[quota]]`: bytes groups of repositories may hold (checked at manifest PUT).
    #[serde(default)]
    pub(crate) quota: Vec<crate::quota::QuotaRule>,
    /// `[[webhooks]]`: where push, delete and pull events are POSTed.
    #[serde(default)]
    pub(crate) webhooks: Vec<crate::webhooks::WebhookConfig>,
    /// Whether the web UI answers under `/ui/` (the instance then also claims that prefix).
    #[serde(default = "default_true")]
    pub(crate) ui: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            upload_expiry_secs: default_upload_expiry(),
            max_open_uploads: default_max_open_uploads(),
            max_manifest_bytes: default_max_manifest(),
            allow_delete: true,
            gc_grace_secs: default_grace(),
            upstream: None,
            upstream_username: None,
            upstream_password: None,
            upstream_tag_ttl_secs: default_tag_ttl(),
            allow_push: false,
            auth: crate::token::state::AuthMode::default(),
            retention: Vec::new(),
            quota: Vec::new(),
            webhooks: Vec::new(),
            ui: true,
        }
    }
}

impl Settings {
    pub(crate) fn upload_expiry(&self) -> Duration {
        Duration::from_secs(self.upload_expiry_secs)
    }

    /// The mirror's part of the settings (see `mirror`).
    pub(crate) fn mirror(&self) -> crate::mirror::config::MirrorConfig<'_> {
        crate::mirror::config::MirrorConfig {
            upstream: self.upstream.as_deref(),
            username: self.upstream_username.as_deref(),
            password: self.upstream_password.as_ref(),
            tag_ttl_secs: self.upstream_tag_ttl_secs,
            allow_push: self.allow_push,
        }
    }

    pub(crate) fn gc_grace(&self) -> Duration {
        Duration::from_secs(self.gc_grace_secs)
    }

    /// Rejects values that would make the registry unusable.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.upload_expiry_secs == 0 {
            return Err("upload-expiry-secs must be at least 1".into());
        }
        if self.max_open_uploads == 0 {
            return Err("max-open-uploads must be at least 1".into());
        }
        if self.max_manifest_bytes < 4 * 1024 * 1024 {
            return Err("max-manifest-bytes must be at least 4194304 (the spec's 4 MB)".into());
        }
        crate::mirror::config::validate(
            self.upstream.as_deref(),
            self.upstream_username.as_deref(),
            self.upstream_password.as_ref(),
        )?;
        for r in &self.retention {
            r.validate()?;
        }
        for q in &self.quota {
            q.validate()?;
        }
        for w in &self.webhooks {
            w.validate()?;
        }
        Ok(())
    }
}

fn default_upload_expiry() -> u64 {
    24 * 3600
}

fn default_max_open_uploads() -> u64 {
    1000
}

fn default_max_manifest() -> u64 {
    8 * 1024 * 1024
}

fn default_true() -> bool {
    true
}

fn default_grace() -> u64 {
    3600
}

fn default_tag_ttl() -> u64 {
    300
}
