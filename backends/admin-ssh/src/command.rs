//! Parsing a console line into a [`Command`]: shell-like tokenising (quotes work as in a
//! shell, because OpenSSH joins `ssh host ...` arguments with spaces), then the grammar of
//! each family. Every mistake becomes one line saying what is wrong plus the usage.
//!
//! This file holds the shared part (tokenising, the top-level dispatch; `args` counts arguments);
//! each family's sub-commands and grammar live in a child module, re-exported here so their
//! paths (`command::UsersCmd`, ...) stay as they were.

use crate::families::{Families, Family};
use args::Args;

mod args;
mod backends;
mod groups;
mod instances;
mod keys;
#[cfg(test)]
mod tests;
mod users;

pub use crate::families::Scope;
pub use crate::usage::{Mistake, UsageError};
pub use backends::BackendsCmd;
pub use groups::GroupsCmd;
pub use instances::InstanceCmd;
pub(crate) use instances::{parse_inline, redact_table, redact_word};
pub use keys::KeysCmd;
pub use users::UsersCmd;

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
    /// `/<word> ...` for a backend kind's family (`/oci`, `/site`, ...).
    Instances(Scope, InstanceCmd),
    /// `/store ...`.
    Store(crate::store_cmd::StoreCmd),
    /// `/tls ...`.
    Tls(crate::tls_cmd::TlsCmd),
    /// `/passwd`: the user's own password, asked for (never on the command line).
    Passwd,
    /// `/keys ...`: the user's own SSH keys.
    Keys(KeysCmd),
}

/// The usage of `/passwd`.
pub const PASSWD_USAGE: &str = "usage: /passwd (asks for the current password, then the new one twice; \
     without a terminal it reads those three lines from stdin)";

/// Splits a line like a POSIX shell: quotes group words, backslashes escape. A line that
/// starts with `#` is a comment (scripts may annotate their steps), but a `#` starting a
/// later word is kept: `/site rollback docs #12` names a commit as `history` prints it.
pub fn tokenize(line: &str) -> Result<Vec<String>, UsageError> {
    shlex::split(&escape_inner_hashes(line)).ok_or_else(|| {
        UsageError::new(
            Mistake::UnbalancedQuotes,
            "usage: quote a word containing spaces once, e.g. /site create \"my site\"",
        )
    })
}

/// Escapes each unquoted `#` that starts a word other than the first, so the shell-like
/// splitter reads it as a character instead of the start of a comment.
fn escape_inner_hashes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut word_start = true;
    let mut seen_word = false;
    for c in line.chars() {
        let at_start = std::mem::replace(&mut word_start, false);
        if escaped {
            escaped = false;
        } else if single {
            single = c != '\'';
        } else if c == '\\' {
            escaped = true;
        } else if c == '\'' && !double {
            single = true;
        } else if c == '"' {
            double = !double;
        } else if !double && matches!(c, ' ' | '\t') {
            word_start = true;
        } else if !double && c == '#' && at_start && seen_word {
            out.push('\\');
        }
        if !matches!(c, ' ' | '\t') || single || double {
            seen_word = true;
        }
        out.push(c);
    }
    out
}

/// The usage of `/help`.
fn help_usage(families: &Families) -> String {
    let names: Vec<&str> = families.all().iter().map(|f| f.name()).collect();
    format!("usage: /help [{}]", names.join("|"))
}

/// Parses one console line against the stand-in families of the tests.
#[cfg(test)]
pub fn parse(line: &str) -> Result<Command, UsageError> {
    parse_with(&crate::test_families::families(), line)
}

/// Parses one console line; `families` are the kinds' families the registry declares.
pub fn parse_with(families: &Families, line: &str) -> Result<Command, UsageError> {
    let words = tokenize(line)?;
    let Some((first, rest)) = words.split_first() else {
        return Ok(Command::Empty);
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match first.as_str() {
        "/help" => match rest.as_slice() {
            [] => Ok(Command::Help(None)),
            [family] => families
                .parse(family)
                .map(|f| Command::Help(Some(f)))
                .ok_or_else(|| {
                    UsageError::new(Mistake::NoHelp((*family).to_owned()), help_usage(families))
                }),
            _ => Err(UsageError::new(
                Mistake::TooManyArguments,
                help_usage(families),
            )),
        },
        "/passwd" => {
            if rest.is_empty() {
                Ok(Command::Passwd)
            } else {
                // A password typed on the line would land in shell history and `ps`.
                Err(UsageError::new(
                    Mistake::PasswdTakesNoArguments,
                    PASSWD_USAGE,
                ))
            }
        }
        "/quit" | "/exit" => {
            if rest.is_empty() {
                Ok(Command::Quit)
            } else {
                Err(UsageError::new(
                    Mistake::TooManyArguments,
                    format!("usage: {first}"),
                ))
            }
        }
        other => match families.parse(other).filter(|_| other.starts_with('/')) {
            Some(family) if rest.is_empty() => Ok(Command::Help(Some(family))),
            Some(family) => parse_family(family, &rest),
            None => Err(UsageError::new(
                if other.starts_with('/') {
                    Mistake::UnknownCommand(other.to_owned())
                } else {
                    Mistake::NoSlash(other.to_owned())
                },
                families.summary(),
            )),
        },
    }
}

fn parse_family(family: Family, words: &[&str]) -> Result<Command, UsageError> {
    let Some((sub, rest)) = words.split_first() else {
        return Ok(Command::Help(Some(family)));
    };
    let lists = *sub == "list" || *sub == "grants";
    let a = Args::new(family, sub, rest, lists)?;
    if !family.subcommands().iter().any(|s| s == sub) {
        return Err(UsageError::new(
            Mistake::UnknownSubcommand {
                sub: (*sub).to_owned(),
                family: family.name(),
            },
            family.help(),
        ));
    }
    match family {
        Family::Users => users::parse_users(sub, &a).map(Command::Users),
        Family::Groups => groups::parse_groups(sub, &a).map(Command::Groups),
        Family::Backends => backends::parse_backends(sub, &a).map(Command::Backends),
        Family::Kind(scope) => {
            instances::parse_instances(scope, sub, &a).map(|c| Command::Instances(scope, c))
        }
        Family::Store => crate::store_cmd::parse(sub, rest).map(Command::Store),
        Family::Tls => crate::tls_cmd::parse(sub, rest).map(Command::Tls),
        Family::Keys => keys::parse_keys(sub, &a).map(Command::Keys),
    }
}
