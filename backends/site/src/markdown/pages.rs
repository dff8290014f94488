//! The page index of a Markdown site: what the listings, the sidebar, the previous/next links
//! and the search index know of each page. It imports nothing of the site model, so every part
//! of the theme can read it without importing the site that holds it.

use std::collections::BTreeMap;

use serde::Serialize;

/// One page in the index, for listings, navigation and the sitemap.
#[derive(Debug, Clone, Serialize)]
pub struct PageMeta {
    /// The store key (`docs/intro.md`).
    #[serde(skip)]
    pub key: String,
    /// The page's URL (with the instance prefix).
    pub url: String,
    /// Title: front matter, else first `# ` line, else file name.
    pub title: String,
    /// Description from front matter.
    pub description: Option<String>,
    /// Date from front matter.
    pub date: Option<String>,
    /// Weight from front matter.
    #[serde(skip)]
    pub weight: Option<i64>,
    /// Drafts are never served nor listed.
    #[serde(skip)]
    pub draft: bool,
    /// Taxonomy terms by taxonomy name (`tags` from the `tags` key).
    #[serde(skip)]
    pub terms: BTreeMap<String, Vec<String>>,
    /// The start of the page's plain text, for the search index.
    #[serde(skip)]
    pub excerpt: String,
}

/// The pages listed by the section whose `_index.md` is `key`: the section directory's own
/// pages and its subsections, without drafts, sorted by weight, then date (newest first), then
/// title.
pub fn section<'a>(pages: &'a BTreeMap<String, PageMeta>, key: &str) -> Vec<&'a PageMeta> {
    let dir = key.strip_suffix("_index.md").unwrap_or("");
    let mut list: Vec<&PageMeta> = pages
        .values()
        .filter(|p| !p.draft && p.key != key)
        .filter(|p| {
            let Some(rest) = p.key.strip_prefix(dir) else {
                return false;
            };
            match rest.split_once('/') {
                None => rest != "index.md",
                Some((_, file)) => {
                    file == "_index.md" || file == "index.md" && !rest.contains("/_")
                }
            }
        })
        .filter(|p| p.key.matches('/').count() <= dir.matches('/').count() + 1)
        .collect();
    list.sort_by(|a, b| {
        a.weight
            .unwrap_or(i64::MAX)
            .cmp(&b.weight.unwrap_or(i64::MAX))
            .then_with(|| b.date.cmp(&a.date))
            .then_with(|| a.title.cmp(&b.title))
    });
    list
}
