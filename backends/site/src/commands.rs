//! Console commands a site offers through the host: `history [--json]` and
//! `rollback <commit>`, where the commit is named as `history` shows it: `#<seq>`, a prefix of
//! at least 7 hex digits of its id, or the whole id.

use std::sync::Arc;

use everlock_host::auth::{Action, Principal};
use everlock_host::storage::{
    CommitId, CommitInfo, CommitMeta, ObjectRef, Op, RetentionPolicy, StorageError, Store,
};
use everlock_host::{CommandError, CommandFuture, CommandHelp, InstanceCommands};

use crate::site::SiteInner;

/// How many commits `history` lists.
const HISTORY_LIMIT: u64 = 50;

/// How far back `rollback` looks for a `#<seq>` or a prefix: far beyond what retention keeps
/// the content of, and bounded so one command never reads an unbounded log.
const RESOLVE_LIMIT: u64 = 10_000;

/// The shortest commit prefix accepted: git's default abbreviation.
const MIN_PREFIX: usize = 7;

pub(crate) const HELP: &[CommandHelp] = &[
    CommandHelp {
        name: "history",
        args: "[--json]",
        summary: "list the site's deploys and rollbacks, newest first",
    },
    CommandHelp {
        name: "rollback",
        args: "#<seq>|<commit prefix>",
        summary: "restore the site exactly as it was at that commit, in one new commit",
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
                ("history", [flag]) if flag == "--json" => history_json(&site, &actor).await,
                ("history", [other, ..]) => Err(CommandError::Usage(format!(
                    "unexpected argument `{other}`"
                ))),
                ("rollback", [commit]) => match rollback(&site, &actor, commit).await? {
                    Rollback::Done { to, new } => Ok(format!(
                        "site '{}' rolled back to {to} (new commit {new})",
                        site.name
                    )),
                    Rollback::AlreadyAt(to) => {
                        Ok(format!("site '{}' is already at {to}", site.name))
                    }
                },
                ("rollback", []) => Err(CommandError::Usage("missing <commit>".to_owned())),
                ("rollback", [_, extra, ..]) => Err(CommandError::Usage(format!(
                    "unexpected argument `{extra}`"
                ))),
                (other, _) => Err(CommandError::Usage(format!(
                    "unknown site command {other:?}; known: history, rollback"
                ))),
            }
        })
    }
}

/// The commits `history` shows, newest first, each with whether retention purged its
/// content.
async fn entries(
    site: &SiteInner,
    actor: &Principal,
) -> Result<Vec<(CommitInfo, bool)>, CommandError> {
    if !site.auth.authorize(actor, &site.resource, Action::Read) {
        return Err(CommandError::Denied(format!("reading {}", site.resource)));
    }
    let store = site.store().await?;
    let mut out = Vec::new();
    for c in store.log(HISTORY_LIMIT).await? {
        let purged = store.purged_paths_at(c.id).await? > 0;
        out.push((c, purged));
    }
    Ok(out)
}

/// One line per commit: `#<seq>  <commit>  <time>  <principal>  <message>`, and
/// `[content purged]` for a state retention no longer holds (it cannot be rolled back to).
pub async fn history(site: &SiteInner, actor: &Principal) -> Result<String, CommandError> {
    let log = entries(site, actor).await?;
    if log.is_empty() {
        return Ok(format!("site '{}' has no deploys yet\n", site.name));
    }
    let mut out = String::new();
    for (c, purged) in log {
        let secs = u64::try_from(c.time_ms / 1000).unwrap_or(0);
        let time =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        let purged = if purged { "  [content purged]" } else { "" };
        out.push_str(&format!(
            "{:>5}  {}  {time}  {}  {}{purged}\n",
            format!("#{}", c.seq),
            c.id,
            c.principal,
            c.message
        ));
    }
    Ok(out)
}

/// `history --json`: the same commits as an array, newest first; `time_ms` is milliseconds
/// since the Unix epoch.
pub async fn history_json(site: &SiteInner, actor: &Principal) -> Result<String, CommandError> {
    let list: Vec<serde_json::Value> = entries(site, actor)
        .await?
        .into_iter()
        .map(|(c, purged)| {
            serde_json::json!({
                "seq": c.seq,
                "commit": c.id.to_hex(),
                "time_ms": c.time_ms,
                "principal": c.principal,
                "message": c.message,
                "purged": purged,
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).map_err(failed)
}

/// What a rollback did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rollback {
    /// A new commit restored the state of `to`.
    Done {
        /// The commit rolled back to (full id).
        to: String,
        /// The new commit.
        new: String,
    },
    /// The site already is exactly as it was at that commit: nothing was committed.
    AlreadyAt(String),
}

/// Finds the commit `spec` names: `#<seq>`, a unique prefix of 7+ hex digits, or a full id.
async fn resolve(store: &Store, spec: &str) -> Result<CommitId, CommandError> {
    if let Some(seq) = spec.strip_prefix('#') {
        let seq: u64 = seq.parse().map_err(|_| {
            CommandError::Usage(format!("`{spec}` is not a #<seq> as `history` prints it"))
        })?;
        let log = store.log(RESOLVE_LIMIT).await?;
        return log
            .iter()
            .find(|c| c.seq == seq)
            .map(|c| c.id)
            .ok_or_else(|| {
                CommandError::NotFound(format!("no commit #{seq}; `history` lists them"))
            });
    }
    let prefix = spec.to_ascii_lowercase();
    if prefix.len() < MIN_PREFIX || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CommandError::Usage(format!(
            "`{spec}` is neither #<seq> nor a commit prefix of at least {MIN_PREFIX} hex digits"
        )));
    }
    if let Ok(id) = prefix.parse::<CommitId>() {
        // A full id is taken as given only if the store has that commit.
        return match store.commit_info(id).await {
            Ok(_) => Ok(id),
            Err(StorageError::UnknownCommit(_)) => Err(CommandError::NotFound(format!(
                "no commit {prefix}; `history` lists them"
            ))),
            Err(e) => Err(e.into()),
        };
    }
    let log = store.log(RESOLVE_LIMIT).await?;
    match_prefix(&prefix, &log)
}

/// The one commit of `log` whose id starts with `prefix`; several are listed in the error.
fn match_prefix(prefix: &str, log: &[CommitInfo]) -> Result<CommitId, CommandError> {
    let matches: Vec<&CommitInfo> = log
        .iter()
        .filter(|c| c.id.to_hex().starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id),
        [] => Err(CommandError::NotFound(format!(
            "no commit starts with {prefix}; `history` lists them"
        ))),
        many => Err(CommandError::Failed(format!(
            "{prefix} is ambiguous: {}; give more digits or #<seq>",
            many.iter()
                .map(|c| format!("#{} {}", c.seq, c.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Restores the site's paths as of `commit` in one new commit by `actor`.
pub async fn rollback(
    site: &SiteInner,
    actor: &Principal,
    commit: &str,
) -> Result<Rollback, CommandError> {
    if !site.auth.authorize(actor, &site.resource, Action::Write) {
        return Err(CommandError::Denied(format!("writing {}", site.resource)));
    }
    let store = site.store().await?;
    let id = resolve(store, commit).await?;
    let to = id.to_hex();
    if store.purged_paths_at(id).await? > 0 {
        return Err(CommandError::Failed(format!(
            "deploy {to}'s content was purged by retention ({}); history keeps its record",
            retention_words(store).await
        )));
    }
    let ops = restore_ops(store, id).await?;
    if ops.is_empty() {
        return Ok(Rollback::AlreadyAt(to));
    }
    let info = store
        .commit(
            ops,
            Vec::new(),
            CommitMeta::new(actor.name(), format!("site: rollback to {to}")),
        )
        .await?;
    Ok(Rollback::Done {
        to,
        new: info.id.to_hex(),
    })
}

/// The operations that make the current tree equal to the tree at `id`.
async fn restore_ops(store: &Store, id: CommitId) -> Result<Vec<Op>, CommandError> {
    let target = store.list_at("", id).await?;
    let current = store.list("").await?;
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
    Ok(ops)
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
            env.auth.access_control(),
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
    async fn rollback_by_seq_or_prefix_and_already_at_is_success() {
        let env = TestEnv::new().await;
        let site = site(&env, None).await;
        let store = site.store().await.unwrap();
        let mut ids = Vec::new();
        for i in 0..3u8 {
            let c = store
                .write("index.html", vec![i; 16], CommitMeta::new("will", "deploy"))
                .await
                .unwrap();
            ids.push((c.seq, c.id.to_hex()));
        }
        let will = Principal::test_user("will");
        let text = history(&site, &will).await.unwrap();
        let (seq0, id0) = ids[0].clone();
        assert!(text.contains(&format!("#{seq0}  {id0}")), "{text}");
        // `#<seq>` as history prints it.
        let Rollback::Done { to, .. } = rollback(&site, &will, &format!("#{seq0}")).await.unwrap()
        else {
            panic!("expected a rollback")
        };
        assert_eq!(to, id0);
        assert_eq!(store.read("index.html").await.unwrap(), vec![0u8; 16]);
        // Rolling back to the state the site is in is not an error, and commits nothing.
        let head = store.head_seq();
        assert_eq!(
            rollback(&site, &will, &id0[..7]).await.unwrap(),
            Rollback::AlreadyAt(id0.clone())
        );
        assert_eq!(store.head_seq(), head);
        // A 7-digit prefix (upper case too) names a commit.
        let (_, id2) = ids[2].clone();
        let prefix = id2[..7].to_ascii_uppercase();
        assert!(matches!(
            rollback(&site, &will, &prefix).await.unwrap(),
            Rollback::Done { .. }
        ));
        assert_eq!(store.read("index.html").await.unwrap(), vec![2u8; 16]);
        for (bad, want) in [
            (
                "abc12",
                "neither #<seq> nor a commit prefix of at least 7 hex digits",
            ),
            ("#x", "is not a #<seq>"),
            ("#999", "no commit #999"),
            ("0000000", "no commit starts with 0000000"),
        ] {
            let err = rollback(&site, &will, bad).await.unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
        let json: serde_json::Value =
            serde_json::from_str(&history_json(&site, &will).await.unwrap()).unwrap();
        assert_eq!(json[0]["seq"], store.head_seq());
        assert_eq!(json.as_array().unwrap().len(), 5);
        assert_eq!(json[4]["commit"], id0.as_str());
        assert_eq!(json[4]["purged"], false);
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_candidates() {
        let info = |seq: u64, hex: String| CommitInfo {
            seq,
            id: hex.parse().unwrap(),
            parent: None,
            time_ms: 0,
            principal: "will".into(),
            message: "deploy".into(),
        };
        let a = format!("abcdef1{}", "0".repeat(57));
        let b = format!("abcdef1{}", "1".repeat(57));
        let log = [info(1, a.clone()), info(2, b.clone())];
        let err = match_prefix("abcdef1", &log).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("abcdef1 is ambiguous: #1 {a}, #2 {b}; give more digits or #<seq>")
        );
        assert_eq!(match_prefix("abcdef10", &log).unwrap().to_hex(), a);
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
            env.auth.access_control(),
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
            env.auth.access_control(),
            AccessPath::from_segments(["http", "site", "web"]).unwrap(),
        );
        let store = configured.store().await.unwrap();
        assert_eq!(
            store.retention_policy().await.unwrap(),
            RetentionPolicy::KeepCommits(7)
        );
    }
}
