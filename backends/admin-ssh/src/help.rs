//! Usage text of every command family, shared by `/help`, bare family commands, usage
//! errors and tab completion (which reads the sub-command words from here).

/// A command family: `/users`, `/groups`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/users`.
    Users,
    /// `/groups`.
    Groups,
    /// `/backends`.
    Backends,
    /// `/oci`.
    Oci,
    /// `/site`.
    Site,
    /// `/store`.
    Store,
}

impl Family {
    /// Every family, in help order.
    pub const ALL: [Family; 6] = [
        Family::Users,
        Family::Groups,
        Family::Backends,
        Family::Oci,
        Family::Site,
        Family::Store,
    ];

    /// `users`, `groups`, ...
    pub fn name(self) -> &'static str {
        match self {
            Family::Users => "users",
            Family::Groups => "groups",
            Family::Backends => "backends",
            Family::Oci => "oci",
            Family::Site => "site",
            Family::Store => "store",
        }
    }

    /// The family a word (with or without its `/`) names.
    pub fn parse(word: &str) -> Option<Family> {
        let word = word.strip_prefix('/').unwrap_or(word);
        Family::ALL.into_iter().find(|f| f.name() == word)
    }

    /// The usage lines, one per sub-command.
    pub fn usage(self) -> &'static [&'static str] {
        match self {
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
            Family::Oci => &[
                "/oci list [--json]",
                "/oci create <name> vhost=<host> [store=<store>]",
                "/oci set <name> vhost=<host> | store=<store>",
                "/oci unset <name> vhost=<host>",
                "/oci delete <name>",
                "/oci gc <name> [--untagged] [--dry-run] [--grace-secs N]",
            ],
            Family::Site => &[
                "/site list [--json]",
                "/site create <name> vhost=<host> mode=markdown|html [auth=private]",
                "/site set <name> vhost=<host> | auth=private|public",
                "/site unset <name> vhost=<host>",
                "/site delete <name>",
                "/site history <name>",
                "/site rollback <name> <commit>",
            ],
            Family::Store => &[
                "/store list [--json]",
                "/store log <store> [-n N] [--json]",
                "/store verify <store>",
                "/store gc <store> [--grace-secs N] [--dry-run]",
                "/store retention <store> keep-all|keep-commits=<N>|purge-after=<N>s|m|h|d",
            ],
        }
    }

    /// The sub-command words, for completion.
    pub fn subcommands(self) -> Vec<&'static str> {
        let mut words: Vec<&'static str> = self
            .usage()
            .iter()
            .filter_map(|u| u.split(' ').nth(1))
            .collect();
        words.dedup();
        words
    }

    /// The usage lines of one sub-command (several for `key`), or the whole family.
    pub fn usage_of(self, sub: &str) -> String {
        let lines: Vec<&str> = self
            .usage()
            .iter()
            .copied()
            .filter(|u| u.split(' ').nth(1) == Some(sub))
            .collect();
        if lines.is_empty() {
            self.help()
        } else {
            format!("usage: {}", lines.join("\n       "))
        }
    }

    /// The family's help: every usage line.
    pub fn help(self) -> String {
        format!("usage: {}", self.usage().join("\n       "))
    }
}

/// The top-level words, for completion.
pub const TOP_LEVEL: [&str; 9] = [
    "/help",
    "/users",
    "/groups",
    "/backends",
    "/oci",
    "/site",
    "/store",
    "/quit",
    "/exit",
];

/// `/help` without arguments.
pub fn overview() -> String {
    let mut out = String::from("Everlock admin console. Commands:\n");
    for family in Family::ALL {
        for line in family.usage() {
            out.push_str("  ");
            out.push_str(line);
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

    #[test]
    fn subcommands_come_from_the_usage() {
        assert_eq!(
            Family::Users.subcommands(),
            [
                "list", "add", "passwd", "remove", "grant", "revoke", "grants", "key"
            ]
        );
        assert_eq!(Family::parse("/oci"), Some(Family::Oci));
        assert_eq!(Family::parse("site"), Some(Family::Site));
        assert_eq!(Family::parse("/nope"), None);
        assert!(Family::Users.usage_of("key").contains("key remove"));
        assert!(overview().contains("/site rollback <name> <commit>"));
    }
}
