//! A kind's family (`/oci`, `/site`, `/hello`, ...): listing, creating, editing and deleting
//! instances through the host's administration API, their `auth=` access, and the maintenance
//! commands an instance offers. Everything kind-specific comes from the kind's declaration.

use everlock_host::auth::Principal;
use everlock_host::{AdminError, InstanceEdit, InstanceSpec, OptionValue};
use serde_json::json;

use super::{Console, Failure, Outcome, invalid_value, parse_access, to_json};
use crate::command::{InstanceCmd, Scope};

/// `https-redirect=true|false` as the instance's own redirect rule.
fn redirect_value(value: &str) -> Result<bool, Failure> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid_value("https-redirect", value, ["true", "false"])),
    }
}

/// A declared setting's `key=value` word as a settings value: checked against the allowed
/// values and converted to the declared type, so the kind's `check` sees what a
/// configuration file would hold.
fn setting_value(scope: Scope, key: &str, value: String) -> Result<Option<toml::Value>, Failure> {
    let Some(spec) = scope.console().create_options.iter().find(|o| o.key == key) else {
        return Ok(None);
    };
    if !spec.allowed.is_empty() && !spec.allowed.contains(&value.as_str()) {
        return Err(invalid_value(key, &value, spec.allowed.iter().copied()));
    }
    let invalid = |expected: &[&str]| invalid_value(key, &value, expected.iter().copied());
    Ok(Some(match spec.value {
        OptionValue::Text => toml::Value::String(value),
        OptionValue::Bool => match value.as_str() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => return Err(invalid(&["true", "false"])),
        },
        OptionValue::Integer => value
            .parse::<u64>()
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .map(toml::Value::Integer)
            .ok_or_else(|| invalid(&["a non-negative integer"]))?,
        // The kind's `check` (run by the host on every change) validates the structure; the
        // console only needs a TOML value. The word is not echoed back: it may hold a secret.
        OptionValue::Toml => {
            crate::command::parse_inline(&value).ok_or_else(|| Failure::InvalidToml {
                key: key.to_owned(),
            })?
        }
    }))
}

/// What an `auth=` word means: `public`/`private` is who may read (`Access`); any other value
/// the kind declares for its own `auth` setting (a registry's `basic`/`token`) is that setting.
enum AuthWord {
    Access(bool),
    Setting(toml::Value),
}

fn auth_word(scope: Scope, value: String) -> Result<AuthWord, Failure> {
    let declared = scope
        .console()
        .create_options
        .iter()
        .find(|o| o.key == "auth")
        .map(|o| o.allowed)
        .unwrap_or_default();
    match value.as_str() {
        "public" | "private" => parse_access(&value).map(AuthWord::Access),
        v if declared.contains(&v) => Ok(AuthWord::Setting(toml::Value::String(value))),
        other => {
            let expected = ["private", "public"].into_iter();
            Err(invalid_value(
                "auth",
                other,
                expected.chain(declared.iter().copied()),
            ))
        }
    }
}

impl Console {
    pub(super) async fn instances(
        &self,
        actor: &Principal,
        scope: Scope,
        cmd: InstanceCmd,
    ) -> Outcome {
        let kind = scope.kind();
        let enabled = self
            .admin
            .backends()
            .await
            .iter()
            .any(|b| b.kind == kind && b.enabled);
        if !enabled {
            return Err(Failure::NotEnabled(scope.name()));
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
                let mut edit = InstanceEdit::default();
                for (k, v) in options {
                    match k.as_str() {
                        "https-redirect" => edit.https_redirect = Some(None),
                        "vhost" => edit
                            .remove_vhosts
                            .push(v.parse().map_err(AdminError::Value)?),
                        // The grammar admits only declared, optional settings here: removing
                        // one returns it to the kind's default.
                        _ => edit.remove_settings.push(k),
                    }
                }
                self.admin.update_instance(actor, kind, &name, edit).await?;
                Ok(format!("{} '{name}' updated", scope.name()))
            }
            InstanceCmd::Delete { name } => {
                self.admin.delete_instance(actor, kind, &name).await?;
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

    /// `set`: adds vhosts, moves the store or changes declared settings through the host
    /// (which checks them with the kind's `check` and persists them), and `auth=` changes who
    /// may read; an `auth=` alone still needs the instance to exist.
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
                "vhost" => edit.add_vhosts.push(v.parse().map_err(AdminError::Value)?),
                "store" => edit.store = Some(v.parse().map_err(AdminError::Value)?),
                "https-redirect" => edit.https_redirect = Some(Some(redirect_value(&v)?)),
                "auth" => match auth_word(scope, v)? {
                    AuthWord::Access(public) => access = Some(public),
                    AuthWord::Setting(value) => {
                        edit.settings.insert(k, value);
                    }
                },
                key => {
                    if let Some(value) = setting_value(scope, key, v)? {
                        edit.settings.insert(key.to_owned(), value);
                    }
                }
            }
        }
        let changes_instance = !edit.add_vhosts.is_empty()
            || edit.store.is_some()
            || edit.https_redirect.is_some()
            || !edit.settings.is_empty();
        if changes_instance {
            self.admin.update_instance(actor, kind, &name, edit).await?;
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
        self.admin
            .instances()
            .iter()
            .any(|i| i.kind == kind && i.name.as_str() == name)
    }

    fn list_instances(&self, scope: Scope, json: bool) -> String {
        let mut list: Vec<_> = self
            .admin
            .instances()
            .into_iter()
            .filter(|i| i.kind == scope.kind())
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        // Listings never show a secret: not a top-level one (`upstream-password`) nor one
        // inside a structured value (a webhook's `secret`).
        for i in &mut list {
            i.settings = crate::command::redact_table(&i.settings);
        }
        let declared = scope.console().create_options;
        if json {
            return to_json(
                &list
                    .iter()
                    .map(|i| {
                        let mut entry = serde_json::Map::new();
                        entry.insert("name".to_owned(), json!(i.name));
                        entry.insert("vhosts".to_owned(), json!(i.vhosts));
                        entry.insert("prefix".to_owned(), json!(i.prefix));
                        entry.insert("store".to_owned(), json!(i.store));
                        // Only an instance's own value: `null` would read as "none at all"
                        // where the server-wide rule applies.
                        if let Some(redirect) = i.https_redirect {
                            entry.insert("https-redirect".to_owned(), json!(redirect));
                        }
                        // Required settings stay at the top level (`mode` of a site, as
                        // scripts have always read it) when the instance sets them; an
                        // instance on the kind's default (the zero-config welcome site) has
                        // no value to show, and `null` would read as "no mode at all". All
                        // settings are under `settings`.
                        for o in declared.iter().filter(|o| o.required) {
                            if let Some(value) = i.settings.get(o.key) {
                                entry.insert(o.key.to_owned(), settings_json(Some(value)));
                            }
                        }
                        entry.insert(
                            "settings".to_owned(),
                            serde_json::to_value(&i.settings).unwrap_or(serde_json::Value::Null),
                        );
                        entry
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if list.is_empty() {
            return format!("no {} instances", scope.name());
        }
        list.iter()
            .map(|i| {
                // Declared settings the instance sets, in declaration order.
                let settings: String = declared
                    .iter()
                    .filter_map(|o| {
                        i.settings
                            .get(o.key)
                            .map(|v| format!("  {}={}", o.key, plain(v)))
                    })
                    .collect();
                let redirect = i
                    .https_redirect
                    .map(|r| format!("  https-redirect={r}"))
                    .unwrap_or_default();
                format!(
                    "{}  vhosts={}  prefix={}  store={}{redirect}{settings}\n",
                    i.name,
                    i.vhosts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    i.prefix,
                    i.store_name()
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
        let console = scope.console();
        // Every part of the spec is a validated name, parsed here as the operator typed it.
        let mut spec = InstanceSpec::new(scope.kind(), name.parse().map_err(AdminError::Value)?);
        // A registry answers the OCI distribution API, which lives under /v2: a kind
        // declares where its instances mount unless `prefix=` says otherwise.
        if let Some(prefix) = console.default_prefix {
            spec.prefix = prefix.parse().map_err(AdminError::Value)?;
        }
        let mut access = None;
        for (k, v) in options {
            match k.as_str() {
                "vhost" => spec.vhosts.push(v.parse().map_err(AdminError::Value)?),
                "store" => spec.store = Some(v.parse().map_err(AdminError::Value)?),
                "prefix" => spec.prefix = v.parse().map_err(AdminError::Value)?,
                "https-redirect" => spec.https_redirect = Some(redirect_value(&v)?),
                "auth" => match auth_word(scope, v)? {
                    AuthWord::Access(public) => access = Some(public),
                    AuthWord::Setting(value) => {
                        spec.settings.insert(k, value);
                    }
                },
                key => {
                    if let Some(value) = setting_value(scope, key, v)? {
                        spec.settings.insert(key.to_owned(), value);
                    }
                }
            }
        }
        self.admin.create_instance(actor, spec).await?;
        // The instance and its grants are one operation for the operator: when granting
        // fails (say `auth=private` under a wider public grant), the new instance is deleted
        // again rather than left serving with access nobody asked for.
        match self.grant_new(actor, scope, &name, access).await {
            Ok(access) => Ok(format!("{} '{name}' created{access}", console.noun)),
            Err(e) => {
                if let Err(undo) = self.admin.delete_instance(actor, scope.kind(), &name).await {
                    tracing::warn!(kind = scope.kind(), %name, error = %undo, "could not undo a half-created instance");
                }
                Err(e)
            }
        }
    }

    /// The grants of a new instance: `owner` for its creator when the kind asks for it, and
    /// anonymous reading as `auth=` or the kind's default says. Returns the `(public; ...)`
    /// note of the reply, empty for kinds without an access path.
    async fn grant_new(
        &self,
        actor: &Principal,
        scope: Scope,
        name: &str,
        access: Option<bool>,
    ) -> Result<String, Failure> {
        let console = scope.console();
        let Some(root) = scope.access_root() else {
            return Ok(String::new());
        };
        let mut owner = String::new();
        if console.owner_on_create {
            let path = format!("{root}/{name}");
            self.admin
                .auth()
                .grant(actor, actor.name(), &path, "owner")
                .await?;
            owner = format!("; owner '{actor}'");
        }
        let public = access.unwrap_or(console.public_by_default);
        self.set_public(actor, scope, name, public).await?;
        Ok(format!(
            " ({}{owner})",
            if public { "public" } else { "private" }
        ))
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
        let Some(root) = scope.access_root() else {
            return Err(Failure::NoAccessPath(scope.name()));
        };
        let path = format!("{root}/{name}");
        if public {
            self.admin
                .auth()
                .grant(actor, "anon", &path, "reader")
                .await?;
        } else {
            self.admin.auth().make_private(actor, &path).await?;
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
        if command != "history" && !self.admin.auth().is_system_admin(actor) {
            return Err(Failure::NotSystemAdmin {
                actor: actor.to_string(),
            });
        }
        if !self.exists(kind, name) {
            return Err(AdminError::NoSuchInstance {
                kind: kind.to_owned(),
                name: name.to_owned(),
            }
            .into());
        }
        let offered = self
            .admin
            .instance_commands(kind, name)
            .filter(|c| c.help().iter().any(|h| h.name == command));
        let Some(commands) = offered else {
            return Err(Failure::NoSuchCommand {
                kind: kind.to_owned(),
                name: name.to_owned(),
                command: command.to_owned(),
            });
        };
        // The kind knows what is wrong; the console knows the whole command line
        // (`/site history <name> [--json]`), so it supplies the usage.
        commands
            .run(actor.clone(), command, args)
            .await
            .map_err(|e| Failure::from_command(e, scope.family().usage_of(command)))
    }
}

/// A settings value as a console word: strings without quotes, everything else as TOML.
fn plain(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A settings value as JSON (`null` when unset).
fn settings_json(value: Option<&toml::Value>) -> serde_json::Value {
    value
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(serde_json::Value::Null)
}
