//! `/backends`: the sub-commands and their grammar.

use super::args::{Args, take1};
use crate::usage::UsageError;

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

/// Parses a `/backends` sub-command whose name the family already accepted.
pub(super) fn parse_backends(sub: &str, a: &Args<'_>) -> Result<BackendsCmd, UsageError> {
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
