//! Client-side search: a JSON index of every page (title, URL and a bounded plain-text excerpt)
//! built when the site's snapshot is loaded, and a small script that filters it as the reader
//! types. Both are served as fingerprinted, immutable files under `<root>_everlock/`.

use std::collections::BTreeMap;

use pulldown_cmark::{Event, Parser};

use crate::markdown::pages::PageMeta;

/// The most characters of a page's text the index keeps.
pub const MAX_EXCERPT: usize = 2000;
/// The most bytes of page text the whole index keeps; past it pages are indexed by title only.
pub const MAX_INDEX_TEXT: usize = 4 << 20;
/// The search script.
const SCRIPT: &str = include_str!("../../assets/search.js");

/// The search index and script of one snapshot, with their fingerprinted names.
#[derive(Debug, Clone)]
pub struct SearchAssets {
    /// The index: `{"pages":[{"title","url","text"}]}`.
    pub index: String,
    /// `search.<hash>.json`.
    pub index_name: String,
    /// The script.
    pub script: &'static str,
    /// `search.<hash>.js`.
    pub script_name: String,
}

#[derive(serde::Serialize)]
struct Entry<'a> {
    title: &'a str,
    url: &'a str,
    text: &'a str,
}

impl SearchAssets {
    /// The index of every served page (drafts and the 404 page left out).
    pub fn build(pages: &BTreeMap<String, PageMeta>) -> SearchAssets {
        let mut budget = MAX_INDEX_TEXT;
        let entries: Vec<Entry<'_>> = pages
            .values()
            .filter(|p| !p.draft && !p.key.ends_with("404.md"))
            .map(|p| {
                let text = if p.excerpt.len() <= budget {
                    budget -= p.excerpt.len();
                    p.excerpt.as_str()
                } else {
                    ""
                };
                Entry {
                    title: &p.title,
                    url: &p.url,
                    text,
                }
            })
            .collect();
        let index = serde_json::json!({ "pages": entries }).to_string();
        SearchAssets {
            index_name: fingerprint("search", "json", &index),
            index,
            script: SCRIPT,
            script_name: fingerprint("search", "js", SCRIPT),
        }
    }
}

/// `<stem>.<first 16 hex digits of the content's blake3>.<ext>`.
pub fn fingerprint(stem: &str, ext: &str, content: &str) -> String {
    let hash = blake3::hash(content.as_bytes());
    let hex = hash.to_hex();
    format!(
        "{stem}.{}.{ext}",
        hex.as_str().get(..16).unwrap_or_default()
    )
}

/// The plain text of a Markdown body, words separated by single spaces, cut to
/// [`MAX_EXCERPT`] characters.
pub fn excerpt(body: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for event in Parser::new(body) {
        let text = match &event {
            Event::Text(t) | Event::Code(t) => t.as_ref(),
            Event::SoftBreak | Event::HardBreak | Event::End(_) => " ",
            _ => continue,
        };
        for word in text.split_whitespace() {
            if chars >= MAX_EXCERPT {
                return cut(out);
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
            chars += word.chars().count() + 1;
        }
    }
    cut(out)
}

/// `text` cut to [`MAX_EXCERPT`] characters.
fn cut(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_EXCERPT) {
        text.truncate(at);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_plain_and_bounded() {
        assert_eq!(
            excerpt("# Title\n\nSome *emphasis* and `code`.\n\n- one\n- two\n"),
            "Title Some emphasis and code . one two"
        );
        let long = "word ".repeat(5000);
        assert!(excerpt(&long).chars().count() <= MAX_EXCERPT);
    }
}
