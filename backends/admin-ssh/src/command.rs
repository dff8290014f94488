//! Parsing a console line into a [`Command`]: shell-like tokenising (quotes work as in a
//! shell, because OpenSSH joins `ssh host ...` arguments with spaces), then the grammar of
//! each family. Every mistake becomes one line saying what is wrong plus the usage.

use std::fmt;

use crate::help::Family;

/// A parsed console command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Nothing to do (empty line).
    Empty,
    /// `/help [family]`, or a bare family such as `/oci`.
    Help(Option<Family>),
    /// `/quit` or `/exit`.
    Quit,
    /// `/users ...`.
    Users(UsersCmd),
    /// `/groups ...`.
    Groups(GroupsCmd),
    /// `/backends ...`.
    Backends(BackendsCmd),
    /// `/oci ...` or `/site ...`.
    Instances(Scope, InstanceCmd),
    /// `/store ...`.
    Store(crate::store_cmd::StoreCmd),
}

/// `/users` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the fields are the arguments the variant's usage names"
)]
pub enum UsersCmd {
    /// `list [--json]`.
    List { json: bool },
    /// `add <login> <password>`.
    Add { login: String, password: String },
    /// `passwd <login> <password>`.
    Passwd { login: String, password: String },
    /// `remove <login>`.
    Remove { login: String },
    /// `grant <login> <path> <role>`.
    Grant {
        login: String,
        path: String,
        role: String,
    },
    /// `revoke <login> <path>`.
    Revoke { login: String, path: String },
    /// `grants <login> [--json]`.
    Grants { login: String, json: bool },
    /// `key add <login> <key...>`.
    KeyAdd { login: String, key: String },
    /// `key remove <login> <fingerprint>`.
    KeyRemove { login: String, fingerprint: String },
}

/// `/groups` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the fields are the arguments the variant's usage names"
)]
pub enum GroupsCmd {
    /// `list [--json]`.
    List { json: bool },
    /// `add <name>`.
    Add { name: String },
    /// `remove <name>`.
    Remove { name: String },
    /// `assign <group> <login>`.
    Assign { group: String, login: String },
    /// `unassign <group> <login>`.
    Unassign { group: String, login: String },
    /// `grant <group> <path> <role>`.
    Grant {
        group: String,
        path: String,
        role: String,
    },
    /// `revoke <group> <path>`.
    Revoke { group: String, path: String },
}

/// `/backends` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the fields are the arguments the variant's usage names"
)]
pub enum BackendsCmd {
    /// `list [--json]`.
    List { json: bool },
    /// `enable <name>...`.
    Enable { names: Vec<String> },
    /// `disable <name>`.
    Disable { name: String },
}

/// The HTTP backend a `/oci` or `/site` command addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `/oci` = kind `oci-http`.
    Oci,
    /// `/site` = kind `site-http`.
    Site,
}

impl Scope {
    /// The backend kind.
    pub fn kind(self) -> &'static str {
        match self {
            Scope::Oci => "oci-http",
            Scope::Site => "site-http",
        }
    }

    /// The access-path root of the kind's instances (`<root>/<instance>`).
    pub fn access_root(self) -> &'static str {
        match self {
            Scope::Oci => "http/oci",
            Scope::Site => "http/site",
        }
    }

    /// `oci` or `site`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Oci => "oci",
            Scope::Site => "site",
        }
    }

    /// The help family.
    pub fn family(self) -> Family {
        match self {
            Scope::Oci => Family::Oci,
            Scope::Site => Family::Site,
        }
    }
}

/// `/oci` and `/site` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the fields are the arguments the variant's usage names"
)]
pub enum InstanceCmd {
    /// `list [--json]`.
    List { json: bool },
    /// `create <name> key=value...`.
    Create {
        name: String,
        options: Vec<(String, String)>,
    },
    /// `set <name> key=value...`.
    Set {
        name: String,
        options: Vec<(String, String)>,
    },
    /// `unset <name> key=value...`.
    Unset {
        name: String,
        options: Vec<(String, String)>,
    },
    /// `delete <name>`.
    Delete { name: String },
    /// A maintenance command the instance implements (`gc`, `history`, `rollback`).
    Run {
        command: String,
        name: String,
        args: Vec<String>,
    },
}

/// A line that does not parse: what is wrong, and the usage to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// One line saying what is wrong.
    pub message: String,
    /// The usage lines.
    pub usage: String,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.message, self.usage)
    }
}

impl std::error::Error for UsageError {}

/// Splits a line like a POSIX shell: quotes group words, backslashes escape.
pub fn tokenize(line: &str) -> Result<Vec<String>, UsageError> {
    shlex::split(line).ok_or_else(|| UsageError {
        message: "unbalanced quotes".to_owned(),
        usage: "usage: quote a word containing spaces once, e.g. /site create \"my site\""
            .to_owned(),
    })
}

/// The usage of `/help`.
const HELP_USAGE: &str = "usage: /help [users|groups|backends|oci|site|store]";

/// Parses one console line.
pub fn parse(line: &str) -> Result<Command, UsageError> {
    let words = tokenize(line)?;
    let Some((first, rest)) = words.split_first() else {
        return Ok(Command::Empty);
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match first.as_str() {
        "/help" => match rest.as_slice() {
            [] => Ok(Command::Help(None)),
            [family] => Family::parse(family)
                .map(|f| Command::Help(Some(f)))
                .ok_or_else(|| UsageError {
                    message: format!("no help for `{family}`"),
                    usage: HELP_USAGE.to_owned(),
                }),
            _ => Err(UsageError {
                message: "too many arguments".to_owned(),
                usage: HELP_USAGE.to_owned(),
            }),
        },
        "/quit" | "/exit" => {
            if rest.is_empty() {
                Ok(Command::Quit)
            } else {
                Err(UsageError {
                    message: "too many arguments".to_owned(),
                    usage: format!("usage: {first}"),
                })
            }
        }
        other => match Family::parse(other).filter(|_| other.starts_with('/')) {
            Some(family) if rest.is_empty() => Ok(Command::Help(Some(family))),
            Some(family) => parse_family(family, &rest),
            None => Err(UsageError {
                message: if other.starts_with('/') {
                    format!("unknown command `{other}`")
                } else {
                    format!("commands start with `/`; got `{other}`")
                },
                usage: "usage: /help, /users, /groups, /backends, /oci, /site, /store, /quit"
                    .to_owned(),
            }),
        },
    }
}

/// Arguments of one sub-command, consumed with precise errors.
struct Args<'a> {
    family: Family,
    sub: &'a str,
    words: Vec<&'a str>,
    json: bool,
}

impl<'a> Args<'a> {
    fn new(
        family: Family,
        sub: &'a str,
        words: &[&'a str],
        allow_json: bool,
    ) -> Result<Self, UsageError> {
        let mut args = Args {
            family,
            sub,
            words: Vec::new(),
            json: false,
        };
        for w in words {
            if *w == "--json" && allow_json {
                args.json = true;
            } else {
                args.words.push(w);
            }
        }
        Ok(args)
    }

    fn error(&self, message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            usage: self.family.usage_of(self.sub),
        }
    }

    /// Exactly `names.len()` arguments.
    fn exactly(&self, names: &[&str]) -> Result<Vec<String>, UsageError> {
        if let Some(missing) = names.get(self.words.len()) {
            return Err(self.error(format!("missing {missing}")));
        }
        if let Some(extra) = self.words.get(names.len()) {
            return Err(self.error(format!("unexpected argument `{extra}`")));
        }
        Ok(self.words.iter().map(|w| (*w).to_owned()).collect())
    }

    /// The first `names.len()` arguments and the rest.
    fn at_least(&self, names: &[&str]) -> Result<(Vec<String>, Vec<String>), UsageError> {
        if let Some(missing) = names.get(self.words.len()) {
            return Err(self.error(format!("missing {missing}")));
        }
        let (head, tail) = self.words.split_at(names.len());
        Ok((
            head.iter().map(|w| (*w).to_owned()).collect(),
            tail.iter().map(|w| (*w).to_owned()).collect(),
        ))
    }
}

fn take2(v: Vec<String>) -> (String, String) {
    let mut it = v.into_iter();
    (it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

fn take3(v: Vec<String>) -> (String, String, String) {
    let mut it = v.into_iter();
    (
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    )
}

fn take1(v: Vec<String>) -> String {
    v.into_iter().next().unwrap_or_default()
}

fn parse_family(family: Family, words: &[&str]) -> Result<Command, UsageError> {
    let Some((sub, rest)) = words.split_first() else {
        return Ok(Command::Help(Some(family)));
    };
    let lists = *sub == "list" || *sub == "grants";
    let a = Args::new(family, sub, rest, lists)?;
    if !family.subcommands().contains(sub) {
        return Err(UsageError {
            message: format!("unknown sub-command `{sub}` for /{}", family.name()),
            usage: family.help(),
        });
    }
    match family {
        Family::Users => parse_users(sub, &a).map(Command::Users),
        Family::Groups => parse_groups(sub, &a).map(Command::Groups),
        Family::Backends => parse_backends(sub, &a).map(Command::Backends),
        Family::Oci => {
            parse_instances(Scope::Oci, sub, &a).map(|c| Command::Instances(Scope::Oci, c))
        }
        Family::Site => {
            parse_instances(Scope::Site, sub, &a).map(|c| Command::Instances(Scope::Site, c))
        }
        Family::Store => crate::store_cmd::parse(sub, rest).map(Command::Store),
    }
}

fn parse_users(sub: &str, a: &Args<'_>) -> Result<UsersCmd, UsageError> {
    Ok(match sub {
        "list" => {
            a.exactly(&[])?;
            UsersCmd::List { json: a.json }
        }
        "add" => {
            let (login, password) = take2(a.exactly(&["<login>", "<password>"])?);
            UsersCmd::Add { login, password }
        }
        "passwd" => {
            let (login, password) = take2(a.exactly(&["<login>", "<password>"])?);
            UsersCmd::Passwd { login, password }
        }
        "remove" => UsersCmd::Remove {
            login: take1(a.exactly(&["<login>"])?),
        },
        "grant" => {
            let (login, path, role) = take3(a.exactly(&["<login>", "<path>", "<role>"])?);
            UsersCmd::Grant { login, path, role }
        }
        "revoke" => {
            let (login, path) = take2(a.exactly(&["<login>", "<path>"])?);
            UsersCmd::Revoke { login, path }
        }
        "grants" => UsersCmd::Grants {
            login: take1(a.exactly(&["<login>"])?),
            json: a.json,
        },
        _ => {
            // `key add|remove`.
            let (head, tail) = a.at_least(&["add|remove"])?;
            match take1(head).as_str() {
                "add" => {
                    let Some((login, key)) = tail.split_first() else {
                        return Err(a.error("missing <login>"));
                    };
                    if key.is_empty() {
                        return Err(a.error("missing <openssh public key>"));
                    }
                    // The key may arrive as one quoted word or as its space-separated parts.
                    UsersCmd::KeyAdd {
                        login: login.clone(),
                        key: key.join(" "),
                    }
                }
                "remove" => match tail.as_slice() {
                    [login, fingerprint] => UsersCmd::KeyRemove {
                        login: login.clone(),
                        fingerprint: fingerprint.clone(),
                    },
                    [] => return Err(a.error("missing <login>")),
                    [_] => return Err(a.error("missing <fingerprint>")),
                    [_, _, extra, ..] => {
                        return Err(a.error(format!("unexpected argument `{extra}`")));
                    }
                },
                other => return Err(a.error(format!("unknown key action `{other}`"))),
            }
        }
    })
}

fn parse_groups(sub: &str, a: &Args<'_>) -> Result<GroupsCmd, UsageError> {
    Ok(match sub {
        "list" => {
            a.exactly(&[])?;
            GroupsCmd::List { json: a.json }
        }
        "add" => GroupsCmd::Add {
            name: take1(a.exactly(&["<name>"])?),
        },
        "remove" => GroupsCmd::Remove {
            name: take1(a.exactly(&["<name>"])?),
        },
        "assign" => {
            let (group, login) = take2(a.exactly(&["<group>", "<login>"])?);
            GroupsCmd::Assign { group, login }
        }
        "unassign" => {
            let (group, login) = take2(a.exactly(&["<group>", "<login>"])?);
            GroupsCmd::Unassign { group, login }
        }
        "grant" => {
            let (group, path, role) = take3(a.exactly(&["<group>", "<path>", "<role>"])?);
            GroupsCmd::Grant { group, path, role }
        }
        _ => {
            let (group, path) = take2(a.exactly(&["<group>", "<path>"])?);
            GroupsCmd::Revoke { group, path }
        }
    })
}

fn parse_backends(sub: &str, a: &Args<'_>) -> Result<BackendsCmd, UsageError> {
    Ok(match sub {
        "list" => {
            a.exactly(&[])?;
            BackendsCmd::List { json: a.json }
        }
        "enable" => {
            let (names, more) = a.at_least(&["<name>"])?;
            BackendsCmd::Enable {
                names: names.into_iter().chain(more).collect(),
            }
        }
        _ => BackendsCmd::Disable {
            name: take1(a.exactly(&["<name>"])?),
        },
    })
}

/// The `key=value` options each scope's sub-commands accept.
fn allowed_options(scope: Scope, sub: &str) -> &'static [&'static str] {
    match (scope, sub) {
        (Scope::Oci, "create") | (Scope::Oci, "set") => &["vhost", "store"],
        (Scope::Site, "create") => &["vhost", "mode", "auth", "store"],
        (Scope::Site, "set") => &["vhost", "auth", "store"],
        (_, "unset") => &["vhost"],
        _ => &[],
    }
}

fn parse_instances(scope: Scope, sub: &str, a: &Args<'_>) -> Result<InstanceCmd, UsageError> {
    let options = |words: Vec<String>| -> Result<Vec<(String, String)>, UsageError> {
        let allowed = allowed_options(scope, sub);
        let mut out = Vec::new();
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(a.error(format!("expected key=value, got `{w}`")));
            };
            if !allowed.contains(&k) {
                return Err(a.error(format!(
                    "unknown option `{k}` (expected {})",
                    allowed.join(", ")
                )));
            }
            if v.is_empty() {
                return Err(a.error(format!("empty value for `{k}`")));
            }
            out.push((k.to_owned(), v.to_owned()));
        }
        if out.is_empty() {
            return Err(a.error(format!(
                "missing option ({})",
                allowed
                    .iter()
                    .map(|k| format!("{k}=..."))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(out)
    };
    Ok(match sub {
        "list" => {
            a.exactly(&[])?;
            InstanceCmd::List { json: a.json }
        }
        "create" | "set" | "unset" => {
            let (head, tail) = a.at_least(&["<name>"])?;
            let name = take1(head);
            let options = options(tail)?;
            match sub {
                "create" => {
                    let required: &[&str] = match scope {
                        Scope::Oci => &["vhost"],
                        Scope::Site => &["vhost", "mode"],
                    };
                    for key in required {
                        if !options.iter().any(|(k, _)| k == key) {
                            return Err(a.error(format!("missing {key}=...")));
                        }
                    }
                    InstanceCmd::Create { name, options }
                }
                "set" => InstanceCmd::Set { name, options },
                _ => InstanceCmd::Unset { name, options },
            }
        }
        "delete" => InstanceCmd::Delete {
            name: take1(a.exactly(&["<name>"])?),
        },
        command => {
            let (head, args) = a.at_least(&["<name>"])?;
            InstanceCmd::Run {
                command: command.to_owned(),
                name: take1(head),
                args,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn err(line: &str) -> String {
        parse(line).expect_err(line).to_string()
    }

    #[test]
    fn lines_parse_into_commands() {
        let s = String::from;
        let cases: Vec<(&str, Command)> = vec![
            ("", Command::Empty),
            ("   ", Command::Empty),
            ("/help", Command::Help(None)),
            ("/help oci", Command::Help(Some(Family::Oci))),
            ("/help /users", Command::Help(Some(Family::Users))),
            ("/oci", Command::Help(Some(Family::Oci))),
            ("/quit", Command::Quit),
            ("/exit", Command::Quit),
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
            (
                "/oci create team vhost=team.localhost",
                Command::Instances(
                    Scope::Oci,
                    InstanceCmd::Create {
                        name: s("team"),
                        options: vec![(s("vhost"), s("team.localhost"))],
                    },
                ),
            ),
            (
                "/oci gc team --untagged --dry-run",
                Command::Instances(
                    Scope::Oci,
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
                    Scope::Site,
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
                    Scope::Site,
                    InstanceCmd::Run {
                        command: s("rollback"),
                        name: s("docs"),
                        args: vec![s("abc123")],
                    },
                ),
            ),
            (
                "/site list --json",
                Command::Instances(Scope::Site, InstanceCmd::List { json: true }),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(ok(line), expected, "{line}");
        }
    }

    #[test]
    fn mistakes_say_what_is_wrong_and_show_the_usage() {
        let cases: &[(&str, &str, &str)] = &[
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
                "missing option (vhost=..., store=...)",
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
                "/oci create team color=red",
                "unknown option `color` (expected vhost, store)",
                "usage:",
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
        ];
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
}
