//! `admin-ssh`: the SSH admin console.
//!
//! A line-based REPL of slash commands served by the host's SSH frontend: `/users`,
//! `/groups`, `/backends`, `/oci`, `/site`, `/store`, `/help`, `/quit`. With a terminal it has
//! a line editor (history, completion); piped input runs line by line without echo; an exec
//! request (`ssh host '/oci list'`) runs one command and exits with its status. Every change
//! applies live through the host's administration API and `Auth`, committed as the acting user.
//!
//! # Layout
//! Imports flow one way, from the session down to the grammar; no two modules import each
//! other.
//! - `usage`: the typed usage error every parser returns (the bottom of the grammar).
//! - `families`: the command families, the kinds' ones read from the backend registry.
//! - `command`: tokenising and parsing a line into a command; one child module per family
//!   (`users`, `groups`, `backends`, `instances`).
//! - `help`: usage text per command family.
//! - `exec`: running a command as the acting user; one child module per family, and
//!   `exec::failure`, the typed causes of a command that fails while it runs.
//! - `editor`: the terminal line editor (bytes in, echo and lines out); `editor::keys`
//!   decodes the terminal's bytes into keys.
//! - `complete`: tab completion.
//! - `console`: one session (exec, piped shell or interactive terminal); `script` runs piped
//!   lines (stop at the first failure unless `--keep-going`), `session_io` runs one line with
//!   its audit record and writes its reply for both, `prompt` asks for passwords on a
//!   terminal, `history` keeps each user's terminal history in the console's store.
//! - `audit`: the redacted form of a line that the audit log records.
//! - `store_cmd`, `store_render`: the `/store` family (grammar, execution, output).

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod audit;
pub mod command;
pub mod complete;
pub mod console;
pub mod editor;
pub mod exec;
pub mod families;
pub mod help;
pub mod history;
pub mod prompt;
pub mod script;
mod session_io;
pub mod store_cmd;
mod store_render;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod test_families;
pub mod tls_cmd;
pub mod usage;

use std::sync::Arc;

use everlock_host::{
    Backend, BackendContext, BackendFactory, BackendKind, BuildError, DefaultInstance, Frontend,
    Service, SessionFuture, SshService, SshSession, register_backend,
};

pub use exec::{Console, Reply};

/// The kind name.
pub const KIND: &str = "admin-ssh";

/// The console's settings (`[backends.admin-ssh.instances.console.settings]`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Settings {
    /// The shortest new password `/users add|passwd` and `/passwd` accept, in characters.
    #[serde(default = "default_min_password_length")]
    min_password_length: usize,
}

fn default_min_password_length() -> usize {
    everlock_host::auth::DEFAULT_MIN_PASSWORD_CHARS
}

/// The longest minimum that can be met: bcrypt verifies 71 bytes, so a longer minimum
/// would refuse every password.
const MAX_MIN_PASSWORD_LENGTH: usize = everlock_host::auth::MAX_PASSWORD_BYTES;

/// The console kind: its typed settings and the build.
struct ConsoleKind;

impl BackendKind for ConsoleKind {
    type Settings = Settings;
    const FRONTEND: Frontend = Frontend::Ssh;

    fn validate(settings: &Settings) -> Result<(), BuildError> {
        if settings.min_password_length == 0
            || settings.min_password_length > MAX_MIN_PASSWORD_LENGTH
        {
            return Err(BuildError::Failed(format!(
                "min-password-length must be between 1 and {MAX_MIN_PASSWORD_LENGTH}"
            )));
        }
        Ok(())
    }

    fn build(ctx: BackendContext, settings: Settings) -> Result<Box<dyn Backend>, BuildError> {
        // Administration is granted by the binary's composition root, never asked for here: a
        // host that did not grant it to this kind cannot run a console.
        let admin = ctx.admin.ok_or_else(|| {
            BuildError::Failed("the admin console was not granted host administration".to_owned())
        })?;
        // The configured minimum is enforced by auth itself, for every path that sets a password.
        admin
            .auth()
            .set_min_password_chars(settings.min_password_length);
        let console = Console::new(admin)
            .with_min_password_length(settings.min_password_length)
            .with_history(history::HistoryStore::new(ctx.store));
        Ok(Box::new(AdminConsole {
            console: Arc::new(console),
        }))
    }
}

fn default_instances() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "console",
        vhosts: &[],
        prefix: "/",
        store: "admin-ssh-console",
        public: false,
        seed: &[],
    }]
}

/// The console's factory; `pub` so tests can build registries that contain it.
pub const FACTORY: BackendFactory = BackendFactory {
    default_instances,
    example_settings: "min-password-length = 8\n",
    ..BackendFactory::of::<ConsoleKind>(
        KIND,
        "SSH admin console: users, groups, backends, registries and sites, live",
    )
};

register_backend!(FACTORY);

/// The console instance: serves every SSH session the frontend hands it.
#[derive(Debug, Clone)]
pub struct AdminConsole {
    console: Arc<Console>,
}

impl Backend for AdminConsole {
    fn service(&self) -> Service {
        Service::Ssh(Arc::new(self.clone()))
    }
}

impl SshService for AdminConsole {
    fn run(&self, session: SshSession) -> SessionFuture {
        Box::pin(console::serve(Arc::clone(&self.console), session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_password_length_is_a_bounded_setting() {
        let table = |text: &str| -> toml::Table { text.parse().unwrap() };
        let parse = |text: &str| {
            let settings: Settings = everlock_host::parse_settings(&table(text)).unwrap();
            ConsoleKind::validate(&settings).map(|()| settings)
        };
        assert_eq!(parse("").unwrap().min_password_length, 8);
        assert_eq!(
            parse("min-password-length = 12")
                .unwrap()
                .min_password_length,
            12
        );
        for bad in [
            "min-password-length = 0",
            "min-password-length = 72",
            "min-password-length = -1",
            "colour = 1",
        ] {
            assert!((FACTORY.check)(&table(bad)).is_err(), "{bad}");
        }
        (FACTORY.check)(&table(FACTORY.example_settings)).unwrap();
    }
}
