//! Running a parsed command as the acting user. Users and groups go straight to `Auth`
//! (which enforces the tiers and commits as the actor); instances and backend kinds go
//! through the host's administration API, which applies every change live and persists it.

use everlock_host::auth::{AuthError, GrantSource, Principal};
use everlock_host::{AdminError, Host, InstanceEdit, InstanceSpec};
use serde_json::json;

use crate::command::{BackendsCmd, Command, GroupsCmd, InstanceCmd, Scope, UsersCmd, parse};
use crate::help;

/// The most output one command may produce; the rest is cut with a note, because SSH output
/// has no backpressure and a listing must not pile up unbounded memory.
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// The result of one console line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Normal output (ends with a newline when not empty).
    pub stdout: String,
    /// The error, one line plus usage when relevant (ends with a newline when not empty).
    pub stderr: String,
    /// 0 on success, 1 on any error.
    pub status: u32,
    /// The user asked to leave.
    pub quit: bool,
}

impl Reply {
    fn ok(text: impl Into<String>) -> Reply {
        let mut stdout = text.into();
        if stdout.len() > MAX_OUTPUT {
            let mut cut = MAX_OUTPUT;
            while !stdout.is_char_boundary(cut) {
                cut -= 1;
            }
            stdout.truncate(cut);
            stdout.push_str("\n... output truncated at 1 MiB\n");
        }
        if !stdout.is_empty() && !stdout.ends_with('\n') {
            stdout.push('\n');
        }
        Reply {
            stdout,
            ..Reply::default()
        }
    }

    fn err(text: impl Into<String>) -> Reply {
        let mut stderr = text.into();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Reply {
            stderr,
            status: 1,
            ..Reply::default()
        }
    }
}

/// Why a handler failed: printed as one line.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Other(String),
}

type Outcome = Result<String, Failure>;

/// The console's command interpreter.
#[derive(Debug, Clone)]
pub struct Console {
    host: Host,
}

impl Console {
    /// An interpreter administering `host`.
    pub fn new(host: Host) -> Console {
        Console { host }
    }

    /// Parses and runs one line as `actor`.
    pub async fn execute(&self, actor: &Principal, line: &str) -> Reply {
        match parse(line) {
            Ok(command) => self.run(actor, command).await,
            Err(e) => Reply::err(e.to_string()),
        }
    }

    /// Runs a parsed command as `actor`.
    pub async fn run(&self, actor: &Principal, command: Command) -> Reply {
        let outcome = match command {
            Command::Empty => Ok(String::new()),
            Command::Quit => {
                return Reply {
                    quit: true,
                    ..Reply::default()
                };
            }
            Command::Help(None) => Ok(help::overview()),
            Command::Help(Some(family)) => Ok(family.help()),
            Command::Users(c) => self.users(actor, c).await,
            Command::Groups(c) => self.groups(actor, c).await,
            Command::Backends(c) => self.backends(actor, c).await,
            Command::Instances(scope, c) => self.instances(actor, scope, c).await,
            Command::Store(c) => crate::store_cmd::execute(&self.host, actor, c)
                .await
                .map_err(Failure::Other),
        };
        match outcome {
            Ok(text) => Reply::ok(text),
            Err(e) => Reply::err(e.to_string()),
        }
    }

    async fn users(&self, actor: &Principal, cmd: UsersCmd) -> Outcome {
        let auth = self.host.auth();
        Ok(match cmd {
            UsersCmd::List { json } => {
                let users = auth.list_users(actor)?;
                if json {
                    let list: Vec<_> = users
                        .iter()
                        .map(|u| {
                            json!({
                                "login": u.login,
                                "display_name": u.display_name,
                                "admin": u.admin,
                                "has_password": u.has_password,
                                "keys": u.keys,
                                "groups": u.groups,
                            })
                        })
                        .collect();
                    to_json(&list)
                } else {
                    users
                        .iter()
                        .map(|u| {
                            let mut line = u.login.clone();
                            if u.admin {
                                line.push_str("  admin");
                            }
                            if !u.groups.is_empty() {
                                line.push_str(&format!("  groups: {}", u.groups.join(", ")));
                            }
                            if !u.keys.is_empty() {
                                line.push_str(&format!("  keys: {}", u.keys.len()));
                            }
                            line + "\n"
                        })
                        .collect()
                }
            }
            UsersCmd::Add { login, password } => {
                auth.add_user(actor, &login, &password).await?;
                format!("user '{login}' created")
            }
            UsersCmd::Passwd { login, password } => {
                auth.set_password(actor, &login, &password).await?;
                format!("password updated for '{login}'")
            }
            UsersCmd::Remove { login } => {
                auth.remove_user(actor, &login).await?;
                format!("user '{login}' removed")
            }
            UsersCmd::Grant { login, path, role } => {
                auth.grant(actor, &login, &path, &role).await?;
                format!("granted {role} on {path} to '{login}'")
            }
            UsersCmd::Revoke { login, path } => {
                if auth.revoke(actor, &login, &path).await? {
                    format!("revoked {path} from '{login}'")
                } else {
                    format!("'{login}' had no grant on {path}")
                }
            }
            UsersCmd::Grants { login, json } => {
                let grants = auth.grants(actor, &login)?;
                let source = |s: &GrantSource| match s {
                    GrantSource::Direct => "direct".to_owned(),
                    GrantSource::Group(g) => format!("group {g}"),
                    GrantSource::Anon => "anon".to_owned(),
                };
                if json {
                    let list: Vec<_> = grants
                        .iter()
                        .map(|(g, s)| {
                            json!({
                                "path": g.path.to_string(),
                                "role": g.role.to_string(),
                                "source": source(s),
                            })
                        })
                        .collect();
                    to_json(&list)
                } else if grants.is_empty() {
                    format!("'{login}' has no grants")
                } else {
                    grants
                        .iter()
                        .map(|(g, s)| format!("{} {} ({})\n", g.path, g.role, source(s)))
                        .collect()
                }
            }
            UsersCmd::KeyAdd { login, key } => {
                let fingerprint = auth.add_key(actor, &login, &key).await?;
                format!("key {fingerprint} added for '{login}'")
            }
            UsersCmd::KeyRemove { login, fingerprint } => {
                auth.remove_key(actor, &login, &fingerprint).await?;
                format!("key {fingerprint} removed from '{login}'")
            }
        })
    }

    async fn groups(&self, actor: &Principal, cmd: GroupsCmd) -> Outcome {
        let auth = self.host.auth();
        Ok(match cmd {
            GroupsCmd::List { json } => {
                let groups = auth.list_groups(actor)?;
                if json {
                    let list: Vec<_> = groups
                        .iter()
                        .map(|g| {
                            json!({
                                "name": g.name,
                                "members": g.members,
                                "grants": g.grants.iter().map(|gr| json!({
                                    "path": gr.path.to_string(),
                                    "role": gr.role.to_string(),
                                })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    to_json(&list)
                } else if groups.is_empty() {
                    "no groups".to_owned()
                } else {
                    groups
                        .iter()
                        .map(|g| {
                            let grants: Vec<String> = g
                                .grants
                                .iter()
                                .map(|gr| format!("{} {}", gr.path, gr.role))
                                .collect();
                            format!(
                                "{}  members: {}  grants: {}\n",
                                g.name,
                                if g.members.is_empty() {
                                    "-".to_owned()
                                } else {
                                    g.members.join(", ")
                                },
                                if grants.is_empty() {
                                    "-".to_owned()
                                } else {
                                    grants.join(", ")
                                },
                            )
                        })
                        .collect()
                }
            }
            GroupsCmd::Add { name } => {
                auth.add_group(actor, &name).await?;
                format!("created group '{name}'")
            }
            GroupsCmd::Remove { name } => {
                auth.remove_group(actor, &name).await?;
                format!("removed group '{name}'")
            }
            GroupsCmd::Assign { group, login } => {
                auth.assign(actor, &group, &login).await?;
                format!("added '{login}' to group '{group}'")
            }
            GroupsCmd::Unassign { group, login } => {
                auth.unassign(actor, &group, &login).await?;
                format!("removed '{login}' from group '{group}'")
            }
            GroupsCmd::Grant { group, path, role } => {
                auth.group_grant(actor, &group, &path, &role).await?;
                format!("granted {role} on {path} to group '{group}'")
            }
            GroupsCmd::Revoke { group, path } => {
                if auth.group_revoke(actor, &group, &path).await? {
                    format!("revoked {path} from group '{group}'")
                } else {
                    format!("group '{group}' had no grant on {path}")
                }
            }
        })
    }

    /// Resolves `oci`, `oci-http` or `backend-oci-http` to a compiled-in kind.
    fn resolve_kind(&self, name: &str) -> Result<&'static str, Failure> {
        let name = name.strip_prefix("backend-").unwrap_or(name);
        let kinds: Vec<&'static str> = self.host.registry().kinds().collect();
        if let Some(kind) = kinds.iter().find(|k| **k == name) {
            return Ok(kind);
        }
        let matches: Vec<&'static str> = kinds
            .iter()
            .copied()
            .filter(|k| {
                k.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(Failure::Other(format!(
                "unknown backend `{name}` (compiled-in: {})",
                kinds.join(", ")
            ))),
            many => Err(Failure::Other(format!(
                "`{name}` is ambiguous: {}",
                many.join(", ")
            ))),
        }
    }

    async fn backends(&self, actor: &Principal, cmd: BackendsCmd) -> Outcome {
        match cmd {
            BackendsCmd::List { json } => {
                let list = self.host.backends().await;
                Ok(if json {
                    to_json(
                        &list
                            .iter()
                            .map(|b| {
                                json!({
                                    "kind": b.kind,
                                    "frontend": b.frontend.to_string(),
                                    "enabled": b.enabled,
                                    "summary": b.summary,
                                })
                            })
                            .collect::<Vec<_>>(),
                    )
                } else {
                    list.iter()
                        .map(|b| {
                            format!(
                                "{:<12} {:<4} {:<8} {}\n",
                                b.kind,
                                b.frontend,
                                if b.enabled { "enabled" } else { "disabled" },
                                b.summary
                            )
                        })
                        .collect()
                })
            }
            BackendsCmd::Enable { names } => {
                let kinds = names
                    .iter()
                    .map(|n| self.resolve_kind(n))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = String::new();
                for kind in kinds {
                    self.host.set_backend_enabled(actor, kind, true).await?;
                    out.push_str(&format!("backend {kind} enabled\n"));
                }
                Ok(out)
            }
            BackendsCmd::Disable { name } => {
                let kind = self.resolve_kind(&name)?;
                if kind == crate::KIND {
                    return Err(Failure::Other(
                        "refusing to disable the admin console from itself".to_owned(),
                    ));
                }
                self.host.set_backend_enabled(actor, kind, false).await?;
                Ok(format!("backend {kind} disabled"))
            }
        }
    }

    async fn instances(&self, actor: &Principal, scope: Scope, cmd: InstanceCmd) -> Outcome {
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

fn parse_access(value: &str) -> Result<bool, Failure> {
    match value {
        "public" => Ok(true),
        "private" => Ok(false),
        other => Err(Failure::Other(format!(
            "invalid auth `{other}`: expected private or public"
        ))),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use everlock_host::auth::AdminPassword;
    use everlock_host::config::Config;
    use everlock_host::test_util::TestEnv;
    use everlock_host::{
        Backend, BackendContext, BackendFactory, BuildError, CommandError, CommandFuture,
        CommandHelp, Frontend, InstanceCommands, Registry,
    };

    use super::*;

    /// A minimal HTTP backend standing in for the registry and site kinds, whose crates this
    /// one does not depend on: it accepts any settings and offers the console commands the
    /// real ones do, answering with what it was asked.
    struct Stand(String);
    struct StandCommands(String);

    impl Backend for Stand {
        fn http_router(&self) -> Option<everlock_host::axum::Router> {
            Some(everlock_host::axum::Router::new())
        }
        fn commands(&self) -> Option<Arc<dyn InstanceCommands>> {
            Some(Arc::new(StandCommands(self.0.clone())))
        }
    }

    impl InstanceCommands for StandCommands {
        fn help(&self) -> &'static [CommandHelp] {
            &[
                CommandHelp {
                    name: "gc",
                    args: "[--untagged] [--dry-run]",
                    summary: "gc",
                },
                CommandHelp {
                    name: "history",
                    args: "",
                    summary: "history",
                },
                CommandHelp {
                    name: "rollback",
                    args: "<commit>",
                    summary: "rollback",
                },
            ]
        }
        fn run(&self, actor: Principal, command: &str, args: Vec<String>) -> CommandFuture {
            let text = format!("{} ran {command} {} as {actor}", self.0, args.join(" "));
            Box::pin(async move {
                if args.iter().any(|a| a == "--bad") {
                    Err(CommandError::Usage("unknown flag --bad".to_owned()))
                } else {
                    Ok(text)
                }
            })
        }
    }

    fn check(_: &toml::Table) -> Result<(), BuildError> {
        Ok(())
    }
    fn build(ctx: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
        Ok(Box::new(Stand(ctx.instance.to_string())))
    }
    static OCI: BackendFactory = BackendFactory {
        kind: "oci-http",
        frontend: Frontend::Http,
        summary: "test registry",
        check,
        build,
        default_instances: Vec::new,
        example_settings: "",
        admin: false,
        access_root: Some("http/oci"),
    };
    static SITE: BackendFactory = BackendFactory {
        kind: "site-http",
        summary: "test site",
        access_root: Some("http/site"),
        ..OCI
    };
    static CONSOLE: BackendFactory = crate::FACTORY;

    async fn setup(with_site: bool) -> (TestEnv, Host) {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("admin-pw".to_owned()))
            .await
            .unwrap();
        let mut factories = vec![&OCI, &CONSOLE];
        if with_site {
            factories.push(&SITE);
        }
        let host = Host::new(
            Registry::from_factories(factories).unwrap(),
            env.stores.clone(),
            env.auth.clone(),
            everlock_host::auth::SystemAuthority::for_tests(),
            tokio_util::sync::CancellationToken::new(),
        );
        let config = Config {
            data_dir: env.dir.path().to_owned(),
            ..Config::default()
        };
        host.start(config).await.unwrap();
        (env, host)
    }

    fn user(login: &str) -> Principal {
        Principal::test_user(login)
    }

    /// Runs `(actor, line, status, expected text)` rows in order; the text must appear in
    /// stdout (status 0) or be the first line of stderr (status 1).
    async fn table(console: &Console, rows: &[(&str, &str, u32, &str)]) {
        for (actor, line, status, expected) in rows {
            let reply = console.execute(&user(actor), line).await;
            assert_eq!(reply.status, *status, "{line}: {reply:?}");
            if *status == 0 {
                assert!(reply.stderr.is_empty(), "{line}: {reply:?}");
                assert!(reply.stdout.contains(expected), "{line}: {reply:?}");
            } else {
                assert!(reply.stdout.is_empty(), "{line}: {reply:?}");
                let first = reply.stderr.lines().next().unwrap_or_default();
                assert_eq!(first, *expected, "{line}: {reply:?}");
            }
        }
    }

    #[tokio::test]
    async fn users_and_groups_commands() {
        let (_env, host) = setup(false).await;
        let console = Console::new(host.clone());
        table(
            &console,
            &[
                ("admin", "/users add alice 'alice pw'", 0, "user 'alice' created"),
                ("admin", "/users add alice x", 1, "user 'alice' already exists"),
                ("admin", "/users add Bad x", 1, "invalid login `Bad`: use 1-32 lowercase letters, digits and `-`, starting with a letter or digit"),
                ("admin", "/users passwd alice 'new pw'", 0, "password updated for 'alice'"),
                ("admin", "/users grant alice http/oci/default writer", 0, "granted writer on http/oci/default to 'alice'"),
                ("admin", "/users grant alice http/oci/default boss", 1, "invalid role `boss`: expected reader, writer or owner"),
                ("alice", "/users grants alice", 0, "http/oci/default writer (direct)"),
                ("alice", "/users list", 0, "alice"),
                ("alice", "/users add eve pw", 1, "permission denied: alice may not write users"),
                ("alice", "/groups add x", 1, "permission denied: alice may not write groups"),
                ("admin", "/groups add backend-team", 0, "created group 'backend-team'"),
                ("admin", "/groups assign backend-team alice", 0, "added 'alice' to group 'backend-team'"),
                ("admin", "/groups grant backend-team 'http/site/*' reader", 0, "granted reader on http/site/* to group 'backend-team'"),
                ("alice", "/groups list", 0, "backend-team  members: alice  grants: http/site/* reader"),
                ("alice", "/users grants alice", 0, "http/site/* reader (group backend-team)"),
                ("admin", "/groups revoke backend-team 'http/site/*'", 0, "revoked http/site/* from group 'backend-team'"),
                ("admin", "/groups revoke backend-team 'http/site/*'", 0, "group 'backend-team' had no grant on http/site/*"),
                ("admin", "/groups unassign backend-team alice", 0, "removed 'alice' from group 'backend-team'"),
                ("admin", "/groups remove backend-team", 0, "removed group 'backend-team'"),
                ("admin", "/groups remove backend-team", 1, "no group 'backend-team'"),
                ("admin", "/users revoke alice http/oci/default", 0, "revoked http/oci/default from 'alice'"),
                ("admin", "/users key add alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJtf9yq1AWzgOm/d3FQdwxmzUfbFCh3ppQ/Z8zU0Q6t alice@laptop", 0, "key SHA256:"),
                ("admin", "/users key add alice ssh-ed25519 garbage", 1, "invalid SSH public key: Base64 encoding error: invalid Base64 encoding"),
                ("admin", "/users key remove alice SHA256:nope", 1, "user 'alice' has no key SHA256:nope"),
                ("admin", "/users remove alice", 0, "user 'alice' removed"),
                ("admin", "/users remove alice", 1, "no user 'alice'"),
                ("admin", "/users remove admin", 1, "refusing to remove the last system administrator"),
                ("admin", "/frob", 1, "unknown command `/frob`"),
                ("admin", "/users add x", 1, "missing <password>"),
                ("admin", "/site list", 1, "site backend not enabled"),
                ("admin", "", 0, ""),
            ],
        )
        .await;
        // A changed password takes effect at once, through the same Auth as logins.
        let admin = user("admin");
        assert_eq!(
            console.execute(&admin, "/users add bob one").await.status,
            0
        );
        assert_eq!(
            console
                .execute(&admin, "/users passwd bob two")
                .await
                .status,
            0
        );
        let ip = "127.0.0.1".parse().unwrap();
        assert!(host.auth().verify_password("bob", "two", ip).await.is_ok());
        assert!(host.auth().verify_password("bob", "one", ip).await.is_err());
    }

    #[tokio::test]
    async fn json_lists_are_machine_readable() {
        let (_env, host) = setup(true).await;
        let console = Console::new(host);
        let admin = user("admin");
        let reply = console.execute(&admin, "/users list --json").await;
        let v: serde_json::Value = serde_json::from_str(&reply.stdout).unwrap();
        assert_eq!(v[0]["login"], "admin");
        assert_eq!(v[0]["admin"], true);
        let reply = console.execute(&admin, "/backends list --json").await;
        let v: serde_json::Value = serde_json::from_str(&reply.stdout).unwrap();
        let kinds: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["admin-ssh", "oci-http", "site-http"]);
        console
            .execute(&admin, "/oci create team vhost=team.localhost")
            .await;
        let reply = console.execute(&admin, "/oci list --json").await;
        let v: serde_json::Value = serde_json::from_str(&reply.stdout).unwrap();
        assert_eq!(v[0]["name"], "team");
        assert_eq!(v[0]["vhosts"][0], "team.localhost");
        assert_eq!(v[0]["prefix"], "/v2");
        for line in [
            "/groups list --json",
            "/users grants admin --json",
            "/site list --json",
        ] {
            let reply = console.execute(&admin, line).await;
            assert_eq!(reply.status, 0, "{line}: {reply:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(&reply.stdout)
                    .unwrap()
                    .is_array()
            );
        }
    }

    #[tokio::test]
    async fn instance_and_backend_commands_apply_live() {
        let (_env, host) = setup(true).await;
        let console = Console::new(host.clone());
        host.auth()
            .add_user(&user("admin"), "alice", "pw")
            .await
            .unwrap();
        table(
            &console,
            &[
                ("admin", "/oci list", 0, "no oci instances"),
                (
                    "admin",
                    "/oci create team vhost=team.localhost",
                    0,
                    "registry 'team' created",
                ),
                (
                    "admin",
                    "/oci create team vhost=other.localhost",
                    1,
                    "instance oci-http/team already exists",
                ),
                (
                    "alice",
                    "/oci create x vhost=x.localhost",
                    1,
                    "permission denied: alice is not a system administrator",
                ),
                (
                    "alice",
                    "/oci list",
                    0,
                    "team  vhosts=team.localhost  prefix=/v2  store=oci-http-team",
                ),
                (
                    "admin",
                    "/oci set team vhost=t2.localhost",
                    0,
                    "oci 'team' updated",
                ),
                (
                    "admin",
                    "/oci list",
                    0,
                    "vhosts=team.localhost,t2.localhost",
                ),
                (
                    "admin",
                    "/oci unset team vhost=team.localhost",
                    0,
                    "oci 'team' updated",
                ),
                (
                    "admin",
                    "/oci unset team vhost=nope.localhost",
                    1,
                    "oci-http/team has no vhost nope.localhost",
                ),
                (
                    "admin",
                    "/oci set ghost vhost=g.localhost",
                    1,
                    "no instance oci-http/ghost",
                ),
                (
                    "admin",
                    "/oci gc team --untagged --dry-run",
                    0,
                    "team ran gc --untagged --dry-run as admin",
                ),
                ("admin", "/oci gc team --bad", 1, "unknown flag --bad"),
                (
                    "alice",
                    "/oci gc team",
                    1,
                    "permission denied: alice is not a system administrator",
                ),
                ("admin", "/oci gc ghost", 1, "no instance oci-http/ghost"),
                (
                    "admin",
                    "/site create docs vhost=docs.localhost mode=markdown",
                    0,
                    "site 'docs' created (public; owner 'admin')",
                ),
                (
                    "admin",
                    "/site create d2 vhost=d2.localhost mode=pdf",
                    1,
                    "invalid mode `pdf`: expected markdown or html",
                ),
                (
                    "admin",
                    "/site list",
                    0,
                    "docs  vhosts=docs.localhost  prefix=/  store=site-http-docs  mode=markdown",
                ),
                (
                    "alice",
                    "/site history docs",
                    0,
                    "docs ran history  as alice",
                ),
                (
                    "admin",
                    "/site rollback docs abc",
                    0,
                    "docs ran rollback abc as admin",
                ),
                (
                    "admin",
                    "/site set docs auth=private",
                    0,
                    "site 'docs' updated",
                ),
                (
                    "admin",
                    "/site set docs auth=secret",
                    1,
                    "invalid auth `secret`: expected private or public",
                ),
                ("admin", "/oci delete team", 0, "oci 'team' deleted"),
                ("admin", "/oci delete team", 1, "no instance oci-http/team"),
                (
                    "admin",
                    "/backends disable admin",
                    1,
                    "refusing to disable the admin console from itself",
                ),
                (
                    "admin",
                    "/backends disable nope",
                    1,
                    "unknown backend `nope` (compiled-in: admin-ssh, oci-http, site-http)",
                ),
                (
                    "alice",
                    "/backends disable site",
                    1,
                    "permission denied: alice is not a system administrator",
                ),
                (
                    "admin",
                    "/backends disable site",
                    0,
                    "backend site-http disabled",
                ),
                ("admin", "/site list", 1, "site backend not enabled"),
                ("admin", "/backends list", 0, "site-http    http disabled"),
                (
                    "admin",
                    "/backends enable site backend-oci-http",
                    0,
                    "backend site-http enabled",
                ),
                ("admin", "/site list", 0, "docs"),
            ],
        )
        .await;
        // The site grants follow auth=private/public.
        let anon = host.auth().grants(&user("admin"), "anon").unwrap();
        assert!(
            anon.iter()
                .all(|(g, _)| g.path.to_string() != "http/site/docs"),
            "{anon:?}"
        );
        let admin = host.auth().grants(&user("admin"), "admin").unwrap();
        assert!(
            admin
                .iter()
                .any(|(g, _)| g.path.to_string() == "http/site/docs"
                    && g.role.to_string() == "owner")
        );
        // Every change is live in the routing table.
        assert!(host.instances().iter().all(|i| i.name != "team"));
    }

    #[tokio::test]
    async fn quit_help_and_output_cap() {
        let (_env, host) = setup(false).await;
        let console = Console::new(host);
        let admin = user("admin");
        assert!(console.execute(&admin, "/quit").await.quit);
        assert!(console.execute(&admin, "/exit").await.quit);
        let help = console.execute(&admin, "/help").await;
        assert!(
            help.stdout.contains("/users add <login> <password>"),
            "{help:?}"
        );
        let oci = console.execute(&admin, "/oci").await;
        assert!(
            oci.stdout.starts_with("usage: /oci list [--json]"),
            "{oci:?}"
        );
        let big = Reply::ok("é".repeat(MAX_OUTPUT));
        assert!(big.stdout.len() < MAX_OUTPUT + 100);
        assert!(big.stdout.ends_with("output truncated at 1 MiB\n"));
    }
}
