//! The sidebar: every page of the site's navigation tree (sections and their pages, each level
//! in the section listing's order: `weight`, then date, then title), with the current page
//! marked. Bounded in entries and depth so a huge site cannot make every page huge.

use std::collections::BTreeMap;

use crate::markdown::pages::{self, PageMeta};

/// The most entries a sidebar holds; the rest of a very large site is reached through the
/// section listings.
pub const MAX_SIDEBAR: usize = 500;
/// The deepest section nesting the sidebar shows.
const MAX_DEPTH: usize = 4;

/// The sidebar of the page at `current_url`: a list of `{title, url, current, children}`.
/// The tree is built once per site snapshot (`tree`); each page only marks itself in a copy.
pub fn sidebar(tree: &serde_json::Value, current_url: &str) -> serde_json::Value {
    let mut out = tree.clone();
    mark(&mut out, current_url);
    out
}

/// The navigation tree of a site's `pages`, every entry's `current` false.
pub fn tree(pages: &BTreeMap<String, PageMeta>) -> serde_json::Value {
    let mut budget = MAX_SIDEBAR;
    serde_json::Value::Array(level(pages, "_index.md", 0, &mut budget))
}

fn mark(entries: &mut serde_json::Value, current_url: &str) {
    let Some(list) = entries.as_array_mut() else {
        return;
    };
    for entry in list {
        if entry.get("url").and_then(|u| u.as_str()) == Some(current_url)
            && let Some(flag) = entry.get_mut("current")
        {
            *flag = true.into();
        }
        if let Some(children) = entry.get_mut("children") {
            mark(children, current_url);
        }
    }
}

fn level(
    pages: &BTreeMap<String, PageMeta>,
    section: &str,
    depth: usize,
    budget: &mut usize,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for page in pages::section(pages, section) {
        if *budget == 0 {
            break;
        }
        if page.key.ends_with("404.md") {
            continue;
        }
        *budget -= 1;
        let children = if is_section(page) && depth + 1 < MAX_DEPTH {
            level(pages, &page.key, depth + 1, budget)
        } else {
            Vec::new()
        };
        out.push(serde_json::json!({
            "title": page.title,
            "url": page.url,
            "current": false,
            "children": children,
        }));
    }
    out
}

fn is_section(page: &PageMeta) -> bool {
    page.key.ends_with("/_index.md")
}
