//! Provisioning of zero-config default instances: the one moment a default instance's access
//! and seed content are set up.
//!
//! A kind's defaults (for example the public welcome site on `localhost`) need a little state
//! to be useful: an `anon` grant, a first page. That state is created by the host, once, when
//! it first installs the default on an empty store, and the fact is recorded in the system
//! store (`provisioned/<kind>/<name>`). It never runs on the request path and never again, so
//! an operator who makes the site private or replaces its content is never overridden, and a
//! configured instance that merely shares a default's name is an ordinary instance.

use everlock_storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};

use crate::admin::AdminError;
use crate::api::{BackendFactory, DefaultInstance};
use crate::config::Config;
use crate::runtime::Host;

/// Where the system store records provisioned defaults.
const MARKERS: &str = "provisioned";

fn marker(kind: &str, name: &str) -> String {
    format!("{MARKERS}/{kind}/{name}")
}

impl Host {
    /// Provisions the defaults of every enabled kind that runs on its zero-config defaults
    /// (neither the configuration file nor a runtime change names an instance of it).
    pub(crate) async fn provision_defaults(
        &self,
        config: &Config,
        system: &Store,
    ) -> Result<(), AdminError> {
        for factory in self.registry().factories() {
            let configured = config
                .backends
                .get(factory.kind)
                .is_some_and(|s| s.instances.is_some());
            if configured || !config.is_enabled(factory.kind) {
                continue;
            }
            for default in (factory.default_instances)() {
                self.provision_one(factory, &default, system).await?;
            }
        }
        Ok(())
    }

    /// Provisions one default unless the system store says it already was.
    async fn provision_one(
        &self,
        factory: &BackendFactory,
        default: &DefaultInstance,
        system: &Store,
    ) -> Result<(), AdminError> {
        let marker = marker(factory.kind, default.name);
        if system.stat(&marker).await?.is_some() {
            return Ok(());
        }
        let store = self.stores().open(default.store).await?;
        // A store that already has history was set up before (by an older version or by the
        // operator): its access and content are someone's choice, so only the marker is added.
        if store.head().await?.is_none() {
            if default.public
                && let Some(root) = factory.access_root
            {
                let path = format!("{root}/{}", default.name);
                self.auth()
                    .grant(
                        &self.system_principal(),
                        everlock_auth::ANON,
                        &path,
                        "reader",
                    )
                    .await
                    .map_err(|e| AdminError::Invalid(format!("provisioning {path}: {e}")))?;
            }
            seed(&store, factory.kind, default).await?;
        }
        let done = system
            .commit(
                vec![Op::PutBytes {
                    path: marker.clone(),
                    bytes: default.store.as_bytes().to_vec(),
                }],
                vec![Precondition {
                    path: marker,
                    expected: Expected::Absent,
                }],
                CommitMeta::new(
                    "system",
                    format!("provision {}/{}", factory.kind, default.name),
                ),
            )
            .await;
        match done {
            // Another node provisioned it at the same moment: the same outcome.
            Ok(_) | Err(StorageError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Commits the default's seed content, only where nothing exists yet.
async fn seed(store: &Store, kind: &str, default: &DefaultInstance) -> Result<(), AdminError> {
    if default.seed.is_empty() {
        return Ok(());
    }
    let ops = default
        .seed
        .iter()
        .map(|(path, bytes)| Op::PutBytes {
            path: (*path).to_owned(),
            bytes: bytes.to_vec(),
        })
        .collect();
    let preconditions = default
        .seed
        .iter()
        .map(|(path, _)| Precondition {
            path: (*path).to_owned(),
            expected: Expected::Absent,
        })
        .collect();
    let meta = CommitMeta::new("system", format!("provision: seed {kind}/{}", default.name));
    match store.commit(ops, preconditions, meta).await {
        Ok(_) | Err(StorageError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use everlock_auth::{AccessPath, Action, AdminPassword, Principal};

    use crate::api::InstanceSpec;
    use crate::api::{Backend, BackendContext, BackendFactory, BuildError, DefaultInstance};
    use crate::config::Config;
    use crate::registry::Registry;
    use crate::runtime::Host;
    use crate::test_util::TestEnv;

    struct Page;
    impl Backend for Page {
        fn service(&self) -> crate::api::Service {
            crate::api::Service::Http(axum::Router::new())
        }
    }
    fn check(_: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
        Ok(Vec::new())
    }
    fn build(_: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
        Ok(Box::new(Page))
    }
    fn defaults() -> Vec<DefaultInstance> {
        vec![DefaultInstance {
            name: "welcome",
            vhosts: &["localhost"],
            prefix: "/",
            store: "page-http-welcome",
            public: true,
            seed: &[("index.html", b"hello")],
        }]
    }
    static PAGE: BackendFactory = BackendFactory {
        kind: "page-http",
        frontend: crate::api::Frontend::Http,
        summary: "test pages",
        check,
        build,
        default_instances: defaults,
        example_settings: "",
        access_root: Some("http/page"),
        console: None,
    };

    fn path(p: &str) -> AccessPath {
        p.parse().unwrap()
    }

    async fn host(env: &TestEnv, config: Config) -> Host {
        let host = Host::new(
            Registry::from_factories([&PAGE]).unwrap(),
            env.stores.clone(),
            env.auth.clone(),
            everlock_auth::SystemAuthority::for_tests(),
            Default::default(),
        );
        host.start(config).await.unwrap();
        host
    }

    fn anon_reads(env: &TestEnv, p: &str) -> bool {
        env.auth
            .authorize(&Principal::anon(), &path(p), Action::Read)
    }

    #[tokio::test]
    async fn a_default_is_provisioned_once_at_install_and_never_overrides_the_operator() {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        let first = host(&env, Config::default()).await;
        // Provisioned at install, before any request: public, with its seed page.
        assert!(anon_reads(&env, "http/page/welcome"));
        let store = env.stores.open("page-http-welcome").await.unwrap();
        assert_eq!(store.read("index.html").await.unwrap(), b"hello");
        // The operator makes it private and empties it; a restart changes neither.
        env.auth
            .make_private(&admin, "http/page/welcome")
            .await
            .unwrap();
        store
            .delete(
                "index.html",
                everlock_storage::CommitMeta::new("admin", "empty"),
            )
            .await
            .unwrap();
        drop(first);
        let _second = host(&env, Config::default()).await;
        assert!(!anon_reads(&env, "http/page/welcome"));
        assert!(store.stat("index.html").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_configured_instance_with_a_default_name_is_ordinary() {
        let env = TestEnv::new().await;
        let config = Config::parse(
            "[backends.page-http.instances.welcome]\nvhosts = [\"localhost\"]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let _host = host(&env, config).await;
        assert!(!anon_reads(&env, "http/page/welcome"));
        let store = env.stores.open("page-http-welcome").await.unwrap();
        assert!(store.head().await.unwrap().is_none(), "nothing seeded");
    }

    #[tokio::test]
    async fn delete_removes_grants_and_a_recreated_name_gets_a_fresh_store() {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        let host = host(&env, Config::default()).await;
        let spec = InstanceSpec::parse("page-http", "docs", &["docs.localhost"], "/").unwrap();
        host.create_instance(&admin, spec.clone()).await.unwrap();
        let info = |h: &Host| {
            h.instances()
                .into_iter()
                .find(|i| i.name == "docs")
                .unwrap()
                .store_name()
        };
        assert_eq!(info(&host), "page-http-docs");
        env.stores
            .open("page-http-docs")
            .await
            .unwrap()
            .write(
                "secret.html",
                b"old".to_vec(),
                everlock_storage::CommitMeta::new("admin", "x"),
            )
            .await
            .unwrap();
        env.auth
            .grant(&admin, "anon", "http/page/docs", "reader")
            .await
            .unwrap();
        env.auth
            .add_user(&admin, "ann", "ann-password")
            .await
            .unwrap();
        env.auth
            .grant(&admin, "ann", "http/page/docs/sub", "writer")
            .await
            .unwrap();
        host.delete_instance(&admin, "page-http", "docs")
            .await
            .unwrap();
        assert!(!anon_reads(&env, "http/page/docs"));
        let left: Vec<String> = env
            .auth
            .grants(&admin, "ann")
            .unwrap()
            .into_iter()
            .map(|(g, _)| g.path.to_string())
            .collect();
        assert_eq!(
            left,
            ["http/page/welcome"],
            "only anon's grant on the other site"
        );
        // Re-created without store=: a new, empty store; the old one is kept.
        host.create_instance(&admin, spec.clone()).await.unwrap();
        assert_eq!(info(&host), "page-http-docs-2");
        assert!(!anon_reads(&env, "http/page/docs"));
        // Naming the old store explicitly reattaches it.
        host.delete_instance(&admin, "page-http", "docs")
            .await
            .unwrap();
        let explicit = InstanceSpec {
            store: Some("page-http-docs".parse().unwrap()),
            ..spec
        };
        host.create_instance(&admin, explicit).await.unwrap();
        assert_eq!(info(&host), "page-http-docs");
    }

    #[tokio::test]
    async fn reserved_and_shared_stores_are_refused_live() {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        let host = host(&env, Config::default()).await;
        for (store, message) in [
            (
                "everlock-users",
                "instance page-http/x may not use store `everlock-users`: it is reserved for the server",
            ),
            (
                "page-http-welcome",
                "store `page-http-welcome` is used by both page-http/welcome and page-http/x; every instance needs its own store",
            ),
        ] {
            let spec = InstanceSpec {
                store: Some(store.parse().unwrap()),
                ..InstanceSpec::parse("page-http", "x", &["x.localhost"], "/").unwrap()
            };
            let err = host.create_instance(&admin, spec).await.unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }
}
