//! Usage errors: a console line that does not parse. This is the bottom of the command
//! grammar, shared by `command` and the family parsers it calls (`store_cmd`, `tls_cmd`), so
//! that those depend on it and never back on `command`.
//!
//! The cause is a typed [`Mistake`] rather than a pre-formatted sentence: callers and tests
//! can match on what went wrong, and the one printed line comes from one place.

use everlock_host::storage::PolicyParseError;

/// A line that does not parse: what is wrong, and the usage to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{mistake}\n{usage}")]
pub struct UsageError {
    /// What is wrong, printed as one line.
    pub mistake: Mistake,
    /// The usage lines.
    pub usage: String,
}

impl UsageError {
    /// A usage error for `mistake`, followed by `usage`.
    pub fn new(mistake: Mistake, usage: impl Into<String>) -> UsageError {
        UsageError {
            mistake,
            usage: usage.into(),
        }
    }
}

/// What is wrong with a console line; each prints as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mistake {
    /// A quote was opened and never closed.
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    /// `/help <word>` for a word that names no family.
    #[error("no help for `{0}`")]
    NoHelp(String),
    /// More words than the command takes, where no single word is to blame.
    #[error("too many arguments")]
    TooManyArguments,
    /// `/passwd` with arguments: a password typed on the line would land in shell history.
    #[error("/passwd takes no arguments: it asks for the passwords")]
    PasswdTakesNoArguments,
    /// `/<word>` for a word that names no command.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// A line whose first word does not start with `/`.
    #[error("commands start with `/`; got `{0}`")]
    NoSlash(String),
    /// A sub-command the family does not have.
    #[error("unknown sub-command `{sub}` for /{family}")]
    UnknownSubcommand {
        /// The word given.
        sub: String,
        /// The family's word, without `/`.
        family: &'static str,
    },
    /// A required argument is missing; the argument's placeholder, e.g. `<login>`.
    #[error("missing {0}")]
    Missing(String),
    /// A word after the last argument the sub-command takes.
    #[error("unexpected argument `{0}`")]
    Unexpected(String),
    /// A sub-command taking exactly one argument got another number of them.
    #[error("expected exactly one {0}")]
    ExactlyOne(&'static str),
    /// `/users key <action>` for an action other than `add` and `remove`.
    #[error("unknown key action `{0}`")]
    UnknownKeyAction(String),
    /// A flag the sub-command does not accept.
    #[error("unknown flag `{0}`")]
    UnknownFlag(String),
    /// A flag given twice.
    #[error("`{0}` given twice")]
    RepeatedFlag(&'static str),
    /// A flag that takes a value given as the last word.
    #[error("`{0}` needs a number")]
    FlagNeedsNumber(&'static str),
    /// `--flag=value` for a flag that takes no value.
    #[error("`{0}` takes no value")]
    FlagTakesNoValue(&'static str),
    /// A numeric flag whose value is not a whole number in its range.
    #[error("`{flag}` must be a whole number from {min} to {max}, got `{got}`")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
        /// The word given.
        got: String,
    },
    /// A retention policy that does not parse.
    #[error(transparent)]
    Policy(#[from] PolicyParseError),
    /// A word of an instance edit that is not `key=value`.
    #[error("expected key=value, got `{0}`")]
    NotKeyValue(String),
    /// An option the sub-command does not accept.
    #[error("unknown option `{got}` (expected {})", .expected.join(", "))]
    UnknownOption {
        /// The key (or word) given.
        got: String,
        /// The forms accepted.
        expected: Vec<String>,
    },
    /// `key=` with nothing after the `=`.
    #[error("empty value for `{0}`")]
    EmptyValue(String),
    /// `set`/`unset` without any option.
    #[error("missing option ({})", .0.iter().map(|k| format!("{k}=...")).collect::<Vec<_>>().join(", "))]
    MissingOption(Vec<String>),
    /// `unset` of a setting the kind requires.
    #[error("`{0}` is required and cannot be unset")]
    RequiredSetting(String),
}
