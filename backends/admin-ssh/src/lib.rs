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
//! - `console`: one session (exec, piped shell or interactive terminal).
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
pub mod store_cmd;
mod store_render;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod test_families;

use std::sync::Arc;

use everlock_host::{
    Backend, BackendContext, BackendFactory, BuildError, DefaultInstance, Frontend, Host,
    SessionFuture, SshService, SshSession, register_backend,
};

pub use exec::{Console, Reply};

/// The kind name.
pub const KIND: &str = "admin-ssh";

/// The console takes no settings: it administers the host it runs in.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {}

fn check(settings: &toml::Table) -> Result<(), BuildError> {
    everlock_host::parse_settings::<Settings>(settings).map(|_| ())
}

fn build(ctx: BackendContext, settings: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    check(settings)?;
    let host = ctx
        .admin
        .ok_or_else(|| BuildError::Failed("the admin console needs the host handle".to_owned()))?;
    Ok(Box::new(AdminConsole::new(host)))
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
    example_settings: "# The admin console has no settings.\n",
    admin: true,
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

impl AdminConsole {
    /// A console administering `host`.
    pub fn new(host: Host) -> AdminConsole {
        AdminConsole {
            console: Arc::new(Console::new(host.clone())),
            host,
        }
    }
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
