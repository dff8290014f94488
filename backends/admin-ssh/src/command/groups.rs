//! `/groups`: the sub-commands and their grammar.

use super::args::{Args, take1, take2, take3};
use crate::usage::UsageError;

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

/// Parses a `/groups` sub-command whose name the family already accepted.
pub(super) fn parse_groups(sub: &str, a: &Args<'_>) -> Result<GroupsCmd, UsageError> {
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
