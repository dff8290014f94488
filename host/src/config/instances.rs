//! The `[backends.<kind>]` sections of the configuration file: whether a kind is enabled and
//! its instances, each written as an [`InstanceConfig`] that is only the file's way of writing
//! an [`InstanceSpec`] (its kind and name are the section's keys).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{InstanceName, PathPrefix, StoreName, Vhost, settings_location};
use crate::api::InstanceSpec;

/// One backend kind's section (`[backends.<kind>]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackendKindConfig {
    /// Whether the kind serves anything; every compiled-in kind is enabled by default.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The kind's instances by name. When absent, the kind's zero-config defaults apply; an
    /// empty table means "no instances".
    #[serde(default)]
    pub instances: Option<BTreeMap<InstanceName, InstanceConfig>>,
}

/// One instance (`[backends.<kind>.instances.<name>]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstanceConfig {
    /// Hostnames routed to this instance.
    #[serde(default)]
    pub vhosts: Vec<Vhost>,
    /// Path prefix the instance is mounted under; `/` when absent.
    #[serde(default)]
    pub prefix: PathPrefix,
    /// The instance's own store; `<kind>-<instance>` when absent.
    #[serde(default)]
    pub store: Option<StoreName>,
    /// Kind-specific settings, parsed strictly by the backend. Read without a span (the
    /// span is always empty) because toml cannot span an implicitly created table; errors
    /// are located by searching the file text instead.
    #[serde(default, deserialize_with = "settings_location::unspanned")]
    pub settings: Option<toml::Spanned<toml::Table>>,
    /// Whether plain HTTP to this instance is redirected to HTTPS; absent: the server-wide
    /// `[frontend-http] https-redirect` rule decides.
    #[serde(default)]
    pub https_redirect: Option<bool>,
}

impl InstanceConfig {
    /// The instance this section describes, as `kind` instance `name`: the file's form is
    /// only a way of writing an [`InstanceSpec`].
    pub fn spec(&self, kind: &str, name: InstanceName) -> InstanceSpec {
        InstanceSpec {
            kind: kind.to_owned(),
            name,
            vhosts: self.vhosts.clone(),
            prefix: self.prefix.clone(),
            store: self.store.clone(),
            settings: self.settings_table(),
            https_redirect: self.https_redirect,
        }
    }

    /// The section that writes `spec` (its kind and name are the section's keys).
    pub fn from_spec(spec: &InstanceSpec) -> InstanceConfig {
        InstanceConfig {
            vhosts: spec.vhosts.clone(),
            prefix: spec.prefix.clone(),
            store: spec.store.clone(),
            settings: Some(toml::Spanned::new(0..0, spec.settings.clone())),
            https_redirect: spec.https_redirect,
        }
    }

    /// The settings table (empty when absent).
    pub fn settings_table(&self) -> toml::Table {
        self.settings
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default()
    }
}
