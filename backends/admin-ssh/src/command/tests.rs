//! The grammar of every family: lines that parse, and mistakes with their usage.

use super::*;

fn ok(line: &str) -> Command {
    parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> String {
    parse(line).expect_err(line).to_string()
}

/// Each line parses into its command.
fn check_parses(cases: &[(&str, Command)]) {
    for (line, expected) in cases {
        assert_eq!(ok(line), *expected, "{line}");
    }
}

#[test]
fn empty_help_and_quit_lines_parse() {
    let cases: Vec<(&str, Command)> = vec![
        ("", Command::Empty),
        ("   ", Command::Empty),
        ("/help", Command::Help(None)),
        (
            "/help oci",
            Command::Help(Some(crate::test_families::oci().family())),
        ),
        ("/help /users", Command::Help(Some(Family::Users))),
        (
            "/oci",
            Command::Help(Some(crate::test_families::oci().family())),
        ),
        ("/quit", Command::Quit),
        ("/exit", Command::Quit),
    ];
    check_parses(&cases);
}

/// `/users`, with quoted words and a key in parts or in one word.
#[test]
fn users_lines_parse() {
    let s = String::from;
    let cases: Vec<(&str, Command)> = vec![
        (
            "/users list",
            Command::Users(UsersCmd::List { json: false }),
        ),
        (
            "/users list --json",
            Command::Users(UsersCmd::List { json: true }),
        ),
        (
            "/users add alice 's3cret pw'",
            Command::Users(UsersCmd::Add {
                login: s("alice"),
                password: s("s3cret pw"),
            }),
        ),
        (
            "/users passwd alice new",
            Command::Users(UsersCmd::Passwd {
                login: s("alice"),
                password: s("new"),
            }),
        ),
        (
            "/users remove bob",
            Command::Users(UsersCmd::Remove { login: s("bob") }),
        ),
        (
            "/users grant alice http/oci/default writer",
            Command::Users(UsersCmd::Grant {
                login: s("alice"),
                path: s("http/oci/default"),
                role: s("writer"),
            }),
        ),
        (
            "/users revoke alice 'http/oci/*'",
            Command::Users(UsersCmd::Revoke {
                login: s("alice"),
                path: s("http/oci/*"),
            }),
        ),
        (
            "/users grants alice --json",
            Command::Users(UsersCmd::Grants {
                login: s("alice"),
                json: true,
            }),
        ),
        (
            "/users key add alice ssh-ed25519 AAAA alice@laptop",
            Command::Users(UsersCmd::KeyAdd {
                login: s("alice"),
                key: s("ssh-ed25519 AAAA alice@laptop"),
            }),
        ),
        (
            "/users key add alice 'ssh-ed25519 AAAA'",
            Command::Users(UsersCmd::KeyAdd {
                login: s("alice"),
                key: s("ssh-ed25519 AAAA"),
            }),
        ),
        (
            "/users key remove alice SHA256:abc",
            Command::Users(UsersCmd::KeyRemove {
                login: s("alice"),
                fingerprint: s("SHA256:abc"),
            }),
        ),
    ];
    check_parses(&cases);
}

/// `/groups` and `/backends`.
#[test]
fn groups_and_backends_lines_parse() {
    let s = String::from;
    let cases: Vec<(&str, Command)> = vec![
        (
            "/groups list",
            Command::Groups(GroupsCmd::List { json: false }),
        ),
        (
            "/groups add backend-team",
            Command::Groups(GroupsCmd::Add {
                name: s("backend-team"),
            }),
        ),
        (
            "/groups assign backend-team alice",
            Command::Groups(GroupsCmd::Assign {
                group: s("backend-team"),
                login: s("alice"),
            }),
        ),
        (
            "/groups grant ops '*/oci/*' owner",
            Command::Groups(GroupsCmd::Grant {
                group: s("ops"),
                path: s("*/oci/*"),
                role: s("owner"),
            }),
        ),
        (
            "/backends enable oci site",
            Command::Backends(BackendsCmd::Enable {
                names: vec![s("oci"), s("site")],
            }),
        ),
        (
            "/backends disable site",
            Command::Backends(BackendsCmd::Disable { name: s("site") }),
        ),
        (
            "/backends list --json",
            Command::Backends(BackendsCmd::List { json: true }),
        ),
    ];
    check_parses(&cases);
}

/// `/oci` and `/site`: options, and the instance's own commands with their arguments.
#[test]
fn instance_lines_parse() {
    let s = String::from;
    let cases: Vec<(&str, Command)> = vec![
        (
            "/oci create team vhost=team.localhost",
            Command::Instances(
                crate::test_families::oci(),
                InstanceCmd::Create {
                    name: s("team"),
                    options: vec![(s("vhost"), s("team.localhost"))],
                },
            ),
        ),
        (
            "/oci gc team --untagged --dry-run",
            Command::Instances(
                crate::test_families::oci(),
                InstanceCmd::Run {
                    command: s("gc"),
                    name: s("team"),
                    args: vec![s("--untagged"), s("--dry-run")],
                },
            ),
        ),
        (
            "/site create docs vhost=docs.localhost mode=markdown auth=private",
            Command::Instances(
                crate::test_families::site(),
                InstanceCmd::Create {
                    name: s("docs"),
                    options: vec![
                        (s("vhost"), s("docs.localhost")),
                        (s("mode"), s("markdown")),
                        (s("auth"), s("private")),
                    ],
                },
            ),
        ),
        (
            "/site rollback docs abc123",
            Command::Instances(
                crate::test_families::site(),
                InstanceCmd::Run {
                    command: s("rollback"),
                    name: s("docs"),
                    args: vec![s("abc123")],
                },
            ),
        ),
        (
            "/site list --json",
            Command::Instances(
                crate::test_families::site(),
                InstanceCmd::List { json: true },
            ),
        ),
    ];
    check_parses(&cases);
}

/// Each line fails with its message as the first line and a usage containing `usage`.
fn check_mistakes(cases: &[(&str, &str, &str)]) {
    for (line, message, usage) in cases {
        let e = err(line);
        let (first, rest) = e.split_once('\n').unwrap_or((&e, ""));
        assert_eq!(first, *message, "{line}");
        assert!(
            rest.starts_with("usage:") && rest.contains(usage),
            "{line}: {e}"
        );
    }
}

#[test]
fn mistakes_say_what_is_wrong_and_show_the_usage() {
    check_mistakes(&[
        ("/nope", "unknown command `/nope`", "usage: /help"),
        (
            "users list",
            "commands start with `/`; got `users`",
            "usage:",
        ),
        (
            "/users frob",
            "unknown sub-command `frob` for /users",
            "/users list [--json]",
        ),
        (
            "/users add alice",
            "missing <password>",
            "usage: /users add <login> <password>",
        ),
        ("/users add", "missing <login>", "usage: /users add"),
        (
            "/users remove a b",
            "unexpected argument `b`",
            "usage: /users remove <login>",
        ),
        ("/users grant a p", "missing <role>", "usage: /users grant"),
        (
            "/users list extra",
            "unexpected argument `extra`",
            "usage: /users list",
        ),
        (
            "/users add a b --json",
            "unexpected argument `--json`",
            "usage: /users add",
        ),
        ("/users key", "missing add|remove", "usage: /users key add"),
        (
            "/users key add alice",
            "missing <openssh public key>",
            "/users key remove",
        ),
        (
            "/users key frob a",
            "unknown key action `frob`",
            "usage: /users key add",
        ),
        (
            "/users key remove alice",
            "missing <fingerprint>",
            "usage: /users key",
        ),
    ]);
}

#[test]
fn mistakes_in_groups_backends_instances_help_and_quit_show_their_usage() {
    check_mistakes(&[
        (
            "/groups assign g",
            "missing <login>",
            "usage: /groups assign <group> <login>",
        ),
        (
            "/backends enable",
            "missing <name>",
            "usage: /backends enable <name>...",
        ),
        (
            "/oci create team",
            "missing vhost=...",
            "usage: /oci create",
        ),
        (
            "/oci create team store=x",
            "missing vhost=...",
            "usage: /oci create",
        ),
        (
            "/oci create team vhost",
            "expected key=value, got `vhost`",
            "usage: /oci create",
        ),
        (
            "/oci set team vhost=",
            "empty value for `vhost`",
            "usage: /oci set",
        ),
        (
            "/site create docs vhost=d",
            "missing mode=...",
            "usage: /site create",
        ),
        (
            "/site history",
            "missing <name>",
            "usage: /site history <name>",
        ),
        ("/oci delete", "missing <name>", "usage: /oci delete <name>"),
        ("/help nope", "no help for `nope`", "usage: /help"),
        ("/quit now", "too many arguments", "usage: /quit"),
        ("/users add 'alice", "unbalanced quotes", "usage:"),
    ]);
}

/// `#<seq>` after the first word is an argument; a line starting with `#` is a comment.
#[test]
fn hashes_start_comments_only_at_the_start_of_a_line() {
    let words = |line: &str| tokenize(line).unwrap();
    assert_eq!(
        words("/site rollback docs #12"),
        ["/site", "rollback", "docs", "#12"]
    );
    assert_eq!(
        words("/x  '#a' \"#b\" \\#c d#e"),
        ["/x", "#a", "#b", "#c", "d#e"]
    );
    assert_eq!(words("/x 'it''s' #1"), ["/x", "its", "#1"]);
    assert!(words("# a comment line").is_empty());
    assert!(words("   #indented comment").is_empty());
    assert_eq!(parse("# note").unwrap(), Command::Empty);
}

/// A structured value quoted as one shell word reaches the option intact (spaces, brackets,
/// quotes and `=`); unquoted, the shell-like splitter breaks it at the space, which is why the
/// help says to quote it.
#[test]
fn a_quoted_structured_value_stays_one_word() {
    let value = r#"quota=[{repositories="team/*", bytes=1000000}]"#;
    assert_eq!(
        tokenize(&format!("/oci set default '{value}'")).unwrap(),
        ["/oci", "set", "default", value]
    );
    assert_eq!(
        tokenize(&format!("/oci set default {value}")).unwrap(),
        [
            "/oci",
            "set",
            "default",
            "quota=[{repositories=team/*,",
            "bytes=1000000}]"
        ]
    );
}

/// `unset` names optional declared settings alone (back to the kind's default), keeps
/// `vhost=<host>` and `https-redirect`, and refuses required settings and unknown words.
#[test]
fn unset_names_optional_settings_alone() {
    let s = String::from;
    check_parses(&[
        (
            "/oci unset team allow-delete https-redirect vhost=team.localhost",
            Command::Instances(
                crate::test_families::oci(),
                InstanceCmd::Unset {
                    name: s("team"),
                    options: vec![
                        (s("allow-delete"), s("")),
                        (s("https-redirect"), s("")),
                        (s("vhost"), s("team.localhost")),
                    ],
                },
            ),
        ),
        (
            "/site unset docs keep-deploys",
            Command::Instances(
                crate::test_families::site(),
                InstanceCmd::Unset {
                    name: s("docs"),
                    options: vec![(s("keep-deploys"), s(""))],
                },
            ),
        ),
    ]);
    check_mistakes(&[(
        "/site unset docs mode",
        "`mode` is required and cannot be unset",
        "/site unset <name> vhost=<host>|https-redirect|<option>...",
    )]);
    assert_names_every_option(
        "/oci unset team allow-delete=false",
        "unknown option `allow-delete=false` (expected vhost=<host>, https-redirect, allow-delete, ",
    );
}

/// An unknown option names the generic keys first, then every setting the registry declares
/// (read from its real declaration, so a new setting is expected without editing this test).
#[test]
fn unknown_options_name_every_declared_setting() {
    assert_names_every_option(
        "/oci create team color=red",
        "unknown option `color` (expected vhost, store, prefix, auth, https-redirect, allow-delete, ",
    );
}

/// `line` fails with a first line starting with `start` that names each of `/oci`'s declared
/// settings once.
fn assert_names_every_option(line: &str, start: &str) {
    let e = err(line);
    let first = e.lines().next().unwrap_or_default();
    assert!(first.starts_with(start) && first.ends_with(')'), "{e}");
    let listed: Vec<&str> = first
        .trim_end_matches(')')
        .split_once("(expected ")
        .map(|(_, l)| l.split(", ").collect())
        .unwrap_or_default();
    for o in crate::test_families::oci().console().create_options {
        let times = listed.iter().filter(|k| **k == o.key).count();
        assert_eq!(times, 1, "{}: {e}", o.key);
    }
}

/// Usage errors carry what is wrong as a typed cause, so callers match on it instead of
/// reading a sentence; the printed line is the cause's own.
#[test]
fn usage_errors_carry_typed_causes() {
    let mistake = |line: &str| parse(line).expect_err(line).mistake;
    assert_eq!(mistake("/users add 'alice"), Mistake::UnbalancedQuotes);
    assert_eq!(mistake("users"), Mistake::NoSlash("users".to_owned()));
    assert_eq!(
        mistake("/nope"),
        Mistake::UnknownCommand("/nope".to_owned())
    );
    assert_eq!(
        mistake("/users frob"),
        Mistake::UnknownSubcommand {
            sub: "frob".to_owned(),
            family: "users",
        }
    );
    assert_eq!(
        mistake("/users remove"),
        Mistake::Missing("<login>".to_owned())
    );
    assert_eq!(
        mistake("/site create docs vhost=d.localhost"),
        Mistake::Missing("mode=...".to_owned())
    );
    assert!(matches!(
        mistake("/oci set default colour=red"),
        Mistake::UnknownOption { got, .. } if got == "colour"
    ));
    assert_eq!(
        mistake("/store log x -n 0"),
        Mistake::OutOfRange {
            flag: "-n",
            min: 1,
            max: 10_000,
            got: "0".to_owned(),
        }
    );
    assert!(matches!(
        mistake("/store retention x keep-some"),
        Mistake::Policy(_)
    ));
    assert_eq!(mistake("/tls renew a b"), Mistake::ExactlyOne("<name>"));
    let e = parse("/passwd now").expect_err("arguments");
    assert_eq!(e.mistake, Mistake::PasswdTakesNoArguments);
    assert_eq!(
        e.to_string().lines().next(),
        Some("/passwd takes no arguments: it asks for the passwords")
    );
}
