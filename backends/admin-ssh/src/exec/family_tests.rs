//! Kind families the console has no code for: generated from a factory's console
//! declaration (the example hello kind), settings edits through the host, unknown words.

use super::tests::{CONSOLE, HELLO, OCI, setup_with, start_on, table, user};
use super::*;
use everlock_host::{Host, OptionValue};

/// The hello kind gets `/hello list|create|set|unset|delete` from its declaration alone.
#[tokio::test]
async fn hello_family_end_to_end() {
    let (_env, host) = setup_with(vec![&*OCI, &CONSOLE, *HELLO]).await;
    let console = Console::new(host.test_administration());
    table(
        &console,
        &[
            ("admin", "/hello list", 0, "no hello instances"),
            (
                "admin",
                "/hello create hi vhost=hi.localhost prefix=/hello greeting=Howdy",
                0,
                "hello page 'hi' created (private)",
            ),
            (
                "admin",
                "/hello list",
                0,
                "hi  vhosts=hi.localhost  prefix=/hello  store=hello-http-hi  greeting=Howdy",
            ),
            (
                "admin",
                "/hello set hi greeting=Hey private=true vhost=hi2.localhost",
                0,
                "hello 'hi' updated",
            ),
            (
                "admin",
                "/hello set hi private=maybe",
                1,
                "invalid private `maybe`: expected true or false",
            ),
            (
                "admin",
                "/hello set hi colour=red",
                1,
                "unknown option `colour` (expected vhost, store, auth, https-redirect, greeting, private)",
            ),
            (
                "admin",
                "/hello set hi auth=public",
                0,
                "hello 'hi' updated",
            ),
            (
                "admin",
                "/hello unset hi vhost=hi.localhost",
                0,
                "hello 'hi' updated",
            ),
        ],
    )
    .await;
    let hi = host
        .instances()
        .into_iter()
        .find(|i| i.kind == "hello-http" && i.name == "hi")
        .unwrap();
    assert_eq!(hi.settings["greeting"].as_str(), Some("Hey"));
    assert_eq!(hi.settings["private"].as_bool(), Some(true));
    assert_eq!(hi.vhosts, ["hi2.localhost"]);
    let anon = host.auth().grants(&user("admin"), "anon").unwrap();
    assert!(
        anon.iter()
            .any(|(g, _)| g.path.to_string() == "http/hello/hi"),
        "{anon:?}"
    );
    hello_help_comes_from_the_declaration(&console).await;
    table(
        &console,
        &[
            ("admin", "/hello delete hi", 0, "hello 'hi' deleted"),
            ("admin", "/hello list", 0, "no hello instances"),
        ],
    )
    .await;
}

/// `/help` and a bare `/hello` show the family generated from the hello kind's declaration.
async fn hello_help_comes_from_the_declaration(console: &Console) {
    let help = console.execute(&user("admin"), "/help").await;
    assert!(
        help.stdout.contains("/hello create <name> vhost=<host>"),
        "{help:?}"
    );
    let family = console.execute(&user("admin"), "/hello").await;
    assert!(family.stdout.contains("greeting=<text>"), "{family:?}");
}

/// A word no built-in family and no registered kind claims is an unknown command, with the
/// families that do exist as usage.
#[tokio::test]
async fn unknown_family_words_are_refused_clearly() {
    let (_env, host) = setup_with(vec![&*OCI, &CONSOLE]).await;
    let console = Console::new(host.test_administration());
    let admin = user("admin");
    let reply = console.execute(&admin, "/hello list").await;
    assert_eq!(reply.status, 1);
    assert_eq!(
        reply.stderr,
        "unknown command `/hello`\nusage: /help, /users, /groups, /backends, /oci, /store, /tls, /keys, /passwd, /quit\n"
    );
    let reply = console.execute(&admin, "/help hello").await;
    assert!(
        reply.stderr.starts_with("no help for `hello`\n"),
        "{reply:?}"
    );
}

/// `/oci set <name> allow-delete=false` edits the kind's settings through the host, which
/// applies and persists them: a restarted host still has them.
#[tokio::test]
async fn oci_settings_edits_apply_and_persist() {
    let (env, host) = setup_with(vec![&*OCI, &CONSOLE]).await;
    let console = Console::new(host.test_administration());
    table(
        &console,
        &[
            (
                "admin",
                "/oci create default vhost=localhost",
                0,
                "registry 'default' created (private)",
            ),
            (
                "admin",
                "/oci set default allow-delete=false",
                0,
                "oci 'default' updated",
            ),
            (
                "admin",
                "/oci set default allow-delete=no",
                1,
                "invalid allow-delete `no`: expected true or false",
            ),
            (
                "admin",
                "/oci list",
                0,
                "default  vhosts=localhost  prefix=/v2  store=oci-http-default  allow-delete=false",
            ),
        ],
    )
    .await;
    drop(console);
    drop(host);
    let again = start_on(&env, vec![&*OCI, &CONSOLE]).await;
    let default = again
        .instances()
        .into_iter()
        .find(|i| i.kind == "oci-http" && i.name == "default")
        .unwrap();
    assert_eq!(default.settings["allow-delete"].as_bool(), Some(false));
}

/// Creating an instance and granting its access is one operation: when the grants fail, the
/// instance is not left behind.
#[tokio::test]
async fn a_create_whose_grants_fail_leaves_no_instance() {
    let (_env, host) = setup_with(vec![&*OCI, &CONSOLE, *HELLO]).await;
    let console = Console::new(host.test_administration());
    table(
        &console,
        &[
            (
                "admin",
                "/users grant anon 'http/hello/*' reader",
                0,
                "granted reader",
            ),
            (
                "admin",
                "/hello create hi vhost=hi.localhost auth=private",
                1,
                "http/hello/hi stays readable by anon through its grant on http/hello/*; revoke that first",
            ),
        ],
    )
    .await;
    assert!(
        host.instances().iter().all(|i| i.kind != "hello-http"),
        "{:?}",
        host.instances()
    );
    // The name is free for a create that can succeed.
    table(
        &console,
        &[(
            "admin",
            "/hello create hi vhost=hi.localhost auth=public",
            0,
            "hello page 'hi' created (public)",
        )],
    )
    .await;
}

/// A registry-like kind with structured settings and its own `auth` values, checked strictly
/// by a settings type of its own: these tests pin how the console handles structured values
/// and kind `auth` words, independently of how the real registry's settings evolve.
const REG_FAMILY: everlock_host::ConsoleFamily = everlock_host::ConsoleFamily {
    word: "reg",
    noun: "registry",
    default_prefix: Some("/v2"),
    create_options: &[
        everlock_host::OptionSpec {
            key: "auth",
            summary: "<basic|token>",
            required: false,
            allowed: &["basic", "token"],
            value: OptionValue::Text,
        },
        everlock_host::OptionSpec {
            key: "quota",
            summary: "<[{...}]>",
            required: false,
            allowed: &[],
            value: OptionValue::Toml,
        },
        everlock_host::OptionSpec {
            key: "webhooks",
            summary: "<[{...}]>",
            required: false,
            allowed: &[],
            value: OptionValue::Toml,
        },
    ],
    public_by_default: false,
    owner_on_create: false,
    commands: &[],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(dead_code, reason = "only the strict parse matters")]
struct RegSettings {
    auth: Option<RegAuth>,
    quota: Option<Vec<RegQuota>>,
    webhooks: Option<Vec<RegHook>>,
}
#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RegAuth {
    Basic,
    Token,
}
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "only the strict parse matters")]
struct RegQuota {
    repositories: String,
    bytes: u64,
}
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "only the strict parse matters")]
struct RegHook {
    url: String,
    secret: Option<String>,
}
fn check_reg(
    table: &toml::Table,
) -> Result<Vec<everlock_host::api::PathPrefix>, everlock_host::BuildError> {
    everlock_host::parse_settings::<RegSettings>(table).map(|_| Vec::new())
}
static REG: everlock_host::BackendFactory = everlock_host::BackendFactory {
    kind: "reg-http",
    summary: "test registry with structured settings",
    check: check_reg,
    access_root: Some("http/reg"),
    console: Some(REG_FAMILY),
    ..super::tests::STAND
};

fn reg_settings(host: &Host) -> toml::Table {
    host.instances()
        .into_iter()
        .find(|i| i.kind == "reg-http" && i.name == "r")
        .map(|i| i.settings)
        .unwrap()
}

/// The declaration passes the host's own consistency check, `auth` included; an `auth`
/// that would take the access words (or any value) still shadows the generic key.
#[test]
fn a_kind_may_declare_auth_values_other_than_access() {
    REG.check_console().unwrap();
    static SHADOWING: everlock_host::BackendFactory = everlock_host::BackendFactory {
        console: Some(everlock_host::ConsoleFamily {
            create_options: &[everlock_host::OptionSpec {
                key: "auth",
                summary: "<public|token>",
                required: false,
                allowed: &["public", "token"],
                value: OptionValue::Text,
            }],
            ..REG_FAMILY
        }),
        ..REG
    };
    assert!(SHADOWING.check_console().is_err());
}

/// `auth=public|private` is access; `auth=basic|token` is the kind's setting; anything else
/// names all four. `unset` returns a setting to its default.
#[tokio::test]
async fn auth_words_split_between_access_and_the_kind_setting() {
    let (_env, host) = setup_with(vec![&*OCI, &CONSOLE, *HELLO, &REG]).await;
    let console = Console::new(host.test_administration());
    table(
        &console,
        &[
            (
                "admin",
                "/reg create r vhost=r.localhost auth=token",
                0,
                "registry 'r' created (private)",
            ),
            (
                "admin",
                "/reg set r auth=maybe",
                1,
                "invalid auth `maybe`: expected private or public or basic or token",
            ),
            (
                "admin",
                "/hello set nobody auth=token",
                1,
                "invalid auth `token`: expected private or public",
            ),
        ],
    )
    .await;
    assert_eq!(reg_settings(&host)["auth"].as_str(), Some("token"));
    table(
        &console,
        &[
            ("admin", "/reg set r auth=public", 0, "reg 'r' updated"),
            ("admin", "/reg set r auth=basic", 0, "reg 'r' updated"),
        ],
    )
    .await;
    assert_eq!(reg_settings(&host)["auth"].as_str(), Some("basic"));
    let anon = host.auth().grants(&user("admin"), "anon").unwrap();
    assert!(
        anon.iter().any(|(g, _)| g.path.to_string() == "http/reg/r"),
        "{anon:?}"
    );
    table(
        &console,
        &[("admin", "/reg unset r auth", 0, "reg 'r' updated")],
    )
    .await;
    assert!(!reg_settings(&host).contains_key("auth"));
}

/// A TOML inline value, quoted as one word, becomes a structured setting the kind checks;
/// `unset` removes it again.
#[tokio::test]
async fn structured_settings_are_set_checked_and_unset() {
    let (_env, host) = setup_with(vec![&*OCI, &CONSOLE, &REG]).await;
    let console = Console::new(host.test_administration());
    table(
        &console,
        &[
            (
                "admin",
                "/reg create r vhost=r.localhost",
                0,
                "registry 'r' created",
            ),
            (
                "admin",
                r#"/reg set r 'quota=[{repositories="team/*", bytes=1000000}]'"#,
                0,
                "reg 'r' updated",
            ),
            (
                "admin",
                "/reg set r quota=[{oops",
                1,
                "invalid quota: expected a TOML value such as [{...}], quoted as one word",
            ),
        ],
    )
    .await;
    let quota = reg_settings(&host)["quota"].clone();
    let expected: toml::Table = r#"quota = [{repositories = "team/*", bytes = 1000000}]"#
        .parse()
        .unwrap();
    assert_eq!(quota, expected["quota"]);
    wrong_shape_keeps_the_old_quota(&console, &host, &quota).await;
    table(
        &console,
        &[
            ("admin", "/reg unset r quota", 0, "reg 'r' updated"),
            (
                "admin",
                "/reg unset r colour",
                1,
                "unknown option `colour` (expected vhost=<host>, https-redirect, auth, quota, webhooks)",
            ),
        ],
    )
    .await;
    assert!(!reg_settings(&host).contains_key("quota"));
}

/// The kind's strict check refuses a quota of the wrong shape and keeps the old one, which
/// the listing shows as TOML.
async fn wrong_shape_keeps_the_old_quota(console: &Console, host: &Host, quota: &toml::Value) {
    let reply = console
        .execute(
            &user("admin"),
            r#"/reg set r 'quota=[{repositories="team/*", bytes="lots"}]'"#,
        )
        .await;
    assert_eq!(reply.status, 1, "{reply:?}");
    assert_eq!(&reg_settings(host)["quota"], quota);
    let listed = console.execute(&user("admin"), "/reg list").await;
    assert!(
        listed
            .stdout
            .contains(r#"quota=[{ bytes = 1000000, repositories = "team/*" }]"#),
        "{listed:?}"
    );
}

/// A webhook's `secret` typed in the console is stored, but never shown by listings nor
/// recorded by the audit log.
#[tokio::test]
async fn webhook_secrets_stay_out_of_listings_and_the_audit_log() {
    let (_env, host) = setup_with(vec![&*OCI, &CONSOLE, &REG]).await;
    let console = Console::new(host.test_administration());
    let line = r#"/reg set r 'webhooks=[{url="http://hooks.test/x", secret="s3cr3t-hook"}]'"#;
    table(
        &console,
        &[
            (
                "admin",
                "/reg create r vhost=r.localhost",
                0,
                "registry 'r' created",
            ),
            ("admin", line, 0, "reg 'r' updated"),
        ],
    )
    .await;
    let stored = reg_settings(&host)["webhooks"].to_string();
    assert!(stored.contains("s3cr3t-hook"), "{stored}");
    for listing in ["/reg list", "/reg list --json"] {
        let reply = console.execute(&user("admin"), listing).await;
        assert_eq!(reply.status, 0, "{reply:?}");
        assert!(!reply.stdout.contains("s3cr3t-hook"), "{reply:?}");
        assert!(reply.stdout.contains("<redacted>"), "{reply:?}");
        assert!(reply.stdout.contains("http://hooks.test/x"), "{reply:?}");
    }
    let audit = crate::audit::audit_form(console.families(), line);
    assert!(!audit.contains("s3cr3t-hook"), "{audit}");
    assert!(audit.contains("<redacted>"), "{audit}");
    // A malformed structured value naming a secret is redacted whole.
    let broken = r#"/reg set r 'webhooks=[{secret="s3cr3t-hook"'"#;
    let audit = crate::audit::audit_form(console.families(), broken);
    assert!(!audit.contains("s3cr3t-hook"), "{audit}");
}
