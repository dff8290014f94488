//! A Markdown site as of one commit: its `site.toml`, compiled layouts and page index, and
//! the rendering of pages, sections, the 404 page and `sitemap.xml`.

use std::collections::BTreeMap;
use std::sync::Arc;

use everlock_host::storage::{CommitId, Store};

use crate::markdown::config::SiteConfig;
use crate::markdown::files::SiteFiles;
use crate::markdown::front::{self, FrontMatter};
use crate::markdown::highlight;
use crate::markdown::layout::{LayoutError, Layouts};
use crate::markdown::nav;
use crate::markdown::pages;
use crate::markdown::pool::{RenderError, RenderPool};
use crate::markdown::render::{self, RenderOptions};
use crate::markdown::search::{self, SearchAssets};
use crate::markdown::theme::{self, Stylesheet};

/// Where a page's layouts live in the store.
pub const LAYOUT_DIR: &str = "layouts/";

pub use crate::markdown::pages::PageMeta;

/// What kind of page is being rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// A regular page (`single.html`).
    Single,
    /// A section's `_index.md` with a generated listing (`list.html`), at listing page `page`
    /// (1-based; always 1 without `paginate_by`).
    Section {
        /// The listing page number.
        page: usize,
    },
}

/// A Markdown site at one commit.
#[derive(Debug)]
pub struct MarkdownSite {
    /// The parsed `site.toml` (defaults when absent or broken).
    pub config: SiteConfig,
    /// Compiled layouts.
    layouts: Arc<Layouts>,
    /// The built-in layouts, for when one of the site's own fails at render time.
    fallback: Arc<Layouts>,
    /// This site's share of the render slots.
    pool: RenderPool,
    /// The highlight theme's stylesheet.
    highlight_css: String,
    /// The default theme's stylesheet.
    pub stylesheet: Stylesheet,
    /// The search index and script.
    pub search: SearchAssets,
    /// The sidebar's navigation tree, built on first use.
    sidebar: std::sync::OnceLock<serde_json::Value>,
    /// Every `.md` page, by store key.
    pub pages: BTreeMap<String, PageMeta>,
    /// The instance prefix (`/` or `/docs`).
    prefix: String,
    /// A site's own layout failing at render time is an error instead of the built-in
    /// fallback (the deploy-time check, see [`crate::markdown::check`]).
    strict: bool,
}

impl MarkdownSite {
    /// Loads the site from `files` (a commit's, or a deploy's before it commits), each page
    /// render limited to `fuel` (see [`Layouts`]). Problems in site-author files never fail the
    /// load: a bad `site.toml` or layout falls back to the defaults with a warning (deploys
    /// reject them up front, so this only happens for content written some other way).
    /// `strict` makes a failing layout an error instead of the built-in fallback.
    pub(crate) async fn load_from(
        files: &impl SiteFiles,
        prefix: &str,
        fuel: u64,
        strict: bool,
    ) -> MarkdownSite {
        let config = if files.contains("site.toml") {
            match files.text("site.toml").await {
                Ok(text) => SiteConfig::parse(&text).unwrap_or_else(|e| {
                    tracing::warn!("ignoring site.toml: {e}");
                    SiteConfig::default()
                }),
                Err(e) => {
                    tracing::warn!("cannot read site.toml: {e}");
                    SiteConfig::default()
                }
            }
        } else {
            SiteConfig::default()
        };
        let mut user_layouts = BTreeMap::new();
        let mut pages = BTreeMap::new();
        for key in &files.keys() {
            if let Some(name) = key.strip_prefix(LAYOUT_DIR) {
                if name.ends_with(".html")
                    && let Ok(text) = files.text(key).await
                {
                    user_layouts.insert(name.to_owned(), text);
                }
                continue;
            }
            if !key.ends_with(".md") || is_hidden_key(key, &config) {
                continue;
            }
            let Ok(text) = files.text(key).await else {
                continue;
            };
            let (front, body) =
                front::split(&text).unwrap_or_else(|_| (FrontMatter::default(), text.as_str()));
            let mut page = meta(key, &text, &front, prefix);
            page.excerpt = search::excerpt(body);
            pages.insert(key.to_owned(), page);
        }
        let fallback = Arc::new(Layouts::builtin(fuel));
        let layouts = match Layouts::compile(&user_layouts, fuel) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                tracing::warn!("ignoring the site's layouts: {e}");
                fallback.clone()
            }
        };
        let highlight_css = if config.markdown.syntax_highlighting {
            highlight::css(&config.markdown.highlight_style)
        } else {
            String::new()
        };
        let stylesheet = Stylesheet::build(
            Some(config.markdown.highlight_style.as_str())
                .filter(|_| config.markdown.syntax_highlighting),
        );
        MarkdownSite {
            search: SearchAssets::build(&pages),
            sidebar: std::sync::OnceLock::new(),
            config,
            layouts,
            fallback,
            pool: RenderPool::default(),
            stylesheet,
            highlight_css,
            pages,
            prefix: prefix.to_owned(),
            strict,
        }
    }

    /// Whether a store key must never be served: `site.toml`, layouts and ignored directories.
    pub fn is_internal(&self, key: &str) -> bool {
        key == "site.toml"
            || key == "layouts"
            || key.starts_with(LAYOUT_DIR)
            || is_hidden_key(key, &self.config)
    }

    /// Whether `key` is a draft page.
    pub fn is_draft(&self, key: &str) -> bool {
        self.pages.get(key).is_some_and(|p| p.draft)
    }

    /// Renders the page at `key` as a full HTML document. The CPU work (Markdown, the layout)
    /// runs in the render pool under the layout's fuel budget.
    pub async fn render(
        &self,
        store: &Store,
        commit: CommitId,
        key: &str,
        kind: PageKind,
    ) -> Result<String, RenderError> {
        let text = read_text(store, key, commit).await?;
        self.render_text(text, key, kind).await
    }

    /// [`MarkdownSite::render`] of a page whose source is `text`.
    pub(crate) async fn render_text(
        &self,
        text: String,
        key: &str,
        kind: PageKind,
    ) -> Result<String, RenderError> {
        let front = match front::split(&text) {
            Ok((front, _)) => front,
            Err(e) => {
                tracing::warn!("{key}: {e}");
                FrontMatter::default()
            }
        };
        let url = page_url(&self.prefix, key);
        let (prev, next) = theme::neighbours(&self.pages, key);
        let mut ctx = serde_json::Map::new();
        ctx.insert("site".into(), self.site_value(&url));
        ctx.insert(
            "page".into(),
            serde_json::json!({
                "description": front.description,
                "date": front.date.as_ref().map(front::DateValue::text),
                "tags": front.tags,
                "taxonomies": terms(&front),
                "extra": front.extra,
                "url": url,
                "path": key,
                "prev": prev,
                "next": next,
            }),
        );
        ctx.insert("highlight_css".into(), self.highlight_css.clone().into());
        let fallback = match kind {
            PageKind::Single => "single.html",
            PageKind::Section { page } => {
                let all = self.section_pages(key);
                let (pages, paginator) = self.paginate(&all, page, &url);
                ctx.insert("section".into(), serde_json::json!({ "pages": pages }));
                ctx.insert("paginator".into(), paginator);
                "list.html"
            }
        };
        let template = match front.layout.as_ref().map(|l| format!("{l}.html")) {
            Some(name) if self.layouts.has(&name) => name,
            _ => fallback.to_owned(),
        };
        let job = self.job(template, fallback, key);
        let options = RenderOptions {
            highlight: self.config.markdown.syntax_highlighting,
            unsafe_html: self.config.markdown.unsafe_html,
        };
        let stem = stem_title(key);
        self.pool
            .run(move || {
                let body = front::split(&text).map_or(text.as_str(), |(_, body)| body);
                let rendered = render::render(body, options);
                // A front matter title is the heading, unless the page has its own `# `.
                let show_title = front.title.is_some() && rendered.h1.is_none();
                let title = front.title.or(rendered.h1).unwrap_or(stem);
                if let Some(page) = ctx.get_mut("page").and_then(|p| p.as_object_mut()) {
                    page.insert("title".into(), title.into());
                    page.insert("show_title".into(), show_title.into());
                    page.insert("content".into(), rendered.html.into());
                    page.insert("toc".into(), serde_json::json!(rendered.toc));
                }
                job.run(&serde_json::Value::Object(ctx))
            })
            .await?
    }

    fn job(&self, template: String, fallback: &'static str, what: &str) -> RenderJob {
        RenderJob {
            layouts: self.layouts.clone(),
            fallback: self.fallback.clone(),
            template,
            fallback_template: fallback,
            what: what.to_owned(),
            strict: self.strict,
        }
    }

    /// The pages listed by the section whose `_index.md` is `key`: the section directory's own
    /// pages and its subsections, without drafts, sorted by weight, then date (newest first),
    /// then title.
    pub fn section_pages(&self, key: &str) -> Vec<&PageMeta> {
        pages::section(&self.pages, key)
    }

    /// How many listing pages the section `key` has (1 without `paginate_by`).
    pub fn section_page_count(&self, key: &str) -> usize {
        let n = self.section_pages(key).len();
        match self.config.paginate_by {
            0 => 1,
            per => n.div_ceil(per).max(1),
        }
    }

    /// One listing page of `all` and its paginator (`null` without `paginate_by`).
    fn paginate<'a>(
        &self,
        all: &[&'a PageMeta],
        page: usize,
        base_url: &str,
    ) -> (Vec<&'a PageMeta>, serde_json::Value) {
        let per = self.config.paginate_by;
        if per == 0 {
            return (all.to_vec(), serde_json::Value::Null);
        }
        let total = all.len().div_ceil(per).max(1);
        let page = page.clamp(1, total);
        let slice = all
            .iter()
            .skip((page - 1) * per)
            .take(per)
            .copied()
            .collect();
        let url_of = |n: usize| {
            if n == 1 {
                base_url.to_owned()
            } else {
                format!("{base_url}page/{n}/")
            }
        };
        let paginator = serde_json::json!({
            "current": page,
            "total": total,
            "previous": (page > 1).then(|| url_of(page - 1)),
            "next": (page < total).then(|| url_of(page + 1)),
        });
        (slice, paginator)
    }

    /// Whether `name` is a taxonomy of this site.
    pub fn is_taxonomy(&self, name: &str) -> bool {
        self.config.taxonomies.iter().any(|t| t == name)
    }

    /// The terms of a taxonomy with their page counts, sorted by term.
    pub fn terms(&self, taxonomy: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for page in self.pages.values().filter(|p| !p.draft) {
            for term in page.terms.get(taxonomy).into_iter().flatten() {
                *out.entry(term.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Renders `/<taxonomy>/` (its terms) or `/<taxonomy>/<term>/` (the term's pages) with
    /// `taxonomy.html` when the site has one, else `list.html`.
    pub async fn render_taxonomy(
        &self,
        taxonomy: &str,
        term: Option<&str>,
    ) -> Result<String, RenderError> {
        let base = self.prefix.trim_end_matches('/');
        let tax_url = crate::http::path::location(base, &[taxonomy], true, None);
        let (title, url, pages): (String, String, Vec<serde_json::Value>) = match term {
            None => (
                taxonomy.to_owned(),
                tax_url,
                self.terms(taxonomy)
                    .into_iter()
                    .map(|(t, n)| {
                        serde_json::json!({
                            "title": t,
                            "url": crate::http::path::location(base, &[taxonomy, &t], true, None),
                            "description": format!("{n} page{}", if n == 1 { "" } else { "s" }),
                        })
                    })
                    .collect(),
            ),
            Some(term) => {
                let mut list: Vec<&PageMeta> = self
                    .pages
                    .values()
                    .filter(|p| !p.draft)
                    .filter(|p| {
                        p.terms
                            .get(taxonomy)
                            .is_some_and(|ts| ts.iter().any(|t| t == term))
                    })
                    .collect();
                list.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.title.cmp(&b.title)));
                (
                    format!("{taxonomy}: {term}"),
                    crate::http::path::location(base, &[taxonomy, term], true, None),
                    list.iter()
                        .map(|p| serde_json::to_value(p).unwrap_or_default())
                        .collect(),
                )
            }
        };
        let ctx = serde_json::json!({
            "site": self.site_value(&url),
            "page": { "title": title, "content": "", "url": url, "path": "" },
            "section": { "pages": pages },
            "paginator": null,
            "taxonomy": { "name": taxonomy, "term": term },
            "highlight_css": self.highlight_css,
        });
        let template = if self.layouts.has("taxonomy.html") {
            "taxonomy.html"
        } else {
            "list.html"
        };
        let job = self.job(template.to_owned(), "list.html", taxonomy);
        self.pool.run(move || job.run(&ctx)).await?
    }

    /// The `site` template value; nav links default to the top-level sections and pages.
    fn site_value(&self, current_url: &str) -> serde_json::Value {
        let root = page_url(&self.prefix, "index.md");
        let links: Vec<(String, String)> = if self.config.nav.links.is_empty() {
            self.pages
                .values()
                .filter(|p| !p.draft && p.url != root && !p.key.ends_with("404.md"))
                .filter(|p| {
                    let depth = p.key.matches('/').count();
                    depth == 0
                        || depth == 1
                            && (p.key.ends_with("/_index.md") || p.key.ends_with("/index.md"))
                })
                .map(|p| (p.title.clone(), p.url.clone()))
                .collect()
        } else {
            self.config
                .nav
                .links
                .iter()
                .map(|l| (l.name.clone(), l.url.clone()))
                .collect()
        };
        let nav: Vec<serde_json::Value> = links
            .into_iter()
            .map(|(name, url)| {
                let active = url == current_url
                    || url.len() > root.len()
                        && url.ends_with('/')
                        && current_url.starts_with(&url);
                serde_json::json!({ "name": name, "url": url, "active": active })
            })
            .collect();
        serde_json::json!({
            "title": self.config.title.clone().unwrap_or_else(|| "Everlock site".to_owned()),
            "description": self.config.description,
            "base_url": self.config.base_url,
            "root": root,
            "nav": nav,
            "sidebar": nav::sidebar(
                self.sidebar.get_or_init(|| nav::tree(&self.pages)),
                current_url,
            ),
            "taxonomies": self.config.taxonomies,
            "stylesheet": format!("{root}{}/{}", theme::ASSETS_DIR, self.stylesheet.name),
            "search_index": format!("{root}{}/{}", theme::ASSETS_DIR, self.search.index_name),
            "search_script": format!("{root}{}/{}", theme::ASSETS_DIR, self.search.script_name),
        })
    }
}

/// One render, owned so that it can move to the render pool.
struct RenderJob {
    layouts: Arc<Layouts>,
    fallback: Arc<Layouts>,
    template: String,
    fallback_template: &'static str,
    /// The page, for log lines.
    what: String,
    /// A failing layout is the error, not a reason to render the fallback.
    strict: bool,
}

impl RenderJob {
    /// Renders the template; when a site's own layout fails at render time (an undefined
    /// variable, a bad filter), logs why and renders the built-in fallback instead, so an
    /// author's template mistake degrades the page's look, never its availability. A layout
    /// over its budget is not retried: the page is an error (logged by the caller), so the
    /// author sees it.
    fn run(self, ctx: &serde_json::Value) -> Result<String, RenderError> {
        match self.layouts.render(&self.template, ctx) {
            Ok(html) => Ok(html),
            Err(e @ LayoutError::OverBudget { .. }) => Err(e.into()),
            Err(e) if self.strict => Err(e.into()),
            Err(e) => {
                tracing::warn!("{}: {e}", self.what);
                Ok(self.fallback.render(self.fallback_template, ctx)?)
            }
        }
    }
}

/// A page's clean URL: `docs/intro.md` → `/docs/intro`, `docs/_index.md` → `/docs/`.
pub fn page_url(prefix: &str, key: &str) -> String {
    let base = prefix.trim_end_matches('/');
    let stem = key.strip_suffix(".md").unwrap_or(key);
    let (dir, name) = stem.rsplit_once('/').map_or(("", stem), |(d, n)| (d, n));
    let segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let trailing = name == "index" || name == "_index";
    let mut all = segments;
    if !trailing {
        all.push(name);
    }
    crate::http::path::location(base, &all, trailing, None)
}

fn meta(key: &str, text: &str, front: &FrontMatter, prefix: &str) -> PageMeta {
    let title = front.title.clone().unwrap_or_else(|| {
        text.lines()
            .find_map(|l| l.strip_prefix("# ").map(|t| t.trim().to_owned()))
            .unwrap_or_else(|| stem_title(key))
    });
    PageMeta {
        key: key.to_owned(),
        url: page_url(prefix, key),
        title,
        description: front.description.clone(),
        date: front.date.as_ref().map(front::DateValue::text),
        weight: front.weight,
        draft: front.draft,
        terms: terms(front),
        excerpt: String::new(),
    }
}

/// A page's taxonomy terms: `tags` plus the `taxonomies` table.
fn terms(front: &FrontMatter) -> BTreeMap<String, Vec<String>> {
    let mut out = front.taxonomies.clone();
    if !front.tags.is_empty() {
        out.entry("tags".to_owned())
            .or_default()
            .extend(front.tags.iter().cloned());
    }
    out
}

/// `docs/getting-started.md` → `Getting started`; an index takes its directory's name.
fn stem_title(key: &str) -> String {
    let stem = key.strip_suffix(".md").unwrap_or(key);
    let mut parts = stem.rsplit('/');
    let mut name = parts.next().unwrap_or(stem);
    if name == "index" || name == "_index" {
        name = parts.next().unwrap_or("Home");
    }
    let words = name.replace(['-', '_'], " ");
    let mut chars = words.trim().chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_else(|| "Home".to_owned())
}

fn is_hidden_key(key: &str, config: &SiteConfig) -> bool {
    config.ignore_dirs.iter().any(|d| {
        let d = d.trim_matches('/');
        !d.is_empty() && (key == d || key.starts_with(&format!("{d}/")))
    })
}

/// Re-exported where the readers of site files have always found it.
pub use crate::markdown::pool::ReadError;

pub(crate) async fn read_text(
    store: &Store,
    key: &str,
    commit: CommitId,
) -> Result<String, ReadError> {
    let bytes = store.read_at(key, commit).await?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_titles() {
        assert_eq!(page_url("/", "index.md"), "/");
        assert_eq!(page_url("/", "docs/_index.md"), "/docs/");
        assert_eq!(page_url("/", "docs/intro.md"), "/docs/intro");
        assert_eq!(page_url("/wiki", "a b.md"), "/wiki/a%20b");
        assert_eq!(page_url("/wiki", "index.md"), "/wiki/");
        assert_eq!(stem_title("docs/getting-started.md"), "Getting started");
        assert_eq!(stem_title("docs/_index.md"), "Docs");
        assert_eq!(stem_title("index.md"), "Home");
    }
}
