//! The last deploy check of a Markdown site (issue #16 item 2): every page renders with the new
//! layouts and `site.toml` before the commit, so a layout that compiles but fails at render
//! time (a filter on the wrong type, an undefined value printed, an include of a missing
//! template, a loop over a non-iterable, a runaway loop) is refused with 422 instead of
//! degrading every page of the live site.
//!
//! Pages are never held together in memory: the check reads each page back from the store by
//! its object (staged by this deploy, or kept from the previous commit by an incremental one),
//! a few at a time, and renders it with the server's own code, fuel and render slots
//! ([`crate::markdown::check`]). The whole check has a wall-clock budget of its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use everlock_host::storage::{ObjectRef, READ_MAX, StorageError, Store};
use futures_util::future::BoxFuture;

use super::DeployError;
use crate::markdown::check::{self, CheckError, Checked, SiteFiles};
use crate::markdown::layout::LayoutError;
use crate::markdown::pool::RenderError;
use crate::markdown::site::ReadError;
use crate::site::SiteInner;

/// How long rendering a deploy's pages may take in all. Each page is bounded by the site's
/// `render-fuel` already (a fraction of a second at most); this bounds the sum, so a deploy of
/// a huge site with expensive layouts ends with an answer instead of holding its connection
/// for hours. A 2,000-page site renders in a few seconds.
pub(super) const RENDER_BUDGET: Duration = Duration::from_secs(300);

/// The files of the deploy being checked: what the commit would point at.
struct DeployFiles<'a> {
    store: &'a Store,
    /// Every path of the new site version and its object.
    files: &'a BTreeMap<String, ObjectRef>,
    /// Files the deploy already holds in memory (`site.toml`, layouts, rule files).
    kept: &'a BTreeMap<String, Vec<u8>>,
    /// The largest page read back.
    max: u64,
}

impl SiteFiles for DeployFiles<'_> {
    fn contains(&self, key: &str) -> bool {
        self.files.contains_key(key)
    }

    fn keys(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    fn text<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<String, ReadError>> {
        Box::pin(async move {
            let bytes = match (self.kept.get(key), self.files.get(key)) {
                (Some(bytes), _) => bytes.clone(),
                (None, Some(object)) => self.store.read_object(object, self.max).await?,
                (None, None) => return Err(StorageError::NotFound(key.to_owned()).into()),
            };
            String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8(key.to_owned()))
        })
    }
}

/// Renders every page of the site `files` describe, as `site` would serve it; the first
/// failure is a [`DeployError::Invalid`] naming the layout and line (or the page).
pub(super) async fn check(
    site: &SiteInner,
    store: &Store,
    files: &BTreeMap<String, ObjectRef>,
    kept: &BTreeMap<String, Vec<u8>>,
) -> Result<(), DeployError> {
    let max = site.settings.max_deploy_bytes;
    let started = Instant::now();
    let checked = check_within(
        store,
        files,
        kept,
        &site.prefix,
        site.settings.render_fuel,
        max,
        RENDER_BUDGET,
    )
    .await?;
    tracing::info!(
        site = %site.name, renders = checked.renders,
        elapsed_ms = started.elapsed().as_millis(),
        "deploy: every page rendered"
    );
    Ok(())
}

/// [`check`] with its parts spelled out (and the budget a test can shorten).
pub(super) async fn check_within(
    store: &Store,
    files: &BTreeMap<String, ObjectRef>,
    kept: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
    fuel: u64,
    max: u64,
    budget: Duration,
) -> Result<Checked, DeployError> {
    let source = DeployFiles {
        store,
        files,
        kept,
        max: max.min(READ_MAX),
    };
    match tokio::time::timeout(budget, check::render_all(&source, prefix, fuel)).await {
        Ok(Ok(checked)) => Ok(checked),
        Ok(Err(e)) => Err(refusal(e, files, source.max)),
        Err(_) => Err(DeployError::Invalid(format!(
            "rendering the site's pages took longer than the deploy's budget of {} s; \
             make the layouts do less work per page",
            budget.as_secs()
        ))),
    }
}

/// The deploy error for a page that did not render: `layouts/<name>:<line>: <message>` when
/// minijinja names a line of one of the site's own layouts, else `<page>: <message>`.
fn refusal(e: CheckError, files: &BTreeMap<String, ObjectRef>, max: u64) -> DeployError {
    let CheckError { what, error } = e;
    match error {
        RenderError::Layout(LayoutError::Failed { template, message }) => match origin(&message) {
            Some((name, line, rest)) if files.contains_key(&format!("layouts/{name}")) => {
                DeployError::Invalid(format!("layouts/{name}:{line}: {rest} (rendering {what})"))
            }
            _ => DeployError::Invalid(format!("{what}: layout {template}: {message}")),
        },
        RenderError::Layout(over @ LayoutError::OverBudget { .. }) => {
            DeployError::Invalid(format!("{what}: {over}"))
        }
        RenderError::Read(ReadError::NotUtf8(_)) => DeployError::Invalid(format!(
            "{what}: not UTF-8, so it cannot be rendered as a page"
        )),
        RenderError::Read(ReadError::Storage(StorageError::TooLarge { .. })) => {
            DeployError::Invalid(format!(
                "{what}: larger than the {max} bytes a page may hold to be rendered"
            ))
        }
        RenderError::Read(ReadError::Storage(other)) => DeployError::Storage(other),
        other => DeployError::Storage(StorageError::Worker(format!("{what}: {other}"))),
    }
}

/// Where minijinja stopped, from its message: it ends the error's own text with
/// ` (in <template>:<line>)` whenever it knows the place (causes may follow, after `: `).
/// Returns the template, the line, and the message without that part.
fn origin(message: &str) -> Option<(&str, usize, String)> {
    let at = message.rfind(" (in ")?;
    let (before, place) = message.split_at(at);
    let inner = place.strip_prefix(" (in ")?;
    let close = inner.find(')')?;
    let (name, line) = inner.get(..close)?.rsplit_once(':')?;
    let line = line.parse().ok()?;
    let after = inner.get(close + 1..).unwrap_or("");
    Some((name, line, format!("{before}{after}")))
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
