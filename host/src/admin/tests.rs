//! Tests of live administration: create, update, delete and enable/disable, applied live
//! and surviving restarts.

use super::*;
use crate::api::{Backend, BackendContext, BackendFactory, BuildError, DefaultInstance, Frontend};
use crate::config::{ConfigError, SYSTEM_STORE};
use crate::registry::Registry;
use crate::test_util::TestEnv;
use everlock_auth::AdminPassword;

struct Named;
impl Backend for Named {
    fn service(&self) -> crate::api::Service {
        crate::api::Service::Http(axum::Router::new())
    }
}
fn check(t: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
    match t.keys().find(|k| *k != "color") {
        Some(k) => Err(BuildError::Settings(format!("unknown field `{k}`"))),
        None => Ok(Vec::new()),
    }
}
fn build(_: BackendContext, t: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    check(t)?;
    Ok(Box::new(Named))
}
fn defaults() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "default",
        vhosts: &["localhost"],
        prefix: "/v2",
        store: "k-default",
        public: false,
        seed: &[],
    }]
}
static K: BackendFactory = BackendFactory {
    kind: "k-http",
    frontend: Frontend::Http,
    summary: "test kind",
    check,
    build,
    default_instances: defaults,
    example_settings: "",
    access_root: None,
    console: None,
};

async fn start_host(env: &TestEnv) -> (Host, Principal) {
    env.auth
        .bootstrap("admin", AdminPassword::Given("pw".into()))
        .await
        .unwrap();
    let host = Host::new(
        Registry::from_factories([&K]).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_auth::SystemAuthority::for_tests(),
        Default::default(),
    );
    host.start(Config::default()).await.unwrap();
    (host, Principal::test_user("admin"))
}

fn names(host: &Host) -> Vec<String> {
    host.instances()
        .iter()
        .map(|i| {
            let vhosts: Vec<String> = i.vhosts.iter().map(ToString::to_string).collect();
            format!("{}:{}{}", i.name, vhosts.join(","), i.prefix)
        })
        .collect()
}

fn spec(name: &str, vhost: &str) -> InstanceSpec {
    InstanceSpec::parse("k-http", name, &[vhost], "/v2").unwrap()
}

#[tokio::test]
async fn create_update_delete_apply_live_and_survive_restart() {
    let env = TestEnv::new().await;
    let (host, admin) = start_host(&env).await;
    assert_eq!(names(&host), ["default:localhost/v2"]);
    host.create_instance(&admin, spec("team", "team.localhost"))
        .await
        .unwrap();
    assert_eq!(
        names(&host),
        ["default:localhost/v2", "team:team.localhost/v2"]
    );
    let edit = InstanceEdit {
        add_vhosts: vec!["team2.localhost".parse().unwrap()],
        settings: [("color".to_owned(), toml::Value::from("blue"))]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    host.update_instance(&admin, "k-http", "team", edit)
        .await
        .unwrap();
    let team = host
        .instances()
        .into_iter()
        .find(|i| i.name == "team")
        .unwrap();
    assert_eq!(team.vhosts, ["team.localhost", "team2.localhost"]);
    assert_eq!(team.settings["color"].as_str(), Some("blue"));
    host.delete_instance(&admin, "k-http", "default")
        .await
        .unwrap();
    assert_eq!(names(&host), ["team:team.localhost,team2.localhost/v2"]);
    drop(host);

    // A new host on the same data sees the same instances: the zero-config default stays
    // deleted and the runtime instance is back.
    // Bootstrap is a no-op now, so this is a plain restart on the same data.
    let (again, _) = start_host(&env).await;
    assert_eq!(names(&again), ["team:team.localhost,team2.localhost/v2"]);
    let system = env.stores.open(SYSTEM_STORE).await.unwrap();
    let log: Vec<String> = system
        .log(10)
        .await
        .unwrap()
        .iter()
        .map(|c| format!("{}: {}", c.principal, c.message))
        .collect();
    assert!(
        log.contains(
            &"admin: instances create k-http/team vhosts=[team.localhost] prefix=/v2".to_owned()
        ),
        "{log:?}"
    );
    assert!(
        log.contains(&"admin: instances delete k-http/default".to_owned()),
        "{log:?}"
    );
}

#[tokio::test]
async fn bad_changes_are_refused_and_change_nothing() {
    let env = TestEnv::new().await;
    let (host, admin) = start_host(&env).await;
    let before = names(&host);
    // Malformed names cannot even be put into a spec: its parts are validated names.
    for (name, vhost, want) in [
        ("Bad_Name", "x.localhost", "invalid instance name"),
        ("ok", "bad host", "invalid vhost"),
    ] {
        let err = InstanceSpec::parse("k-http", name, &[vhost], "/v2")
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err} should contain {want}");
    }
    let cases: Vec<(InstanceSpec, &str)> = vec![
        (spec("other", "localhost"), "is claimed by both"),
        (spec("default", "x.localhost"), "already exists"),
        (
            InstanceSpec {
                kind: "nope-http".into(),
                ..spec("ok", "a")
            },
            "unknown backend kind",
        ),
        (
            InstanceSpec {
                settings: [("colour".to_owned(), toml::Value::from("x"))]
                    .into_iter()
                    .collect(),
                ..spec("ok", "ok.localhost")
            },
            "colour",
        ),
    ];
    for (s, want) in cases {
        let err = host
            .create_instance(&admin, s)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err} should contain {want}");
    }
    // The causes stay typed, so the console (or a test) can tell them apart without
    // matching on message text.
    let duplicate = host
        .create_instance(&admin, spec("other", "localhost"))
        .await;
    assert!(matches!(
        &duplicate,
        Err(AdminError::Config(cause))
            if matches!(cause.downcast_ref(), Some(ConfigError::DuplicateRoute { .. }))
    ));
    // A malformed vhost is refused where the spec is made, with the same typed cause.
    assert!(matches!(
        InstanceSpec::parse("k-http", "ok", &["bad host"], "/v2").map_err(AdminError::from),
        Err(AdminError::Value(_))
    ));
    let alice = Principal::test_user("alice");
    assert!(matches!(
        host.create_instance(&alice, spec("x", "x.localhost")).await,
        Err(AdminError::Denied(_))
    ));
    assert!(
        host.delete_instance(&admin, "k-http", "missing")
            .await
            .is_err()
    );
    let edit = InstanceEdit {
        remove_vhosts: vec!["not-there.localhost".parse().unwrap()],
        ..Default::default()
    };
    assert!(
        host.update_instance(&admin, "k-http", "default", edit)
            .await
            .is_err()
    );
    assert_eq!(names(&host), before);
}

#[tokio::test]
async fn disabling_a_kind_stops_its_instances_and_persists() {
    let env = TestEnv::new().await;
    let (host, admin) = start_host(&env).await;
    host.set_backend_enabled(&admin, "k-http", false)
        .await
        .unwrap();
    assert!(host.instances().is_empty());
    assert!(!host.backends().await[0].enabled);
    assert!(matches!(
        host.create_instance(&admin, spec("x", "x.localhost")).await,
        Err(AdminError::Disabled(_))
    ));
    host.set_backend_enabled(&admin, "k-http", true)
        .await
        .unwrap();
    assert_eq!(names(&host), ["default:localhost/v2"]);
    host.set_backend_enabled(&admin, "k-http", false)
        .await
        .unwrap();
    drop(host);
    // Bootstrap is a no-op now, so this is a plain restart on the same data.
    let (again, _) = start_host(&env).await;
    assert!(again.instances().is_empty());
}
