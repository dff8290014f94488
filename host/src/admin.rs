//! Live administration of the host: create, change and delete instances and enable or
//! disable backend kinds while the server runs.
//!
//! Every change is checked (system administrators only), validated against the whole
//! effective configuration (no two instances on one vhost and prefix), applied to the live
//! instance table, and persisted as TOML in the `everlock-system` store under `config/` as a
//! commit by the acting principal, so it survives restarts and is auditable. Runtime records
//! overlay the configuration file at startup.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use everlock_auth::Principal;
use everlock_storage::{CommitMeta, Op};

use crate::api::{BackendInfo, InstanceCommands, InstanceEdit, InstanceInfo, InstanceSpec};
use crate::config::{Config, InstanceName, PathPrefix, StoreName, Vhost};
use crate::runtime::{AdminState, Host, HostError};

pub(crate) mod error;
pub(crate) mod records;

pub use error::AdminError;
pub(crate) use records::overlay;
use records::{
    BackendRecord, InstanceRecord, backend_path, encode, instance_path, to_instance_config,
};

impl Host {
    /// Every live instance, by kind and name.
    pub fn instances(&self) -> Vec<InstanceInfo> {
        self.table()
            .snapshot()
            .instances()
            .map(|i| InstanceInfo {
                kind: i.kind,
                name: i.name.to_string(),
                vhosts: i.vhosts.iter().map(ToString::to_string).collect(),
                prefix: i.prefix.to_string(),
                store: i.store.to_string(),
                settings: i.settings.clone(),
                https_redirect: i.https_redirect,
            })
            .collect()
    }

    /// Every compiled-in kind and whether it is enabled.
    pub async fn backends(&self) -> Vec<BackendInfo> {
        let state = self.admin_state().lock().await;
        self.registry()
            .factories()
            .map(|f| BackendInfo {
                kind: f.kind,
                frontend: f.frontend,
                enabled: state.config.is_enabled(f.kind),
                summary: f.summary,
            })
            .collect()
    }

    /// The console commands of instance `kind/name`, if it offers any.
    pub fn instance_commands(&self, kind: &str, name: &str) -> Option<Arc<dyn InstanceCommands>> {
        let name: InstanceName = name.parse().ok()?;
        self.table().snapshot().get(kind, &name)?.commands.clone()
    }

    /// Creates an instance live.
    pub async fn create_instance(
        &self,
        actor: &Principal,
        spec: InstanceSpec,
    ) -> Result<(), AdminError> {
        self.require_admin(actor)?;
        let factory = self
            .registry()
            .get(&spec.kind)
            .ok_or_else(|| AdminError::UnknownKind(spec.kind.clone()))?;
        let name: InstanceName = spec.name.parse().map_err(AdminError::Value)?;
        // Without `store=`, a name that existed before gets a fresh store: the old one keeps
        // its history but is reattached only when the operator names it explicitly.
        let store = match spec.store.as_deref() {
            Some(s) => s.parse().map_err(AdminError::Value)?,
            None => self.fresh_store(factory.kind, &name)?,
        };
        let record = InstanceRecord {
            deleted: false,
            vhosts: parse_vhosts(&spec.vhosts)?,
            prefix: spec
                .prefix
                .as_deref()
                .unwrap_or("/")
                .parse()
                .map_err(AdminError::Value)?,
            store: Some(store),
            settings: spec.settings,
            https_redirect: spec.https_redirect,
        };
        let mut state = self.admin_state().lock().await;
        // Another node may have changed the instances since this node last looked.
        crate::follow::catch_up(self, &mut state).await?;
        if !state.config.is_enabled(factory.kind) {
            return Err(AdminError::Disabled(factory.kind.to_owned()));
        }
        let mut config = state.config.clone();
        config.materialize_defaults(factory);
        let instances = config
            .backends
            .entry(factory.kind.to_owned())
            .or_default()
            .instances
            .get_or_insert_with(BTreeMap::new);
        if instances.contains_key(&name) {
            return Err(AdminError::Exists {
                kind: factory.kind.to_owned(),
                name: name.to_string(),
            });
        }
        instances.insert(name.clone(), to_instance_config(&record));
        self.apply(
            &mut state,
            config,
            actor,
            factory.kind,
            &name,
            &record,
            "create",
        )
        .await
    }

    /// Changes an instance live (vhosts, store, settings); the instance is rebuilt and
    /// requests already in flight finish on the old one.
    pub async fn update_instance(
        &self,
        actor: &Principal,
        kind: &str,
        name: &str,
        edit: InstanceEdit,
    ) -> Result<(), AdminError> {
        self.require_admin(actor)?;
        let factory = self
            .registry()
            .get(kind)
            .ok_or_else(|| AdminError::UnknownKind(kind.to_owned()))?;
        let name: InstanceName = name.parse().map_err(AdminError::Value)?;
        let add = parse_vhosts(&edit.add_vhosts)?;
        let remove = parse_vhosts(&edit.remove_vhosts)?;
        let store: Option<StoreName> = edit
            .store
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(AdminError::Value)?;
        let mut state = self.admin_state().lock().await;
        // Another node may have changed the instances since this node last looked.
        crate::follow::catch_up(self, &mut state).await?;
        let mut config = state.config.clone();
        config.materialize_defaults(factory);
        let current = config
            .backends
            .get_mut(factory.kind)
            .and_then(|s| s.instances.as_mut())
            .and_then(|i| i.get_mut(&name))
            .ok_or_else(|| AdminError::NoSuchInstance {
                kind: kind.to_owned(),
                name: name.to_string(),
            })?;
        for v in &remove {
            if !current.vhosts.contains(v) {
                return Err(AdminError::Invalid(format!(
                    "{kind}/{name} has no vhost {v}"
                )));
            }
        }
        current.vhosts.retain(|v| !remove.contains(v));
        for v in add {
            if !current.vhosts.contains(&v) {
                current.vhosts.push(v);
            }
        }
        if let Some(store) = store {
            current.store = Some(store);
        }
        let mut settings = current.settings_table();
        settings.extend(edit.settings);
        for key in &edit.remove_settings {
            settings.remove(key);
        }
        current.settings = Some(toml::Spanned::new(0..0, settings.clone()));
        if let Some(redirect) = edit.https_redirect {
            current.https_redirect = redirect;
        }
        let record = InstanceRecord {
            deleted: false,
            vhosts: current.vhosts.clone(),
            prefix: current.prefix.clone(),
            store: current.store.clone(),
            settings,
            https_redirect: current.https_redirect,
        };
        self.apply(
            &mut state,
            config,
            actor,
            factory.kind,
            &name,
            &record,
            "update",
        )
        .await
    }

    /// Deletes an instance live. Its store is kept (history is never thrown away).
    pub async fn delete_instance(
        &self,
        actor: &Principal,
        kind: &str,
        name: &str,
    ) -> Result<(), AdminError> {
        self.require_admin(actor)?;
        let factory = self
            .registry()
            .get(kind)
            .ok_or_else(|| AdminError::UnknownKind(kind.to_owned()))?;
        let name: InstanceName = name.parse().map_err(AdminError::Value)?;
        let mut state = self.admin_state().lock().await;
        // Another node may have changed the instances since this node last looked.
        crate::follow::catch_up(self, &mut state).await?;
        let mut config = state.config.clone();
        config.materialize_defaults(factory);
        let removed = config
            .backends
            .get_mut(factory.kind)
            .and_then(|s| s.instances.as_mut())
            .and_then(|i| i.remove(&name));
        if removed.is_none() {
            return Err(AdminError::NoSuchInstance {
                kind: kind.to_owned(),
                name: name.to_string(),
            });
        }
        let record = InstanceRecord {
            deleted: true,
            vhosts: Vec::new(),
            prefix: PathPrefix::root(),
            store: None,
            settings: toml::Table::new(),
            https_redirect: None,
        };
        self.apply(
            &mut state,
            config,
            actor,
            factory.kind,
            &name,
            &record,
            "delete",
        )
        .await?;
        // Grants on the deleted instance's path would silently apply to a later instance of
        // the same name; they go with the instance.
        if let Some(root) = factory.access_root {
            self.auth()
                .revoke_all_within(actor, &format!("{root}/{name}"))
                .await
                .map_err(|e| AdminError::Invalid(format!("instance deleted, but {e}")))?;
        }
        Ok(())
    }

    /// `<kind>-<name>`, or `<kind>-<name>-<n>` with the smallest `n` whose store does not
    /// exist yet, so a re-created instance never reattaches an old store by accident.
    fn fresh_store(&self, kind: &str, name: &InstanceName) -> Result<StoreName, AdminError> {
        let existing = self.stores().list()?;
        let base = format!("{kind}-{name}");
        std::iter::once(base.clone())
            .chain((2..1000).map(|n| format!("{base}-{n}")))
            .find(|candidate| !existing.iter().any(|e| e == candidate))
            .ok_or_else(|| AdminError::Invalid(format!("no free store name for {kind}/{name}")))?
            .parse()
            .map_err(AdminError::Value)
    }

    /// Enables or disables a whole backend kind live: its instances start or stop serving.
    pub async fn set_backend_enabled(
        &self,
        actor: &Principal,
        kind: &str,
        enabled: bool,
    ) -> Result<(), AdminError> {
        self.require_admin(actor)?;
        let factory = self
            .registry()
            .get(kind)
            .ok_or_else(|| AdminError::UnknownKind(kind.to_owned()))?;
        let mut state = self.admin_state().lock().await;
        // Another node may have changed the instances since this node last looked.
        crate::follow::catch_up(self, &mut state).await?;
        let mut config = state.config.clone();
        config
            .backends
            .entry(factory.kind.to_owned())
            .or_default()
            .enabled = Some(enabled);
        config
            .validate(self.registry(), None)
            .map_err(AdminError::Config)?;
        if enabled && let Some(system) = &state.system {
            self.provision_defaults(&config, system).await?;
        }
        let wanted: Vec<_> = config
            .instances(self.registry())
            .into_iter()
            .filter(|i| i.kind == factory.kind)
            .collect();
        let mut built = Vec::new();
        for spec in &wanted {
            built.push(self.build_instance(spec)?);
        }
        let op = Op::PutBytes {
            path: backend_path(factory.kind),
            bytes: encode(&BackendRecord { enabled })?,
        };
        self.commit(
            &mut state,
            op,
            actor,
            format!(
                "backends {} {}",
                if enabled { "enable" } else { "disable" },
                factory.kind
            ),
        )
        .await?;
        self.table()
            .replace_kind(factory.kind, built)
            .map_err(HostError::from)?;
        state.config = config;
        Ok(())
    }

    pub(crate) fn require_admin(&self, actor: &Principal) -> Result<(), AdminError> {
        if self.auth().is_system_admin(actor) {
            Ok(())
        } else {
            Err(AdminError::Denied(actor.to_string()))
        }
    }

    /// Validates `config`, rebuilds `kind/name` from it, persists `record`, swaps the table.
    #[allow(
        clippy::too_many_arguments,
        reason = "one private step shared by three operations"
    )]
    async fn apply(
        &self,
        state: &mut AdminState,
        config: Config,
        actor: &Principal,
        kind: &'static str,
        name: &InstanceName,
        record: &InstanceRecord,
        verb: &str,
    ) -> Result<(), AdminError> {
        config
            .validate(self.registry(), None)
            .map_err(AdminError::Config)?;
        let spec = config
            .instances(self.registry())
            .into_iter()
            .find(|i| i.kind == kind && &i.name == name);
        let built = spec.as_ref().map(|s| self.build_instance(s)).transpose()?;
        let op = Op::PutBytes {
            path: instance_path(kind, name.as_str()),
            bytes: encode(record)?,
        };
        let vhosts: Vec<String> = record.vhosts.iter().map(ToString::to_string).collect();
        let message = if record.deleted {
            format!("instances {verb} {kind}/{name}")
        } else {
            format!(
                "instances {verb} {kind}/{name} vhosts=[{}] prefix={}",
                vhosts.join(","),
                record.prefix
            )
        };
        self.commit(state, op, actor, message).await?;
        match built {
            Some(instance) => self.table().upsert(instance).map_err(HostError::from)?,
            None => {
                // Absent from the new configuration: deleted, or its kind is disabled.
                let _ = self.table().remove(kind, name);
            }
        }
        state.config = config;
        Ok(())
    }

    async fn commit(
        &self,
        state: &mut AdminState,
        op: Op,
        actor: &Principal,
        message: String,
    ) -> Result<(), AdminError> {
        let Some(system) = &state.system else {
            return Err(AdminError::NotStarted);
        };
        // The record must still be what this node validated against: another node may
        // have changed it since (compare-and-swap inside the commit).
        let pre = crate::follow::record_precondition(system, op.path(), state.seq).await?;
        // Announced first, so the follower skips the notification of this commit.
        let next = state.seq.saturating_add(1);
        self.seen().fetch_max(next, Ordering::SeqCst);
        let committed = system
            .commit(vec![op], vec![pre], CommitMeta::new(actor.name(), message))
            .await;
        match committed {
            Ok(info) if info.seq == next => state.seq = next,
            // Another node's commit came in between (or this one failed): the follower
            // or the next change re-applies everything from the store.
            Ok(_) => self.seen().store(state.seq, Ordering::SeqCst),
            Err(e) => {
                self.seen().store(state.seq, Ordering::SeqCst);
                return Err(crate::follow::concurrent(e));
            }
        }
        Ok(())
    }
}

fn parse_vhosts(raw: &[String]) -> Result<Vec<Vhost>, AdminError> {
    raw.iter()
        .map(|v| v.parse().map_err(AdminError::Value))
        .collect()
}

#[cfg(test)]
mod tests;
