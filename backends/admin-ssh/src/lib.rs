//! `admin-ssh`: the SSH admin console.
//!
//! A line-based REPL of slash commands served by the host's SSH frontend: `/users`,
//! `/groups`, `/backends`, `/oci`, `/site`, `/store`, `/help`, `/quit`. With a terminal it has
//! a line editor (history, completion); piped input runs line by line without echo; an exec
//! request (`ssh host '/oci list'`) runs one command and exits with its status. Every change
//! applies live through the host's administration API and `Auth`, committed as the acting user.
//!
//! # Layout
//! - `command`: tokenising and parsing a line into a command, with usage errors; one child
//!   module per family (`users`, `groups`, `backends`, `instances`).
//! - `help`: usage text per command family.
//! - `exec`: running a command as the acting user; one child module per family.
//! - `editor`: the terminal line editor (bytes in, echo and lines out); `editor::keys`
//!   decodes the terminal's bytes into keys.
//! - `complete`: tab completion.
//! - `console`: one session (exec, piped shell or interactive terminal); `script` runs piped
//!   lines (stop at the first failure unless `--keep-going`), `prompt` asks for passwords on a
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
pub mod store_cmd;
mod store_render;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod test_families;
pub mod tls_cmd;

use std::sync::Arc;

use everlock_host::{
    Backend, BackendContext, BackendFactory, BuildError, DefaultInstance, Frontend, Host,
    SessionFuture, SshService, SshSession, register_backend,
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

fn parse(settings: &toml::Table) -> Result<Settings, BuildError> {
    let parsed = everlock_host::parse_settings::<Settings>(settings)?;
    if parsed.min_password_length == 0 || parsed.min_password_length > MAX_MIN_PASSWORD_LENGTH {
        return Err(BuildError::Failed(format!(
            "min-password-length must be between 1 and {MAX_MIN_PASSWORD_LENGTH}"
        )));
    }
    Ok(parsed)
}

fn check(settings: &toml::Table) -> Result<(), BuildError> {
    parse(settings).map(|_| ())
}

fn build(ctx: BackendContext, settings: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    let settings = parse(settings)?;
    // Administration is granted by the binary's composition root, never asked for here: a
    // host that did not grant it to this kind cannot run a console.
    let admin = ctx.admin.ok_or_else(|| {
        BuildError::Failed("the admin console was not granted host administration".to_owned())
    })?;
    let host = admin.host().clone();
    let console = Console::new(host.clone())
        .with_min_password_length(settings.min_password_length)
        .with_history(history::HistoryStore::new(ctx.store));
    Ok(Box::new(AdminConsole {
        console: Arc::new(console),
        host,
    }))
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
    kind: KIND,
    frontend: Frontend::Ssh,
    summary: "SSH admin console: users, groups, backends, registries and sites, live",
    check,
    build,
    default_instances,
    example_settings: "min-password-length = 8\n",
    access_root: None,
    console: None,
};

register_backend!(FACTORY);

/// The console instance: serves every SSH session the frontend hands it.
#[derive(Debug, Clone)]
pub struct AdminConsole {
    console: Arc<Console>,
    host: Host,
}

impl Backend for AdminConsole {
    fn ssh_service(&self) -> Option<Arc<dyn SshService>> {
        Some(Arc::new(self.clone()))
    }
}

impl SshService for AdminConsole {
    fn run(&self, session: SshSession) -> SessionFuture {
        Box::pin(console::serve(
            Arc::clone(&self.console),
            self.host.clone(),
            session,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_password_length_is_a_bounded_setting() {
        let table = |text: &str| -> toml::Table { text.parse().unwrap() };
        assert_eq!(parse(&table("")).unwrap().min_password_length, 8);
        assert_eq!(
            parse(&table("min-password-length = 12"))
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
            assert!(check(&table(bad)).is_err(), "{bad}");
        }
        check(&table(FACTORY.example_settings)).unwrap();
    }
}
