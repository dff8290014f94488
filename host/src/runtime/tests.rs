//! Host administration is a capability the composition root grants to one kind: the host
//! hands a `HostAdmin` to that kind's instances only, and never before `start`.

use std::sync::Mutex;

use everlock_auth::{AdminPassword, Principal};

use crate::InstanceSpec;
use crate::api::{Backend, BackendContext, BackendFactory, BuildError, DefaultInstance, Frontend};
use crate::config::Config;
use crate::registry::Registry;
use crate::runtime::{Host, HostError};
use crate::test_util::TestEnv;

/// `kind/name: whether the build saw an administration handle`, in build order.
static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Probe;
impl Backend for Probe {
    fn service(&self) -> crate::api::Service {
        crate::api::Service::Http(axum::Router::new())
    }
}
fn check(_: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
    Ok(Vec::new())
}
fn build(ctx: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    let line = format!("{}/{}: {}", ctx.kind, ctx.instance, ctx.admin.is_some());
    BUILT.lock().unwrap().push(line);
    Ok(Box::new(Probe))
}
fn granted_defaults() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "main",
        vhosts: &["granted.example"],
        prefix: "/",
        store: "granted-main",
        public: false,
        seed: &[],
    }]
}
fn other_defaults() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "main",
        vhosts: &["other.example"],
        prefix: "/",
        store: "other-main",
        public: false,
        seed: &[],
    }]
}
static GRANTED: BackendFactory = BackendFactory {
    kind: "granted-http",
    frontend: Frontend::Http,
    summary: "test kind the composition root grants administration",
    check,
    build,
    default_instances: granted_defaults,
    example_settings: "",
    access_root: None,
    console: None,
};
static OTHER: BackendFactory = BackendFactory {
    kind: "other-http",
    default_instances: other_defaults,
    ..GRANTED
};

/// A kind whose builds are not logged, for tests that run alongside the logged one.
static QUIET: BackendFactory = BackendFactory {
    kind: "quiet-http",
    build: |_, _| Ok(Box::new(Probe)),
    default_instances: Vec::new,
    ..GRANTED
};

fn host(env: &TestEnv) -> Host {
    Host::new(
        Registry::from_factories([&GRANTED, &OTHER]).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_auth::SystemAuthority::for_tests(),
        Default::default(),
    )
}

fn built() -> Vec<String> {
    std::mem::take(&mut *BUILT.lock().unwrap())
}

fn config(env: &TestEnv) -> Config {
    Config {
        data_dir: env.dir.path().to_owned(),
        ..Config::default()
    }
}

/// One test, because the build log is shared by every host built from these factories.
#[tokio::test]
async fn administration_goes_only_to_the_granted_kind_and_only_after_start() {
    // Nothing granted: no instance of any kind administers the host.
    let env = TestEnv::new().await;
    built();
    host(&env).start(config(&env)).await.unwrap();
    assert_eq!(
        built(),
        ["granted-http/main: false", "other-http/main: false"]
    );

    // A grant names a compiled-in kind.
    let mut refused = host(&env);
    assert!(matches!(
        refused.grant_administration("nope-http"),
        Err(HostError::UnknownKind(k)) if k == "nope-http"
    ));

    // Granted to one kind: before start even that kind's instances get no handle.
    let env = TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("pw".to_owned()))
        .await
        .unwrap();
    let mut host = host(&env);
    host.grant_administration("granted-http").unwrap();
    let early = InstanceSpec {
        store: Some("granted-early".parse().unwrap()),
        ..InstanceSpec::parse("granted-http", "early", &["early.example"], "/").unwrap()
    };
    host.add_instance(&crate::config::plan(vec![early], host.registry()).unwrap())
        .unwrap();
    assert_eq!(built(), ["granted-http/early: false"]);
    host.start(config(&env)).await.unwrap();
    assert_eq!(
        built(),
        ["granted-http/main: true", "other-http/main: false"]
    );

    // Instances the administration API builds later follow the same rule.
    let admin = Principal::test_user("admin");
    for kind in ["granted-http", "other-http"] {
        let spec =
            InstanceSpec::parse(kind, "late", &[&format!("late.{kind}.example")], "/").unwrap();
        host.create_instance(&admin, spec).await.unwrap();
    }
    assert_eq!(
        built(),
        ["granted-http/late: true", "other-http/late: false"]
    );
}

/// Before `start` there is no system store to record a change in: the administration API
/// refuses it instead of applying it live and silently losing it at the next start.
#[tokio::test]
async fn changes_before_start_are_refused_not_silently_lost() {
    let env = TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("pw".to_owned()))
        .await
        .unwrap();
    let host = Host::new(
        Registry::from_factories([&QUIET]).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_auth::SystemAuthority::for_tests(),
        Default::default(),
    );
    let spec = InstanceSpec::parse("quiet-http", "early", &["early.example"], "/").unwrap();
    let admin = Principal::test_user("admin");
    let refused = host.create_instance(&admin, spec).await;
    assert!(
        matches!(refused, Err(crate::AdminError::NotStarted)),
        "{refused:?}"
    );
    assert!(host.instances().is_empty());
}
