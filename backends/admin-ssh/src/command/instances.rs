//! A kind's family (`/oci`, `/site`, `/hello`, ...): the instance sub-commands, their
//! `key=value` options (the generic ones and the settings the kind declares) and the
//! maintenance commands an instance offers.

use super::{Args, UsageError, take1};
use crate::families::Scope;

/// A kind family's sub-commands.
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

/// The `key=value` options `scope`'s `sub` accepts: the generic keys, then the settings the
/// kind declares (`create` and `set` only; `unset` removes vhosts).
fn allowed_options(scope: Scope, sub: &str) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = match sub {
        "create" => vec!["vhost", "store", "prefix"],
        "set" => vec!["vhost", "store"],
        _ => return vec!["vhost"],
    };
    if scope.access_root().is_some() {
        keys.push("auth");
    }
    keys.extend(scope.console().create_options.iter().map(|o| o.key));
    keys
}

/// Parses `key=value` words against the options `scope`'s `sub` accepts; at least one.
fn parse_options(
    scope: Scope,
    sub: &str,
    a: &Args<'_>,
    words: Vec<String>,
) -> Result<Vec<(String, String)>, UsageError> {
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
    // `create` reports its missing required keys itself, which says more than "an option".
    if out.is_empty() && sub != "create" {
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
}

/// `create`, `set` or `unset <name> key=value...`; `create` needs the scope's required keys.
fn parse_edit(scope: Scope, sub: &str, a: &Args<'_>) -> Result<InstanceCmd, UsageError> {
    let (head, tail) = a.at_least(&["<name>"])?;
    let name = take1(head);
    let options = parse_options(scope, sub, a, tail)?;
    Ok(match sub {
        "create" => {
            let declared = scope.console().create_options.iter();
            let required =
                std::iter::once("vhost").chain(declared.filter(|o| o.required).map(|o| o.key));
            for key in required {
                if !options.iter().any(|(k, _)| k == key) {
                    return Err(a.error(format!("missing {key}=...")));
                }
            }
            InstanceCmd::Create { name, options }
        }
        "set" => InstanceCmd::Set { name, options },
        _ => InstanceCmd::Unset { name, options },
    })
}

/// Parses a kind family's sub-command; unknown names are the instance's own commands.
pub(super) fn parse_instances(
    scope: Scope,
    sub: &str,
    a: &Args<'_>,
) -> Result<InstanceCmd, UsageError> {
    Ok(match sub {
        "list" => {
            a.exactly(&[])?;
            InstanceCmd::List { json: a.json }
        }
        "create" | "set" | "unset" => parse_edit(scope, sub, a)?,
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
