//! The contract every backend compiles against: a leaf that imports nothing from the rest of
//! the host, so a backend's view of the host is exactly this module (re-exported at the crate
//! root).
//!
//! # Layout
//! - `names`: validated names (`Vhost`, `PathPrefix`, `StoreName`, `InstanceName`, kinds).
//! - `vhost`: the one host-name normaliser behind `Vhost` and request routing.
//! - `factory`: `BackendFactory`, the typed-settings `BackendKind` trait it is derived from,
//!   console families, zero-config instances and `register_backend!`.
//! - `frontend`: which frontend (HTTP or SSH) carries a kind's traffic.
//! - `backend`: `BackendContext`, the `Backend` trait and its `Service`, instance commands.
//! - `ssh`: the transport-free SSH session an SSH service serves.
//! - `http_auth`: HTTP Basic authentication of requests and the shared rejection responses.
//! - `scheme`: the scheme a request arrived on.
//! - `store`: the lazily opened store an instance receives.
//! - `admin`: the opaque host-administration grant and the views administration speaks.

pub mod admin;
pub mod backend;
pub mod factory;
pub mod frontend;
pub mod http_auth;
pub mod names;
pub mod scheme;
pub mod ssh;
pub mod store;
pub mod vhost;

pub use admin::{AdminGrant, BackendInfo, InstanceEdit, InstanceInfo, InstanceSpec};
pub use backend::{
    Backend, BackendContext, BuildError, CommandError, CommandFuture, CommandHelp,
    InstanceCommands, Service, parse_settings,
};
pub use factory::{
    BackendFactory, BackendKind, BuildFn, CheckFn, ConsoleFamily, DefaultInstance,
    GENERIC_CONSOLE_KEYS, OptionSpec, OptionValue,
};
pub use frontend::Frontend;
pub use names::{InstanceName, PathPrefix, StoreName, ValueError, Vhost, check_kind};
pub use scheme::Scheme;
pub use ssh::{
    Pty, SESSION_INPUT_CAPACITY, SessionFuture, SessionInput, SessionInputSender, SessionKind,
    SessionOutput, SessionOutputChunk, SessionPipe, SshService, SshSession,
};
pub use store::InstanceStore;

#[cfg(test)]
mod tests;
