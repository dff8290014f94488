//! Why a command failed while it ran (after it parsed): a typed cause per failure, so handlers
//! and tests match on what went wrong and the one line printed comes from one place. The
//! causes other layers report (`Auth`, the host's administration, stores, TLS, an instance's
//! own commands) are carried whole, not flattened into their text.

use everlock_host::TlsAdminError;
use everlock_host::auth::{AuthError, PasswordTooShort};
use everlock_host::{AdminError, CommandError};

use crate::command::PASSWD_USAGE;
use crate::store_cmd::StoreCmdError;

/// Why a handler failed: printed as one line (plus the usage, for a command's usage error).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// Users, groups, grants and keys: refused or failed in `Auth`.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Instances and backend kinds: refused or failed in the host's administration.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A `/store` command.
    #[error(transparent)]
    Store(#[from] StoreCmdError),
    /// A `/tls` command.
    #[error(transparent)]
    Tls(#[from] TlsAdminError),
    /// A new password shorter than the console's `min-password-length`.
    #[error(transparent)]
    TooShort(#[from] PasswordTooShort),
    /// `/passwd`'s new password and its repeat differ.
    #[error("passwords do not match")]
    PasswordMismatch,
    /// A script's `/passwd` whose input ended before its three answers.
    #[error(
        "/passwd without a terminal reads three lines from stdin: the current password, \
         the new one and the new one again"
    )]
    PasswdInputEnded,
    /// A piped line longer than a script may send.
    #[error("line too long")]
    LineTooLong,
    /// `/passwd` reached the interpreter without its answers.
    #[error("/passwd needs the passwords from a terminal or stdin\n{PASSWD_USAGE}")]
    PasswdNeedsAnswers,
    /// `/backends enable|disable <name>` naming no compiled-in kind.
    #[error("unknown backend `{name}` (compiled-in: {})", .known.join(", "))]
    UnknownBackend {
        /// The name given.
        name: String,
        /// The compiled-in kinds.
        known: Vec<&'static str>,
    },
    /// A short backend name matching several kinds.
    #[error("`{name}` is ambiguous: {}", .matches.join(", "))]
    AmbiguousBackend {
        /// The name given.
        name: String,
        /// The kinds it matches.
        matches: Vec<&'static str>,
    },
    /// `/backends disable admin-ssh` from the console itself.
    #[error("refusing to disable the admin console from itself")]
    DisableSelf,
    /// A kind family's command while the kind is disabled; the family's word.
    #[error("{0} backend not enabled")]
    NotEnabled(&'static str),
    /// `auth=` for a kind whose instances have no access path; the family's word.
    #[error("{0} instances have no access path: auth= does not apply")]
    NoAccessPath(&'static str),
    /// A value the option does not accept (`expected` are the accepted forms).
    #[error("invalid {key} `{value}`: expected {}", .expected.join(" or "))]
    InvalidValue {
        /// The option.
        key: String,
        /// The value given.
        value: String,
        /// What the option accepts, each alternative on its own.
        expected: Vec<String>,
    },
    /// A structured option whose word is not a TOML value. The word is not kept: it may hold
    /// a secret (a webhook's).
    #[error("invalid {key}: expected a TOML value such as [{{...}}], quoted as one word")]
    InvalidToml {
        /// The option.
        key: String,
    },
    /// A maintenance command other than `history` from a user who is no system administrator.
    #[error("permission denied: {actor} is not a system administrator")]
    NotSystemAdmin {
        /// Who asked.
        actor: String,
    },
    /// A maintenance command the instance does not offer.
    #[error("{kind}/{name} offers no `{command}` command")]
    NoSuchCommand {
        /// The kind.
        kind: String,
        /// The instance.
        name: String,
        /// The command asked for.
        command: String,
    },
    /// A maintenance command's usage error: the kind's one line (if it gave one that is not
    /// itself a usage line) and the command's usage from the family.
    #[error("{}{usage}", .problem.as_ref().map(|p| format!("{p}\n")).unwrap_or_default())]
    CommandUsage {
        /// What the kind says is wrong.
        problem: Option<String>,
        /// The command's usage.
        usage: String,
    },
    /// A maintenance command that failed for any other reason.
    #[error(transparent)]
    Command(CommandError),
}

impl Failure {
    /// A maintenance command's error with the command's `usage` added to a usage error, since
    /// the kind knows what is wrong but the console knows the whole command line.
    pub(crate) fn from_command(error: CommandError, usage: String) -> Failure {
        match error {
            CommandError::Usage(message) => Failure::CommandUsage {
                problem: message
                    .lines()
                    .next()
                    .filter(|first| !first.starts_with("usage:"))
                    .map(str::to_owned),
                usage,
            },
            other => Failure::Command(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind's usage error keeps its own first line and gains the family's usage; a kind
    /// that answers with a usage line alone gets the family's usage instead.
    #[test]
    fn command_usage_errors_keep_the_kinds_line_and_add_the_usage() {
        let usage = "usage: /oci gc <name> [--untagged]".to_owned();
        let f = Failure::from_command(
            CommandError::Usage("unknown flag --bad\nusage: gc".to_owned()),
            usage.clone(),
        );
        assert!(
            matches!(&f, Failure::CommandUsage { problem: Some(p), .. } if p == "unknown flag --bad"),
            "{f:?}"
        );
        assert_eq!(f.to_string(), format!("unknown flag --bad\n{usage}"));
        let f = Failure::from_command(CommandError::Usage("usage: gc".to_owned()), usage.clone());
        assert!(
            matches!(&f, Failure::CommandUsage { problem: None, .. }),
            "{f:?}"
        );
        assert_eq!(f.to_string(), usage);
    }

    /// `/passwd` without its answers says how to give them, with the command's usage.
    #[test]
    fn passwd_without_answers_shows_the_usage() {
        assert_eq!(
            Failure::PasswdNeedsAnswers.to_string(),
            format!("/passwd needs the passwords from a terminal or stdin\n{PASSWD_USAGE}")
        );
    }

    #[test]
    fn values_print_their_alternatives() {
        let f = Failure::InvalidValue {
            key: "auth".to_owned(),
            value: "open".to_owned(),
            expected: vec!["private".to_owned(), "public".to_owned()],
        };
        assert_eq!(
            f.to_string(),
            "invalid auth `open`: expected private or public"
        );
    }
}
