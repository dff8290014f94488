//! The audit form of a console line: what the audit log records.
//!
//! Only the parsed command is logged, rebuilt from its fields with every secret replaced, so a
//! typo can never put a password in the log verbatim (`/users ad zed PASSWORD` does not parse
//! and is logged as `/users <unparsable>`). Values are quoted so a crafted name cannot forge
//! extra fields or lines in the log.

use crate::command::{BackendsCmd, Command, GroupsCmd, InstanceCmd, KeysCmd, UsersCmd, parse_with};
use crate::families::Families;
use crate::store_cmd::StoreCmd;

/// Placeholder for a redacted secret.
const REDACTED: &str = "<redacted>";

/// The line as the audit log records it: the parsed command with secrets redacted, or, for a
/// line that does not parse, at most its family word.
pub fn audit_form(families: &Families, line: &str) -> String {
    match parse_with(families, line) {
        Ok(command) => render(&command),
        Err(_) => {
            let first = line.split_whitespace().next().unwrap_or_default();
            match families
                .all()
                .into_iter()
                .find(|f| first == format!("/{}", f.name()))
            {
                Some(family) => format!("/{} <unparsable>", family.name()),
                None => "<unparsable>".to_owned(),
            }
        }
    }
}

/// Quotes a user-supplied word so it reads back as exactly one word on one line: shell
/// quoting, or Rust string escaping when the word holds control characters.
fn q(word: &str) -> String {
    if word.chars().any(char::is_control) {
        return format!("{word:?}");
    }
    shlex::try_quote(word).map_or_else(|_| format!("{word:?}"), |w| w.into_owned())
}

fn json(flag: bool) -> &'static str {
    if flag { " --json" } else { "" }
}

fn render(command: &Command) -> String {
    match command {
        Command::Empty => String::new(),
        Command::Help(None) => "/help".to_owned(),
        Command::Help(Some(family)) => format!("/help {}", family.name()),
        Command::Quit => "/quit".to_owned(),
        Command::Users(cmd) => format!("/users {}", users(cmd)),
        Command::Groups(cmd) => format!("/groups {}", groups(cmd)),
        Command::Backends(cmd) => format!("/backends {}", backends(cmd)),
        Command::Instances(scope, cmd) => format!("/{} {}", scope.name(), instances(cmd)),
        Command::Store(cmd) => format!("/store {}", store(cmd)),
        // Names and a flag: nothing secret.
        Command::Tls(crate::tls_cmd::TlsCmd::List { json: j }) => format!("/tls list{}", json(*j)),
        Command::Tls(crate::tls_cmd::TlsCmd::Renew { name }) => format!("/tls renew {}", q(name)),
        Command::Passwd => "/passwd".to_owned(),
        Command::Keys(KeysCmd::List { json: j }) => format!("/keys list{}", json(*j)),
        Command::Keys(KeysCmd::Add { key }) => format!("/keys add {} {REDACTED}", algorithm(key)),
        Command::Keys(KeysCmd::Remove { fingerprint }) => {
            format!("/keys remove {}", q(fingerprint))
        }
    }
}

/// The audit form of a password entered at a prompt: the command with the login it was for
/// (quoted like every other value) and never the password.
pub fn prompted(add: bool, login: &str) -> String {
    let verb = if add { "add" } else { "passwd" };
    format!("/users {verb} {} <prompted>", q(login))
}

/// A public key is not secret, but a mistyped one may be a pasted password: only its
/// algorithm word is kept, and only when it looks like one.
fn algorithm(key: &str) -> String {
    let word = key
        .split_whitespace()
        .next()
        .filter(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-"))
        .unwrap_or("key");
    q(word)
}

fn users(cmd: &UsersCmd) -> String {
    match cmd {
        UsersCmd::List { json: j } => format!("list{}", json(*j)),
        UsersCmd::Add { login, .. } => format!("add {} {REDACTED}", q(login)),
        UsersCmd::Passwd { login, .. } => format!("passwd {} {REDACTED}", q(login)),
        UsersCmd::Remove { login } => format!("remove {}", q(login)),
        UsersCmd::Grant { login, path, role } => {
            format!("grant {} {} {}", q(login), q(path), q(role))
        }
        UsersCmd::Revoke { login, path } => format!("revoke {} {}", q(login), q(path)),
        UsersCmd::Grants { login, json: j } => format!("grants {}{}", q(login), json(*j)),
        UsersCmd::KeyAdd { login, key } => {
            format!("key add {} {} {REDACTED}", q(login), algorithm(key))
        }
        UsersCmd::KeyRemove { login, fingerprint } => {
            format!("key remove {} {}", q(login), q(fingerprint))
        }
    }
}

fn groups(cmd: &GroupsCmd) -> String {
    match cmd {
        GroupsCmd::List { json: j } => format!("list{}", json(*j)),
        GroupsCmd::Add { name } => format!("add {}", q(name)),
        GroupsCmd::Remove { name } => format!("remove {}", q(name)),
        GroupsCmd::Assign { group, login } => format!("assign {} {}", q(group), q(login)),
        GroupsCmd::Unassign { group, login } => format!("unassign {} {}", q(group), q(login)),
        GroupsCmd::Grant { group, path, role } => {
            format!("grant {} {} {}", q(group), q(path), q(role))
        }
        GroupsCmd::Revoke { group, path } => format!("revoke {} {}", q(group), q(path)),
    }
}

fn backends(cmd: &BackendsCmd) -> String {
    match cmd {
        BackendsCmd::List { json: j } => format!("list{}", json(*j)),
        BackendsCmd::Enable { names } => format!(
            "enable {}",
            names.iter().map(|n| q(n)).collect::<Vec<_>>().join(" ")
        ),
        BackendsCmd::Disable { name } => format!("disable {}", q(name)),
    }
}

/// `key=value` options. The grammar admits only the generic keys and the settings a kind
/// declares; a kind may declare a secret one, so the value of any key named like a secret is
/// redacted.
fn options(options: &[(String, String)]) -> String {
    options
        .iter()
        .map(|(k, v)| {
            if is_secret_key(k) {
                format!(" {}={REDACTED}", q(k))
            } else {
                // A structured value (`webhooks=[{secret=...}]`) keeps its secrets out too.
                format!(" {}={}", q(k), q(&crate::command::redact_word(v)))
            }
        })
        .collect()
}

/// Whether a settings key names a secret (`password`, `api-token`, `signing-key`, ...).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "key", "credential"]
        .iter()
        .any(|s| key.contains(s))
}

fn instances(cmd: &InstanceCmd) -> String {
    match cmd {
        InstanceCmd::List { json: j } => format!("list{}", json(*j)),
        InstanceCmd::Create { name, options: o } => format!("create {}{}", q(name), options(o)),
        InstanceCmd::Set { name, options: o } => format!("set {}{}", q(name), options(o)),
        InstanceCmd::Unset { name, options: o } => format!("unset {}{}", q(name), options(o)),
        InstanceCmd::Delete { name } => format!("delete {}", q(name)),
        InstanceCmd::Run {
            command,
            name,
            args,
        } => {
            let args: String = args.iter().map(|a| format!(" {}", q(a))).collect();
            format!("{} {}{args}", q(command), q(name))
        }
    }
}

/// `/store` takes store names, numbers and a retention policy: nothing secret, all recorded.
fn store(cmd: &StoreCmd) -> String {
    match cmd {
        StoreCmd::List { json: j } => format!("list{}", json(*j)),
        StoreCmd::Log { store, n, json: j } => format!("log {} -n {n}{}", q(store), json(*j)),
        StoreCmd::Verify { store } => format!("verify {}", q(store)),
        StoreCmd::Gc {
            store,
            grace_secs,
            dry_run,
        } => format!(
            "gc {}{}{}",
            q(store),
            grace_secs.map_or_else(String::new, |g| format!(" --grace-secs {g}")),
            if *dry_run { " --dry-run" } else { "" }
        ),
        StoreCmd::Retention { store, policy } => format!("retention {} {policy}", q(store)),
    }
}

#[cfg(test)]
mod tests {
    use super::audit_form;

    /// A kind may declare a secret setting: its value never reaches the log.
    #[test]
    fn values_of_secret_named_options_are_redacted() {
        let pairs = vec![
            ("api-token".to_owned(), "XyZZy".to_owned()),
            ("greeting".to_owned(), "hi".to_owned()),
            ("signing-key".to_owned(), "XyZZy".to_owned()),
        ];
        assert_eq!(
            super::options(&pairs),
            " api-token=<redacted> greeting=hi signing-key=<redacted>"
        );
        assert_eq!(
            audit_form(
                &crate::test_families::families(),
                "/hello set h greeting=hi"
            ),
            "/hello set h greeting=hi"
        );
    }

    /// A prompted password change names the login it was for, quoted, and nothing else.
    #[test]
    fn prompted_changes_name_the_login() {
        assert_eq!(
            super::prompted(true, "carol"),
            "/users add carol <prompted>"
        );
        assert_eq!(
            super::prompted(false, "a b\nx"),
            "/users passwd \"a b\\nx\" <prompted>"
        );
    }

    #[test]
    fn secrets_and_typos_never_reach_the_log() {
        for (line, logged) in [
            ("/users add zed s3cret-pw", "/users add zed <redacted>"),
            (
                "/users passwd zed 's3cret pw'",
                "/users passwd zed <redacted>",
            ),
            // Typos: the line does not parse, so nothing after the family word is kept.
            ("/users ad zed s3cret-pw", "/users <unparsable>"),
            ("/USERS add zed s3cret-pw", "<unparsable>"),
            (
                "/users key add zed s3cret-pw",
                "/users key add zed key <redacted>",
            ),
            (
                "/users key add zed ssh-ed25519 AAAAC3Nz zed@host",
                "/users key add zed ssh-ed25519 <redacted>",
            ),
            ("s3cret-pw", "<unparsable>"),
            ("/passwd", "/passwd"),
            ("/passwd s3cret-pw", "<unparsable>"),
            ("/keys add s3cret-pw", "/keys add key <redacted>"),
            (
                "/keys add ssh-ed25519 AAAAC3Nz me@host",
                "/keys add ssh-ed25519 <redacted>",
            ),
            ("/keys remove SHA256:abc", "/keys remove SHA256:abc"),
            (
                "/users grant ann http/site/docs reader",
                "/users grant ann http/site/docs reader",
            ),
            (
                "/site create docs vhost=docs.example mode=html auth=private",
                "/site create docs vhost=docs.example mode=html auth=private",
            ),
            ("/site rollback docs 42", "/site rollback docs 42"),
            ("/store log x --json", "/store log x -n 20 --json"),
            (
                "/store gc x --dry-run --grace-secs=0",
                "/store gc x --grace-secs 0 --dry-run",
            ),
            (
                "/store retention x purge-after=1h",
                "/store retention x purge-after=3600s",
            ),
            ("/store retention x s3cret-pw", "/store <unparsable>"),
        ] {
            let got = audit_form(&crate::test_families::families(), line);
            assert_eq!(got, logged, "for {line:?}");
            assert!(!got.contains("s3cret"), "{got}");
        }
    }

    #[test]
    fn values_are_quoted_so_they_cannot_forge_fields() {
        let got = audit_form(
            &crate::test_families::families(),
            "/groups add 'x status=0'",
        );
        assert_eq!(got, "/groups add 'x status=0'");
        let got = audit_form(&crate::test_families::families(), "/users remove \"a\nb\"");
        assert_eq!(got, "/users remove \"a\\nb\"");
    }

    mod props {
        use super::audit_form;
        use crate::command::{parse, tokenize};
        use proptest::prelude::*;

        /// Words the grammar knows, so mutations reach deep into every family's parser.
        const WORDS: &[&str] = &[
            "/users",
            "/groups",
            "/backends",
            "/oci",
            "/site",
            "/help",
            "/quit",
            "add",
            "passwd",
            "remove",
            "grant",
            "revoke",
            "grants",
            "key",
            "list",
            "--json",
            "create",
            "set",
            "unset",
            "delete",
            "gc",
            "history",
            "rollback",
            "/store",
            "log",
            "verify",
            "retention",
            "-n",
            "--grace-secs",
            "--dry-run",
            "keep-commits=3",
            "purge-after=2d",
            "enable",
            "disable",
            "assign",
            "vhost=a.example",
            "auth=private",
            "store=x",
            "mode=html",
            "'",
            "\"",
            "\\",
            "=",
            "http/site/*",
            "reader",
            "owner",
            "é",
            "\u{0}",
        ];

        /// Commands that parse once `{}` holds one (quoted) word, so random values reach
        /// the audit renderer and not only the usage errors.
        const TEMPLATES: &[&str] = &[
            "/users remove {}",
            "/users grant {} http/site/x reader",
            "/users revoke a {}",
            "/groups add {}",
            "/groups assign {} a",
            "/site delete {}",
            "/site create {} vhost=a.example mode=html",
            "/oci set {} store=s",
            "/site rollback docs {}",
            "/users key remove a {}",
            "/backends disable {}",
            "/store log {} -n 3",
            "/store gc {} --dry-run",
            "/store retention {} keep-all",
        ];

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                (prop::sample::select(TEMPLATES), any::<String>()).prop_map(|(t, w)| {
                    t.replace(
                        "{}",
                        &shlex::try_quote(&w).map_or_else(|_| "x".into(), |q| q.into_owned()),
                    )
                }),
                any::<String>(),
                prop::collection::vec(
                    prop_oneof![
                        prop::sample::select(WORDS).prop_map(str::to_owned),
                        any::<String>()
                    ],
                    0..8,
                )
                .prop_map(|w| w.join(" ")),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Any line gives a command or a usage error, never a panic, and its audit form
            /// is one line.
            #[test]
            fn any_line_parses_or_errs(line in line()) {
                // Lines that parse matter most: their values reach the log.
                let _ = tokenize(&line);
                let _ = parse(&line);
                let logged = audit_form(&crate::test_families::families(), &line);
                prop_assert!(!logged.contains('\n'));
            }

            /// Whatever surrounds it, a password given to `/users add` never reaches the log.
            #[test]
            fn passwords_never_logged(login in "[a-z][a-z0-9-]{0,8}", tail in line()) {
                let line = format!("/users add {login} Pw-XyZZy-123 {tail}");
                prop_assert!(!audit_form(&crate::test_families::families(), &line).contains("XyZZy"));
                let line = format!("/users passwd {login} Pw-XyZZy-123");
                prop_assert!(!audit_form(&crate::test_families::families(), &line).contains("XyZZy"));
            }
        }
    }
}
