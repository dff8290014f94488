//! The effective instances of a configuration and their one validation: every configured
//! instance, or a kind's zero-config defaults, as an [`InstanceSpec`], and [`plan`], the one
//! check of the whole set (kinds, settings, routes including the extra prefixes the settings
//! claim, store ownership, one console) that startup, `everlock config check`, every live
//! change and the follower run before anything is built.
//!
//! [`plan`] returns a [`Plan`], which nothing else can construct; the host installs instances
//! only from a plan, so an unvalidated set of instances cannot reach the routing table.

use std::collections::BTreeMap;

use super::{
    Config, ConfigError, InstanceConfig, InstanceName, PathPrefix, check_ownership,
    settings_location,
};
use crate::api::{BackendFactory, Frontend, InstanceSpec};
use crate::registry::Registry;

/// A validated set of instances: what [`plan`] accepted, and the only thing the host
/// installs. Its field is private, so holding one proves the whole set passed every check.
///
/// Outside this crate no plan can be made but by planning:
///
/// ```compile_fail,E0451
/// fn forge() -> everlock_host::config::Plan {
///     everlock_host::config::Plan { specs: Vec::new() }
/// }
/// ```
///
/// ```compile_fail,E0423
/// fn forge(spec: &everlock_host::InstanceSpec) -> everlock_host::config::Planned<'_> {
///     everlock_host::config::Planned(spec)
/// }
/// ```
///
/// ```
/// fn planned(
///     specs: Vec<everlock_host::InstanceSpec>,
///     registry: &everlock_host::Registry,
/// ) -> Result<everlock_host::config::Plan, everlock_host::config::ConfigError> {
///     everlock_host::config::plan(specs, registry)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Plan {
    specs: Vec<InstanceSpec>,
}

impl Plan {
    /// The instances, every kind in registry order.
    pub fn specs(&self) -> &[InstanceSpec] {
        &self.specs
    }

    /// The instances as the host builds them: each one vouched for by this plan.
    pub fn instances(&self) -> impl Iterator<Item = Planned<'_>> {
        self.specs.iter().map(Planned)
    }

    /// The instance `kind/name`, if the plan has it.
    pub fn get(&self, kind: &str, name: &InstanceName) -> Option<Planned<'_>> {
        self.instances().find(|s| s.kind == kind && &s.name == name)
    }
}

/// One instance of a [`Plan`]. Only a plan hands them out (the field is private), and the
/// host builds instances only from these, so nothing reaches the routing table that the
/// whole-configuration validation did not accept together with everything else served.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'a>(&'a InstanceSpec);

impl std::ops::Deref for Planned<'_> {
    type Target = InstanceSpec;

    fn deref(&self) -> &InstanceSpec {
        self.0
    }
}

/// Validates `specs` as the whole effective set of instances: known kinds, settings each kind
/// accepts, routes (vhosts present, no two instances on one vhost and prefix, counting the
/// extra prefixes the settings claim), stores (none reserved, none shared) and at most one
/// SSH console.
pub fn plan(specs: Vec<InstanceSpec>, registry: &Registry) -> Result<Plan, ConfigError> {
    for spec in &specs {
        let factory = factory_of(spec, registry)?;
        (factory.check)(&spec.settings).map_err(|error| ConfigError::Settings {
            kind: spec.kind.clone(),
            instance: spec.name.to_string(),
            location: String::new(),
            error,
        })?;
    }
    check_routes(&specs, registry)?;
    check_ownership(&specs, |spec| {
        registry
            .get(&spec.kind)
            .is_some_and(|f| f.frontend == Frontend::Ssh)
    })?;
    Ok(Plan { specs })
}

fn factory_of(
    spec: &InstanceSpec,
    registry: &Registry,
) -> Result<&'static BackendFactory, ConfigError> {
    registry
        .get(&spec.kind)
        .ok_or_else(|| ConfigError::UnknownKind {
            kind: spec.kind.clone(),
            known: registry.kinds().collect::<Vec<_>>().join(", "),
        })
}

impl Config {
    /// Validates the whole configuration against the compiled-in kinds and returns its plan.
    /// `source` is the file text when there is one, to locate settings errors.
    pub fn plan(&self, registry: &Registry, source: Option<&str>) -> Result<Plan, ConfigError> {
        for kind in self.backends.keys() {
            if registry.get(kind).is_none() {
                return Err(ConfigError::UnknownKind {
                    kind: kind.clone(),
                    known: registry.kinds().collect::<Vec<_>>().join(", "),
                });
            }
        }
        self.check_located_settings(registry, source)?;
        self.storage.selection()?;
        plan(self.specs(registry)?, registry)
    }

    /// Checks everything that needs the compiled-in kinds (see [`Config::plan`]).
    pub fn validate(&self, registry: &Registry, source: Option<&str>) -> Result<(), ConfigError> {
        self.plan(registry, source).map(drop)
    }

    /// Checks the settings of the file's instances first, so an error carries its line.
    fn check_located_settings(
        &self,
        registry: &Registry,
        source: Option<&str>,
    ) -> Result<(), ConfigError> {
        for (kind, section) in &self.backends {
            let (Some(factory), Some(instances)) = (registry.get(kind), &section.instances) else {
                continue;
            };
            for (name, instance) in instances {
                if let Err(error) = (factory.check)(&instance.settings_table()) {
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
                        error,
                    });
                }
            }
        }
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
        // The defaults were planned when the host started, so every one parses here.
        for spec in (factory.default_instances)()
            .iter()
            .filter_map(|d| d.spec(factory.kind).ok())
        {
            instances.insert(spec.name.clone(), InstanceConfig::from_spec(&spec));
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

    /// Every instance of every enabled kind: configured instances, or the kind's zero-config
    /// defaults when the configuration names none; a default that does not parse is an error.
    /// Stores are resolved (`<kind>-<name>` when none is named).
    pub fn specs(&self, registry: &Registry) -> Result<Vec<InstanceSpec>, ConfigError> {
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
                        let mut spec = inst.spec(factory.kind, name.clone());
                        spec.store = Some(spec.store_name());
                        out.push(spec);
                    }
                }
                None => {
                    for d in (factory.default_instances)() {
                        let spec =
                            d.spec(factory.kind)
                                .map_err(|error| ConfigError::BadDefault {
                                    kind: factory.kind.to_owned(),
                                    instance: d.name.to_owned(),
                                    error,
                                })?;
                        out.push(spec);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Rejects vhost-less instances and two instances on the same vhost and prefix, counting
/// the extra prefixes each instance's settings claim (the registry's `/ui`) like its mount,
/// so a conflict is found before anything is built.
fn check_routes(instances: &[InstanceSpec], registry: &Registry) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for inst in instances {
        let factory = factory_of(inst, registry)?;
        if factory.frontend != Frontend::Http {
            continue;
        }
        let who = inst.id();
        if inst.vhosts.is_empty() {
            return Err(ConfigError::NoVhosts {
                kind: inst.kind.clone(),
                instance: inst.name.to_string(),
            });
        }
        for prefix in claimed_prefixes(inst, factory)? {
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
    inst: &InstanceSpec,
    factory: &BackendFactory,
) -> Result<Vec<PathPrefix>, ConfigError> {
    let mut prefixes = vec![inst.prefix.clone()];
    let extra = (factory.check)(&inst.settings).map_err(|error| ConfigError::Settings {
        kind: inst.kind.clone(),
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

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
