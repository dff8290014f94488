//! Usage text of every command family, shared by `/help`, bare family commands, usage
//! errors and tab completion (which reads the sub-command words from here). A backend kind's
//! family is generated from its factory's console declaration.

use everlock_host::OptionSpec;

use crate::families::{Families, Scope};

/// A command family: `/users`, `/groups`, ..., or a backend kind's family such as `/oci`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/users`.
    Users,
    /// `/groups`.
    Groups,
    /// `/backends`.
    Backends,
    /// A backend kind's instances (`/oci`, `/site`, `/hello`), as its factory declares.
    Kind(Scope),
    /// `/store`.
    Store,
}

/// The generic `key=value` options every kind family accepts, besides its own settings.
const GENERIC_OPTIONS: [&str; 4] = [
    "vhost=<host>",
    "store=<store>",
    "prefix=<path>",
    "auth=private|public",
];

impl Family {
    /// The families built into the console.
    pub const BUILT_IN: [Family; 4] = [
        Family::Users,
        Family::Groups,
        Family::Backends,
        Family::Store,
    ];

    /// `users`, `groups`, ...
    pub fn name(self) -> &'static str {
        match self {
            Family::Users => "users",
            Family::Groups => "groups",
            Family::Backends => "backends",
            Family::Kind(scope) => scope.name(),
            Family::Store => "store",
        }
    }

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
            Family::Kind(scope) => return kind_usage(scope),
            Family::Store => &[
                "/store list [--json]",
                "/store log <store> [-n N] [--json]",
                "/store verify <store>",
                "/store gc <store> [--grace-secs N] [--dry-run]",
                "/store retention <store> keep-all|keep-commits=<N>|purge-after=<N>s|m|h|d",
            ],
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
        }
        out
    }
}

/// The `key=value` forms a kind family accepts: the generic ones and the kind's settings.
pub fn kind_options(scope: Scope) -> Vec<String> {
    let mut out: Vec<String> = GENERIC_OPTIONS
        .iter()
        .filter(|o| scope.access_root().is_some() || !o.starts_with("auth="))
        .map(|o| (*o).to_owned())
        .collect();
    out.extend(scope.console().create_options.iter().map(option_form));
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
        format!("/{w} unset <name> vhost=<host>"),
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
        "  /help [<family>]\n  /quit, /exit\n\
         On a terminal, leave out <password> in /users add|passwd to be asked for it without echo.\n\
         Paths look like http/oci/default or */*/* (owner there = system administrator); roles: reader, writer, owner.\n",
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
        assert!(overview(&f).contains("/site rollback <name> <commit>"));
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
}
