//! The default theme's stylesheet, served as one fingerprinted, immutable file
//! (`<site root>_everlock/style.<hash>.css`) instead of being inlined into every page: the
//! layout styles, the highlight style for light mode and a dark highlight style under
//! `prefers-color-scheme: dark`, so code blocks stay readable in both.

use std::collections::BTreeMap;

use crate::markdown::highlight;
use crate::markdown::pages::{self, PageMeta};
use crate::markdown::search::SearchAssets;

/// The directory of generated assets below the site root.
pub const ASSETS_DIR: &str = "_everlock";
/// The highlight style used in dark mode.
const DARK_STYLE: &str = "base16-ocean.dark";
/// The layout styles.
const THEME_CSS: &str = include_str!("../../layouts/theme.css");

/// The site's stylesheet and its fingerprinted file name.
#[derive(Debug, Clone)]
pub struct Stylesheet {
    /// The CSS.
    pub css: String,
    /// `style.<hash>.css`.
    pub name: String,
}

impl Stylesheet {
    /// The stylesheet for a light highlight style (`None`: highlighting is off).
    pub fn build(highlight_style: Option<&str>) -> Stylesheet {
        let mut css = String::new();
        if let Some(style) = highlight_style {
            // Each style applies only in its own colour scheme: the dark style does not name
            // every selector the light one does (`.hl-storage.hl-type`, say), so light rules
            // left in force would paint dark-on-dark tokens.
            css.push_str("@media (prefers-color-scheme: light) {\n");
            css.push_str(&highlight::css(style));
            css.push_str("}\n@media (prefers-color-scheme: dark) {\n");
            css.push_str(&highlight::css(DARK_STYLE));
            css.push_str("}\n");
        }
        // The layout's rules come last, so the code block's border and padding apply whatever
        // the highlight style says.
        css.push_str(THEME_CSS);
        let hash = blake3::hash(css.as_bytes());
        let hex = hash.to_hex();
        let name = format!("style.{}.css", hex.as_str().get(..16).unwrap_or_default());
        Stylesheet { css, name }
    }
}

/// One of the generated files under `<root>_everlock/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// The stylesheet.
    Style,
    /// The search index (JSON).
    SearchIndex,
    /// The search script.
    SearchScript,
}

/// Which generated asset `segments` (a request path) name, if any.
pub fn requested(
    stylesheet: &Stylesheet,
    search: &SearchAssets,
    segments: &[String],
) -> Option<Asset> {
    let [dir, name] = segments else { return None };
    if dir != ASSETS_DIR {
        return None;
    }
    if *name == stylesheet.name {
        Some(Asset::Style)
    } else if *name == search.index_name {
        Some(Asset::SearchIndex)
    } else if *name == search.script_name {
        Some(Asset::SearchScript)
    } else {
        None
    }
}

/// A generated asset's content, content type and a cache key that cannot collide with a page
/// (`#` never occurs in a store key).
pub fn asset(
    stylesheet: &Stylesheet,
    search: &SearchAssets,
    asset: Asset,
) -> (String, &'static str, &'static str) {
    match asset {
        Asset::Style => (
            stylesheet.css.clone(),
            "text/css; charset=utf-8",
            "#stylesheet",
        ),
        Asset::SearchIndex => (search.index.clone(), "application/json", "#search-index"),
        Asset::SearchScript => (
            search.script.to_owned(),
            "text/javascript; charset=utf-8",
            "#search-script",
        ),
    }
}

/// The previous and next pages of `key` within its section (the directory's `_index.md`
/// listing, in its order), each `{title, url}` or null.
pub fn neighbours(
    pages: &BTreeMap<String, PageMeta>,
    key: &str,
) -> (serde_json::Value, serde_json::Value) {
    let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
    let section = if dir.is_empty() {
        "_index.md".to_owned()
    } else {
        format!("{dir}/_index.md")
    };
    if key == section || !pages.contains_key(&section) {
        return (serde_json::Value::Null, serde_json::Value::Null);
    }
    let list = pages::section(pages, &section);
    let Some(at) = list.iter().position(|p| p.key == key) else {
        return (serde_json::Value::Null, serde_json::Value::Null);
    };
    let link = |i: Option<usize>| {
        i.and_then(|i| list.get(i)).map_or(
            serde_json::Value::Null,
            |p| serde_json::json!({ "title": p.title, "url": p.url }),
        )
    };
    (link(at.checked_sub(1)), link(at.checked_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_follows_the_content() {
        let a = Stylesheet::build(Some("InspiredGitHub"));
        let b = Stylesheet::build(None);
        assert_ne!(a.name, b.name);
        assert!(a.css.contains("prefers-color-scheme: dark"));
        // The light style's rules sit inside the light scheme's block only.
        let light = highlight::css("InspiredGitHub");
        assert!(
            a.css.starts_with(&format!(
                "@media (prefers-color-scheme: light) {{\n{light}}}\n"
            )),
            "{}",
            a.css
        );
    }
}
