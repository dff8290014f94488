//! The command-line and environment layer of the configuration.
//!
//! The binary's argument parser fills a `ConfigOverrides` (flags win over environment
//! variables there), and `apply` lays it over the file, which already lies over the defaults:
//! flags > env > file > defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{
    AuthConfig, BackendKindConfig, Config, HttpFrontendConfig, InstanceConfig, InstanceName,
    ListenAddr, SshFrontendConfig, StoreName, Vhost,
};

/// Values given on the command line or in `EVERLOCK_*` variables; `None` leaves the file's
/// value alone.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// `--data-dir` / `EVERLOCK_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--frontend-http-listen-http` / `EVERLOCK_FRONTEND_HTTP_LISTEN_HTTP`.
    pub listen_http: Option<ListenAddr>,
    /// `--frontend-http-listen-https` / `EVERLOCK_FRONTEND_HTTP_LISTEN_HTTPS`.
    pub listen_https: Option<ListenAddr>,
    /// `--frontend-http-header-read-timeout-secs`.
    pub header_read_timeout_secs: Option<u64>,
    /// `--frontend-http-shutdown-timeout-secs`.
    pub shutdown_timeout_secs: Option<u64>,
    /// `--frontend-http-max-connections`.
    pub max_connections: Option<usize>,
    /// `--frontend-http-idle-timeout-secs`.
    pub idle_timeout_secs: Option<u64>,
    /// `--frontend-ssh-listen` / `EVERLOCK_FRONTEND_SSH_LISTEN`.
    pub ssh_listen: Option<ListenAddr>,
    /// `--frontend-ssh-idle-timeout-secs`.
    pub ssh_idle_timeout_secs: Option<u64>,
    /// `--frontend-ssh-login-grace-secs`.
    pub ssh_login_grace_secs: Option<std::num::NonZeroU64>,
    /// `--frontend-ssh-max-unauthenticated-per-address`.
    pub ssh_max_unauthenticated_per_address: Option<std::num::NonZeroUsize>,
    /// `--auth-throttle-address-failures`.
    pub throttle_address_failures: Option<u32>,
    /// `--auth-throttle-address-window-secs`.
    pub throttle_address_window_secs: Option<u64>,
    /// `--auth-bcrypt-cost`.
    pub bcrypt_cost: Option<super::BcryptCost>,
    /// `--auth-credential-cache-secs`.
    pub credential_cache_secs: Option<u64>,
    /// `--auth-throttle-free-failures`.
    pub throttle_free_failures: Option<u32>,
    /// `--auth-throttle-lockout-secs`.
    pub throttle_lockout_secs: Option<u64>,
    /// `--metrics-listen` / `EVERLOCK_METRICS_LISTEN`.
    pub metrics_listen: Option<ListenAddr>,
    /// `--log-format` / `EVERLOCK_LOG_FORMAT`.
    pub log_format: Option<super::LogFormat>,
    /// `--storage-maintenance-interval-secs` / `EVERLOCK_STORAGE_MAINTENANCE_INTERVAL_SECS`.
    pub storage_maintenance_interval_secs: Option<u64>,
    /// The rest of `[storage]`: `--storage-*` / `EVERLOCK_STORAGE_*`.
    pub storage: super::StorageOverrides,
    /// `--frontend-http-https-redirect` / `EVERLOCK_FRONTEND_HTTP_HTTPS_REDIRECT`.
    pub https_redirect: Option<super::HttpsRedirect>,
    /// `[acme]`: `--acme-*` / `EVERLOCK_ACME_*`.
    pub acme: super::AcmeOverrides,
    /// Per backend kind: `--backend-<kind>[=bool]`, `--backend-<kind>-vhost`,
    /// `--backend-<kind>-store`.
    pub kinds: BTreeMap<String, KindOverrides>,
}

/// The bootstrap flags of one backend kind. Vhost and store flags shape the kind's instance
/// named `default`, creating it when the configuration has none.
#[derive(Debug, Clone, Default)]
pub struct KindOverrides {
    /// `--backend-<kind>` (enable) or `--backend-<kind>=false`.
    pub enabled: Option<bool>,
    /// `--backend-<kind>-vhost`, repeatable or comma-separated; replaces the vhosts of the
    /// `default` instance.
    pub vhosts: Option<Vec<Vhost>>,
    /// `--backend-<kind>-store`; sets the store of the `default` instance.
    pub store: Option<StoreName>,
}

impl ConfigOverrides {
    /// Lays these overrides over `config`, section by section.
    pub fn apply(&self, config: &mut Config) {
        set(&mut config.data_dir, &self.data_dir);
        self.apply_http(&mut config.frontend_http);
        self.apply_ssh(&mut config.frontend_ssh);
        self.apply_auth(&mut config.auth);
        set(&mut config.metrics.listen, &self.metrics_listen);
        set(&mut config.log.format, &self.log_format);
        set(
            &mut config.storage.maintenance_interval_secs,
            &self.storage_maintenance_interval_secs,
        );
        self.storage.apply(&mut config.storage);
        self.acme.apply(&mut config.acme);
        for (kind, o) in &self.kinds {
            o.apply(config.backends.entry(kind.clone()).or_default());
        }
    }

    fn apply_http(&self, http: &mut HttpFrontendConfig) {
        set(&mut http.listen_http, &self.listen_http);
        set(&mut http.listen_https, &self.listen_https);
        set(
            &mut http.header_read_timeout_secs,
            &self.header_read_timeout_secs,
        );
        set(&mut http.shutdown_timeout_secs, &self.shutdown_timeout_secs);
        set(&mut http.max_connections, &self.max_connections);
        set(&mut http.idle_timeout_secs, &self.idle_timeout_secs);
        set(&mut http.https_redirect, &self.https_redirect);
    }

    fn apply_ssh(&self, ssh: &mut SshFrontendConfig) {
        set(&mut ssh.listen, &self.ssh_listen);
        set(&mut ssh.idle_timeout_secs, &self.ssh_idle_timeout_secs);
        set(&mut ssh.login_grace_secs, &self.ssh_login_grace_secs);
        set(
            &mut ssh.max_unauthenticated_per_address,
            &self.ssh_max_unauthenticated_per_address,
        );
    }

    fn apply_auth(&self, auth: &mut AuthConfig) {
        set(&mut auth.bcrypt_cost, &self.bcrypt_cost);
        set(&mut auth.credential_cache_secs, &self.credential_cache_secs);
        set(
            &mut auth.throttle_free_failures,
            &self.throttle_free_failures,
        );
        set(&mut auth.throttle_lockout_secs, &self.throttle_lockout_secs);
        set(
            &mut auth.throttle_address_failures,
            &self.throttle_address_failures,
        );
        set(
            &mut auth.throttle_address_window_secs,
            &self.throttle_address_window_secs,
        );
    }
}

impl KindOverrides {
    /// Enables or disables the kind, and shapes its `default` instance when a vhost or store
    /// is given (creating it if the configuration names none).
    fn apply(&self, section: &mut BackendKindConfig) {
        if let Some(enabled) = self.enabled {
            section.enabled = Some(enabled);
        }
        if self.vhosts.is_none() && self.store.is_none() {
            return;
        }
        let instance = section
            .instances
            .get_or_insert_with(BTreeMap::new)
            .entry(InstanceName::default_instance())
            .or_insert_with(|| InstanceConfig {
                vhosts: Vec::new(),
                prefix: Default::default(),
                store: None,
                settings: None,
                https_redirect: None,
            });
        set(&mut instance.vhosts, &self.vhosts);
        if let Some(store) = &self.store {
            instance.store = Some(store.clone());
        }
    }
}

/// Replaces `field` with the override, when one is given.
fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *field = v.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn flags_beat_file_values() {
        let mut c = Config::parse(
            "data-dir = \"/file\"\n[frontend-http]\nlisten-http = \"127.0.0.1:1\"\nlisten-https = \"127.0.0.1:2\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let o = ConfigOverrides {
            data_dir: Some("/flag".into()),
            listen_https: Some("off".parse().unwrap()),
            ..Default::default()
        };
        o.apply(&mut c);
        assert_eq!(c.data_dir, PathBuf::from("/flag"));
        assert_eq!(c.frontend_http.listen_http.to_string(), "127.0.0.1:1");
        assert_eq!(c.frontend_http.listen_https.addr(), None);
    }

    #[test]
    fn hardening_limits_have_flags() {
        let mut c = Config::default();
        let o = ConfigOverrides {
            ssh_login_grace_secs: Some(std::num::NonZeroU64::MIN),
            ssh_max_unauthenticated_per_address: Some(std::num::NonZeroUsize::MIN),
            throttle_address_failures: Some(0),
            throttle_address_window_secs: Some(7),
            idle_timeout_secs: Some(5),
            ..Default::default()
        };
        o.apply(&mut c);
        assert_eq!(c.frontend_ssh.login_grace_secs.get(), 1);
        assert_eq!(c.frontend_ssh.max_unauthenticated_per_address.get(), 1);
        assert_eq!(c.frontend_http.idle_timeout_secs, 5);
        let policy = c.auth.options().throttle;
        assert_eq!(policy.address_failures, 0);
        assert_eq!(policy.address_window, std::time::Duration::from_secs(7));
    }

    #[test]
    fn kind_flags_shape_the_default_instance() {
        let mut c = Config::default();
        let mut o = ConfigOverrides::default();
        o.kinds.insert(
            "oci-http".into(),
            KindOverrides {
                enabled: Some(true),
                vhosts: Some(vec!["localhost".parse().unwrap()]),
                store: Some("everlock-oci-local".parse().unwrap()),
            },
        );
        o.apply(&mut c);
        let section = &c.backends["oci-http"];
        assert_eq!(section.enabled, Some(true));
        let inst = &section.instances.as_ref().unwrap()[&InstanceName::default_instance()];
        assert_eq!(inst.vhosts[0].as_str(), "localhost");
        assert_eq!(inst.store.as_ref().unwrap().as_str(), "everlock-oci-local");
    }
}
