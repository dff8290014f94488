//! Rendering a whole Markdown site before it goes live (issue #16 item 2).
//!
//! The server reads a site's files from a commit; a deploy must render the site it is about to
//! commit, whose files are staged objects (or, in an incremental deploy, objects an earlier
//! commit holds). [`SiteFiles`] is what both read through, so the deploy check loads and renders
//! with the very code that serves ([`MarkdownSite::load_from`], [`MarkdownSite::render_text`],
//! the same fuel and render slots); only `strict` differs: a site's own layout that fails is an
//! error rather than the built-in fallback.

use everlock_host::storage::Store;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;

use crate::markdown::pool::RenderError;
use crate::markdown::site::{MarkdownSite, PageKind, ReadError, read_text};
use crate::snapshot::Snapshot;

/// Pages read and rendered at once: one more than the site's share of the render slots, so
/// the slots stay busy while the next page is read, and no more, so that few page sources and
/// their HTML are in memory at once.
fn ahead() -> usize {
    (crate::markdown::pool::slots() / 2).max(1) + 1
}

pub use crate::markdown::files::SiteFiles;

/// The files of one commit (what the server serves).
#[derive(Debug, Clone, Copy)]
pub struct CommitFiles<'a> {
    store: &'a Store,
    snapshot: &'a Snapshot,
}

impl<'a> CommitFiles<'a> {
    /// The files of `snapshot`'s commit, read from `store`.
    pub fn new(store: &'a Store, snapshot: &'a Snapshot) -> CommitFiles<'a> {
        CommitFiles { store, snapshot }
    }
}

impl SiteFiles for CommitFiles<'_> {
    fn contains(&self, key: &str) -> bool {
        self.snapshot.commit.is_some() && self.snapshot.files.contains_key(key)
    }

    fn keys(&self) -> Vec<String> {
        if self.snapshot.commit.is_none() {
            return Vec::new();
        }
        self.snapshot.files.keys().cloned().collect()
    }

    fn text<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<String, ReadError>> {
        Box::pin(async move {
            match self.snapshot.commit_id() {
                Some(commit) => read_text(self.store, key, commit).await,
                None => Err(ReadError::Storage(
                    everlock_host::storage::StorageError::NotFound(key.to_owned()),
                )),
            }
        })
    }
}

/// A page (or generated listing) that did not render.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {error}")]
pub struct CheckError {
    /// The page's key (`docs/intro.md`), or the listing's URL path for a taxonomy.
    pub what: String,
    /// Why it did not render.
    pub error: RenderError,
}

/// What a check rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Pages, listing pages and taxonomy pages rendered.
    pub renders: u64,
}

/// Loads the site from `files` in strict mode and renders everything the server would serve
/// from it: every page that is neither a draft nor hidden (each listing page of a section),
/// and every taxonomy's index and term pages. Stops at the first failure, in key order.
pub async fn render_all(
    files: &impl SiteFiles,
    prefix: &str,
    fuel: u64,
) -> Result<Checked, CheckError> {
    let site = MarkdownSite::load_from(files, prefix, fuel, true).await;
    let mut keys: Vec<String> = files
        .keys()
        .into_iter()
        .filter(|k| k.ends_with(".md") && !site.is_internal(k) && !site.is_draft(k))
        .collect();
    keys.sort_unstable();
    let mut jobs: Vec<(String, PageKind)> = Vec::with_capacity(keys.len());
    for key in keys {
        if key == "_index.md" || key.ends_with("/_index.md") {
            let count = site.section_page_count(&key);
            jobs.extend((1..=count).map(|page| (key.clone(), PageKind::Section { page })));
        } else {
            jobs.push((key, PageKind::Single));
        }
    }
    // In order, a few ahead: the first failure in key order is the one reported.
    let mut jobs = jobs.into_iter();
    let ahead = ahead();
    let mut pending = FuturesOrdered::new();
    let mut pages = 0;
    loop {
        while pending.len() < ahead {
            let Some((key, kind)) = jobs.next() else {
                break;
            };
            pending.push_back(render_page(files, &site, key, kind));
        }
        match pending.next().await {
            Some(done) => {
                done?;
                pages += 1;
            }
            None => break,
        }
    }
    let taxonomies = render_taxonomies(&site).await?;
    Ok(Checked {
        renders: pages + taxonomies,
    })
}

/// Reads and renders one page.
async fn render_page(
    files: &impl SiteFiles,
    site: &MarkdownSite,
    key: String,
    kind: PageKind,
) -> Result<(), CheckError> {
    let text = match files.text(&key).await {
        Ok(text) => text,
        Err(e) => {
            return Err(CheckError {
                what: key,
                error: e.into(),
            });
        }
    };
    match site.render_text(text, &key, kind).await {
        Ok(_) => Ok(()),
        Err(error) => Err(CheckError { what: key, error }),
    }
}

/// Renders each taxonomy's index and term pages.
async fn render_taxonomies(site: &MarkdownSite) -> Result<u64, CheckError> {
    let mut renders = 0;
    for taxonomy in &site.config.taxonomies {
        let terms: Vec<String> = site.terms(taxonomy).into_keys().collect();
        let all = std::iter::once(None).chain(terms.iter().map(|t| Some(t.as_str())));
        for term in all {
            site.render_taxonomy(taxonomy, term)
                .await
                .map_err(|error| CheckError {
                    what: match term {
                        Some(t) => format!("/{taxonomy}/{t}/"),
                        None => format!("/{taxonomy}/"),
                    },
                    error,
                })?;
            renders += 1;
        }
    }
    Ok(renders)
}
