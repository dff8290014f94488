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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            upload_expiry_secs: default_upload_expiry(),
            max_open_uploads: default_max_open_uploads(),
            max_manifest_bytes: default_max_manifest(),
            allow_delete: true,
            gc_grace_secs: default_grace(),
        }
    }
}

impl Settings {
    pub(crate) fn upload_expiry(&self) -> Duration {
        Duration::from_secs(self.upload_expiry_secs)
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
