//! A built backend instance as the host keeps it: the spec it was built from, what the build
//! resolved (its kind's registration, its store, the prefixes its settings claim) and the
//! backend.

use std::fmt;
use std::ops::Deref;

use crate::api::{Backend, InstanceSpec, PathPrefix, SshService, StoreName};

/// One live backend instance: an [`InstanceSpec`], built. It dereferences to the spec, so its
/// name, vhosts, prefix, settings and `https-redirect` are read where they are declared.
pub struct Instance {
    /// Backend kind, as its registration names it.
    pub kind: &'static str,
    /// The frontend carrying its traffic; only HTTP instances are routed by vhost.
    pub frontend: crate::api::Frontend,
    /// What the instance was built from.
    pub spec: InstanceSpec,
    /// The prefixes its settings claim besides the mount, on the same vhosts.
    pub extra_prefixes: Vec<PathPrefix>,
    /// The instance's own store, resolved (`<kind>-<name>` when the spec names none).
    pub store: StoreName,
    /// The HTTP service; `Some` for every HTTP instance (checked when it is built).
    pub router: Option<axum::Router>,
    /// The SSH service; `Some` for every SSH instance (checked when it is built).
    pub ssh: Option<std::sync::Arc<dyn SshService>>,
    /// Console commands the instance offers, if any.
    pub commands: Option<std::sync::Arc<dyn crate::api::InstanceCommands>>,
    /// The backend itself, kept alive as long as the instance is in a table.
    pub backend: Box<dyn Backend>,
}

impl Deref for Instance {
    type Target = InstanceSpec;

    fn deref(&self) -> &InstanceSpec {
        &self.spec
    }
}

impl Instance {
    /// `kind/name`, as used in logs and errors.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("vhosts", &self.vhosts)
            .field("prefix", &self.prefix)
            .field("extra_prefixes", &self.extra_prefixes)
            .field("store", &self.store)
            .field("https_redirect", &self.https_redirect)
            .finish_non_exhaustive()
    }
}
