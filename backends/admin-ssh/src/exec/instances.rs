//! `/oci` and `/site`: listing, creating, editing and deleting instances through the host's
//! administration API, their `auth=` access, and the maintenance commands an instance offers.

use everlock_host::auth::Principal;
use everlock_host::{AdminError, InstanceEdit, InstanceSpec};
use serde_json::json;

use super::{Console, Failure, Outcome, parse_access, to_json};
use crate::command::{InstanceCmd, Scope};

impl Console {
    pub(super) async fn instances(
        &self,
        actor: &Principal,
        scope: Scope,
        cmd: InstanceCmd,
    ) -> Outcome {
        let kind = scope.kind();
        let enabled = self
            .host
            .backends()
            .await
            .iter()
            .any(|b| b.kind == kind && b.enabled);
        if !enabled {
            return Err(Failure::Other(format!(
                "{} backend not enabled",
                scope.name()
            )));
        }
        match cmd {
            InstanceCmd::List { json } => Ok(self.list_instances(scope, json)),
            InstanceCmd::Create { name, options } => {
                self.create_instance(actor, scope, name, options).await
            }
            InstanceCmd::Set { name, options } => {
                self.set_instance(actor, scope, name, options).await
            }
            InstanceCmd::Unset { name, options } => {
                let edit = InstanceEdit {
                    remove_vhosts: options.into_iter().map(|(_, v)| v).collect(),
                    ..InstanceEdit::default()
                };
                self.host.update_instance(actor, kind, &name, edit).await?;
                Ok(format!("{} '{name}' updated", scope.name()))
            }
            InstanceCmd::Delete { name } => {
                self.host.delete_instance(actor, kind, &name).await?;
                Ok(format!("{} '{name}' deleted", scope.name()))
            }
            InstanceCmd::Run {
                command,
                name,
                args,
            } => {
                self.run_instance_command(actor, scope, &command, &name, args)
                    .await
            }
        }
    }

    /// `set`: adds vhosts or moves the store through the host, and `auth=` changes who may
    /// read; an `auth=` alone still needs the instance to exist.
    async fn set_instance(
        &self,
        actor: &Principal,
        scope: Scope,
        name: String,
        options: Vec<(String, String)>,
    ) -> Outcome {
        let kind = scope.kind();
        let mut edit = InstanceEdit::default();
        let mut access = None;
        for (k, v) in options {
            match k.as_str() {
                "vhost" => edit.add_vhosts.push(v),
                "store" => edit.store = Some(v),
                _ => access = Some(parse_access(&v)?),
            }
        }
        let changes_instance = !edit.add_vhosts.is_empty() || edit.store.is_some();
        if changes_instance {
            self.host.update_instance(actor, kind, &name, edit).await?;
        } else if !self.exists(kind, &name) {
            return Err(AdminError::NoSuchInstance {
                kind: kind.to_owned(),
                name,
            }
            .into());
        }
        if let Some(public) = access {
            self.set_public(actor, scope, &name, public).await?;
        }
        Ok(format!("{} '{name}' updated", scope.name()))
    }

    fn exists(&self, kind: &str, name: &str) -> bool {
        self.host
            .instances()
            .iter()
            .any(|i| i.kind == kind && i.name == name)
    }

    fn list_instances(&self, scope: Scope, json: bool) -> String {
        let mut list: Vec<_> = self
            .host
            .instances()
            .into_iter()
            .filter(|i| i.kind == scope.kind())
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        if json {
            return to_json(
                &list
                    .iter()
                    .map(|i| {
                        json!({
                            "name": i.name,
                            "vhosts": i.vhosts,
                            "prefix": i.prefix,
                            "store": i.store,
                            "mode": i.settings.get("mode").and_then(|m| m.as_str()),
                        })
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if list.is_empty() {
            return format!("no {} instances", scope.name());
        }
        list.iter()
            .map(|i| {
                let mode = i
                    .settings
                    .get("mode")
                    .and_then(|m| m.as_str())
                    .map(|m| format!("  mode={m}"))
                    .unwrap_or_default();
                format!(
                    "{}  vhosts={}  prefix={}  store={}{mode}\n",
                    i.name,
                    i.vhosts.join(","),
                    i.prefix,
                    i.store
                )
            })
            .collect()
    }

    async fn create_instance(
        &self,
        actor: &Principal,
        scope: Scope,
        name: String,
        options: Vec<(String, String)>,
    ) -> Outcome {
        let mut spec = InstanceSpec {
            kind: scope.kind().to_owned(),
            name: name.clone(),
            ..InstanceSpec::default()
        };
        let mut access = None;
        for (k, v) in options {
            match k.as_str() {
                "vhost" => spec.vhosts.push(v),
                "store" => spec.store = Some(v),
                "mode" => {
                    if v != "markdown" && v != "html" {
                        return Err(Failure::Other(format!(
                            "invalid mode `{v}`: expected markdown or html"
                        )));
                    }
                    spec.settings
                        .insert("mode".to_owned(), toml::Value::String(v));
                }
                _ => access = Some(parse_access(&v)?),
            }
        }
        match scope {
            Scope::Oci => {
                // A registry answers the OCI distribution API, which lives under /v2.
                spec.prefix = Some("/v2".to_owned());
                self.host.create_instance(actor, spec).await?;
                // Registries are private unless asked otherwise.
                let public = access.unwrap_or(false);
                self.set_public(actor, scope, &name, public).await?;
                Ok(format!(
                    "registry '{name}' created ({})",
                    if public { "public" } else { "private" }
                ))
            }
            Scope::Site => {
                self.host.create_instance(actor, spec).await?;
                let path = format!("http/site/{name}");
                self.host
                    .auth()
                    .grant(actor, actor.name(), &path, "owner")
                    .await?;
                // Sites are public unless asked otherwise.
                let public = access.unwrap_or(true);
                self.set_public(actor, scope, &name, public).await?;
                Ok(format!(
                    "site '{name}' created ({}; owner '{actor}')",
                    if public { "public" } else { "private" }
                ))
            }
        }
    }

    /// `auth=public` grants `anon` reader on the instance; `auth=private` removes every
    /// grant `anon` holds there and below, and fails when a wider grant would keep it public.
    async fn set_public(
        &self,
        actor: &Principal,
        scope: Scope,
        name: &str,
        public: bool,
    ) -> Result<(), Failure> {
        let path = format!("{}/{name}", scope.access_root());
        if public {
            self.host
                .auth()
                .grant(actor, "anon", &path, "reader")
                .await?;
        } else {
            self.host.auth().make_private(actor, &path).await?;
        }
        Ok(())
    }

    async fn run_instance_command(
        &self,
        actor: &Principal,
        scope: Scope,
        command: &str,
        name: &str,
        args: Vec<String>,
    ) -> Outcome {
        let kind = scope.kind();
        // Reading history is open to every user (the instance authorizes it again); every
        // other maintenance command changes state and needs a system administrator.
        if command != "history" && !self.host.auth().is_system_admin(actor) {
            return Err(Failure::Other(format!(
                "permission denied: {actor} is not a system administrator"
            )));
        }
        if !self.exists(kind, name) {
            return Err(AdminError::NoSuchInstance {
                kind: kind.to_owned(),
                name: name.to_owned(),
            }
            .into());
        }
        let Some(commands) = self.host.instance_commands(kind, name) else {
            return Err(Failure::Other(format!(
                "{kind}/{name} offers no `{command}` command"
            )));
        };
        if !commands.help().iter().any(|h| h.name == command) {
            return Err(Failure::Other(format!(
                "{kind}/{name} offers no `{command}` command"
            )));
        }
        commands
            .run(actor.clone(), command, args)
            .await
            .map_err(|e| Failure::Other(e.to_string()))
    }
}
