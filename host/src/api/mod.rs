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
//! - `instance`: `InstanceSpec`, the one shape of an instance (file, records, console, plan).
//! - `backend`: `BackendContext`, the `Backend` trait and its `Service`, instance commands.
//! - `ssh`: the transport-free SSH session an SSH service serves.
//! - `http_auth`: HTTP Basic authentication of requests and the shared rejection responses.
//! - `scheme`: the scheme a request arrived on.
//! - `store`: the lazily opened store an instance receives.
//! - `console`: the console family a kind declares and the commands its instances offer.
//! - `admin`: the `HostAdmin` capability the console receives and the views it speaks;
//!   `admin_error` its typed errors, `admin_views` the store and TLS reports.

pub mod admin;
pub mod admin_error;
pub mod admin_views;
pub mod backend;
pub mod console;
pub mod factory;
pub mod frontend;
pub mod http_auth;
pub mod instance;
pub mod names;
pub mod scheme;
pub mod ssh;
pub mod store;
pub mod vhost;

pub use admin::{AdminFuture, BackendInfo, HostAdmin, InstanceInfo, KindInfo};
pub use admin_error::{AdminError, HostCause, StoreAdminError, TlsAdminError};
pub use admin_views::{
    CertInfo, CertSource, MAX_STORE_LOG, StoreDetails, StoreGc, StoreRow, TlsRow,
};
pub use backend::{Backend, BackendContext, BuildError, Service, parse_settings};
pub use console::{
    CommandError, CommandFuture, CommandHelp, ConsoleFamily, GENERIC_CONSOLE_KEYS,
    InstanceCommands, OptionSpec, OptionValue,
};
pub use factory::{BackendFactory, BackendKind, BuildFn, CheckFn, DefaultInstance};
pub use frontend::Frontend;
pub use instance::{InstanceEdit, InstanceSpec};
pub use names::{InstanceName, PathPrefix, StoreName, ValueError, Vhost, check_kind};
pub use scheme::Scheme;
pub use ssh::{
    Pty, SESSION_INPUT_CAPACITY, SessionFuture, SessionInput, SessionInputSender, SessionKind,
    SessionOutput, SessionOutputChunk, SessionPipe, SshService, SshSession,
};
pub use store::InstanceStore;

#[cfg(test)]
mod tests;
