//! What a kind teaches the admin console: its console family (the word, the options `create`
//! and `set` accept, initial access) and the maintenance commands its instances offer. A leaf
//! of the contract, so host administration can speak of families without the build context.

use std::future::Future;
use std::pin::Pin;

use everlock_auth::Principal;

/// A backend kind's admin console family: everything the console needs to list, create,
/// edit and delete the kind's instances. Instance settings the console accepts are exactly
/// `create_options`, checked again by the factory's `check` when the host applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleFamily {
    /// The command word without its `/`, e.g. `oci` for `/oci`.
    pub word: &'static str,
    /// What one instance is called in console messages, e.g. `registry` or `site`.
    pub noun: &'static str,
    /// The path prefix a new instance gets when `create` names none (`/v2` for a registry).
    pub default_prefix: Option<&'static str>,
    /// The kind's settings keys `create` and `set` accept, besides the generic `vhost`,
    /// `store`, `prefix` (create only) and `auth` (kinds with an access root).
    pub create_options: &'static [OptionSpec],
    /// Whether a new instance is readable anonymously unless `auth=private` is given.
    pub public_by_default: bool,
    /// Whether the creator is granted `owner` on the new instance's access path.
    pub owner_on_create: bool,
    /// The maintenance commands every instance of the kind offers, for help and completion
    /// (the instance's own `InstanceCommands::help` decides what actually runs).
    pub commands: &'static [CommandHelp],
}

/// One kind-specific settings key a console family accepts as `key=value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// The settings key, e.g. `mode` or `allow-delete`.
    pub key: &'static str,
    /// The placeholder shown in usage when `allowed` is empty, e.g. `<text>`.
    pub summary: &'static str,
    /// Whether `create` needs it.
    pub required: bool,
    /// The only values accepted, or empty for any value of `value`'s type.
    pub allowed: &'static [&'static str],
    /// How the console turns the word into a settings value.
    pub value: OptionValue,
}

/// The TOML type a console option becomes in the settings table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionValue {
    /// A string.
    Text,
    /// `true` or `false`.
    Bool,
    /// A non-negative integer.
    Integer,
    /// A TOML inline value (`[{repositories="team/*", bytes=1000000}]`): structured settings
    /// such as a registry's quotas, retention rules and webhooks.
    Toml,
}

/// The `key=value` keys the console handles itself, which a kind may not declare.
pub const GENERIC_CONSOLE_KEYS: [&str; 5] = ["vhost", "store", "prefix", "auth", "https-redirect"];

/// The future an instance command returns: its output text, or an error for the operator.
pub type CommandFuture = Pin<Box<dyn Future<Output = Result<String, CommandError>> + Send>>;

/// One console command an instance offers, for help and completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandHelp {
    /// The subcommand word, e.g. `rollback`.
    pub name: &'static str,
    /// Arguments after the instance name, e.g. `<commit>`.
    pub args: &'static str,
    /// One line of help.
    pub summary: &'static str,
}

/// Console commands addressed to one instance: `/<backend> <command> <instance> <args...>`.
/// The console checks the caller's tier before calling; implementations authorize again with
/// `Auth::authorize` for anything instance-specific and record `actor` in their commits.
pub trait InstanceCommands: Send + Sync + 'static {
    /// The commands, in help order.
    fn help(&self) -> &'static [CommandHelp];

    /// Runs `command` with `args` (the words after the instance name) as `actor`.
    fn run(&self, actor: Principal, command: &str, args: Vec<String>) -> CommandFuture;
}

/// Why an instance command failed; the console prints it and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Wrong arguments; the message says what is wrong and shows the usage.
    #[error("{0}")]
    Usage(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    Denied(String),
    /// Something the command names does not exist (a tag, a commit, a repository); the
    /// message says what and where to find what does.
    #[error("{0}")]
    NotFound(String),
    /// The instance's store failed (unreachable, full, corrupt); kept whole so the console and
    /// the log see its kind.
    #[error("store: {0}")]
    Storage(#[from] everlock_storage::StorageError),
    /// The command ran and failed for a reason of the kind's own.
    #[error("{0}")]
    Failed(String),
}
