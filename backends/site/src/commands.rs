//! Console commands a site offers through the host: `history` and `rollback <commit>`.

use std::sync::Arc;

use everlock_host::auth::{Action, Principal};
use everlock_host::storage::{CommitId, CommitMeta, ObjectRef, Op};
use everlock_host::{CommandError, CommandFuture, CommandHelp, InstanceCommands};

use crate::site::SiteInner;

/// How many commits `history` lists.
const HISTORY_LIMIT: u64 = 50;

const HELP: &[CommandHelp] = &[
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

/// One line per commit: `<seq> <commit> <time> <principal> <message>`.
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
        out.push_str(&format!(
            "{:>4}  {}  {time}  {}  {}\n",
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

fn failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(e.to_string())
}
