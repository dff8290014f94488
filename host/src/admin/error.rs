//! Why an administrative change was refused: typed causes, so callers tell them apart without
//! reading message text.

use crate::config::{ConfigError, ValueError};
use crate::runtime::HostError;

/// Why an administrative change was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The acting principal is not a system administrator.
    #[error("permission denied: {0} is not a system administrator")]
    Denied(String),
    /// The kind is not compiled in.
    #[error("unknown backend kind `{0}`")]
    UnknownKind(String),
    /// The kind is compiled in but disabled.
    #[error("backend `{0}` is not enabled")]
    Disabled(String),
    /// No such instance.
    #[error("no instance {kind}/{name}")]
    NoSuchInstance {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
    },
    /// The instance already exists.
    #[error("instance {kind}/{name} already exists")]
    Exists {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
    },
    /// A name, vhost, prefix or store is invalid.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A record or setting is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The change conflicts with the rest of the configuration (routes, stores, settings):
    /// the whole effective configuration failed validation.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another node changed the same instance at the same time.
    #[error("the instance was changed on another node at the same time; look again and retry")]
    ChangedElsewhere,
    /// Building or installing the instance failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The system store failed.
    #[error("system store: {0}")]
    Storage(#[from] everlock_storage::StorageError),
    /// The host has not started, so there is no system store to record the change in;
    /// applying it anyway would lose it silently at the next start.
    #[error("the host has not started yet; changes cannot be recorded")]
    NotStarted,
}
