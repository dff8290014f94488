//! Retention rules (`[[settings.retention]]`): which tags and untagged manifests go.
//!
//! Each repository follows the first rule whose `repositories` pattern matches it (see
//! [`glob`]); a repository no rule matches keeps everything. Within a repository:
//! - `keep-last = N` keeps the N most recently pushed tags (push time = the last commit that
//!   wrote the tag) and removes the other tags;
//! - `keep-tags = "<regex>"` tags whose name matches are never removed, and do not count
//!   towards `keep-last`;
//! - `untagged-after-days = D` removes manifests that no remaining tag reaches (directly,
//!   through an index or as a referrer of a reachable manifest) once they have been untagged
//!   for D days. A manifest untagged by `keep-last` has its media-type entry re-written in the
//!   same commit, so its D days start then, not at its push.
//!
//! Nothing younger than the instance's `gc-grace-secs` is removed, so a push in flight (an
//! index's children pushed by digest before the tagged index) is never cut short. Removing
//! tags and manifests frees no blob by itself: `gc` then removes the blobs nothing references.
//! Every change is an ordinary commit by `system` with compare-and-swap preconditions, so a
//! concurrent push that re-tags or re-references something wins and the rule skips it.

pub(crate) mod glob;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use everlock_host::storage::{CommitMeta, Entry, Expected, Op, Precondition, Store};
use serde::{Deserialize, Serialize};

use crate::gc::{self, GcError};
use crate::layout;
use crate::names::{Name, OciDigest};

/// One `[[settings.retention]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RetentionRule {
    /// Pattern of the repositories the rule governs.
    pub(crate) repositories: String,
    /// Keep this many most recently pushed tags (plus those `keep-tags` protects).
    #[serde(default)]
    pub(crate) keep_last: Option<usize>,
    /// Tags matching this regular expression (anchored at both ends) are never removed.
    #[serde(default)]
    pub(crate) keep_tags: Option<String>,
    /// Remove manifests untagged for this many days.
    #[serde(default)]
    pub(crate) untagged_after_days: Option<u64>,
}

impl RetentionRule {
    /// Checks the pattern and compiles the regex once, so a bad rule fails `config check`.
    pub(crate) fn validate(&self) -> Result<(), String> {
        glob::validate(&self.repositories, "retention")?;
        self.keep_regex().map(|_| ())
    }

    fn keep_regex(&self) -> Result<Option<regex::Regex>, String> {
        self.keep_tags
            .as_deref()
            .map(|r| {
                regex::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| format!("retention: keep-tags = {r:?} is not a valid regex: {e}"))
            })
            .transpose()
    }

    fn describe(&self) -> String {
        let mut s = format!("repositories {:?}", self.repositories);
        if let Some(n) = self.keep_last {
            let _ = write!(s, ", keep-last {n}");
        }
        if let Some(r) = &self.keep_tags {
            let _ = write!(s, ", keep-tags {r:?}");
        }
        if let Some(d) = self.untagged_after_days {
            let _ = write!(s, ", untagged-after-days {d}");
        }
        s
    }
}

/// What a rule removes, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Removal {
    /// `tag` or `manifest`.
    pub(crate) kind: &'static str,
    pub(crate) repository: String,
    /// The tag, for a tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tag: Option<String>,
    pub(crate) digest: String,
    pub(crate) reason: String,
}

/// One repository's part of a plan.
#[derive(Default)]
struct RepoPlan {
    /// Tag entries to delete.
    tags: Vec<Entry>,
    /// Media-type entries of manifests that lose their last tag now (re-written).
    untagged_now: Vec<Entry>,
    /// Manifests to delete, with their media-type entry as scanned.
    manifests: Vec<(OciDigest, Entry)>,
}

/// Everything the rules would remove.
#[derive(Default)]
pub(crate) struct Plan {
    pub(crate) removals: Vec<Removal>,
    repos: BTreeMap<Name, RepoPlan>,
}

/// What applying a plan did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) tags: u64,
    pub(crate) manifests: u64,
    /// Repositories or manifests left alone because a concurrent change touched them.
    pub(crate) skipped: u64,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "retention: removed {} tags and {} untagged manifests ({} skipped because they changed meanwhile)",
            self.tags, self.manifests, self.skipped
        )
    }
}

/// Computes what `rules` remove now; `grace` protects anything written more recently.
pub(crate) async fn plan(
    store: &Store,
    rules: &[RetentionRule],
    grace: Duration,
) -> Result<Plan, GcError> {
    let mut out = Plan::default();
    if rules.is_empty() {
        return Ok(out);
    }
    let repos = gc::scan(store).await?;
    let parsed = gc::parse_all(store, &repos).await?;
    for (name, repo) in &repos {
        let Some(rule) = rules
            .iter()
            .find(|r| glob::matches(&r.repositories, name.as_str()))
        else {
            continue;
        };
        let ctx = RepoCtx {
            store,
            name,
            repo,
            rule,
            grace,
            now: gc::now_ms(),
        };
        let mut rp = RepoPlan::default();
        let kept = ctx.plan_tags(&mut rp, &mut out.removals).await?;
        let before = gc::reachable_from(store, name, &repo.tags, &parsed).await?;
        let after = gc::reachable_from(store, name, &kept, &parsed).await?;
        for d in before.difference(&after) {
            if let Some(m) = repo.mtypes.get(d) {
                rp.untagged_now.push(m.clone());
            }
        }
        ctx.plan_untagged(&before, &mut rp, &mut out.removals)
            .await?;
        if !rp.tags.is_empty() || !rp.manifests.is_empty() {
            out.repos.insert(name.clone(), rp);
        }
    }
    Ok(out)
}

/// One repository and the rule it follows, while planning.
struct RepoCtx<'a> {
    store: &'a Store,
    name: &'a Name,
    repo: &'a gc::Repo,
    rule: &'a RetentionRule,
    grace: Duration,
    now: i64,
}

impl RepoCtx<'_> {
    /// Chooses the tags `keep-last`/`keep-tags` remove; returns the tag entries that stay.
    async fn plan_tags(
        &self,
        rp: &mut RepoPlan,
        removals: &mut Vec<Removal>,
    ) -> Result<Vec<Entry>, GcError> {
        let (store, rule) = (self.store, self.rule);
        let keep = rule
            .keep_regex()
            .map_err(|e| GcError::Storage(everlock_host::storage::StorageError::Corrupt(e)))?;
        let prefix = layout::tags_prefix(self.name);
        // Tags with their push time, newest first (ties by name, for a stable order).
        let mut tags = Vec::with_capacity(self.repo.tags.len());
        for t in &self.repo.tags {
            let Some(tag) = t.path.strip_prefix(&prefix) else {
                continue;
            };
            tags.push((gc::last_write_ms(store, &t.path).await?, tag.to_owned(), t));
        }
        tags.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let cutoff = self.now.saturating_sub(ms(self.grace));
        let mut kept = Vec::new();
        let mut counted = 0usize;
        for (pushed, tag, entry) in tags {
            let protected = keep.as_ref().is_some_and(|r| r.is_match(&tag));
            let within = rule.keep_last.is_none_or(|n| counted < n);
            if !protected {
                counted += 1;
            }
            if protected || within || pushed > cutoff {
                kept.push(entry.clone());
                continue;
            }
            removals.push(Removal {
                kind: "tag",
                repository: self.name.to_string(),
                tag: Some(tag),
                digest: tag_target(store, entry).await?,
                reason: format!(
                    "not among the {} most recently pushed tags ({})",
                    rule.keep_last.unwrap_or(0),
                    rule.describe()
                ),
            });
            rp.tags.push(entry.clone());
        }
        Ok(kept)
    }

    /// Chooses the manifests `untagged-after-days` removes: untagged before this pass (not in
    /// `tagged`) and untagged for long enough.
    async fn plan_untagged(
        &self,
        tagged: &BTreeSet<OciDigest>,
        rp: &mut RepoPlan,
        removals: &mut Vec<Removal>,
    ) -> Result<(), GcError> {
        let Some(days) = self.rule.untagged_after_days else {
            return Ok(());
        };
        let limit = Duration::from_secs(days.saturating_mul(86_400)).max(self.grace);
        let cutoff = self.now.saturating_sub(ms(limit));
        for d in self.repo.manifests.keys().filter(|d| !tagged.contains(*d)) {
            let Some(mtype) = self.repo.mtypes.get(d) else {
                continue;
            };
            let written = gc::last_write_ms(self.store, &mtype.path).await?;
            if written > cutoff {
                continue;
            }
            let age_days = self.now.saturating_sub(written) / 86_400_000;
            removals.push(Removal {
                kind: "manifest",
                repository: self.name.to_string(),
                tag: None,
                digest: d.to_string(),
                reason: format!(
                    "untagged, last pushed or untagged {age_days} days ago ({})",
                    self.rule.describe()
                ),
            });
            rp.manifests.push((d.clone(), mtype.clone()));
        }
        Ok(())
    }
}

/// The digest a tag entry points at (empty if it vanished meanwhile).
async fn tag_target(store: &Store, entry: &Entry) -> Result<String, GcError> {
    match store.read(&entry.path).await {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(everlock_host::storage::StorageError::NotFound(_)) => Ok(String::new()),
        Err(e) => Err(e.into()),
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Applies a plan: per repository, one commit removing its tags (and restarting the untagged
/// clock of the manifests they leave untagged), then one commit per untagged manifest.
pub(crate) async fn apply(store: &Store, plan: &Plan) -> Result<Outcome, GcError> {
    let mut out = Outcome::default();
    for (name, rp) in &plan.repos {
        if !rp.tags.is_empty() {
            let mut ops = Vec::new();
            let mut pre = Vec::new();
            for t in &rp.tags {
                ops.push(Op::Delete {
                    path: t.path.clone(),
                });
                pre.push(Precondition {
                    path: t.path.clone(),
                    expected: Expected::Version(t.version),
                });
            }
            let mut touched = BTreeSet::new();
            for m in &rp.untagged_now {
                if !touched.insert(m.path.clone()) {
                    continue;
                }
                let bytes = match store.read(&m.path).await {
                    Ok(b) => b,
                    Err(everlock_host::storage::StorageError::NotFound(_)) => continue,
                    Err(e) => return Err(e.into()),
                };
                ops.push(Op::PutBytes {
                    path: m.path.clone(),
                    bytes,
                });
                pre.push(Precondition {
                    path: m.path.clone(),
                    expected: Expected::Version(m.version),
                });
            }
            let message = format!("oci retention: remove {} tags of {name}", rp.tags.len());
            let done = gc::committed(
                store
                    .commit(ops, pre, CommitMeta::new("system", message))
                    .await,
            )?;
            if done {
                out.tags += rp.tags.len() as u64;
            } else {
                out.skipped += 1;
            }
        }
        for (d, mtype) in &rp.manifests {
            if gc::remove_manifest(store, name, d, mtype).await? {
                out.manifests += 1;
            } else {
                out.skipped += 1;
            }
        }
    }
    Ok(out)
}

/// The plan as text, one removal per line, then a summary line.
pub(crate) fn render(plan: &Plan, dry_run: bool) -> String {
    let mut s = String::new();
    for r in &plan.removals {
        let what = match &r.tag {
            Some(t) => format!("tag {}:{t} ({})", r.repository, r.digest),
            None => format!("manifest {}@{}", r.repository, r.digest),
        };
        let _ = writeln!(s, "{what}: {}", r.reason);
    }
    let verb = if dry_run { "would remove" } else { "removes" };
    let tags = plan.removals.iter().filter(|r| r.kind == "tag").count();
    let _ = writeln!(
        s,
        "retention {verb} {tags} tags and {} untagged manifests",
        plan.removals.len() - tags
    );
    s
}
