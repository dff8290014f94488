//! Console tests of the `/store` family against a real host: the lines an administrator types,
//! their output and exit status, and what they change (or, for a dry run, do not change).

use std::time::Duration;

use everlock_host::auth::{AdminPassword, Principal};
use everlock_host::config::Config;
use everlock_host::storage::CommitMeta;
use everlock_host::test_util::TestEnv;
use everlock_host::{
    Backend, BackendContext, BackendFactory, BuildError, DefaultInstance, Frontend, Host, Registry,
};

use crate::exec::Console;

struct Empty;
impl Backend for Empty {
    fn service(&self) -> everlock_host::Service {
        everlock_host::Service::Http(everlock_host::axum::Router::new())
    }
}
fn check(_: &toml::Table) -> Result<Vec<everlock_host::api::PathPrefix>, BuildError> {
    Ok(Vec::new())
}
fn build(_: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    Ok(Box::new(Empty))
}
fn defaults() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "welcome",
        vhosts: &["localhost"],
        prefix: "/",
        store: "site-http-welcome",
        public: false,
        seed: &[],
    }]
}
static SITE: BackendFactory = BackendFactory {
    kind: "site-http",
    frontend: Frontend::Http,
    summary: "test site",
    check,
    build,
    default_instances: defaults,
    example_settings: "",
    access_root: Some("http/site"),
    console: None,
};
static CONSOLE: BackendFactory = crate::FACTORY;

async fn setup() -> (TestEnv, Host) {
    let env = TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("admin-pw".to_owned()))
        .await
        .unwrap();
    let mut host = Host::new(
        Registry::from_factories([&SITE, &CONSOLE]).unwrap(),
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
    host.auth()
        .add_user(&Principal::test_user("admin"), "alice", "alice-pw-long")
        .await
        .unwrap();
    // Two versions of one file, the first big enough to live in an object file.
    let site = env.stores.open("site-http-welcome").await.unwrap();
    let meta = || CommitMeta::new("admin", "deploy");
    site.write("index.html", vec![b'a'; 100_000], meta())
        .await
        .unwrap();
    site.write("index.html", b"v2".to_vec(), meta())
        .await
        .unwrap();
    (env, host)
}

async fn run(console: &Console, actor: &str, line: &str) -> crate::Reply {
    console.execute(&Principal::test_user(actor), line).await
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn store<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[tokio::test]
async fn list_log_verify_and_retention() {
    let (_env, host) = setup().await;
    let console = Console::new(host.test_administration());
    let reply = run(&console, "admin", "/store list").await;
    assert_eq!(reply.status, 0, "{reply:?}");
    let lines: Vec<&str> = reply.stdout.lines().collect();
    assert!(lines[0].starts_with("STORE "), "{reply:?}");
    for (name, used_by) in [
        ("everlock-system", "(system)"),
        ("everlock-users", "(users)"),
        ("site-http-welcome", "site-http/welcome"),
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {reply:?}"));
        assert!(
            line.contains(used_by) && line.ends_with("keep-all"),
            "{line}"
        );
    }

    let list = json(&run(&console, "admin", "/store list --json").await.stdout);
    let welcome = store(&list, "site-http-welcome");
    assert_eq!(welcome["commits"], 2);
    assert_eq!(
        (welcome["objects"].as_u64(), welcome["bytes"].as_u64()),
        (Some(2), Some(100_002))
    );
    assert_eq!(welcome["head"]["seq"], 2);

    let log = json(
        &run(
            &console,
            "admin",
            "/store log site-http-welcome -n 1 --json",
        )
        .await
        .stdout,
    );
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["seq"], 2);
    assert_eq!(log[0]["principal"], "admin");
    let text = run(&console, "admin", "/store log site-http-welcome").await;
    assert_eq!(text.stdout.lines().count(), 2, "{text:?}");
    assert!(text.stdout.contains("admin: deploy"), "{text:?}");

    let verify = run(&console, "admin", "/store verify everlock-users").await;
    assert_eq!(verify.status, 0, "{verify:?}");
    assert!(
        verify.stdout.starts_with("ok: `everlock-users`: "),
        "{verify:?}"
    );

    let set = run(
        &console,
        "admin",
        "/store retention site-http-welcome keep-commits=5",
    )
    .await;
    assert_eq!(
        set.stdout,
        "retention of `site-http-welcome` set to keep-commits=5; the next gc or maintenance run applies it\n"
    );
    let list = json(&run(&console, "admin", "/store list --json").await.stdout);
    assert_eq!(
        store(&list, "site-http-welcome")["retention"],
        "keep-commits=5"
    );
}

#[tokio::test]
async fn gc_dry_run_changes_nothing_and_gc_frees() {
    let (env, host) = setup().await;
    let console = Console::new(host.test_administration());
    let reply = run(
        &console,
        "admin",
        "/store retention site-http-welcome purge-after=0s",
    )
    .await;
    assert_eq!(reply.status, 0, "{reply:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = json(&run(&console, "admin", "/store list --json").await.stdout);
    let dry = run(
        &console,
        "admin",
        "/store gc site-http-welcome --grace-secs 0 --dry-run",
    )
    .await;
    assert_eq!(dry.status, 0, "{dry:?}");
    assert!(
        dry.stdout
            .contains("dry run, nothing changed: 1 versions purged"),
        "{dry:?}"
    );
    let after = json(&run(&console, "admin", "/store list --json").await.stdout);
    for field in ["objects", "bytes", "commits", "head"] {
        assert_eq!(
            store(&before, "site-http-welcome")[field],
            store(&after, "site-http-welcome")[field],
            "{field}"
        );
    }
    // The default grace period (an hour) protects the fresh object from a real run.
    let graced = run(&console, "admin", "/store gc site-http-welcome").await;
    assert!(graced.stdout.contains("removed 0 objects"), "{graced:?}");
    let done = run(
        &console,
        "admin",
        "/store gc site-http-welcome --grace-secs 0",
    )
    .await;
    assert!(
        done.stdout.contains("removed 1 objects (97.7 KiB)"),
        "{done:?}"
    );
    let site = env.stores.open("site-http-welcome").await.unwrap();
    assert_eq!(site.stats().await.unwrap().bytes, 2);
}

#[tokio::test]
async fn mistakes_strangers_and_unknown_stores() {
    let (env, host) = setup().await;
    let console = Console::new(host.test_administration());
    for (actor, line, expected) in [
        (
            "alice",
            "/store list",
            "permission denied: alice is not a system administrator",
        ),
        (
            "alice",
            "/store verify everlock-users",
            "permission denied: alice is not a system administrator",
        ),
        (
            "alice",
            "/store retention everlock-users keep-all",
            "permission denied: alice is not a system administrator",
        ),
        ("admin", "/store log ghost", "no store `ghost`"),
        ("admin", "/store verify Ghost", "no store `Ghost`"),
        ("admin", "/store gc ghost --dry-run", "no store `ghost`"),
        (
            "admin",
            "/store retention ghost keep-all",
            "no store `ghost`",
        ),
        ("admin", "/store log", "missing <store>"),
        (
            "admin",
            "/store gc x --grace-secs",
            "`--grace-secs` needs a number",
        ),
    ] {
        let reply = run(&console, actor, line).await;
        assert_eq!(reply.status, 1, "{line}: {reply:?}");
        assert!(reply.stdout.is_empty(), "{line}: {reply:?}");
        assert_eq!(
            reply.stderr.lines().next(),
            Some(expected),
            "{line}: {reply:?}"
        );
    }
    assert!(
        !env.dir.path().join("ghost").exists(),
        "an unknown store was created"
    );
    let usage = run(&console, "admin", "/store log").await;
    assert!(
        usage
            .stderr
            .contains("usage: /store log <store> [-n N] [--json]"),
        "{usage:?}"
    );
    // Help and completion know the family.
    let help = run(&console, "alice", "/help").await;
    assert!(
        help.stdout
            .contains("/store gc <store> [--grace-secs N] [--dry-run]"),
        "{help:?}"
    );
    let bare = run(&console, "admin", "/store").await;
    assert!(
        bare.stdout.starts_with("usage: /store list [--json]"),
        "{bare:?}"
    );
    assert!(
        crate::complete::candidates(&*host.test_administration(), true, "/st")
            .contains(&"/store".to_owned())
    );
    assert!(
        crate::complete::candidates(&*host.test_administration(), true, "/store ")
            .contains(&"retention".to_owned())
    );
    let names = crate::complete::candidates(&*host.test_administration(), true, "/store verify ");
    assert!(names.contains(&"everlock-users".to_owned()), "{names:?}");
}
