//! The contract as a kind sees it: a factory derived from typed settings validates and builds
//! from one declaration, its extra prefixes are known before anything is built, and a built
//! service must be of the frontend the kind declared.

use std::path::Path;

use serde::Deserialize;

use super::{
    Backend, BackendContext, BackendFactory, BackendKind, BuildError, Frontend, PathPrefix, Service,
};
use crate::api::InstanceSpec;
use crate::config::{Config, ConfigError};
use crate::registry::Registry;
use crate::runtime::{Host, HostError};
use crate::test_util::TestEnv;

/// A kind whose settings claim `/ui` unless `ui = false`, like the registry's web UI.
struct Ui;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UiSettings {
    #[serde(default = "yes")]
    ui: bool,
    #[serde(default)]
    size: u32,
}

fn yes() -> bool {
    true
}

struct Page;
impl Backend for Page {
    fn service(&self) -> Service {
        Service::Http(axum::Router::new())
    }
}

impl BackendKind for Ui {
    type Settings = UiSettings;
    const FRONTEND: Frontend = Frontend::Http;

    fn validate(settings: &UiSettings) -> Result<(), BuildError> {
        if settings.size > 10 {
            return Err(BuildError::Settings("size is at most 10".to_owned()));
        }
        Ok(())
    }

    fn extra_prefixes(settings: &UiSettings) -> Vec<PathPrefix> {
        if settings.ui {
            vec!["/ui".parse().unwrap()]
        } else {
            Vec::new()
        }
    }

    fn build(_: BackendContext, _: UiSettings) -> Result<Box<dyn Backend>, BuildError> {
        Ok(Box::new(Page))
    }
}

/// A kind with no settings at all.
struct Plain;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

impl BackendKind for Plain {
    type Settings = NoSettings;
    const FRONTEND: Frontend = Frontend::Http;

    fn build(_: BackendContext, _: NoSettings) -> Result<Box<dyn Backend>, BuildError> {
        Ok(Box::new(Page))
    }
}

/// A kind that declares SSH but builds an HTTP service.
struct Liar;

impl BackendKind for Liar {
    type Settings = NoSettings;
    const FRONTEND: Frontend = Frontend::Ssh;

    fn build(_: BackendContext, _: NoSettings) -> Result<Box<dyn Backend>, BuildError> {
        Ok(Box::new(Page))
    }
}

static UI: BackendFactory = BackendFactory::of::<Ui>("ui-http", "claims /ui");
static PLAIN: BackendFactory = BackendFactory::of::<Plain>("plain-http", "no settings");
static LIAR: BackendFactory = BackendFactory::of::<Liar>("liar-ssh", "says ssh, serves http");

fn table(text: &str) -> toml::Table {
    text.parse().unwrap()
}

#[test]
fn check_and_build_derive_from_one_typed_declaration() {
    assert_eq!(UI.frontend, Frontend::Http);
    let ui: Vec<String> = (UI.check)(&table(""))
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ui, ["/ui"]);
    assert!((UI.check)(&table("ui = false")).unwrap().is_empty());
    // Unknown keys, wrong types and the kind's own validation fail `check` and `build` alike.
    for bad in ["colour = 1", "ui = 3", "size = 11"] {
        assert!((UI.check)(&table(bad)).is_err(), "{bad}");
    }
    let err = (UI.check)(&table("size = 11")).unwrap_err();
    assert!(
        matches!(err, BuildError::Settings(ref m) if m.contains("at most 10")),
        "{err}"
    );
}

#[tokio::test]
async fn build_rejects_what_check_rejects() {
    let env = TestEnv::new().await;
    let ctx = || env.context("ui-http", "a", "localhost", "/");
    assert!((UI.build)(ctx(), &table("size = 11")).is_err());
    let built = (UI.build)(ctx(), &table("size = 3")).unwrap();
    assert!(built.http_router().is_some());
}

fn config(text: &str) -> Config {
    Config::parse(text, Path::new("t.toml")).unwrap()
}

/// An extra prefix the settings claim conflicts like a mount, found by validation alone
/// (what `everlock config check` runs), before any instance is built.
#[test]
fn validation_finds_an_extra_prefix_conflict_before_building() {
    let registry = Registry::from_factories([&UI, &PLAIN]).unwrap();
    let both = "[backends.ui-http.instances.r]\nvhosts = [\"localhost\"]\nprefix = \"/v2\"\n\
                [backends.plain-http.instances.docs]\nvhosts = [\"localhost\"]\nprefix = \"/ui\"\n";
    let err = config(both).validate(&registry, None).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::DuplicateRoute { vhost, prefix, .. } if vhost == "localhost" && prefix == "/ui"
        ),
        "{err}"
    );
    // Other vhosts do not conflict, and without the claim the same mount is fine.
    let apart = both.replace(
        "vhosts = [\"localhost\"]\nprefix = \"/ui\"",
        "vhosts = [\"docs.example\"]\nprefix = \"/ui\"",
    );
    config(&apart).validate(&registry, None).unwrap();
    let off = format!("{both}[backends.ui-http.instances.r.settings]\nui = false\n");
    config(&off).validate(&registry, None).unwrap();
}

#[tokio::test]
async fn a_service_of_another_frontend_is_a_build_error() {
    let env = TestEnv::new().await;
    let host = Host::new(
        Registry::from_factories([&LIAR]).unwrap(),
        env.stores.clone(),
        env.auth,
        everlock_auth::SystemAuthority::for_tests(),
        Default::default(),
    );
    let spec = InstanceSpec {
        store: Some("liar".parse().unwrap()),
        ..InstanceSpec::parse("liar-ssh", "console", &[], "/").unwrap()
    };
    let plan = crate::config::plan(vec![spec], host.registry()).unwrap();
    let planned = plan.instances().next().unwrap();
    let err = host.build_instance(planned).unwrap_err();
    assert!(
        matches!(&err, HostError::Build { error: BuildError::Failed(m), .. } if m.contains("a ssh kind built a http service")),
        "{err}"
    );
}
