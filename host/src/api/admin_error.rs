//! Why host administration refused or failed, as the contract carries it: typed causes a
//! console tells apart without reading message text. Causes from the host's own layers
//! (validating the whole configuration, building an instance) travel whole inside a
//! [`HostCause`], so the host can still match on them while the contract stays a leaf.

use std::error::Error;
use std::fmt;

use everlock_storage::StorageError;

use super::names::ValueError;

/// A failure from one of the host's own layers (the configuration's validation, building or
/// installing an instance), kept whole: [`HostCause::downcast_ref`] recovers the host's typed
/// error, and its text is the host's message.
pub struct HostCause(Box<dyn Error + Send + Sync + 'static>);

impl HostCause {
    /// Wraps the host's typed error.
    pub fn new(error: impl Error + Send + Sync + 'static) -> HostCause {
        HostCause(Box::new(error))
    }

    /// The host's error, if it is an `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
}

impl fmt::Debug for HostCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HostCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for HostCause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

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
    /// the whole effective configuration failed validation. The cause is the host's
    /// `ConfigError`.
    #[error(transparent)]
    Config(HostCause),
    /// Another node changed the same instance at the same time.
    #[error("the instance was changed on another node at the same time; look again and retry")]
    ChangedElsewhere,
    /// Building or installing the instance failed. The cause is the host's `HostError`.
    #[error(transparent)]
    Host(HostCause),
    /// The system store failed.
    #[error("system store: {0}")]
    Storage(#[from] StorageError),
    /// The host has not started, so there is no system store to record the change in;
    /// applying it anyway would lose it silently at the next start.
    #[error("the host has not started yet; changes cannot be recorded")]
    NotStarted,
}

/// Why a store operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreAdminError {
    /// Not a system administrator (the only [`AdminError`] these operations produce).
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The data directory holds no store of that name (or the name is not a store name).
    #[error("no store `{0}`")]
    NoSuchStore(String),
    /// The store failed.
    #[error("store `{store}`: {error}")]
    Storage {
        /// The store's name.
        store: String,
        /// What failed; deliberately not a `#[source]`, as the message already shows it.
        error: StorageError,
    },
}

/// Why a `/tls` operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsAdminError {
    /// Not a system administrator.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The HTTPS listener is off.
    #[error("the HTTPS listener is off")]
    NoHttps,
    /// ACME is not enabled.
    #[error("ACME is not enabled ([acme] enabled = true)")]
    NoAcme,
    /// The name has no ACME certificate to renew.
    #[error("`{0}` is not a name ACME manages (a public vhost without a configured certificate)")]
    NotManaged(String),
}
