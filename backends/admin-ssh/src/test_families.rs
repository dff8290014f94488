//! The console families of the registry, site and hello kinds as their own crates register
//! them (dev-dependencies of this crate). The tests read the real declarations instead of a
//! copy, so a kind that adds, renames or drops an option changes what these tests see: a copy
//! here once drifted from the registry's declaration while every console test stayed green.

use std::sync::LazyLock;

use everlock_host::{BackendFactory, CommandHelp, KindInfo, Registry};

use crate::families::{Families, Scope};

/// The registry of every kind linked into the test binary: the three kinds above and the
/// console itself, collected from their `register_backend!` registrations.
static REGISTERED: LazyLock<Registry> = LazyLock::new(|| {
    // Naming each crate links it, so its registration is in the collected registry.
    let kinds = [
        everlock_backend_oci_http::KIND,
        everlock_backend_site_http::KIND,
        everlock_example_hello_backend::KIND,
    ];
    let registry = Registry::collect().expect("the linked kinds register without conflict");
    for kind in kinds {
        assert!(registry.get(kind).is_some(), "{kind} is not registered");
    }
    registry
});

/// The registered factory of `kind`.
pub(crate) fn factory(kind: &str) -> &'static BackendFactory {
    REGISTERED
        .get(kind)
        .unwrap_or_else(|| panic!("{kind} is not registered"))
}

/// The maintenance commands `kind` declares; none for a kind that is not registered (a
/// test's own kind).
pub(crate) fn declared_commands(kind: &str) -> &'static [CommandHelp] {
    REGISTERED
        .get(kind)
        .and_then(|f| f.console.as_ref())
        .map_or(&[], |c| c.commands)
}

/// The scope of `kind`, from its registered declaration.
fn registered(kind: &str) -> Scope {
    let f = factory(kind);
    let console = f
        .console
        .as_ref()
        .unwrap_or_else(|| panic!("{kind} declares no console family"));
    Scope::new(f.kind, f.access_root, console)
}

/// The `/oci` scope, as `oci-http` declares it.
pub(crate) fn oci() -> Scope {
    registered(everlock_backend_oci_http::KIND)
}

/// The `/site` scope, as `site-http` declares it.
pub(crate) fn site() -> Scope {
    registered(everlock_backend_site_http::KIND)
}

/// The families of every registered kind, read as the console reads a running host's.
pub(crate) fn families() -> Families {
    Families::from_kinds(REGISTERED.factories().map(|f| KindInfo {
        kind: f.kind,
        access_root: f.access_root,
        console: f.console.as_ref(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::Family;

    /// The families the tests parse against are exactly the ones the kinds' crates declare,
    /// word for word and option for option.
    #[test]
    fn test_families_are_the_registered_declarations() {
        let kinds: Vec<&str> = families()
            .all()
            .into_iter()
            .filter_map(|f| match f {
                Family::Kind(scope) => Some(scope.kind()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["hello-http", "oci-http", "site-http"]);
        for scope in [oci(), site()] {
            let real = factory(scope.kind());
            assert_eq!(Some(*scope.console()), real.console, "{}", scope.kind());
            assert_eq!(scope.access_root(), real.access_root, "{}", scope.kind());
        }
        // What drifted once: the registry's settings beyond `allow-delete`.
        let oci_help = Family::Kind(oci()).help();
        for key in ["allow-push", "upstream", "quota", "webhooks"] {
            assert!(oci_help.contains(&format!(" {key}=")), "{key}: {oci_help}");
        }
    }
}
