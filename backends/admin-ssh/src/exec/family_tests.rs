//! Kind families the console has no code for: generated from a factory's console
//! declaration (the example hello kind), settings edits through the host, unknown words.

use super::tests::{CONSOLE, HELLO, OCI, setup_with, start_on, table, user};
use super::*;

/// The hello kind gets `/hello list|create|set|unset|delete` from its declaration alone.
#[tokio::test]
async fn hello_family_end_to_end() {
    let (_env, host) = setup_with(vec![&OCI, &CONSOLE, &HELLO]).await;
    let console = Console::new(host.clone());
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
                "unknown option `colour` (expected vhost, store, auth, greeting, private)",
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
    let help = console.execute(&user("admin"), "/help").await;
    assert!(
        help.stdout.contains("/hello create <name> vhost=<host>"),
        "{help:?}"
    );
    let family = console.execute(&user("admin"), "/hello").await;
    assert!(family.stdout.contains("greeting=<text>"), "{family:?}");
    table(
        &console,
        &[
            ("admin", "/hello delete hi", 0, "hello 'hi' deleted"),
            ("admin", "/hello list", 0, "no hello instances"),
        ],
    )
    .await;
}

/// A word no built-in family and no registered kind claims is an unknown command, with the
/// families that do exist as usage.
#[tokio::test]
async fn unknown_family_words_are_refused_clearly() {
    let (_env, host) = setup_with(vec![&OCI, &CONSOLE]).await;
    let console = Console::new(host);
    let admin = user("admin");
    let reply = console.execute(&admin, "/hello list").await;
    assert_eq!(reply.status, 1);
    assert_eq!(
        reply.stderr,
        "unknown command `/hello`\nusage: /help, /users, /groups, /backends, /oci, /store, /quit\n"
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
    let (env, host) = setup_with(vec![&OCI, &CONSOLE]).await;
    let console = Console::new(host.clone());
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
    let again = start_on(&env, vec![&OCI, &CONSOLE]).await;
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
    let (_env, host) = setup_with(vec![&OCI, &CONSOLE, &HELLO]).await;
    let console = Console::new(host.clone());
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
