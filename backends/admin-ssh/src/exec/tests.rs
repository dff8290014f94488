//! The interpreter against a started host with stand-in registry and site kinds.

use std::sync::{Arc, LazyLock};

use everlock_host::auth::AdminPassword;
use everlock_host::config::Config;
use everlock_host::test_util::TestEnv;
use everlock_host::{
    Backend, BackendContext, BackendFactory, BuildError, CommandError, CommandFuture, CommandHelp,
    Frontend, Host, InstanceCommands, Registry,
};

use super::*;

/// A minimal HTTP backend standing in for the registry and site kinds, so these tests need
/// no registry or site behind them: it accepts any settings and offers the maintenance
/// commands the real kind declares, answering with what it was asked.
struct Stand(String, &'static [CommandHelp]);
struct StandCommands(String, &'static [CommandHelp]);

impl Backend for Stand {
    fn service(&self) -> everlock_host::Service {
        everlock_host::Service::Http(everlock_host::axum::Router::new())
    }
    fn commands(&self) -> Option<Arc<dyn InstanceCommands>> {
        Some(Arc::new(StandCommands(self.0.clone(), self.1)))
    }
}

impl InstanceCommands for StandCommands {
    fn help(&self) -> &'static [CommandHelp] {
        self.1
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

fn check(_: &toml::Table) -> Result<Vec<everlock_host::api::PathPrefix>, BuildError> {
    Ok(Vec::new())
}
fn build(ctx: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    let commands = crate::test_families::declared_commands(ctx.kind);
    Ok(Box::new(Stand(ctx.instance.to_string(), commands)))
}
/// The stand-in's factory fields; each stand-in takes its kind, access root and console
/// family from the real kind's registration (`test_families`), so only behaviour is stood in.
pub(super) static STAND: BackendFactory = BackendFactory {
    kind: "stand-http",
    frontend: Frontend::Http,
    summary: "test stand-in",
    check,
    build,
    default_instances: Vec::new,
    example_settings: "",
    access_root: None,
    console: None,
};

/// A stand-in for the registered `kind` with its real console declaration.
fn stand_in_for(kind: &str) -> BackendFactory {
    let real = crate::test_families::factory(kind);
    BackendFactory {
        kind: real.kind,
        access_root: real.access_root,
        console: real.console,
        ..STAND
    }
}

/// The registry kind, stood in.
pub(super) static OCI: LazyLock<BackendFactory> =
    LazyLock::new(|| stand_in_for(everlock_backend_oci_http::KIND));
/// The site kind, stood in.
static SITE: LazyLock<BackendFactory> =
    LazyLock::new(|| stand_in_for(everlock_backend_site_http::KIND));

/// A third-party kind the console has no code for: the example hello kind itself, with only
/// its console declaration.
pub(super) static HELLO: LazyLock<&'static BackendFactory> =
    LazyLock::new(|| crate::test_families::factory(everlock_example_hello_backend::KIND));
pub(super) static CONSOLE: BackendFactory = crate::FACTORY;

async fn setup(with_site: bool) -> (TestEnv, Host) {
    let mut factories = vec![&*OCI, &CONSOLE];
    if with_site {
        factories.push(&*SITE);
    }
    setup_with(factories).await
}

pub(super) async fn setup_with(factories: Vec<&'static BackendFactory>) -> (TestEnv, Host) {
    let env = TestEnv::new().await;
    let host = start_on(&env, factories).await;
    (env, host)
}

/// Starts a host on `env`'s data (again, for a restart).
pub(super) async fn start_on(env: &TestEnv, factories: Vec<&'static BackendFactory>) -> Host {
    env.auth
        .bootstrap("admin", AdminPassword::Given("admin-pw".to_owned()))
        .await
        .unwrap();
    let mut host = Host::new(
        Registry::from_factories(factories).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_host::auth::SystemAuthority::for_tests(),
        tokio_util::sync::CancellationToken::new(),
    );
    host.grant_administration(crate::KIND).unwrap();
    let config = Config {
        data_dir: env.dir.path().to_owned(),
        ..Config::default()
    };
    host.start(config).await.unwrap();
    host
}

pub(super) fn user(login: &str) -> Principal {
    Principal::test_user(login)
}

/// Runs `(actor, line, status, expected text)` rows in order; the text must appear in
/// stdout (status 0) or be the first line of stderr (status 1).
pub(super) async fn table(console: &Console, rows: &[(&str, &str, u32, &str)]) {
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
    let console = Console::new(host.test_administration());
    table(
        &console,
        &[
            ("admin", "/users add alice 'alice pw'", 0, "user 'alice' created"),
            ("admin", "/users add alice long-enough", 1, "user 'alice' already exists"),
            ("admin", "/users add carl x", 1, "password too short: use at least 8 characters"),
            ("admin", "/users passwd alice 1234567", 1, "password too short: use at least 8 characters"),
            ("admin", "/users add Bad long-enough", 1, "invalid login `Bad`: use 1-32 lowercase letters, digits and `-`, starting with a letter or digit"),
            ("admin", "/users passwd alice 'new pw!!'", 0, "password updated for 'alice'"),
            ("admin", "/users grant alice http/oci/default writer", 0, "granted writer on http/oci/default to 'alice'"),
            ("admin", "/users grant alice http/oci/default boss", 1, "invalid role `boss`: expected reader, writer or owner"),
            ("alice", "/users grants alice", 0, "http/oci/default writer (direct)"),
            ("alice", "/users list", 1, "permission denied: alice may not read the user list (administrators only)"),
            ("alice", "/users grants admin", 1, "permission denied: alice may not read the grants of 'admin' (only administrators see other users)"),
            ("alice", "/groups list", 1, "permission denied: alice may not read the group list (administrators only)"),
            ("alice", "/users add eve pw", 1, "permission denied: alice may not write users"),
            ("alice", "/groups add x", 1, "permission denied: alice may not write groups"),
            ("admin", "/groups add backend-team", 0, "created group 'backend-team'"),
            ("admin", "/groups assign backend-team alice", 0, "added 'alice' to group 'backend-team'"),
            ("admin", "/groups grant backend-team 'http/site/*' reader", 0, "granted reader on http/site/* to group 'backend-team'"),
            ("admin", "/groups list", 0, "backend-team  members: alice  grants: http/site/* reader"),
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
            // A kind that is not compiled in has no console family at all.
            ("admin", "/site list", 1, "unknown command `/site`"),
            ("admin", "", 0, ""),
        ],
    )
    .await;
    // A changed password takes effect at once, through the same Auth as logins.
    let admin = user("admin");
    assert_eq!(
        console
            .execute(&admin, "/users add bob one-one-one")
            .await
            .status,
        0
    );
    assert_eq!(
        console
            .execute(&admin, "/users passwd bob two-two-two")
            .await
            .status,
        0
    );
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        host.auth()
            .verify_password("bob", "two-two-two", ip)
            .await
            .is_ok()
    );
    assert!(
        host.auth()
            .verify_password("bob", "one-one-one", ip)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn json_lists_are_machine_readable() {
    let (_env, host) = setup(true).await;
    let console = Console::new(host.test_administration());
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

/// A console on a host with registry and site stand-ins, and a plain user `alice`.
async fn console_with_alice() -> (TestEnv, Host, Console) {
    let (env, host) = setup(true).await;
    let console = Console::new(host.test_administration());
    host.auth()
        .add_user(&user("admin"), "alice", "alice-pw-long")
        .await
        .unwrap();
    (env, host, console)
}

#[tokio::test]
async fn oci_instance_commands_apply_live() {
    let (_env, host, console) = console_with_alice().await;
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
            ("admin", "/oci delete team", 0, "oci 'team' deleted"),
            ("admin", "/oci delete team", 1, "no instance oci-http/team"),
        ],
    )
    .await;
    // Every change is live in the routing table.
    assert!(host.instances().iter().all(|i| i.name != "team"));
}

#[tokio::test]
async fn instance_maintenance_commands_need_a_system_administrator() {
    let (_env, _host, console) = console_with_alice().await;
    table(
        &console,
        &[
            (
                "admin",
                "/oci create team vhost=team.localhost",
                0,
                "registry 'team' created",
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
        ],
    )
    .await;
}

#[tokio::test]
async fn site_instance_commands_apply_live_and_grants_follow_auth() {
    let (_env, host, console) = console_with_alice().await;
    table(
        &console,
        &[
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
            .any(|(g, _)| g.path.to_string() == "http/site/docs" && g.role.to_string() == "owner")
    );
}

#[tokio::test]
async fn backend_commands_disable_and_enable_kinds_live() {
    let (_env, _host, console) = console_with_alice().await;
    table(
        &console,
        &[
            (
                "admin",
                "/site create docs vhost=docs.localhost mode=markdown",
                0,
                "site 'docs' created",
            ),
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
}

#[tokio::test]
async fn quit_help_and_output_cap() {
    let (_env, host) = setup(false).await;
    let console = Console::new(host.test_administration());
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
