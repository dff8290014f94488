//! `/keys`: a user's own SSH keys (self-service; every user may run it).

use super::args::{Args, take1};
use crate::usage::UsageError;

/// `/keys` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the fields are the arguments the variant's usage names"
)]
pub enum KeysCmd {
    /// `list [--json]`.
    List { json: bool },
    /// `add <openssh public key>`.
    Add { key: String },
    /// `remove <fingerprint>`.
    Remove { fingerprint: String },
}

/// Parses a `/keys` sub-command whose name the family already accepted.
pub(super) fn parse_keys(sub: &str, a: &Args<'_>) -> Result<KeysCmd, UsageError> {
    Ok(match sub {
        "list" => {
            a.exactly(&[])?;
            KeysCmd::List { json: a.json }
        }
        "add" => {
            let (first, rest) = a.at_least(&["<openssh public key>"])?;
            // The key may arrive as one quoted word or as its space-separated parts.
            KeysCmd::Add {
                key: first.into_iter().chain(rest).collect::<Vec<_>>().join(" "),
            }
        }
        _ => KeysCmd::Remove {
            fingerprint: take1(a.exactly(&["<fingerprint>"])?),
        },
    })
}
