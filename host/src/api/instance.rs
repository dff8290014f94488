//! One instance as everything speaks of it: the configuration file, the persisted runtime
//! records, the console's `create` and the host's validation and build all exchange an
//! [`InstanceSpec`], so the fields an instance has are declared once.

use super::admin_error::AdminError;
use super::names::{InstanceName, PathPrefix, StoreName, ValueError, Vhost};

/// One instance: its kind and name, where it is routed, the store it owns and its settings.
///
/// Its parts are validated names, so a spec cannot carry a malformed vhost or store; what
/// only the whole configuration can decide (no two instances on one route or store, reserved
/// stores, one console) is the host's plan's business.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// Backend kind, e.g. `oci-http`.
    pub kind: String,
    /// Instance name, unique within the kind.
    pub name: InstanceName,
    /// Hostnames routed to it (at least one for HTTP kinds).
    pub vhosts: Vec<Vhost>,
    /// Mount prefix.
    pub prefix: PathPrefix,
    /// The instance's own store; `None`: `<kind>-<name>` (see [`InstanceSpec::store_name`]).
    pub store: Option<StoreName>,
    /// Kind-specific settings, parsed strictly by the kind.
    pub settings: toml::Table,
    /// The instance's own `https-redirect`; `None`: the server-wide rule.
    pub https_redirect: Option<bool>,
}

impl InstanceSpec {
    /// An instance of `kind` named `name` with no vhosts, mounted at `/`, on its derived
    /// store, with the kind's default settings; fill in the rest with struct update syntax.
    pub fn new(kind: impl Into<String>, name: InstanceName) -> InstanceSpec {
        InstanceSpec {
            kind: kind.into(),
            name,
            vhosts: Vec::new(),
            prefix: PathPrefix::root(),
            store: None,
            settings: toml::Table::new(),
            https_redirect: None,
        }
    }

    /// The same, parsing the parts a person typed (the console, tests).
    pub fn parse(
        kind: &str,
        name: &str,
        vhosts: &[&str],
        prefix: &str,
    ) -> Result<InstanceSpec, ValueError> {
        Ok(InstanceSpec {
            vhosts: vhosts.iter().map(|v| v.parse()).collect::<Result<_, _>>()?,
            prefix: prefix.parse()?,
            ..InstanceSpec::new(kind, name.parse()?)
        })
    }

    /// `kind/name`, as logs and errors name an instance.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// The store the instance owns: the one named, or `<kind>-<name>`.
    pub fn store_name(&self) -> StoreName {
        self.store
            .clone()
            .unwrap_or_else(|| StoreName::derived(&self.kind, &self.name))
    }
}

/// A change to an existing instance, as the console's `set` and `unset` say it: a patch over
/// its [`InstanceSpec`], applied by [`InstanceEdit::apply_to`].
#[derive(Debug, Clone, Default)]
pub struct InstanceEdit {
    /// Vhosts to add.
    pub add_vhosts: Vec<Vhost>,
    /// Vhosts to remove.
    pub remove_vhosts: Vec<Vhost>,
    /// A new store.
    pub store: Option<StoreName>,
    /// Settings keys to set (merged over the current settings).
    pub settings: toml::Table,
    /// Settings keys to remove, returning them to the kind's defaults.
    pub remove_settings: Vec<String>,
    /// A new `https-redirect`: `Some(None)` returns to the server-wide rule.
    pub https_redirect: Option<Option<bool>>,
}

impl InstanceEdit {
    /// Applies the change to `spec`. Removing a vhost the instance does not have is refused,
    /// so a typo is not silently a no-op; adding one it has already is.
    pub fn apply_to(self, spec: &mut InstanceSpec) -> Result<(), AdminError> {
        if let Some(missing) = self.remove_vhosts.iter().find(|v| !spec.vhosts.contains(v)) {
            return Err(AdminError::Invalid(format!(
                "{} has no vhost {missing}",
                spec.id()
            )));
        }
        spec.vhosts.retain(|v| !self.remove_vhosts.contains(v));
        for v in self.add_vhosts {
            if !spec.vhosts.contains(&v) {
                spec.vhosts.push(v);
            }
        }
        if let Some(store) = self.store {
            spec.store = Some(store);
        }
        spec.settings.extend(self.settings);
        for key in &self.remove_settings {
            spec.settings.remove(key);
        }
        if let Some(redirect) = self.https_redirect {
            spec.https_redirect = redirect;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            settings: [("mode".to_owned(), toml::Value::from("html"))]
                .into_iter()
                .collect(),
            ..InstanceSpec::parse("site-http", "docs", &["a.example", "b.example"], "/").unwrap()
        }
    }

    #[test]
    fn an_edit_patches_every_part_it_names_and_nothing_else() {
        let mut s = spec();
        InstanceEdit {
            add_vhosts: vec!["c.example".parse().unwrap(), "a.example".parse().unwrap()],
            remove_vhosts: vec!["b.example".parse().unwrap()],
            store: Some("docs-2".parse().unwrap()),
            settings: [("theme".to_owned(), toml::Value::from("docs"))]
                .into_iter()
                .collect(),
            remove_settings: vec!["mode".to_owned()],
            https_redirect: Some(Some(true)),
        }
        .apply_to(&mut s)
        .unwrap();
        assert_eq!(s.vhosts, ["a.example", "c.example"]);
        assert_eq!(s.store_name(), "docs-2");
        assert_eq!(s.settings.len(), 1);
        assert_eq!(s.settings["theme"].as_str(), Some("docs"));
        assert_eq!(s.https_redirect, Some(true));
        assert_eq!(s.prefix, PathPrefix::root());

        InstanceEdit {
            https_redirect: Some(None),
            ..InstanceEdit::default()
        }
        .apply_to(&mut s)
        .unwrap();
        assert_eq!(s.https_redirect, None);
    }

    #[test]
    fn removing_a_vhost_the_instance_lacks_is_refused_and_changes_nothing() {
        let mut s = spec();
        let err = InstanceEdit {
            add_vhosts: vec!["c.example".parse().unwrap()],
            remove_vhosts: vec!["x.example".parse().unwrap()],
            ..InstanceEdit::default()
        }
        .apply_to(&mut s)
        .unwrap_err();
        assert_eq!(err.to_string(), "site-http/docs has no vhost x.example");
        assert_eq!(s, spec());
    }

    #[test]
    fn the_store_defaults_to_kind_and_name() {
        assert_eq!(spec().store_name(), "site-http-docs");
    }
}
