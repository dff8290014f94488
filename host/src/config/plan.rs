//! The effective instances of a configuration and their validation: every configured
//! instance, or a kind's zero-config defaults, resolved to what the host builds, and the one
//! check of the whole configuration (kinds, settings, routes including the extra prefixes the
//! settings claim, store ownership) that startup, `everlock config check` and every live change
//! run before anything is built.

use std::collections::BTreeMap;

use super::{
    Config, ConfigError, InstanceConfig, InstanceName, PathPrefix, StoreName, Vhost,
    check_ownership, settings_location,
};
use crate::api::{BackendFactory, DefaultInstance, Frontend};
use crate::registry::Registry;

/// An instance after defaults are resolved: what the host builds.
#[derive(Debug, Clone)]
pub struct ResolvedInstance {
    /// Backend kind.
    pub kind: &'static str,
    /// The frontend carrying the kind's traffic (only HTTP instances need vhosts).
    pub frontend: Frontend,
    /// Instance name.
    pub name: InstanceName,
    /// Hostnames.
    pub vhosts: Vec<Vhost>,
    /// Mount prefix.
    pub prefix: PathPrefix,
    /// Store name.
    pub store: StoreName,
    /// Kind-specific settings.
    pub settings: toml::Table,
    /// The instance's own `https-redirect`; `None`: the server-wide rule.
    pub https_redirect: Option<bool>,
}

impl Config {
    /// Checks everything that needs the compiled-in kinds: known kinds, settings accepted by
    /// each backend, vhosts present and no two instances on one vhost+prefix. `source` is the
    /// file text when there is one, to locate settings errors.
    pub fn validate(&self, registry: &Registry, source: Option<&str>) -> Result<(), ConfigError> {
        for kind in self.backends.keys() {
            if registry.get(kind).is_none() {
                return Err(ConfigError::UnknownKind {
                    kind: kind.clone(),
                    known: registry.kinds().collect::<Vec<_>>().join(", "),
                });
            }
        }
        for (kind, section) in &self.backends {
            let (Some(factory), Some(instances)) = (registry.get(kind), &section.instances) else {
                continue;
            };
            for (name, instance) in instances {
                if let Err(source_err) = (factory.check)(&instance.settings_table()) {
                    let location = source
                        .and_then(|text| {
                            settings_location::settings_line(text, kind, name.as_str())
                        })
                        .map(|line| format!(" (line {line}, column 1)"))
                        .unwrap_or_default();
                    return Err(ConfigError::Settings {
                        kind: kind.clone(),
                        instance: name.to_string(),
                        location,
                        error: source_err,
                    });
                }
            }
        }
        self.storage.selection()?;
        let resolved = self.instances(registry);
        check_routes(&resolved, registry)?;
        check_ownership(&resolved)?;
        Ok(())
    }

    /// Makes `kind`'s zero-config defaults explicit instances, so that adding or removing one
    /// instance at runtime does not make the others disappear. A no-op when the kind already
    /// has an instance table.
    pub fn materialize_defaults(&mut self, factory: &BackendFactory) {
        let section = self.backends.entry(factory.kind.to_owned()).or_default();
        if section.instances.is_some() {
            return;
        }
        let mut instances = BTreeMap::new();
        for d in (factory.default_instances)() {
            if let Some(r) = resolve_default(factory, &d) {
                instances.insert(
                    r.name,
                    InstanceConfig {
                        vhosts: r.vhosts,
                        prefix: r.prefix,
                        store: Some(r.store),
                        settings: None,
                        https_redirect: None,
                    },
                );
            }
        }
        section.instances = Some(instances);
    }

    /// Whether `kind` is enabled (compiled-in kinds are enabled unless configured off).
    pub fn is_enabled(&self, kind: &str) -> bool {
        self.backends
            .get(kind)
            .and_then(|s| s.enabled)
            .unwrap_or(true)
    }

    /// Every instance of every enabled kind, with defaults resolved: configured instances,
    /// or the kind's zero-config defaults when the configuration names none.
    pub fn instances(&self, registry: &Registry) -> Vec<ResolvedInstance> {
        let mut out = Vec::new();
        for factory in registry.factories() {
            if !self.is_enabled(factory.kind) {
                continue;
            }
            match self
                .backends
                .get(factory.kind)
                .and_then(|s| s.instances.as_ref())
            {
                Some(instances) => {
                    for (name, inst) in instances {
                        let store = inst
                            .store
                            .clone()
                            .unwrap_or_else(|| default_store_name(factory.kind, name));
                        out.push(ResolvedInstance {
                            kind: factory.kind,
                            frontend: factory.frontend,
                            name: name.clone(),
                            vhosts: inst.vhosts.clone(),
                            prefix: inst.prefix.clone(),
                            store,
                            settings: inst.settings_table(),
                            https_redirect: inst.https_redirect,
                        });
                    }
                }
                None => {
                    for d in (factory.default_instances)() {
                        if let Some(resolved) = resolve_default(factory, &d) {
                            out.push(resolved);
                        } else {
                            tracing::error!(
                                kind = factory.kind,
                                name = d.name,
                                "backend proposes an invalid default instance; skipped"
                            );
                        }
                    }
                }
            }
        }
        out
    }
}

/// `<kind>-<instance>`: always a valid store name, because kinds are at most 30 and instance
/// names at most 32 characters of the same alphabet.
fn default_store_name(kind: &str, name: &InstanceName) -> StoreName {
    StoreName::derived(kind, name)
}

fn resolve_default(factory: &BackendFactory, d: &DefaultInstance) -> Option<ResolvedInstance> {
    Some(ResolvedInstance {
        kind: factory.kind,
        frontend: factory.frontend,
        name: d.name.parse().ok()?,
        vhosts: d
            .vhosts
            .iter()
            .map(|v| v.parse())
            .collect::<Result<_, _>>()
            .ok()?,
        prefix: d.prefix.parse().ok()?,
        store: d.store.parse().ok()?,
        settings: toml::Table::new(),
        https_redirect: None,
    })
}

/// Rejects vhost-less instances and two instances on the same vhost and prefix, counting
/// the extra prefixes each instance's settings claim (the registry's `/ui`) like its mount,
/// so a conflict is found before anything is built.
pub fn check_routes(
    instances: &[ResolvedInstance],
    registry: &Registry,
) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for inst in instances.iter().filter(|i| i.frontend == Frontend::Http) {
        let who = format!("{}/{}", inst.kind, inst.name);
        if inst.vhosts.is_empty() {
            return Err(ConfigError::NoVhosts {
                kind: inst.kind.to_owned(),
                instance: inst.name.to_string(),
            });
        }
        for prefix in claimed_prefixes(inst, registry)? {
            for vhost in &inst.vhosts {
                let key = (vhost.to_string(), prefix.to_string());
                if let Some(first) = seen.insert(key, who.clone()) {
                    return Err(ConfigError::DuplicateRoute {
                        vhost: vhost.to_string(),
                        prefix: prefix.to_string(),
                        first,
                        second: who,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The prefixes `inst` will serve: its mount, then the extra prefixes its kind derives from
/// its settings, each once.
fn claimed_prefixes(
    inst: &ResolvedInstance,
    registry: &Registry,
) -> Result<Vec<PathPrefix>, ConfigError> {
    let mut prefixes = vec![inst.prefix.clone()];
    let Some(factory) = registry.get(inst.kind) else {
        return Ok(prefixes);
    };
    let extra = (factory.check)(&inst.settings).map_err(|error| ConfigError::Settings {
        kind: inst.kind.to_owned(),
        instance: inst.name.to_string(),
        location: String::new(),
        error,
    })?;
    for prefix in extra {
        if !prefixes.contains(&prefix) {
            prefixes.push(prefix);
        }
    }
    Ok(prefixes)
}
