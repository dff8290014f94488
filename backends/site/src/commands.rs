//! Console commands a site offers through the host: `history` and `rollback <commit>`.

use std::sync::Arc;

use everlock_host::auth::{Action, Principal};
use everlock_host::storage::{CommitId, CommitMeta, ObjectRef, Op, RetentionPolicy, Store};
use everlock_host::{CommandError, CommandFuture, CommandHelp, InstanceCommands};

use crate::site::SiteInner;

/// How many commits `history` lists.
const HISTORY_LIMIT: u64 = 50;

pub(crate) const HELP: &[CommandHelp] = &[
    CommandHelp {
        name: "history",
        args: "",
        summary: "list the site's deploys and rollbacks, newest first",
    },
    CommandHelp {
        name: "rollback",
        args: "<commit>",
        summary: "restore the site exactly as it was at <commit>, in one new commit",
    },
];

/// The commands of one site instance.
pub struct SiteCommands {
    /// The site.
    pub site: Arc<SiteInner>,
}

impl InstanceCommands for SiteCommands {
    fn help(&self) -> &'static [CommandHelp] {
        HELP
    }

    fn run(&self, actor: Principal, command: &str, args: Vec<String>) -> CommandFuture {
        let site = self.site.clone();
        let command = command.to_owned();
        Box::pin(async move {
            match (command.as_str(), args.as_slice()) {
                ("history", []) => history(&site, &actor).await,
                ("history", _) => Err(CommandError::Usage("usage: history <site>".to_owned())),
                ("rollback", [commit]) => rollback(&site, &actor, commit).await.map(|c| {
                    format!(
                        "site '{}' rolled back to {commit} (new commit {c})",
                        site.name
                    )
                }),
                ("rollback", _) => Err(CommandError::Usage(
                    "usage: rollback <site> <commit>".to_owned(),
                )),
                (other, _) => Err(CommandError::Usage(format!(
                    "unknown site command {other:?}; known: history, rollback"
                ))),
            }
        })
    }
}

/// One line per commit: `<seq> <commit> <time> <principal> <message>`, and
/// `[content purged]` for a state retention no longer holds (it cannot be rolled back to).
pub async fn history(site: &SiteInner, actor: &Principal) -> Result<String, CommandError> {
    if !site.auth.authorize(actor, &site.resource, Action::Read) {
        return Err(CommandError::Denied(format!("reading {}", site.resource)));
    }
    let store = site.store().await.map_err(failed)?;
    let log = store.log(HISTORY_LIMIT).await.map_err(failed)?;
    if log.is_empty() {
        return Ok(format!("site '{}' has no deploys yet\n", site.name));
    }
    let mut out = String::new();
    for c in log {
        let secs = u64::try_from(c.time_ms / 1000).unwrap_or(0);
        let time =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        let purged = if store.purged_paths_at(c.id).await.map_err(failed)? > 0 {
            "  [content purged]"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:>4}  {}  {time}  {}  {}{purged}\n",
            c.seq, c.id, c.principal, c.message
        ));
    }
    Ok(out)
}

/// Restores the site's paths as of `commit` in one new commit by `actor`; returns its id.
pub async fn rollback(
    site: &SiteInner,
    actor: &Principal,
    commit: &str,
) -> Result<String, CommandError> {
    if !site.auth.authorize(actor, &site.resource, Action::Write) {
        return Err(CommandError::Denied(format!("writing {}", site.resource)));
    }
    let id: CommitId = commit
        .parse()
        .map_err(|e| CommandError::Usage(format!("{e}; `history` lists the commits")))?;
    let store = site.store().await.map_err(failed)?;
    if store.purged_paths_at(id).await.map_err(failed)? > 0 {
        return Err(CommandError::Failed(format!(
            "deploy {commit}'s content was purged by retention ({}); history keeps its record",
            retention_words(store).await
        )));
    }
    let target = store.list_at("", id).await.map_err(failed)?;
    let current = store.list("").await.map_err(failed)?;
    let current_by_path: std::collections::HashMap<&str, _> = current
        .iter()
        .map(|e| (e.path.as_str(), e.object))
        .collect();
    let wanted: std::collections::HashSet<&str> = target.iter().map(|e| e.path.as_str()).collect();
    let mut ops: Vec<Op> = current
        .iter()
        .filter(|e| !wanted.contains(e.path.as_str()))
        .map(|e| Op::Delete {
            path: e.path.clone(),
        })
        .collect();
    ops.extend(
        target
            .iter()
            .filter(|e| current_by_path.get(e.path.as_str()) != Some(&e.object))
            .map(|e| Op::Put {
                path: e.path.clone(),
                object: ObjectRef {
                    id: e.object,
                    sha256: e.sha256,
                    sha512: None,
                    size: e.size,
                },
            }),
    );
    if ops.is_empty() {
        return Err(CommandError::Failed(format!(
            "site '{}' already matches {commit}",
            site.name
        )));
    }
    let info = store
        .commit(
            ops,
            Vec::new(),
            CommitMeta::new(actor.name(), format!("site: rollback to {commit}")),
        )
        .await
        .map_err(failed)?;
    Ok(info.id.to_hex())
}

/// The store's policy as a site operator configures it.
async fn retention_words(store: &Store) -> String {
    match store.retention_policy().await {
        Ok(RetentionPolicy::KeepCommits(n)) => format!("keep-deploys = {n}"),
        Ok(other) => format!("retention {other}"),
        Err(e) => format!("retention unknown: {e}"),
    }
}

fn failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use everlock_host::auth::{AccessPath, AdminPassword};
    use everlock_host::storage::GcOptions;
    use everlock_host::test_util::TestEnv;

    use crate::settings::Settings;

    async fn site(env: &TestEnv, keep_deploys: Option<u64>) -> SiteInner {
        env.auth
            .bootstrap("admin", AdminPassword::Given("admin-pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        env.auth.add_user(&admin, "will", "will-pw").await.unwrap();
        env.auth
            .grant(&admin, "will", "http/site/web", "writer")
            .await
            .unwrap();
        let ctx = env.context(crate::KIND, "web", "site.example", "/");
        SiteInner::new(
            "web".into(),
            "/".into(),
            Settings {
                keep_deploys: keep_deploys.and_then(std::num::NonZeroU64::new),
                ..Settings::default()
            },
            ctx.store,
            env.auth.clone(),
            AccessPath::from_segments(["http", "site", "web"]).unwrap(),
        )
    }

    #[tokio::test]
    async fn purged_deploys_are_marked_and_refuse_a_rollback() {
        let env = TestEnv::new().await;
        let site = site(&env, Some(3)).await;
        let store = site.store().await.unwrap();
        assert_eq!(
            store.retention_policy().await.unwrap(),
            RetentionPolicy::KeepCommits(3)
        );
        let mut ids = Vec::new();
        for i in 0..5u8 {
            let c = store
                .write(
                    "index.html",
                    vec![i; 64 * 1024],
                    CommitMeta::new("will", "deploy"),
                )
                .await
                .unwrap();
            ids.push(c.id.to_hex());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let report = store
            .gc(GcOptions {
                grace: std::time::Duration::ZERO,
                dry_run: false,
            })
            .await
            .unwrap();
        assert_eq!(report.file_bytes_freed, 2 * 64 * 1024);
        let will = Principal::test_user("will");
        let history = history(&site, &will).await.unwrap();
        for (i, id) in ids.iter().enumerate() {
            let line = history.lines().find(|l| l.contains(id.as_str())).unwrap();
            assert_eq!(line.ends_with("[content purged]"), i < 2, "{line}");
        }
        let err = rollback(&site, &will, &ids[0]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            CommandError::Failed(format!(
                "deploy {}'s content was purged by retention (keep-deploys = 3); history keeps its record",
                ids[0]
            ))
            .to_string()
        );
        rollback(&site, &will, &ids[2]).await.unwrap();
        assert_eq!(
            store.read("index.html").await.unwrap(),
            vec![2u8; 64 * 1024]
        );
    }

    #[tokio::test]
    async fn the_default_keeps_twenty_deploys_and_an_operators_choice_stays() {
        let env = TestEnv::new().await;
        let site_default = site(&env, None).await;
        let store = site_default.store().await.unwrap();
        assert_eq!(
            store.retention_policy().await.unwrap(),
            RetentionPolicy::KeepCommits(crate::settings::DEFAULT_KEEP_DEPLOYS)
        );
        store
            .set_retention_policy(RetentionPolicy::KeepAll)
            .await
            .unwrap();
        // A rebuilt instance without `keep-deploys` leaves the operator's choice alone...
        let ctx = env.context(crate::KIND, "web", "site.example", "/");
        let rebuilt = SiteInner::new(
            "web".into(),
            "/".into(),
            Settings::default(),
            ctx.store,
            env.auth.clone(),
            AccessPath::from_segments(["http", "site", "web"]).unwrap(),
        );
        let store = rebuilt.store().await.unwrap();
        assert_eq!(
            store.retention_policy().await.unwrap(),
            RetentionPolicy::KeepAll
        );
        // ...and one that configures it explicitly applies it.
        let ctx = env.context(crate::KIND, "web", "site.example", "/");
        let configured = SiteInner::new(
            "web".into(),
            "/".into(),
            Settings {
                keep_deploys: std::num::NonZeroU64::new(7),
                ..Settings::default()
            },
            ctx.store,
            env.auth.clone(),
            AccessPath::from_segments(["http", "site", "web"]).unwrap(),
        );
        let store = configured.store().await.unwrap();
        assert_eq!(
            store.retention_policy().await.unwrap(),
            RetentionPolicy::KeepCommits(7)
        );
    }
}
