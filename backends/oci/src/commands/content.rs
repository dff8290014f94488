//! Console content management: `repos`, `tags` and `rm` (issue #15 item 8).
//!
//! Listings show only what the actor may read, like `_catalog`; `rm` needs the delete right
//! (the owner role) on the repository and commits as the actor, so the store's log says who
//! removed what.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use everlock_host::CommandError;
use everlock_host::auth::{Action, Principal};
use everlock_host::storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};
use serde::Serialize;

use crate::gc;
use crate::layout;
use crate::names::{Name, OciDigest, Reference, Tag};
use crate::registry::Registry;

fn failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(e.to_string())
}

/// Takes `--json` out of `args`; anything else left over is a usage error.
pub(crate) fn json_flag(args: &mut Vec<String>, usage: &str) -> Result<bool, CommandError> {
    let before = args.len();
    args.retain(|a| a != "--json");
    let json = args.len() != before;
    if let Some(bad) = args.iter().find(|a| a.starts_with("--")) {
        return Err(CommandError::Usage(format!(
            "unknown option {bad:?}; usage: {usage}"
        )));
    }
    Ok(json)
}

/// RFC 3339 (seconds) of a commit time in milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

#[derive(Serialize)]
struct RepoRow {
    repository: String,
    tags: usize,
    manifests: usize,
}

/// `repos <instance> [--json]`.
pub(crate) async fn repos(
    reg: &Registry,
    store: &Store,
    actor: &Principal,
    mut args: Vec<String>,
) -> Result<String, CommandError> {
    let usage = "repos <instance> [--json]";
    let json = json_flag(&mut args, usage)?;
    if !args.is_empty() {
        return Err(CommandError::Usage(format!("usage: {usage}")));
    }
    let scanned = gc::scan(store).await?;
    let rows: Vec<RepoRow> = scanned
        .iter()
        .filter(|(name, repo)| !repo.manifests.is_empty() && reg.allowed(actor, name, Action::Read))
        .map(|(name, repo)| RepoRow {
            repository: name.to_string(),
            tags: repo.tags.len(),
            manifests: repo.manifests.len(),
        })
        .collect();
    if json {
        return serde_json::to_string_pretty(&rows)
            .map(|s| s + "\n")
            .map_err(failed);
    }
    let mut out = String::from("REPOSITORY  TAGS  MANIFESTS\n");
    for r in &rows {
        let _ = writeln!(out, "{}  {}  {}", r.repository, r.tags, r.manifests);
    }
    Ok(out)
}

#[derive(Serialize)]
struct TagRow {
    tag: String,
    digest: String,
    /// RFC 3339 time of the commit that last wrote the tag.
    pushed: String,
}

/// A repository name from the console, checked like the HTTP API checks it.
fn repository(raw: &str) -> Result<Name, CommandError> {
    Name::parse(raw)
        .ok_or_else(|| CommandError::Usage(format!("{raw:?} is not a valid repository name")))
}

/// `tags <instance> <repository> [--json]`.
pub(crate) async fn tags(
    reg: &Registry,
    store: &Store,
    actor: &Principal,
    mut args: Vec<String>,
) -> Result<String, CommandError> {
    let usage = "tags <instance> <repository> [--json]";
    let json = json_flag(&mut args, usage)?;
    let [raw] = args.as_slice() else {
        return Err(CommandError::Usage(format!("usage: {usage}")));
    };
    let name = repository(raw)?;
    if !reg.allowed(actor, &name, Action::Read) {
        return Err(CommandError::Denied(format!("{actor} may not read {name}")));
    }
    let prefix = layout::tags_prefix(&name);
    let mut rows = Vec::new();
    for e in store.list(&prefix).await? {
        let Some(tag) = e.path.strip_prefix(&prefix) else {
            continue;
        };
        let digest = match store.read(&e.path).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(StorageError::NotFound(_)) => continue,
            Err(err) => return Err(CommandError::from(err)),
        };
        let pushed = gc::last_write_ms(store, &e.path).await?;
        rows.push(TagRow {
            tag: tag.to_owned(),
            digest,
            pushed: rfc3339(pushed),
        });
    }
    if rows.is_empty()
        && store
            .list(&layout::manifests_prefix(&name))
            .await?
            .is_empty()
    {
        return Err(CommandError::NotFound(format!(
            "repository {name} not known"
        )));
    }
    if json {
        return serde_json::to_string_pretty(&rows)
            .map(|s| s + "\n")
            .map_err(failed);
    }
    let mut out = String::from("TAG  DIGEST  PUSHED\n");
    for r in &rows {
        let _ = writeln!(out, "{}  {}  {}", r.tag, r.digest, r.pushed);
    }
    Ok(out)
}

/// Splits `<repo>:<tag>` or `<repo>@<digest>`.
pub(crate) fn parse_target(raw: &str) -> Result<(Name, Reference), CommandError> {
    let bad = || {
        CommandError::Usage(format!(
            "{raw:?}: expected <repository>:<tag> or <repository>@<digest>"
        ))
    };
    if let Some((repo, digest)) = raw.split_once('@') {
        let d = OciDigest::parse(digest).map_err(|_| bad())?;
        return Ok((repository(repo)?, Reference::Digest(d)));
    }
    let (repo, tag) = raw.rsplit_once(':').ok_or_else(bad)?;
    if tag.contains('/') {
        return Err(bad());
    }
    let tag = Tag::parse(tag).ok_or_else(bad)?;
    Ok((repository(repo)?, Reference::Tag(tag)))
}

/// `rm <instance> <repo>:<tag>|<repo>@<digest>`: returns the line to print and, for the
/// webhooks, what was removed (repository, tag, digest).
pub(crate) async fn rm(
    reg: &Registry,
    store: &Store,
    actor: &Principal,
    args: &[String],
) -> Result<(String, Name, Option<Tag>, OciDigest), CommandError> {
    let [raw] = args else {
        return Err(CommandError::Usage(
            "usage: rm <instance> <repository>:<tag>|<repository>@<digest>".into(),
        ));
    };
    let (name, reference) = parse_target(raw)?;
    if !reg.allowed(actor, &name, Action::Delete) {
        return Err(CommandError::Denied(format!(
            "{actor} needs owner on {name} to remove content"
        )));
    }
    // A tag moved or a manifest re-pushed between the reads and the commit fails the
    // preconditions; reading again resolves it.
    for _ in 0..5 {
        let (ops, pre, message, digest, tag) = match &reference {
            Reference::Tag(t) => {
                let path = layout::tag(&name, t);
                let Some(entry) = store.stat(&path).await? else {
                    return Err(CommandError::NotFound(format!("no tag {name}:{t}")));
                };
                let bytes = store.read(&path).await?;
                let digest = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| OciDigest::parse(s).ok())
                    .ok_or_else(|| failed(format!("tag {name}:{t} is corrupt")))?;
                let ops = vec![Op::Delete { path: path.clone() }];
                let pre = vec![Precondition {
                    path,
                    expected: Expected::Version(entry.version),
                }];
                (
                    ops,
                    pre,
                    format!("oci: console rm tag {name}:{t}"),
                    digest,
                    Some(t.clone()),
                )
            }
            Reference::Digest(d) => {
                let (ops, pre) = crate::manifests::delete_manifest_ops(store, &name, d)
                    .await
                    .map_err(|e| failed(e.message))?
                    .ok_or_else(|| CommandError::NotFound(format!("no manifest {name}@{d}")))?;
                (
                    ops,
                    pre,
                    format!("oci: console rm manifest {name}@{d}"),
                    d.clone(),
                    None,
                )
            }
        };
        match store
            .commit(ops, pre, CommitMeta::new(actor.name(), message))
            .await
        {
            Ok(_) => {
                let line = match &tag {
                    Some(t) => format!("removed tag {name}:{t} (was {digest})\n"),
                    None => format!("removed manifest {name}@{digest} and its tags\n"),
                };
                return Ok((line, name, tag, digest));
            }
            Err(StorageError::Conflict { .. } | StorageError::NotFound(_)) => continue,
            Err(e) => return Err(CommandError::from(e)),
        }
    }
    Err(failed(format!("{raw} keeps changing; try again")))
}
