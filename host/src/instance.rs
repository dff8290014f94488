//! A built backend instance as the host keeps it: identity, routing data and the backend.

use std::fmt;

use crate::api::{Backend, InstanceName, PathPrefix, SshService, StoreName, Vhost};

/// One live backend instance.
pub struct Instance {
    /// Backend kind.
    pub kind: &'static str,
    /// The frontend carrying its traffic; only HTTP instances are routed by vhost.
    pub frontend: crate::api::Frontend,
    /// Instance name, unique within the kind.
    pub name: InstanceName,
    /// Hostnames routed here.
    pub vhosts: Vec<Vhost>,
    /// Mount prefix.
    pub prefix: PathPrefix,
    /// The prefixes its settings claim besides the mount, on the same vhosts.
    pub extra_prefixes: Vec<PathPrefix>,
    /// The instance's own store.
    pub store: StoreName,
    /// Kind-specific settings it was built with.
    pub settings: toml::Table,
    /// Its own `https-redirect`, which wins over the server-wide rule; `None`: that rule.
    pub https_redirect: Option<bool>,
    /// The HTTP service; `Some` for every HTTP instance (checked when it is built).
    pub router: Option<axum::Router>,
    /// The SSH service; `Some` for every SSH instance (checked when it is built).
    pub ssh: Option<std::sync::Arc<dyn SshService>>,
    /// Console commands the instance offers, if any.
    pub commands: Option<std::sync::Arc<dyn crate::api::InstanceCommands>>,
    /// The backend itself, kept alive as long as the instance is in a table.
    pub backend: Box<dyn Backend>,
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
