//! Markdown to HTML: pulldown-cmark with GFM extensions, heading anchors, highlighted code,
//! `.md` links rewritten to clean URLs, and raw HTML sanitised unless the site opts in.

use std::collections::HashSet;

use pulldown_cmark::{
    BlockQuoteKind, CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd,
};

use crate::markdown::highlight;

/// Rendering options from `site.toml`.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Highlight fenced code.
    pub highlight: bool,
    /// Keep raw HTML as written.
    pub unsafe_html: bool,
}

/// A rendered Markdown body.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The HTML.
    pub html: String,
    /// The text of the first level-1 heading, the fallback title.
    pub h1: Option<String>,
    /// The page's `##` and `###` headings, in order (at most [`MAX_TOC`]).
    pub toc: Vec<TocEntry>,
}

/// The most headings a page's table of contents lists: a bound on the template context.
pub const MAX_TOC: usize = 200;

/// One heading of the table of contents.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TocEntry {
    /// 2 or 3.
    pub level: u8,
    /// The heading's id (the anchor).
    pub id: String,
    /// The heading's text.
    pub title: String,
}

/// Renders `markdown` to HTML.
pub fn render(markdown: &str, opts: RenderOptions) -> Rendered {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_GFM;
    let mut pass = Pass::new(opts);
    for event in Parser::new_ext(markdown, options) {
        pass.event(event);
    }
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, pass.events.into_iter());
    if !opts.unsafe_html {
        html = sanitizer().clean(&html).to_string();
    }
    Rendered {
        html,
        h1: pass.h1,
        toc: pass.toc,
    }
}

/// One pass over the parser's events: code blocks and headings are collected whole and then
/// rewritten (highlighted; given an id and a permalink), everything else is rewritten event by
/// event.
struct Pass<'a> {
    opts: RenderOptions,
    /// The events for pulldown-cmark's HTML writer.
    events: Vec<Event<'a>>,
    /// The heading being collected, from its start event on.
    heading: Option<Vec<Event<'a>>>,
    /// The code block being collected: its language and text.
    code: Option<(String, String)>,
    /// The heading ids given so far, to keep them unique.
    used_ids: HashSet<String>,
    /// The first level-1 heading's text.
    h1: Option<String>,
    /// The table of contents.
    toc: Vec<TocEntry>,
}

impl<'a> Pass<'a> {
    fn new(opts: RenderOptions) -> Pass<'a> {
        Pass {
            opts,
            events: Vec::new(),
            heading: None,
            code: None,
            used_ids: HashSet::new(),
            h1: None,
            toc: Vec::new(),
        }
    }

    /// Takes one event: into the code block or heading being collected, else rewritten.
    fn event(&mut self, event: Event<'a>) {
        if self.code.is_some() {
            self.code_event(event);
        } else if self.heading.is_some() {
            self.heading_event(event);
        } else {
            self.other_event(event);
        }
    }

    /// Collects a code block's text; at its end, emits the whole block as HTML.
    fn code_event(&mut self, event: Event<'a>) {
        match event {
            Event::Text(t) => {
                if let Some((_, text)) = self.code.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((lang, text)) = self.code.take() {
                    let html = code_block(&lang, &text, self.opts);
                    self.events.push(Event::Html(CowStr::from(html)));
                }
            }
            _ => {}
        }
    }

    /// Collects a heading; at its end, gives it its id and permalink and records it as the
    /// title (the first `#`) or in the table of contents (`##`, `###`).
    fn heading_event(&mut self, event: Event<'a>) {
        let end = matches!(event, Event::End(TagEnd::Heading(_)));
        if let Some(buffer) = self.heading.as_mut() {
            buffer.push(event);
        }
        if !end {
            return;
        }
        let Some(buffer) = self.heading.take() else {
            return;
        };
        let (events_out, text, level, id) = finish_heading(buffer, &mut self.used_ids);
        let depth = match level {
            HeadingLevel::H2 => 2,
            HeadingLevel::H3 => 3,
            _ => 0,
        };
        if level == HeadingLevel::H1 && self.h1.is_none() {
            self.h1 = Some(text);
        } else if depth > 0 && self.toc.len() < MAX_TOC {
            self.toc.push(TocEntry {
                level: depth,
                id,
                title: text,
            });
        }
        self.events.extend(events_out);
    }

    /// Any other event: starts a code block or heading, turns alerts into admonitions and
    /// `.md` links into clean URLs, and passes the rest on.
    fn other_event(&mut self, event: Event<'a>) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new()));
            }
            Event::Start(Tag::Heading { .. }) => self.heading = Some(vec![event]),
            // GitHub-style alerts (`> [!NOTE]`) become styled admonitions; the class names
            // are the theme's, so a site's own stylesheet can restyle them.
            Event::Start(Tag::BlockQuote(Some(kind))) => {
                let (class, label) = admonition(kind);
                self.events.push(Event::Html(CowStr::from(format!(
                    "<div class=\"admonition {class}\">\n<p class=\"admonition-title\">{label}</p>\n"
                ))));
            }
            Event::End(TagEnd::BlockQuote(Some(_))) => {
                self.events.push(Event::Html(CowStr::from("</div>\n")));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                self.events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url: CowStr::from(clean_link(&dest_url)),
                    title,
                    id,
                }));
            }
            other => self.events.push(other),
        }
    }
}

/// The class and the visible label of an admonition.
fn admonition(kind: BlockQuoteKind) -> (&'static str, &'static str) {
    match kind {
        BlockQuoteKind::Note => ("note", "Note"),
        BlockQuoteKind::Tip => ("tip", "Tip"),
        BlockQuoteKind::Important => ("important", "Important"),
        BlockQuoteKind::Warning => ("warning", "Warning"),
        BlockQuoteKind::Caution => ("caution", "Caution"),
    }
}

/// The sanitiser: ammonia's safe defaults plus what our own renderer emits (heading ids,
/// highlight classes, task-list checkboxes).
fn sanitizer() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    b.add_generic_attributes(["class", "id"])
        .add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .link_rel(Some("noopener noreferrer"));
    b
}

/// `<pre><code>` with highlighting when enabled and the language is known.
fn code_block(lang: &str, text: &str, opts: RenderOptions) -> String {
    let class = if lang.is_empty() {
        String::new()
    } else {
        format!(" class=\"language-{}\"", escape(lang))
    };
    let body = if opts.highlight && !lang.is_empty() {
        highlight::highlight(text, lang).unwrap_or_else(|| escape(text))
    } else {
        escape(text)
    };
    let pre_class = if opts.highlight && !lang.is_empty() {
        " class=\"hl-code\""
    } else {
        ""
    };
    format!("<pre{pre_class}><code{class}>{body}</code></pre>\n")
}

/// Gives a heading an id (its own `{#id}` or a slug of its text), unique within the page, and
/// below level 1 a permalink (`<a class="anchor" href="#id">`) to it.
fn finish_heading<'a>(
    mut buffer: Vec<Event<'a>>,
    used: &mut HashSet<String>,
) -> (Vec<Event<'a>>, String, HeadingLevel, String) {
    let text: String = buffer
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    let mut level = HeadingLevel::H1;
    let mut anchor = String::new();
    if let Some(Event::Start(Tag::Heading { level: l, id, .. })) = buffer.first_mut() {
        level = *l;
        let base = id.as_ref().map_or_else(|| slug(&text), |i| i.to_string());
        let mut candidate = base.clone();
        let mut n = 1;
        while !used.insert(candidate.clone()) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        anchor.clone_from(&candidate);
        *id = Some(CowStr::from(candidate));
    }
    if level != HeadingLevel::H1 {
        // Before the closing tag, so the link sits inside the heading.
        let at = buffer.len().saturating_sub(1);
        buffer.insert(
            at,
            Event::Html(CowStr::from(format!(
                "<a class=\"anchor\" href=\"#{}\">#</a>",
                escape(&anchor)
            ))),
        );
    }
    (buffer, text, level, anchor)
}

/// A URL fragment from heading text: lowercase letters and digits, other runs become `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "section".to_owned()
    } else {
        out
    }
}

/// Rewrites a relative or site-absolute link to a `.md` page into the page's clean URL:
/// `guide.md#x` → `guide#x`, `docs/index.md` → `docs/`, `_index.md` → `./`.
pub fn clean_link(dest: &str) -> String {
    let has_scheme = dest
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.contains('/') && !scheme.is_empty());
    if has_scheme || dest.starts_with("//") {
        return dest.to_owned();
    }
    let split_at = dest.find(['#', '?']).unwrap_or(dest.len());
    let (path, rest) = dest.split_at(split_at);
    let Some(stem) = path.strip_suffix(".md") else {
        return dest.to_owned();
    };
    let (dir, name) = stem.rsplit_once('/').map_or(("", stem), |(d, n)| (d, n));
    let cleaned = if name == "index" || name == "_index" {
        if dir.is_empty() && !stem.starts_with('/') {
            "./".to_owned()
        } else {
            format!("{dir}/")
        }
    } else {
        stem.to_owned()
    };
    format!("{cleaned}{rest}")
}

/// Minimal HTML text escaping.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAFE: RenderOptions = RenderOptions {
        highlight: true,
        unsafe_html: false,
    };

    #[test]
    fn gfm_headings_and_code() {
        let r = render(
            "# Hello *World*\n\n## Hello World\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n~~old~~\n\n```rust\nfn main() {}\n```\n",
            SAFE,
        );
        assert_eq!(r.h1.as_deref(), Some("Hello World"));
        assert!(r.html.contains("<h1 id=\"hello-world\">"), "{}", r.html);
        assert!(r.html.contains("<h2 id=\"hello-world-1\">"), "{}", r.html);
        assert!(
            r.html
                .contains("Hello World<a class=\"anchor\" href=\"#hello-world-1\""),
            "{}",
            r.html
        );
        assert!(r.html.contains("<table>"), "{}", r.html);
        assert!(r.html.contains("type=\"checkbox\""), "{}", r.html);
        assert!(r.html.contains("<del>old</del>"), "{}", r.html);
        assert!(r.html.contains("class=\"hl-"), "{}", r.html);
    }

    #[test]
    fn the_toc_lists_second_and_third_level_headings() {
        let r = render(
            "# Title\n\n## Install\n\n### On Linux\n\n#### Deep\n\n## Install\n",
            SAFE,
        );
        let toc: Vec<(u8, &str, &str)> = r
            .toc
            .iter()
            .map(|e| (e.level, e.id.as_str(), e.title.as_str()))
            .collect();
        assert_eq!(
            toc,
            [
                (2, "install", "Install"),
                (3, "on-linux", "On Linux"),
                (2, "install-1", "Install")
            ]
        );
    }

    #[test]
    fn alerts_become_admonitions() {
        let r = render(
            "> [!NOTE]\n> Read *this*.\n\n> [!WARNING]\n> Careful.\n\n> Plain quote.\n",
            SAFE,
        );
        assert!(
            r.html.contains("<div class=\"admonition note\">"),
            "{}",
            r.html
        );
        assert!(r.html.contains("<em>this</em>"), "{}", r.html);
        assert!(
            r.html.contains("<div class=\"admonition warning\">"),
            "{}",
            r.html
        );
        assert!(r.html.contains("<blockquote>"), "{}", r.html);
        assert!(!r.html.contains("[!NOTE]"), "{}", r.html);
    }

    #[test]
    fn raw_html_is_sanitised_unless_allowed() {
        let md = "Hi <script>alert(1)</script> <b onclick=\"x()\">bold</b>\n\n<iframe src=\"https://e.example\"></iframe>\n\n[x](javascript:alert(1))\n";
        let safe = render(md, SAFE).html;
        assert!(!safe.contains("<script"), "{safe}");
        assert!(!safe.contains("onclick"), "{safe}");
        assert!(!safe.contains("<iframe"), "{safe}");
        assert!(!safe.contains("javascript:"), "{safe}");
        assert!(safe.contains("<b>bold</b>"), "{safe}");
        let raw = render(
            md,
            RenderOptions {
                highlight: true,
                unsafe_html: true,
            },
        )
        .html;
        assert!(raw.contains("<script>alert(1)</script>"), "{raw}");
    }

    #[test]
    fn md_links_become_clean_urls() {
        assert_eq!(clean_link("guide.md"), "guide");
        assert_eq!(clean_link("guide.md#install"), "guide#install");
        assert_eq!(clean_link("/docs/index.md"), "/docs/");
        assert_eq!(clean_link("docs/_index.md"), "docs/");
        assert_eq!(clean_link("index.md"), "./");
        assert_eq!(
            clean_link("https://x.example/a.md"),
            "https://x.example/a.md"
        );
        assert_eq!(clean_link("img.png"), "img.png");
        let r = render("[g](guide.md)", SAFE);
        assert!(r.html.contains("href=\"guide\""), "{}", r.html);
    }
}
