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
use crate::config::{Config, InstanceConfig, InstanceName, PathPrefix, StoreName};
use crate::runtime::{AdminState, Host, HostError};

pub(crate) mod error;
mod grant;
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
                store: Some(i.store.clone()),
                ..i.spec.clone()
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
        let mut spec = spec;
        // Without `store=`, a name that existed before gets a fresh store: the old one keeps
        // its history but is reattached only when the operator names it explicitly.
        if spec.store.is_none() {
            spec.store = Some(self.fresh_store(factory.kind, &spec.name)?);
        }
        let name = spec.name.clone();
        let record = InstanceRecord::from_spec(&spec);
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
        let mut spec = current.spec(factory.kind, name.clone());
        edit.apply_to(&mut spec)?;
        *current = InstanceConfig::from_spec(&spec);
        let record = InstanceRecord::from_spec(&spec);
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
        let plan = config
            .plan(self.registry(), None)
            .map_err(AdminError::from)?;
        if enabled && let Some(system) = &state.system {
            self.provision_defaults(&config, system).await?;
        }
        let mut built = Vec::new();
        for spec in plan.instances().filter(|i| i.kind == factory.kind) {
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
        let plan = config
            .plan(self.registry(), None)
            .map_err(AdminError::from)?;
        let built = plan
            .get(kind, name)
            .map(|s| self.build_instance(s))
            .transpose()?;
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

#[cfg(test)]
mod tests;
