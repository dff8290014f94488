//! The live instance table: which instance answers which vhost and path prefix.
//!
//! Readers load an immutable snapshot with one atomic pointer read (`arc-swap`), so a request
//! always sees one consistent table even while an administrator adds or removes instances;
//! writers build a new snapshot and swap it in, serialised by a mutex so no change is lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::api::{Frontend, InstanceName, PathPrefix, Vhost};
use crate::instance::Instance;

/// Why a change to the instance table was refused. The running table is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Another instance already serves this vhost and prefix.
    #[error("{vhost}{prefix} is already served by {existing}")]
    Conflict {
        /// The vhost.
        vhost: String,
        /// The prefix.
        prefix: String,
        /// `kind/name` of the instance that has it.
        existing: String,
    },
    /// An instance with this kind and name already exists.
    #[error("instance {0} already exists")]
    Exists(String),
    /// No instance with this kind and name exists.
    #[error("no instance {0}")]
    NotFound(String),
    /// An HTTP instance needs at least one vhost.
    #[error("instance {0} has no vhosts")]
    NoVhosts(String),
}

/// The outcome of routing one request.
#[derive(Debug)]
pub enum Resolution<'a> {
    /// An instance serves this host and path.
    Found(&'a Arc<Instance>),
    /// No instance is configured for this host at all.
    UnknownHost,
    /// The host is known but none of its prefixes covers the path.
    NoPrefix,
}

/// An immutable routing snapshot.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every instance by (kind, name).
    instances: BTreeMap<(&'static str, InstanceName), Arc<Instance>>,
    /// Per normalised vhost: (prefix, instance) pairs sorted by descending prefix length.
    /// An instance appears once per prefix it serves: its mount and its extra prefixes.
    hosts: HashMap<String, Vec<Route>>,
}

/// One routed prefix of one vhost.
#[derive(Debug)]
struct Route {
    prefix: PathPrefix,
    instance: Arc<Instance>,
}

impl Snapshot {
    fn build(
        instances: BTreeMap<(&'static str, InstanceName), Arc<Instance>>,
    ) -> Result<Self, RouteError> {
        let mut hosts: HashMap<String, Vec<Route>> = HashMap::new();
        for instance in instances.values().filter(|i| i.frontend == Frontend::Http) {
            if instance.vhosts.is_empty() {
                return Err(RouteError::NoVhosts(instance.id()));
            }
            let prefixes = prefixes_of(instance);
            for vhost in &instance.vhosts {
                let routes = hosts.entry(vhost.as_str().to_owned()).or_default();
                for prefix in &prefixes {
                    if let Some(existing) = routes.iter().find(|r| r.prefix == *prefix) {
                        return Err(RouteError::Conflict {
                            vhost: vhost.to_string(),
                            prefix: prefix.to_string(),
                            existing: existing.instance.id(),
                        });
                    }
                    routes.push(Route {
                        prefix: prefix.clone(),
                        instance: Arc::clone(instance),
                    });
                }
            }
        }
        for routes in hosts.values_mut() {
            routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        }
        Ok(Snapshot { instances, hosts })
    }

    /// Routes a normalised host and a request path: exact vhost first, then the catch-all
    /// vhost `*`; within a vhost the longest matching prefix wins.
    pub fn resolve(&self, host: &str, path: &str) -> Resolution<'_> {
        let candidates = self.hosts.get(host).or_else(|| self.hosts.get(Vhost::ANY));
        let Some(routes) = candidates else {
            return Resolution::UnknownHost;
        };
        routes
            .iter()
            .find(|r| r.prefix.matches(path))
            .map_or(Resolution::NoPrefix, |r| Resolution::Found(&r.instance))
    }

    /// Every instance, ordered by kind and name.
    pub fn instances(&self) -> impl Iterator<Item = &Arc<Instance>> {
        self.instances.values()
    }

    /// The instance `kind/name`, if present.
    pub fn get(&self, kind: &str, name: &InstanceName) -> Option<&Arc<Instance>> {
        self.instances
            .iter()
            .find(|((k, n), _)| *k == kind && n == name)
            .map(|(_, i)| i)
    }
}

/// The prefixes `instance` serves: its mount first, then the extra prefixes its settings
/// claim, without duplicates (settings repeating the mount must not conflict with
/// themselves).
fn prefixes_of(instance: &Instance) -> Vec<PathPrefix> {
    let mut prefixes = vec![instance.prefix.clone()];
    for extra in &instance.extra_prefixes {
        if !prefixes.contains(extra) {
            prefixes.push(extra.clone());
        }
    }
    prefixes
}

/// The live, atomically swapped instance table.
///
/// Anyone may read it; only the host changes it (the mutators are crate-private), and the host
/// builds what it installs only from a validated [`Plan`](crate::config::Plan).
#[derive(Debug, Default)]
pub struct InstanceTable {
    current: ArcSwap<Snapshot>,
    /// Serialises writers so two concurrent changes cannot both start from the same snapshot
    /// and lose one of them. Readers never take it.
    write: Mutex<()>,
}

impl InstanceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current snapshot. Hold it for the whole request so routing stays consistent.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces every instance at once (startup, or reloading the whole configuration).
    pub(crate) fn replace_all(&self, instances: Vec<Instance>) -> Result<(), RouteError> {
        let mut map = BTreeMap::new();
        for instance in instances {
            let key = (instance.kind, instance.name.clone());
            let id = instance.id();
            if map.insert(key, Arc::new(instance)).is_some() {
                return Err(RouteError::Exists(id));
            }
        }
        self.swap_with(|_| Ok(map))
    }

    /// Adds one instance live.
    #[cfg(test)]
    pub(crate) fn insert(&self, instance: Instance) -> Result<(), RouteError> {
        self.swap_with(|current| {
            let mut map = current.instances.clone();
            let key = (instance.kind, instance.name.clone());
            if map.contains_key(&key) {
                return Err(RouteError::Exists(instance.id()));
            }
            map.insert(key, Arc::new(instance));
            Ok(map)
        })
    }

    /// Replaces the instance with the same kind and name live (e.g. new vhosts). Requests
    /// already routed to the old instance finish on it.
    #[cfg(test)]
    pub(crate) fn replace(&self, instance: Instance) -> Result<(), RouteError> {
        self.swap_with(|current| {
            let mut map = current.instances.clone();
            let key = (instance.kind, instance.name.clone());
            if !map.contains_key(&key) {
                return Err(RouteError::NotFound(instance.id()));
            }
            map.insert(key, Arc::new(instance));
            Ok(map)
        })
    }

    /// Inserts the instance, or replaces the one with the same kind and name, live.
    pub(crate) fn upsert(&self, instance: Instance) -> Result<(), RouteError> {
        self.swap_with(|current| {
            let mut map = current.instances.clone();
            map.insert((instance.kind, instance.name.clone()), Arc::new(instance));
            Ok(map)
        })
    }

    /// Replaces every instance of `kind` with `instances` in one swap (enabling or disabling
    /// a backend kind).
    pub(crate) fn replace_kind(
        &self,
        kind: &str,
        instances: Vec<Instance>,
    ) -> Result<(), RouteError> {
        self.swap_with(|current| {
            let mut map = current.instances.clone();
            map.retain(|(k, _), _| *k != kind);
            for instance in instances {
                map.insert((instance.kind, instance.name.clone()), Arc::new(instance));
            }
            Ok(map)
        })
    }

    /// Upserts `instances` and removes `removed` in one swap (re-applying instance records
    /// another node changed), so no request routes on a half-applied set of changes.
    pub(crate) fn apply(
        &self,
        instances: Vec<Instance>,
        removed: &[(&'static str, InstanceName)],
    ) -> Result<(), RouteError> {
        self.swap_with(|current| {
            let mut map = current.instances.clone();
            for key in removed {
                map.remove(key);
            }
            for instance in instances {
                map.insert((instance.kind, instance.name.clone()), Arc::new(instance));
            }
            Ok(map)
        })
    }

    /// Removes the instance `kind/name` live and returns it.
    pub(crate) fn remove(
        &self,
        kind: &str,
        name: &InstanceName,
    ) -> Result<Arc<Instance>, RouteError> {
        let mut removed = None;
        self.swap_with(|current| {
            let mut map = current.instances.clone();
            let key = map
                .keys()
                .find(|(k, n)| *k == kind && n == name)
                .cloned()
                .ok_or_else(|| RouteError::NotFound(format!("{kind}/{name}")))?;
            removed = map.remove(&key);
            Ok(map)
        })?;
        removed.ok_or_else(|| RouteError::NotFound(format!("{kind}/{name}")))
    }

    fn swap_with(
        &self,
        change: impl FnOnce(
            &Snapshot,
        )
            -> Result<BTreeMap<(&'static str, InstanceName), Arc<Instance>>, RouteError>,
    ) -> Result<(), RouteError> {
        // A poisoned lock only means another writer panicked; the snapshot it guards is
        // immutable and still valid, so carry on.
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current.load_full();
        let next = Snapshot::build(change(&current)?)?;
        self.current.store(Arc::new(next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Backend, Service};

    struct Nothing;
    impl Backend for Nothing {
        fn service(&self) -> Service {
            Service::Http(axum::Router::new())
        }
    }

    fn inst(kind: &'static str, name: &str, vhosts: &[&str], prefix: &str) -> Instance {
        Instance {
            kind,
            frontend: Frontend::Http,
            spec: crate::api::InstanceSpec::parse(kind, name, vhosts, prefix).unwrap(),
            extra_prefixes: Vec::new(),
            store: format!("s-{name}").parse().unwrap(),
            router: None,
            ssh: None,
            commands: None,
            backend: Box::new(Nothing),
        }
    }

    fn who(r: Resolution<'_>) -> String {
        match r {
            Resolution::Found(i) => i.id(),
            Resolution::UnknownHost => "unknown-host".into(),
            Resolution::NoPrefix => "no-prefix".into(),
        }
    }

    #[test]
    fn prefix_selection_table() {
        let t = InstanceTable::new();
        t.replace_all(vec![
            inst("site-http", "welcome", &["localhost", "127.0.0.1"], "/"),
            inst("oci-http", "default", &["localhost"], "/v2"),
            inst("hello-http", "deep", &["localhost"], "/v2/hello"),
            inst("hello-http", "only", &["only.example"], "/api"),
            inst("hello-http", "any", &["*"], "/"),
        ])
        .unwrap();
        let s = t.snapshot();
        let cases: &[(&str, &str, &str)] = &[
            ("localhost", "/", "site-http/welcome"),
            ("localhost", "/index.html", "site-http/welcome"),
            ("localhost", "/v2", "oci-http/default"),
            ("localhost", "/v2/", "oci-http/default"),
            (
                "localhost",
                "/v2/library/alpine/tags/list",
                "oci-http/default",
            ),
            ("localhost", "/v2x", "site-http/welcome"),
            ("localhost", "/v2/hello", "hello-http/deep"),
            ("localhost", "/v2/hello/x", "hello-http/deep"),
            ("localhost", "/v2/hellox", "oci-http/default"),
            ("127.0.0.1", "/v2/", "site-http/welcome"),
            ("only.example", "/api/x", "hello-http/only"),
            ("only.example", "/", "no-prefix"),
            ("elsewhere.example", "/", "hello-http/any"),
        ];
        for (host, path, want) in cases {
            assert_eq!(who(s.resolve(host, path)), *want, "{host}{path}");
        }
    }

    /// An instance whose settings also claim `/ui`, as the OCI registry's do for its web UI.
    fn with_ui(kind: &'static str, name: &str, vhosts: &[&str], prefix: &str) -> Instance {
        Instance {
            extra_prefixes: vec!["/ui".parse().unwrap(), "/v2".parse().unwrap()],
            ..inst(kind, name, vhosts, prefix)
        }
    }

    #[test]
    fn extra_prefixes_route_to_the_same_instance() {
        let t = InstanceTable::new();
        t.replace_all(vec![
            inst("site-http", "welcome", &["localhost"], "/"),
            with_ui("oci-http", "default", &["localhost", "r.example"], "/v2"),
            inst("hello-http", "deep", &["localhost"], "/ui/deeper"),
        ])
        .unwrap();
        let s = t.snapshot();
        let cases: &[(&str, &str, &str)] = &[
            ("localhost", "/", "site-http/welcome"),
            ("localhost", "/index.html", "site-http/welcome"),
            ("localhost", "/v2/", "oci-http/default"),
            ("localhost", "/ui", "oci-http/default"),
            ("localhost", "/ui/r/team/app", "oci-http/default"),
            ("localhost", "/uix", "site-http/welcome"),
            ("localhost", "/ui/deeper/x", "hello-http/deep"),
            ("r.example", "/ui/", "oci-http/default"),
            ("r.example", "/", "no-prefix"),
        ];
        for (host, path, want) in cases {
            assert_eq!(who(s.resolve(host, path)), *want, "{host}{path}");
        }
    }

    #[test]
    fn an_extra_prefix_conflicts_like_a_mount() {
        let t = InstanceTable::new();
        t.insert(inst("site-http", "docs", &["localhost"], "/ui"))
            .unwrap();
        let err = t
            .insert(with_ui("oci-http", "default", &["localhost"], "/v2"))
            .unwrap_err();
        match &err {
            RouteError::Conflict {
                vhost,
                prefix,
                existing,
            } => {
                // Instances are placed in (kind, name) order, so the registry came first.
                assert_eq!(
                    (vhost.as_str(), prefix.as_str(), existing.as_str()),
                    ("localhost", "/ui", "oci-http/default")
                );
            }
            other => panic!("{other}"),
        }
        assert_eq!(t.snapshot().instances().count(), 1);
        // The other way round: a mount on a prefix another instance claims as extra.
        let t = InstanceTable::new();
        t.insert(with_ui("oci-http", "default", &["localhost"], "/v2"))
            .unwrap();
        assert!(matches!(
            t.insert(inst("site-http", "docs", &["localhost"], "/ui")),
            Err(RouteError::Conflict { .. })
        ));
        // A different vhost does not conflict.
        t.insert(inst("site-http", "docs", &["docs.example"], "/ui"))
            .unwrap();
    }

    #[test]
    fn unknown_host_without_catch_all() {
        let t = InstanceTable::new();
        t.replace_all(vec![inst("k", "a", &["a.example"], "/")])
            .unwrap();
        assert_eq!(who(t.snapshot().resolve("b.example", "/")), "unknown-host");
        assert_eq!(
            who(InstanceTable::new().snapshot().resolve("a", "/")),
            "unknown-host"
        );
    }

    #[test]
    fn conflicts_are_refused_and_leave_the_table_alone() {
        let t = InstanceTable::new();
        t.insert(inst("k", "a", &["x.example"], "/")).unwrap();
        let err = t.insert(inst("k", "b", &["X.example."], "/")).unwrap_err();
        assert!(matches!(err, RouteError::Conflict { .. }), "{err}");
        assert!(matches!(
            t.insert(inst("k", "a", &["y"], "/")),
            Err(RouteError::Exists(_))
        ));
        assert!(matches!(
            t.insert(inst("k", "c", &[], "/")),
            Err(RouteError::NoVhosts(_))
        ));
        assert_eq!(t.snapshot().instances().count(), 1);
    }

    #[test]
    fn live_insert_replace_remove() {
        let t = InstanceTable::new();
        t.insert(inst("k", "a", &["a.example"], "/")).unwrap();
        let before = t.snapshot();
        t.insert(inst("k", "b", &["b.example"], "/")).unwrap();
        // A snapshot taken earlier is unaffected by later swaps.
        assert_eq!(who(before.resolve("b.example", "/")), "unknown-host");
        assert_eq!(who(t.snapshot().resolve("b.example", "/")), "k/b");
        t.replace(inst("k", "b", &["c.example"], "/")).unwrap();
        assert_eq!(who(t.snapshot().resolve("b.example", "/")), "unknown-host");
        assert_eq!(who(t.snapshot().resolve("c.example", "/")), "k/b");
        let removed = t.remove("k", &"b".parse().unwrap()).unwrap();
        assert_eq!(removed.id(), "k/b");
        assert!(t.remove("k", &"b".parse().unwrap()).is_err());
        assert!(t.replace(inst("k", "zz", &["z"], "/")).is_err());
        assert_eq!(t.snapshot().instances().count(), 1);
    }

    #[test]
    fn concurrent_writers_lose_no_update() {
        let t = Arc::new(InstanceTable::new());
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for j in 0..25 {
                        let name = format!("n{i}-{j}");
                        let host = format!("{name}.example");
                        t.insert(inst("k", &name, &[host.as_str()], "/")).unwrap();
                        // Readers always see a self-consistent snapshot.
                        let s = t.snapshot();
                        assert_eq!(who(s.resolve(&host, "/")), format!("k/{name}"));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(t.snapshot().instances().count(), 200);
    }
}
