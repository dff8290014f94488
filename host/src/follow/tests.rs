//! Two hosts on one set of stores stand for two nodes: an instance change made through one
//! is live on the other within a second, through the same install path.

use std::time::Duration;

use everlock_auth::{AdminPassword, Principal};

use crate::api::{Backend, BackendContext, BackendFactory, BuildError, Frontend};
use crate::config::Config;
use crate::registry::Registry;
use crate::runtime::Host;
use crate::test_util::TestEnv;
use crate::{InstanceEdit, InstanceSpec};

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
static K: BackendFactory = BackendFactory {
    kind: "k-http",
    frontend: Frontend::Http,
    summary: "test kind",
    check,
    build,
    default_instances: Vec::new,
    example_settings: "",
    access_root: None,
    console: None,
};

async fn node(env: &TestEnv) -> Host {
    let host = Host::new(
        Registry::from_factories([&K]).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_auth::SystemAuthority::for_tests(),
        Default::default(),
    );
    host.start(Config::default()).await.unwrap();
    host
}

fn names(host: &Host) -> Vec<String> {
    host.instances()
        .iter()
        .map(|i| {
            let color = i
                .settings
                .get("color")
                .and_then(|c| c.as_str())
                .unwrap_or("");
            let vhosts: Vec<String> = i.vhosts.iter().map(ToString::to_string).collect();
            format!("{}:{}{}{color}", i.name, vhosts.join(","), i.prefix)
        })
        .collect()
}

/// Polls `host` for up to a second until its instances are `want`.
async fn converges(host: &Host, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while names(host) != want && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(names(host), want, "not applied within 1 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_node_are_live_on_the_other_within_a_second() {
    let env = TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("pw".into()))
        .await
        .unwrap();
    let admin = Principal::test_user("admin");
    let a = node(&env).await;
    let b = node(&env).await;
    let spec = InstanceSpec::parse("k-http", "team", &["team.localhost"], "/v2").unwrap();
    a.create_instance(&admin, spec).await.unwrap();
    converges(&b, &["team:team.localhost/v2"]).await;
    let before = b.table().snapshot();

    let edit = InstanceEdit {
        add_vhosts: vec!["t2.localhost".parse().unwrap()],
        settings: [("color".to_owned(), toml::Value::from("blue"))]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    a.update_instance(&admin, "k-http", "team", edit)
        .await
        .unwrap();
    converges(&b, &["team:team.localhost,t2.localhost/v2blue"]).await;
    assert!(
        !std::sync::Arc::ptr_eq(&before, &b.table().snapshot()),
        "the change is a new snapshot"
    );

    // A change on B that starts from a state B has not applied yet still sees A's last
    // change: B catches up before it validates, so nothing of A's is overwritten.
    let spec = InstanceSpec::parse("k-http", "docs", &["docs.localhost"], "/").unwrap();
    a.delete_instance(&admin, "k-http", "team").await.unwrap();
    b.create_instance(&admin, spec).await.unwrap();
    assert_eq!(names(&b), ["docs:docs.localhost/"]);
    converges(&a, &["docs:docs.localhost/"]).await;

    // Nothing moves when nothing changed: a node's own commit does not rebuild anything.
    let snapshot = a.table().snapshot();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(std::sync::Arc::ptr_eq(&snapshot, &a.table().snapshot()));
}

/// A record another node wrote after the state this node validated against refuses the
/// change; an unchanged or absent record gives the matching compare-and-swap.
#[tokio::test]
async fn a_record_changed_after_the_applied_state_is_refused() {
    use everlock_storage::{CommitMeta, Expected};
    let env = TestEnv::new().await;
    let system = env.stores.open(crate::config::SYSTEM_STORE).await.unwrap();
    let path = "config/instances/k-http/team.toml";
    let pre = super::record_precondition(&system, path, 0).await.unwrap();
    assert_eq!(pre.expected, Expected::Absent);
    let c1 = system
        .write(
            path,
            b"vhosts = []\n".to_vec(),
            CommitMeta::new("admin", "one"),
        )
        .await
        .unwrap();
    let pre = super::record_precondition(&system, path, c1.seq)
        .await
        .unwrap();
    assert_eq!(pre.expected, Expected::Version(c1.seq));
    // This node applied only up to before c1: the record changed since.
    let err = super::record_precondition(&system, path, c1.seq - 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another node"), "{err}");
    // A precondition taken from the applied state fails inside the commit when another
    // commit lands in between.
    system
        .write(
            path,
            b"vhosts = []\n# two\n".to_vec(),
            CommitMeta::new("admin", "two"),
        )
        .await
        .unwrap();
    let err = system
        .commit(
            vec![everlock_storage::Op::Delete { path: path.into() }],
            vec![pre],
            CommitMeta::new("admin", "three"),
        )
        .await
        .unwrap_err();
    assert!(
        super::concurrent(err).to_string().contains("another node"),
        "a lost update"
    );
}
