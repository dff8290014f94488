//! Usage text of every command family, shared by `/help`, bare family commands, usage
//! errors and tab completion (which reads the sub-command words from here). A backend kind's
//! family is generated from its factory's console declaration. The families themselves are
//! `families`' (this module only describes them, so the flow is one way).

use everlock_host::{OptionSpec, OptionValue};

use crate::families::{Families, Family, Scope};

/// The generic `key=value` options every kind family accepts, besides its own settings.
const GENERIC_OPTIONS: [&str; 5] = [
    "vhost=<host>",
    "store=<store>",
    "prefix=<path>",
    "auth=private|public",
    "https-redirect=true|false",
];

impl Family {
    /// The usage lines, one per sub-command.
    pub fn usage(self) -> Vec<String> {
        let fixed: &[&str] = match self {
            Family::Users => &[
                "/users list [--json]",
                "/users add <login> <password>",
                "/users passwd <login> <password>",
                "/users remove <login>",
                "/users grant <login> <path> <role>",
                "/users revoke <login> <path>",
                "/users grants <login> [--json]",
                "/users key add <login> <openssh public key>",
                "/users key remove <login> <fingerprint>",
            ],
            Family::Groups => &[
                "/groups list [--json]",
                "/groups add <name>",
                "/groups remove <name>",
                "/groups assign <group> <login>",
                "/groups unassign <group> <login>",
                "/groups grant <group> <path> <role>",
                "/groups revoke <group> <path>",
            ],
            Family::Backends => &[
                "/backends list [--json]",
                "/backends enable <name>...",
                "/backends disable <name>",
            ],
            Family::Keys => &[
                "/keys list [--json]",
                "/keys add <openssh public key>",
                "/keys remove <fingerprint>",
            ],
            Family::Kind(scope) => return kind_usage(scope),
            Family::Store => &[
                "/store list [--json]",
                "/store log <store> [-n N] [--json]",
                "/store verify <store>",
                "/store gc <store> [--grace-secs N] [--dry-run]",
                "/store retention <store> keep-all|keep-commits=<N>|purge-after=<N>s|m|h|d",
            ],
            Family::Tls => &["/tls list [--json]", "/tls renew <name>"],
        };
        fixed.iter().map(|l| (*l).to_owned()).collect()
    }

    /// The sub-command words, for completion.
    pub fn subcommands(self) -> Vec<String> {
        let mut words: Vec<String> = self
            .usage()
            .iter()
            .filter_map(|u| u.split(' ').nth(1).map(str::to_owned))
            .collect();
        words.dedup();
        words
    }

    /// The usage lines of one sub-command (several for `key`), or the whole family.
    pub fn usage_of(self, sub: &str) -> String {
        let lines: Vec<String> = self
            .usage()
            .into_iter()
            .filter(|u| u.split(' ').nth(1) == Some(sub))
            .collect();
        if lines.is_empty() {
            self.help()
        } else {
            format!("usage: {}", lines.join("\n       "))
        }
    }

    /// The family's help: every usage line, and for a kind the options it accepts.
    pub fn help(self) -> String {
        let mut out = format!("usage: {}", self.usage().join("\n       "));
        if let Family::Kind(scope) = self {
            out.push_str("\noptions: ");
            out.push_str(&kind_options(scope).join(" "));
            let structured = scope
                .console()
                .create_options
                .iter()
                .find(|o| o.value == OptionValue::Toml);
            if let Some(o) = structured {
                // The console splits words like a shell: a TOML value with spaces or quotes
                // must be one quoted word.
                out.push_str(&format!(
                    "\nstructured options take a TOML value, quoted as one word: \
                     '/{} set <name> {}=[{{...}}]'",
                    scope.name(),
                    o.key
                ));
            }
        }
        out
    }
}

/// The `key=value` forms a kind family accepts: the generic ones and the kind's settings.
pub fn kind_options(scope: Scope) -> Vec<String> {
    let declared = scope.console().create_options;
    // A kind's own `auth` values (a registry's `basic|token`) share the generic `auth=` word.
    let kind_auth = declared
        .iter()
        .find(|o| o.key == "auth")
        .filter(|_| scope.access_root().is_some());
    let mut out: Vec<String> = GENERIC_OPTIONS
        .iter()
        .filter(|o| scope.access_root().is_some() || !o.starts_with("auth="))
        .map(|o| match kind_auth {
            Some(a) if o.starts_with("auth=") => format!("{o}|{}", a.allowed.join("|")),
            _ => (*o).to_owned(),
        })
        .collect();
    out.extend(
        declared
            .iter()
            .filter(|o| kind_auth.is_none() || o.key != "auth")
            .map(option_form),
    );
    out
}

/// `key=<placeholder>` or `key=a|b` for one declared option.
fn option_form(o: &OptionSpec) -> String {
    if o.allowed.is_empty() {
        format!("{}={}", o.key, o.summary)
    } else {
        format!("{}={}", o.key, o.allowed.join("|"))
    }
}

/// The usage lines of a kind family, generated from its declaration.
fn kind_usage(scope: Scope) -> Vec<String> {
    let w = scope.name();
    let required: String = scope
        .console()
        .create_options
        .iter()
        .filter(|o| o.required)
        .map(|o| format!(" {}", option_form(o)))
        .collect();
    let mut lines = vec![
        format!("/{w} list [--json]"),
        format!("/{w} create <name> vhost=<host>{required} [<option>=<value>...]"),
        format!("/{w} set <name> <option>=<value>..."),
        format!("/{w} unset <name> vhost=<host>|https-redirect|<option>..."),
        format!("/{w} delete <name>"),
    ];
    for c in scope.console().commands {
        let args = if c.args.is_empty() {
            String::new()
        } else {
            format!(" {}", c.args)
        };
        lines.push(format!("/{w} {} <name>{args}", c.name));
    }
    lines
}

/// `/help` without arguments.
pub fn overview(families: &Families) -> String {
    let mut out = String::from("Everlock admin console. Commands:\n");
    for family in families.all() {
        for line in family.usage() {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str(
        "  /passwd   (your own password: asks for the current one, then the new one twice)\n  \
         /help [<family>]\n  /quit, /exit\n\
         Every user may run /passwd, /keys and /users grants <own login>; everything else needs \
         an administrator.\n\
         On a terminal, leave out <password> in /users add|passwd to be asked for it without echo.\n\
         Scripts (lines piped to `ssh -T host`) stop at the first failing command and exit 1; \
         `ssh host -- --keep-going < script` runs every line and exits with the last status.\n\
         Tab completes commands, logins, groups, instances, roles and paths; Ctrl-R searches \
         the history, which is kept per user across sessions.\n\
         Paths look like http/oci/default or */*/* (owner there = system administrator); roles: reader, writer, owner.\n\
         Instance names: 1-32 lowercase letters, digits and `-`, starting with a letter or digit.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_families::families;

    #[test]
    fn subcommands_come_from_the_usage() {
        assert_eq!(
            Family::Users.subcommands(),
            [
                "list", "add", "passwd", "remove", "grant", "revoke", "grants", "key"
            ]
        );
        let f = families();
        assert_eq!(f.parse("/oci").map(Family::name), Some("oci"));
        assert_eq!(f.parse("site").map(Family::name), Some("site"));
        assert_eq!(f.parse("/nope"), None);
        assert!(Family::Users.usage_of("key").contains("key remove"));
        assert!(overview(&f).contains("/site rollback <name> #<seq>|<commit prefix>"));
        assert!(overview(&f).contains("/hello create <name> vhost=<host>"));
    }

    /// A kind's help names its own settings, with their allowed values.
    #[test]
    fn kind_help_lists_the_declared_options() {
        let f = families();
        let site = f.parse("site").map(Family::help).unwrap_or_default();
        assert!(
            site.contains("/site create <name> vhost=<host> mode=markdown|html"),
            "{site}"
        );
        let oci = f.parse("oci").map(Family::help).unwrap_or_default();
        assert!(oci.contains("allow-delete=<true|false>"), "{oci}");
        assert!(oci.contains("/oci gc <name> [--untagged]"), "{oci}");
    }

    /// A kind's own `auth` values join the generic `auth=` word, and a kind with structured
    /// options says how to quote them.
    #[test]
    fn kind_auth_values_and_structured_options_are_explained() {
        const REG: everlock_host::ConsoleFamily = everlock_host::ConsoleFamily {
            word: "reg",
            noun: "registry",
            default_prefix: None,
            create_options: &[
                OptionSpec {
                    key: "auth",
                    summary: "<basic|token>",
                    required: false,
                    allowed: &["basic", "token"],
                    value: OptionValue::Text,
                },
                OptionSpec {
                    key: "quota",
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
        let help = Family::Kind(Scope::new("reg-http", Some("http/reg"), &REG)).help();
        assert!(help.contains(" auth=private|public|basic|token "), "{help}");
        assert!(!help.contains(" auth=basic|token"), "{help}");
        assert!(help.contains("'/reg set <name> quota=[{...}]'"), "{help}");
        assert!(
            help.contains("/reg unset <name> vhost=<host>|https-redirect|<option>..."),
            "{help}"
        );
    }
}
