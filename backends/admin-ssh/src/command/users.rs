//! `/users`: the sub-commands and their grammar.

use super::args::{Args, take1, take2, take3};
use crate::usage::{Mistake, UsageError};

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

/// Parses a `/users` sub-command whose name the family already accepted.
pub(super) fn parse_users(sub: &str, a: &Args<'_>) -> Result<UsersCmd, UsageError> {
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
        _ => parse_key(a)?,
    })
}

/// `key add <login> <key...>` and `key remove <login> <fingerprint>`.
fn parse_key(a: &Args<'_>) -> Result<UsersCmd, UsageError> {
    let (head, tail) = a.at_least(&["add|remove"])?;
    match take1(head).as_str() {
        "add" => {
            let Some((login, key)) = tail.split_first() else {
                return Err(a.error(Mistake::Missing("<login>".to_owned())));
            };
            if key.is_empty() {
                return Err(a.error(Mistake::Missing("<openssh public key>".to_owned())));
            }
            // The key may arrive as one quoted word or as its space-separated parts.
            Ok(UsersCmd::KeyAdd {
                login: login.clone(),
                key: key.join(" "),
            })
        }
        "remove" => match tail.as_slice() {
            [login, fingerprint] => Ok(UsersCmd::KeyRemove {
                login: login.clone(),
                fingerprint: fingerprint.clone(),
            }),
            [] => Err(a.error(Mistake::Missing("<login>".to_owned()))),
            [_] => Err(a.error(Mistake::Missing("<fingerprint>".to_owned()))),
            [_, _, extra, ..] => Err(a.error(Mistake::Unexpected(extra.clone()))),
        },
        other => Err(a.error(Mistake::UnknownKeyAction(other.to_owned()))),
    }
}
