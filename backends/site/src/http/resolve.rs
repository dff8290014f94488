//! Resolution of a normalised request path to what the site serves (reference §5).
//!
//! Our conventions: a directory requested without its slash gets a 308 to the slash form; a
//! file requested with a trailing slash is 404; in html mode `/about` serves `about.html` and
//! `/about.html` redirects to `/about` (one canonical URL), `/dir/index.html` to `/dir/`; in
//! markdown mode `/page` renders `page.md`, `/dir/` renders `dir/index.md` or the section
//! `dir/_index.md`, and `/page.md` downloads the source.

use crate::http::path::SitePath;
use crate::markdown::site::{MarkdownSite, PageKind};
use crate::settings::Mode;
use crate::snapshot::Snapshot;

/// What a request path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A stored file, served as it is.
    File(String),
    /// A Markdown page rendered through a layout.
    Page(String, PageKind),
    /// The generated `sitemap.xml`.
    Sitemap,
    /// One of the default theme's fingerprinted files (stylesheet, search index and script).
    Stylesheet(crate::markdown::theme::Asset),
    /// A taxonomy's term list (`/tags/`) or one term's pages (`/tags/rust/`).
    Taxonomy(String, Option<String>),
    /// 308 to this path (segments relative to the site root, plus whether it ends in `/`).
    Redirect(Vec<String>, bool),
    /// Nothing here.
    NotFound,
}

/// Resolves `path` in `snapshot`; `markdown` is present in markdown mode.
pub fn resolve(
    mode: Mode,
    snapshot: &Snapshot,
    markdown: Option<&MarkdownSite>,
    path: &SitePath,
) -> Target {
    let key = path.key();
    if path.is_hidden()
        || key == "site.toml"
        || key == crate::rules::REDIRECTS
        || key == crate::rules::HEADERS
        || markdown.is_some_and(|m| m.is_internal(&key))
    {
        return Target::NotFound;
    }
    let is_file = snapshot.files.contains_key(&key);
    let is_dir = snapshot.dirs.contains(&key);
    match (mode, markdown) {
        (Mode::Markdown, Some(md)) => resolve_markdown(snapshot, md, path, &key, is_file, is_dir),
        _ => resolve_html(snapshot, path, &key, is_file, is_dir),
    }
}

/// The custom 404 page, if the site has one.
pub fn not_found_page(snapshot: &Snapshot, markdown: Option<&MarkdownSite>) -> Option<Target> {
    if markdown.is_some() && snapshot.files.contains_key("404.md") {
        return Some(Target::Page("404.md".to_owned(), PageKind::Single));
    }
    snapshot
        .files
        .contains_key("404.html")
        .then(|| Target::File("404.html".to_owned()))
}

fn resolve_html(
    snapshot: &Snapshot,
    path: &SitePath,
    key: &str,
    is_file: bool,
    is_dir: bool,
) -> Target {
    if is_file && !is_dir {
        if path.trailing_slash {
            return Target::NotFound;
        }
        let last = path.segments.last().map(String::as_str).unwrap_or("");
        let parent = path
            .segments
            .get(..path.segments.len().saturating_sub(1))
            .unwrap_or(&[]);
        if last == "index.html" {
            return Target::Redirect(parent.to_vec(), true);
        }
        if let Some(stem) = last.strip_suffix(".html") {
            let clean = if parent.is_empty() {
                stem.to_owned()
            } else {
                format!("{}/{stem}", parent.join("/"))
            };
            // Redirect only when the clean URL leads back to this file.
            if !stem.is_empty()
                && !snapshot.files.contains_key(&clean)
                && !snapshot.dirs.contains(&clean)
            {
                let mut segments = parent.to_vec();
                segments.push(stem.to_owned());
                return Target::Redirect(segments, false);
            }
        }
        return Target::File(key.to_owned());
    }
    if !key.is_empty() && (!path.trailing_slash || !is_dir) {
        let html = format!("{key}.html");
        if snapshot.files.contains_key(&html) {
            // `/about/` names the page `/about` too: one canonical form, the other redirects.
            if path.trailing_slash {
                return Target::Redirect(path.segments.clone(), false);
            }
            return Target::File(html);
        }
    }
    if is_dir {
        if !path.trailing_slash {
            return Target::Redirect(path.segments.clone(), true);
        }
        let index = join(key, "index.html");
        if snapshot.files.contains_key(&index) {
            return Target::File(index);
        }
    }
    Target::NotFound
}

fn resolve_markdown(
    snapshot: &Snapshot,
    md: &MarkdownSite,
    path: &SitePath,
    key: &str,
    is_file: bool,
    is_dir: bool,
) -> Target {
    if key == "sitemap.xml" && md.config.sitemap && !is_file {
        return Target::Sitemap;
    }
    if !is_file
        && let Some(asset) =
            crate::markdown::theme::requested(&md.stylesheet, &md.search, &path.segments)
    {
        return Target::Stylesheet(asset);
    }
    if !is_file
        && !is_dir
        && let Some(target) = generated(md, path)
    {
        return target;
    }
    if is_file && !is_dir {
        if path.trailing_slash || md.is_draft(key) {
            return Target::NotFound;
        }
        return Target::File(key.to_owned());
    }
    if !key.is_empty() && (!path.trailing_slash || !is_dir) {
        let page = format!("{key}.md");
        let last = path.segments.last().map(String::as_str).unwrap_or("");
        if snapshot.files.contains_key(&page) && !md.is_draft(&page) {
            // `/guide/page/` names the page `/guide/page` too: 308 to the canonical form.
            if path.trailing_slash && last != "index" && last != "_index" {
                return Target::Redirect(path.segments.clone(), false);
            }
            if last == "index" || last == "_index" {
                let parent = path
                    .segments
                    .get(..path.segments.len().saturating_sub(1))
                    .unwrap_or(&[]);
                return Target::Redirect(parent.to_vec(), true);
            }
            return Target::Page(page, PageKind::Single);
        }
    }
    if is_dir {
        if !path.trailing_slash {
            return Target::Redirect(path.segments.clone(), true);
        }
        for (name, kind) in [
            ("index.md", PageKind::Single),
            ("_index.md", PageKind::Section { page: 1 }),
        ] {
            let page = join(key, name);
            if snapshot.files.contains_key(&page) && !md.is_draft(&page) {
                return Target::Page(page, kind);
            }
        }
        let index = join(key, "index.html");
        if snapshot.files.contains_key(&index) {
            return Target::File(index);
        }
    }
    Target::NotFound
}

/// Generated pages that have no file of their own: section listing pages
/// (`<section>/page/<n>/`) and taxonomy pages (`/<taxonomy>/`, `/<taxonomy>/<term>/`).
fn generated(md: &MarkdownSite, path: &SitePath) -> Option<Target> {
    let segments = &path.segments;
    let redirect_to_slash = || Target::Redirect(segments.clone(), true);
    if md.config.paginate_by > 0
        && let [dir @ .., page_word, n] = segments.as_slice()
        && page_word == "page"
        && let Ok(n) = n.parse::<usize>()
    {
        let section = join(&dir.join("/"), "_index.md");
        if md.pages.get(&section).is_some_and(|p| !p.draft)
            && n >= 1
            && n <= md.section_page_count(&section)
        {
            if n == 1 {
                return Some(Target::Redirect(dir.to_vec(), true));
            }
            if !path.trailing_slash {
                return Some(redirect_to_slash());
            }
            return Some(Target::Page(section, PageKind::Section { page: n }));
        }
    }
    match segments.as_slice() {
        [taxonomy] if md.is_taxonomy(taxonomy) => Some(if path.trailing_slash {
            Target::Taxonomy(taxonomy.clone(), None)
        } else {
            redirect_to_slash()
        }),
        [taxonomy, term] if md.is_taxonomy(taxonomy) && md.terms(taxonomy).contains_key(term) => {
            Some(if path.trailing_slash {
                Target::Taxonomy(taxonomy.clone(), Some(term.clone()))
            } else {
                redirect_to_slash()
            })
        }
        _ => None,
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}
