//! Host administration as the contract carries it: an opaque grant that only the host can
//! make, for the one kind the composition root named, and the views administration speaks
//! (instances and kinds as listed, a new instance, a change to one).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::frontend::Frontend;

/// The administration handle the host hands to the granted kind's instances in
/// `BackendContext::admin`.
///
/// The contract does not know the host's runtime, so the handle travels opaque; the console
/// recovers the host's administration type with [`AdminGrant::get`]. Only this crate makes a
/// grant (its constructor is crate-private), so holding one proves the composition root
/// granted it.
#[derive(Clone)]
pub struct AdminGrant(Arc<dyn Any + Send + Sync>);

impl AdminGrant {
    /// Wraps the host's administration handle (see `Host::administration_for`).
    pub(crate) fn new<T: Any + Send + Sync>(handle: T) -> AdminGrant {
        AdminGrant(Arc::new(handle))
    }

    /// The administration handle, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl fmt::Debug for AdminGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminGrant")
    }
}

/// An instance as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceInfo {
    /// Backend kind.
    pub kind: &'static str,
    /// Instance name.
    pub name: String,
    /// Vhosts.
    pub vhosts: Vec<String>,
    /// Mount prefix.
    pub prefix: String,
    /// Store name.
    pub store: String,
    /// Kind-specific settings.
    pub settings: toml::Table,
    /// The instance's own `https-redirect`; `None`: the server-wide rule.
    pub https_redirect: Option<bool>,
}

/// A new instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    /// Backend kind, e.g. `oci-http`.
    pub kind: String,
    /// Instance name.
    pub name: String,
    /// Vhosts (at least one for HTTP kinds).
    pub vhosts: Vec<String>,
    /// Mount prefix; `/` when absent.
    pub prefix: Option<String>,
    /// Store; `<kind>-<name>` when absent.
    pub store: Option<String>,
    /// Kind-specific settings.
    pub settings: toml::Table,
    /// The instance's own `https-redirect`; `None`: the server-wide rule.
    pub https_redirect: Option<bool>,
}

/// A change to an existing instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceEdit {
    /// Vhosts to add.
    pub add_vhosts: Vec<String>,
    /// Vhosts to remove.
    pub remove_vhosts: Vec<String>,
    /// A new store.
    pub store: Option<String>,
    /// Settings keys to set (merged over the current settings).
    pub settings: toml::Table,
    /// Settings keys to remove, returning them to the kind's defaults.
    pub remove_settings: Vec<String>,
    /// A new `https-redirect`: `Some(None)` returns to the server-wide rule.
    pub https_redirect: Option<Option<bool>>,
}

/// A backend kind as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// Kind.
    pub kind: &'static str,
    /// Frontend.
    pub frontend: Frontend,
    /// Whether it is enabled.
    pub enabled: bool,
    /// One line of description.
    pub summary: &'static str,
}
