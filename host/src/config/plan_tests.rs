//! One test per check of [`plan`]: each builds an otherwise valid set of instances and breaks
//! exactly one rule, so a check that stopped running would fail its test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use super::*;
use crate::api::{Backend, BackendContext, BuildError, DefaultInstance};
use crate::config::RESERVED_STORES;

struct Nothing;
impl Backend for Nothing {
    fn service(&self) -> crate::api::Service {
        crate::api::Service::Http(axum::Router::new())
    }
}

/// Accepts only `ui = <bool>`, and claims `/ui` when it is true (like the registry's UI).
fn check(table: &toml::Table) -> Result<Vec<PathPrefix>, BuildError> {
    let mut extra = Vec::new();
    for (key, value) in table {
        match (key.as_str(), value.as_bool()) {
            ("ui", Some(true)) => extra.push("/ui".parse().unwrap()),
            ("ui", Some(false)) => {}
            _ => return Err(BuildError::Settings(format!("unknown setting `{key}`"))),
        }
    }
    Ok(extra)
}

fn build(_: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    Ok(Box::new(Nothing))
}

fn good_defaults() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "default",
        vhosts: &["localhost"],
        prefix: "/",
        store: "web-http-default",
        public: false,
        seed: &[],
    }]
}

fn bad_defaults() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "Not_A_Name",
        vhosts: &["localhost"],
        prefix: "/bad",
        store: "broken-http-x",
        public: false,
        seed: &[],
    }]
}

static WEB: BackendFactory = BackendFactory {
    kind: "web-http",
    frontend: Frontend::Http,
    summary: "test",
    check,
    build,
    default_instances: good_defaults,
    example_settings: "",
    access_root: None,
    console: None,
};

static CONSOLE: BackendFactory = BackendFactory {
    kind: "console-ssh",
    frontend: Frontend::Ssh,
    default_instances: Vec::new,
    ..WEB
};

static BROKEN: BackendFactory = BackendFactory {
    kind: "broken-http",
    default_instances: bad_defaults,
    ..WEB
};

fn registry() -> Registry {
    Registry::from_factories([&WEB, &CONSOLE]).unwrap()
}

fn web(name: &str, vhost: &str, prefix: &str) -> InstanceSpec {
    InstanceSpec::parse("web-http", name, &[vhost], prefix).unwrap()
}

fn console(name: &str) -> InstanceSpec {
    InstanceSpec::parse("console-ssh", name, &[], "/").unwrap()
}

fn refused(specs: Vec<InstanceSpec>) -> String {
    plan(specs, &registry()).unwrap_err().to_string()
}

#[test]
fn a_valid_set_is_planned_in_full() {
    let specs = vec![
        web("a", "a.example", "/"),
        web("b", "a.example", "/b"),
        InstanceSpec {
            settings: [("ui".to_owned(), toml::Value::Boolean(true))]
                .into_iter()
                .collect(),
            ..web("c", "c.example", "/v2")
        },
        console("console"),
    ];
    let planned = plan(specs.clone(), &registry()).unwrap();
    assert_eq!(planned.specs(), specs.as_slice());
    assert!(planned.get("web-http", &"b".parse().unwrap()).is_some());
    assert!(planned.get("console-ssh", &"b".parse().unwrap()).is_none());
}

#[test]
fn an_unknown_kind_is_refused() {
    let err = refused(vec![
        InstanceSpec::parse("nope-http", "a", &["a"], "/").unwrap(),
    ]);
    assert!(err.starts_with("unknown backend kind `nope-http`"), "{err}");
}

#[test]
fn settings_the_kind_rejects_are_refused() {
    let err = refused(vec![InstanceSpec {
        settings: [("colour".to_owned(), toml::Value::from("red"))]
            .into_iter()
            .collect(),
        ..web("a", "a.example", "/")
    }]);
    assert!(
        err.contains("web-http/a") && err.contains("colour"),
        "{err}"
    );
}

#[test]
fn an_http_instance_without_vhosts_is_refused() {
    let err = refused(vec![
        InstanceSpec::parse("web-http", "a", &[], "/").unwrap(),
    ]);
    assert_eq!(err, "instance web-http/a has no vhosts");
}

#[test]
fn two_instances_on_one_route_are_refused() {
    let err = refused(vec![
        web("a", "a.example", "/docs"),
        web("b", "a.example", "/docs/"),
    ]);
    assert_eq!(
        err,
        "a.example/docs is claimed by both web-http/a and web-http/b"
    );
}

#[test]
fn an_extra_prefix_the_settings_claim_counts_as_a_route() {
    let ui = InstanceSpec {
        settings: [("ui".to_owned(), toml::Value::Boolean(true))]
            .into_iter()
            .collect(),
        ..web("registry", "a.example", "/v2")
    };
    let err = refused(vec![ui.clone(), web("site", "a.example", "/ui")]);
    assert_eq!(
        err,
        "a.example/ui is claimed by both web-http/registry and web-http/site"
    );
    // Without the setting the same two instances are fine.
    let plain = InstanceSpec {
        settings: toml::Table::new(),
        ..ui
    };
    plan(vec![plain, web("site", "a.example", "/ui")], &registry()).unwrap();
}

#[test]
fn reserved_stores_are_refused() {
    for reserved in RESERVED_STORES {
        let err = refused(vec![InstanceSpec {
            store: Some(reserved.parse().unwrap()),
            ..web("a", "a.example", "/")
        }]);
        assert!(err.contains("reserved for the server"), "{err}");
    }
}

#[test]
fn one_store_for_two_instances_is_refused() {
    // The second instance's derived store is the one the first names explicitly.
    let err = refused(vec![
        InstanceSpec {
            store: Some("web-http-b".parse().unwrap()),
            ..web("a", "a.example", "/")
        },
        web("b", "b.example", "/"),
    ]);
    assert!(
        err.starts_with("store `web-http-b` is used by both web-http/a and web-http/b"),
        "{err}"
    );
}

#[test]
fn a_second_console_instance_is_refused() {
    let err = refused(vec![console("one"), console("two")]);
    assert_eq!(
        err,
        "console-ssh/two is a second SSH instance besides console-ssh/one; the SSH frontend serves exactly one"
    );
}

#[test]
fn zero_config_defaults_are_planned_and_a_failing_one_stops_startup() {
    let config = Config::parse("", Path::new("t.toml")).unwrap();
    let planned = config.plan(&registry(), None).unwrap();
    let names: Vec<String> = planned.specs().iter().map(InstanceSpec::id).collect();
    assert_eq!(names, ["web-http/default"]);

    let broken = Registry::from_factories([&WEB, &BROKEN]).unwrap();
    let err = config.plan(&broken, None).unwrap_err();
    assert!(
        matches!(&err, ConfigError::BadDefault { kind, .. } if kind == "broken-http"),
        "{err}"
    );
    assert!(err.to_string().contains("Not_A_Name"), "{err}");
}

#[test]
fn a_disabled_kind_contributes_no_instances() {
    let config = Config::parse(
        "[backends.web-http]\nenabled = false\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert!(config.plan(&registry(), None).unwrap().specs().is_empty());
}
