//! Retention rules: keep-last by push time, keep-tags protection, untagged manifests after
//! their untagged period, patterns choosing the rule, and the console's dry run.

use super::*;
use crate::retention::{self, RetentionRule};
use crate::settings::Settings;

fn rules(toml: &str) -> Vec<RetentionRule> {
    let s: Settings = everlock_host::parse_settings(&toml.parse().unwrap()).unwrap();
    s.validate().unwrap();
    s.retention
}

/// Pushes `tags` in order, a few milliseconds apart so their push times differ.
async fn push_tags(reg: &Reg, repo: &str, tags: &[&str]) -> Vec<String> {
    let mut digests = Vec::new();
    for t in tags {
        let (d, _) = reg.push_image(repo, t, &format!("{repo}-{t}")).await;
        digests.push(d);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    digests
}

async fn tags_of(reg: &Reg, repo: &str) -> Vec<String> {
    let r = reg
        .call("GET", &format!("/v2/{repo}/tags/list"), ALICE)
        .await;
    r.json()["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn keep_last_keeps_the_newest_tags_and_keep_tags_protects_others() {
    let reg = Reg::new().await;
    push_tags(&reg, "team/app", &["v1.0.0", "a", "b", "c", "d"]).await;
    push_tags(&reg, "other", &["x", "y", "z"]).await;
    let store = reg.store().await;
    let rules = rules(
        "[[retention]]\nrepositories = \"team/*\"\nkeep-last = 2\nkeep-tags = \"v[0-9.]+\"\n",
    );
    let plan = retention::plan(&store, &rules, Duration::ZERO)
        .await
        .unwrap();
    let mut doomed: Vec<String> = plan
        .removals
        .iter()
        .map(|r| format!("{}:{}", r.repository, r.tag.clone().unwrap()))
        .collect();
    doomed.sort();
    assert_eq!(doomed, ["team/app:a", "team/app:b"], "{:?}", plan.removals);
    assert!(plan.removals[0].reason.contains("keep-last 2"));
    let text = retention::render(&plan, true);
    assert!(text.contains("would remove 2 tags"), "{text}");

    // The grace period protects every tag pushed within it.
    let graced = retention::plan(&store, &rules, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(graced.removals.is_empty());

    let outcome = retention::apply(&store, &plan).await.unwrap();
    assert_eq!((outcome.tags, outcome.manifests), (2, 0));
    assert_eq!(tags_of(&reg, "team/app").await, ["c", "d", "v1.0.0"]);
    assert_eq!(
        tags_of(&reg, "other").await,
        ["x", "y", "z"],
        "no rule matches"
    );
    let log = store.log(1).await.unwrap();
    assert_eq!(log[0].principal, "system");
}

#[tokio::test]
async fn untagged_manifests_go_after_their_period_counted_from_untagging() {
    let reg = Reg::new().await;
    let digests = push_tags(&reg, "app", &["old", "new"]).await;
    // Pushed by digest only: untagged from the start.
    let stray = reg.push_image("app", "tmp", "stray").await.0;
    let r = reg.call("DELETE", "/v2/app/manifests/tmp", ADMIN).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(3)).await;
    let store = reg.store().await;
    let rules =
        rules("[[retention]]\nrepositories = \"**\"\nkeep-last = 1\nuntagged-after-days = 0\n");
    let plan = retention::plan(&store, &rules, Duration::ZERO)
        .await
        .unwrap();
    let kinds: Vec<(&str, String)> = plan
        .removals
        .iter()
        .map(|r| (r.kind, r.digest.clone()))
        .collect();
    // The stray manifest goes now; `old` loses its tag now, so its manifest waits a pass.
    assert!(kinds.contains(&("manifest", stray.clone())), "{kinds:?}");
    assert!(kinds.contains(&("tag", digests[0].clone())), "{kinds:?}");
    assert!(
        !kinds.contains(&("manifest", digests[0].clone())),
        "{kinds:?}"
    );
    let outcome = retention::apply(&store, &plan).await.unwrap();
    assert_eq!(
        (outcome.tags, outcome.manifests, outcome.skipped),
        (1, 1, 0)
    );
    let r = reg
        .call("GET", &format!("/v2/app/manifests/{stray}"), ALICE)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // With a day's period, the just-untagged manifest stays: its clock restarted.
    let daily = rules_with_days(1);
    let plan = retention::plan(&store, &daily, Duration::ZERO)
        .await
        .unwrap();
    assert!(plan.removals.is_empty(), "{:?}", plan.removals);
    // With no period, the next pass removes it.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let plan = retention::plan(&store, &rules, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(plan.removals.len(), 1, "{:?}", plan.removals);
    assert_eq!(plan.removals[0].digest, digests[0]);
    retention::apply(&store, &plan).await.unwrap();
    for (d, status) in [(&digests[0], 404), (&digests[1], 200)] {
        let r = reg
            .call("GET", &format!("/v2/app/manifests/{d}"), ALICE)
            .await;
        assert_eq!(r.status.as_u16(), status);
    }
}

fn rules_with_days(days: u64) -> Vec<RetentionRule> {
    rules(&format!(
        "[[retention]]\nrepositories = \"**\"\nuntagged-after-days = {days}\n"
    ))
}

#[test]
fn bad_rules_are_refused_by_check() {
    for bad in [
        "[[retention]]\nrepositories = \"\"\n",
        "[[retention]]\nrepositories = \"a\"\nkeep-tags = \"(\"\n",
        "[[retention]]\nrepositories = \"a\"\nkeep-last = -1\n",
        "[[retention]]\nrepositories = \"a\"\nnope = 1\n",
    ] {
        let t: everlock_host::toml::Table = bad.parse().unwrap();
        assert!(crate::check(&t).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn console_retention_dry_run_lists_and_gc_applies() {
    let settings = "gc-grace-secs = 0\n[[retention]]\nrepositories = \"team/*\"\nkeep-last = 1\n";
    let reg = Reg::with_settings(settings).await;
    push_tags(&reg, "team/app", &["a", "b"]).await;
    let table: everlock_host::toml::Table = settings.parse().unwrap();
    let ctx = reg.env.context(crate::KIND, "default", "localhost", "/v2");
    let commands = crate::build(ctx, &table).unwrap().commands().unwrap();
    let admin = Principal::test_user(ADMIN.0);
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let out = commands
        .run(admin.clone(), "retention", words("--dry-run"))
        .await
        .unwrap();
    assert!(out.contains("tag team/app:a"), "{out}");
    assert!(out.contains("would remove 1 tags"), "{out}");
    let json = commands
        .run(admin.clone(), "retention", words("--dry-run --json"))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["tag"], "a");
    assert_eq!(v[0]["repository"], "team/app");
    // bob reads team/* but may not apply rules; the dry run is his to see.
    let bob = Principal::test_user(BOB.0);
    assert!(
        commands
            .run(bob.clone(), "retention", vec![])
            .await
            .is_err()
    );
    assert_eq!(
        tags_of(&reg, "team/app").await,
        ["a", "b"],
        "a dry run changes nothing"
    );
    let out = commands
        .run(admin, "gc", words("--untagged"))
        .await
        .unwrap();
    assert!(out.contains("retention: removed 1 tags"), "{out}");
    assert_eq!(tags_of(&reg, "team/app").await, ["b"]);
}
