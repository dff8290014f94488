//! Running a parsed command as the acting user. Users and groups go straight to `Auth`
//! (which enforces the tiers and commits as the actor); instances and backend kinds go
//! through the host's administration API, which applies every change live and persists it.
//!
//! This file holds the interpreter's frame (the reply, the failure type, the dispatch); each
//! command family runs in a child module: `users`, `groups`, `backends`, `instances`.

use everlock_host::HostAdmin;
use everlock_host::auth::Principal;

use std::sync::Arc;

use crate::command::{Command, parse_with};
use crate::families::Families;
use crate::help;
pub(crate) use failure::Failure;

mod backends;
mod failure;
#[cfg(test)]
mod family_tests;
mod groups;
mod instances;
mod selfservice;
#[cfg(test)]
mod tests;
mod users;

/// The most output one command may produce; the rest is cut with a note, because SSH output
/// has no backpressure and a listing must not pile up unbounded memory.
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// The result of one console line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Normal output (ends with a newline when not empty).
    pub stdout: String,
    /// The error, one line plus usage when relevant (ends with a newline when not empty).
    pub stderr: String,
    /// 0 on success, 1 on any error.
    pub status: u32,
    /// The user asked to leave.
    pub quit: bool,
}

impl Reply {
    fn ok(text: impl Into<String>) -> Reply {
        let mut stdout = text.into();
        if stdout.len() > MAX_OUTPUT {
            let mut cut = MAX_OUTPUT;
            while !stdout.is_char_boundary(cut) {
                cut -= 1;
            }
            stdout.truncate(cut);
            stdout.push_str("\n... output truncated at 1 MiB\n");
        }
        if !stdout.is_empty() && !stdout.ends_with('\n') {
            stdout.push('\n');
        }
        Reply {
            stdout,
            ..Reply::default()
        }
    }

    /// A failure (exit status 1), printed as its one line.
    pub(crate) fn failure(failure: Failure) -> Reply {
        Reply::err(failure.to_string())
    }

    fn from_outcome(outcome: Outcome) -> Reply {
        match outcome {
            Ok(text) => Reply::ok(text),
            Err(e) => Reply::err(e.to_string()),
        }
    }

    fn err(text: impl Into<String>) -> Reply {
        let mut stderr = text.into();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Reply {
            stderr,
            status: 1,
            ..Reply::default()
        }
    }
}

type Outcome = Result<String, Failure>;

/// The console's command interpreter.
#[derive(Debug, Clone)]
pub struct Console {
    /// The host's administration, as the composition root granted it.
    admin: Arc<dyn HostAdmin>,
    /// The kinds' families, read from the registry once: it does not change while running.
    families: Arc<Families>,
    /// The shortest new password accepted (`min-password-length`).
    min_password_chars: usize,
    /// Where terminal sessions keep each user's history.
    history: crate::history::HistoryStore,
}

impl Console {
    /// An interpreter administering the host through `admin`.
    pub fn new(admin: Arc<dyn HostAdmin>) -> Console {
        let families = Arc::new(Families::from_kinds(admin.kinds()));
        Console {
            admin,
            families,
            min_password_chars: everlock_host::auth::DEFAULT_MIN_PASSWORD_CHARS,
            history: crate::history::HistoryStore::default(),
        }
    }

    /// The same interpreter keeping terminal history in `history`.
    pub fn with_history(mut self, history: crate::history::HistoryStore) -> Console {
        self.history = history;
        self
    }

    /// Where terminal sessions keep each user's history.
    pub fn history(&self) -> &crate::history::HistoryStore {
        &self.history
    }

    /// The same interpreter refusing new passwords shorter than `chars` characters.
    pub fn with_min_password_length(mut self, chars: usize) -> Console {
        self.min_password_chars = chars;
        self
    }

    /// The administration of the host this console administers.
    pub fn admin(&self) -> &Arc<dyn HostAdmin> {
        &self.admin
    }

    /// The command families this console parses.
    pub fn families(&self) -> &Families {
        &self.families
    }

    /// Parses and runs one line as `actor`.
    pub async fn execute(&self, actor: &Principal, line: &str) -> Reply {
        match parse_with(&self.families, line) {
            Ok(command) => self.run(actor, command).await,
            Err(e) => Reply::err(e.to_string()),
        }
    }

    /// Runs a parsed command as `actor`.
    pub async fn run(&self, actor: &Principal, command: Command) -> Reply {
        let outcome = match command {
            Command::Empty => Ok(String::new()),
            Command::Quit => {
                return Reply {
                    quit: true,
                    ..Reply::default()
                };
            }
            Command::Help(None) => Ok(help::overview(&self.families)),
            Command::Help(Some(family)) => Ok(family.help()),
            Command::Users(c) => self.users(actor, c).await,
            Command::Groups(c) => self.groups(actor, c).await,
            Command::Backends(c) => self.backends(actor, c).await,
            Command::Instances(scope, c) => self.instances(actor, scope, c).await,
            Command::Store(c) => crate::store_cmd::execute(&*self.admin, actor, c)
                .await
                .map_err(Failure::from),
            Command::Tls(c) => crate::tls_cmd::execute(&*self.admin, actor, c)
                .await
                .map_err(Failure::from),
            Command::Passwd => Console::passwd_without_answers(),
            Command::Keys(c) => self.keys(actor, c).await,
        };
        Reply::from_outcome(outcome)
    }
}

/// The value of an `auth=` option: `public` or `private`.
fn parse_access(value: &str) -> Result<bool, Failure> {
    match value {
        "public" => Ok(true),
        "private" => Ok(false),
        other => Err(invalid_value("auth", other, ["private", "public"])),
    }
}

/// The failure of `value` for option `key`, which accepts the `expected` alternatives.
fn invalid_value<'a>(
    key: &str,
    value: &str,
    expected: impl IntoIterator<Item = &'a str>,
) -> Failure {
    Failure::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.into_iter().map(str::to_owned).collect(),
    }
}

/// Pretty JSON for `--json` listings; serialising plain data cannot fail, but if it ever
/// did the caller still gets one JSON object saying why.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
