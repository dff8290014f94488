//! The runtime records of live administration in `everlock-system`
//! (`config/instances/<kind>/<name>.toml`, `config/backends/<kind>.toml`), their encoding,
//! and the overlay that lays them over the configuration file's configuration.

use std::collections::BTreeMap;

use everlock_storage::Store;
use serde::{Deserialize, Serialize};

use super::error::AdminError;
use crate::api::InstanceSpec;
use crate::config::{Config, InstanceConfig, InstanceName, PathPrefix, StoreName, Vhost};
use crate::runtime::Host;

/// A persisted instance (`config/instances/<kind>/<name>.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct InstanceRecord {
    /// The instance was deleted at runtime (it may still be in the configuration file).
    #[serde(default)]
    pub(super) deleted: bool,
    #[serde(default)]
    pub(super) vhosts: Vec<Vhost>,
    #[serde(default)]
    pub(super) prefix: PathPrefix,
    #[serde(default)]
    pub(super) store: Option<StoreName>,
    #[serde(default)]
    pub(super) settings: toml::Table,
    /// The instance's own `https-redirect`; absent: the server-wide rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) https_redirect: Option<bool>,
}

impl InstanceRecord {
    /// The record of a live `spec` (its kind and name are the record's path).
    pub(super) fn from_spec(spec: &InstanceSpec) -> InstanceRecord {
        InstanceRecord {
            deleted: false,
            vhosts: spec.vhosts.clone(),
            prefix: spec.prefix.clone(),
            store: spec.store.clone(),
            settings: spec.settings.clone(),
            https_redirect: spec.https_redirect,
        }
    }

    /// The instance this record describes as `kind` instance `name`.
    pub(super) fn spec(&self, kind: &str, name: InstanceName) -> InstanceSpec {
        InstanceSpec {
            kind: kind.to_owned(),
            name,
            vhosts: self.vhosts.clone(),
            prefix: self.prefix.clone(),
            store: self.store.clone(),
            settings: self.settings.clone(),
            https_redirect: self.https_redirect,
        }
    }
}

/// A persisted backend switch (`config/backends/<kind>.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackendRecord {
    pub(super) enabled: bool,
}

pub(super) fn instance_path(kind: &str, name: &str) -> String {
    format!("config/instances/{kind}/{name}.toml")
}

pub(super) fn backend_path(kind: &str) -> String {
    format!("config/backends/{kind}.toml")
}

/// Lays the runtime records of the system store over `config`.
pub(crate) async fn overlay(
    config: &mut Config,
    host: &Host,
    system: &Store,
) -> Result<(), AdminError> {
    for entry in system.list("config/backends/").await? {
        let Some(kind) = entry
            .path
            .strip_prefix("config/backends/")
            .and_then(|p| p.strip_suffix(".toml"))
        else {
            continue;
        };
        let record: BackendRecord = decode(&entry.path, &system.read(&entry.path).await?)?;
        if host.registry().get(kind).is_some() {
            config.backends.entry(kind.to_owned()).or_default().enabled = Some(record.enabled);
        } else {
            tracing::warn!(
                kind,
                "ignoring the runtime switch of a backend kind this binary lacks"
            );
        }
    }
    for entry in system.list("config/instances/").await? {
        let rest = entry
            .path
            .strip_prefix("config/instances/")
            .unwrap_or_default();
        let Some((kind, file)) = rest.split_once('/') else {
            continue;
        };
        let Some(name) = file.strip_suffix(".toml") else {
            continue;
        };
        let Some(factory) = host.registry().get(kind) else {
            tracing::warn!(
                kind,
                name,
                "ignoring a runtime instance of a backend kind this binary lacks"
            );
            continue;
        };
        let name: InstanceName = name.parse().map_err(AdminError::Value)?;
        let record: InstanceRecord = decode(&entry.path, &system.read(&entry.path).await?)?;
        config.materialize_defaults(factory);
        let instances = config
            .backends
            .entry(kind.to_owned())
            .or_default()
            .instances
            .get_or_insert_with(BTreeMap::new);
        if record.deleted {
            instances.remove(&name);
        } else {
            let spec = record.spec(factory.kind, name);
            instances.insert(spec.name.clone(), InstanceConfig::from_spec(&spec));
        }
    }
    Ok(())
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    path: &str,
    bytes: &[u8],
) -> Result<T, AdminError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| AdminError::Invalid(format!("{path}: {e}")))?;
    toml::from_str(text).map_err(|e| AdminError::Invalid(format!("{path}: {}", e.message())))
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AdminError> {
    toml::to_string(value)
        .map(String::into_bytes)
        .map_err(|e| AdminError::Invalid(format!("cannot encode record: {e}")))
}

pub(super) fn to_instance_config(record: &InstanceRecord) -> InstanceConfig {
    InstanceConfig {
        vhosts: record.vhosts.clone(),
        prefix: record.prefix.clone(),
        store: record.store.clone(),
        settings: Some(toml::Spanned::new(0..0, record.settings.clone())),
        https_redirect: record.https_redirect,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A record as an earlier version wrote it (no `https-redirect`, store and settings
    /// present) still loads, and becomes the same spec the console would have asked for.
    #[test]
    fn an_old_record_loads_as_a_spec() {
        let old = b"deleted = false\nvhosts = [\"team.localhost\"]\nprefix = \"/v2\"\nstore = \"oci-http-team\"\n\n[settings]\nallow-delete = false\n";
        let record: InstanceRecord = decode("config/instances/oci-http/team.toml", old).unwrap();
        let spec = record.spec("oci-http", "team".parse().unwrap());
        let mut want = InstanceSpec::parse("oci-http", "team", &["team.localhost"], "/v2").unwrap();
        want.store = Some("oci-http-team".parse().unwrap());
        want.settings
            .insert("allow-delete".to_owned(), toml::Value::Boolean(false));
        assert_eq!(spec, want);
        // Written again, it reads back the same.
        let again: InstanceRecord =
            decode("x", &encode(&InstanceRecord::from_spec(&spec)).unwrap()).unwrap();
        assert_eq!(again, record);
    }

    /// A deletion marker of an earlier version carries nothing but `deleted`.
    #[test]
    fn an_old_deletion_marker_loads() {
        let record: InstanceRecord = decode("x", b"deleted = true\n").unwrap();
        assert!(record.deleted);
    }
}
