//! The set of backend kinds compiled into this binary, collected once at startup.

use std::collections::BTreeMap;

use crate::api::BackendFactory;
use crate::api::check_kind;

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two linked crates registered the same kind; `inventory` neither orders nor
    /// deduplicates, so this must be caught here rather than silently picking one.
    #[error("backend kind `{0}` is registered twice")]
    DuplicateKind(&'static str),
    /// A registered kind name breaks the naming rule.
    #[error("backend kind `{kind}` has an invalid name: {reason}")]
    InvalidKind {
        /// The kind.
        kind: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

/// Every compiled-in backend kind, sorted by kind name.
#[derive(Debug, Clone)]
pub struct Registry {
    factories: BTreeMap<&'static str, &'static BackendFactory>,
}

impl Registry {
    /// Collects every factory registered through `register_backend!` in the linked crates.
    /// Call it once, from `main` (never from a static initialiser).
    pub fn collect() -> Result<Registry, RegistryError> {
        Self::from_factories(inventory::iter::<BackendFactory>)
    }

    /// Builds a registry from explicit factories; `collect` and tests share this path.
    pub fn from_factories(
        factories: impl IntoIterator<Item = &'static BackendFactory>,
    ) -> Result<Registry, RegistryError> {
        let mut map = BTreeMap::new();
        for factory in factories {
            check_kind(factory.kind).map_err(|e| RegistryError::InvalidKind {
                kind: factory.kind,
                reason: e.to_string(),
            })?;
            if map.insert(factory.kind, factory).is_some() {
                return Err(RegistryError::DuplicateKind(factory.kind));
            }
        }
        Ok(Registry { factories: map })
    }

    /// The factory of `kind`, if compiled in.
    pub fn get(&self, kind: &str) -> Option<&'static BackendFactory> {
        self.factories.get(kind).copied()
    }

    /// Kind names in sorted order.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }

    /// Factories in kind order.
    pub fn factories(&self) -> impl Iterator<Item = &'static BackendFactory> + '_ {
        self.factories.values().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Backend, BackendContext, BuildError, Frontend};

    fn check(_: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
        Ok(Vec::new())
    }
    fn build(_: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
        Err(BuildError::Failed("test factory".into()))
    }
    const fn factory(kind: &'static str) -> BackendFactory {
        BackendFactory {
            kind,
            frontend: Frontend::Http,
            summary: "test",
            check,
            build,
            default_instances: Vec::new,
            example_settings: "",
            access_root: None,
            console: None,
        }
    }
    static A: BackendFactory = factory("alpha-http");
    static B: BackendFactory = factory("beta-http");
    static B2: BackendFactory = factory("beta-http");
    static BAD: BackendFactory = factory("Bad_Kind");

    #[test]
    fn kinds_are_sorted() {
        let r = Registry::from_factories([&B, &A]).unwrap();
        assert_eq!(r.kinds().collect::<Vec<_>>(), ["alpha-http", "beta-http"]);
        assert!(r.get("alpha-http").is_some());
        assert!(r.get("gamma").is_none());
    }

    #[test]
    fn duplicate_kind_is_an_error() {
        let err = Registry::from_factories([&A, &B, &B2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "backend kind `beta-http` is registered twice"
        );
    }

    #[test]
    fn invalid_kind_is_an_error() {
        assert!(matches!(
            Registry::from_factories([&BAD]),
            Err(RegistryError::InvalidKind { .. })
        ));
    }
}
