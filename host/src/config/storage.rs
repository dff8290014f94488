//! Settings of the stores' background maintenance (`[storage]`).

use std::time::Duration;

use serde::Deserialize;

/// `[storage]`: how often the server applies every store's retention policy and removes the
/// objects nothing references any more, so disk space comes back without a restart.
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
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            maintenance_interval_secs: default_interval(),
            maintenance_grace_secs: default_grace(),
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
