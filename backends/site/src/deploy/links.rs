//! The link targets of Markdown pages, extracted while each page streams through the deploy
//! (issue #16 item 2): a whole page is checked for broken internal links without ever being
//! held in memory whole. Only the targets and their line numbers are kept, within per-page and
//! per-deploy caps.
//!
//! A page is parsed in segments of complete lines, cut at a blank line outside fenced code
//! once a segment passes [`SEGMENT`] bytes, so paragraphs, lists and code blocks stay whole.
//! A reference link whose definition sits in another segment is resolved when the page ends,
//! from the definitions every segment recorded.

use std::collections::HashMap;

/// A segment is parsed at the first blank line (outside fenced code) after this many bytes.
const SEGMENT: usize = 16 * 1024;
/// A segment (or a single line) is parsed regardless of blank lines past this many bytes, so
/// a page without blank lines or newlines stays bounded.
const SEGMENT_MAX: usize = 1024 * 1024;
/// The most link targets kept for one page; later links of that page are not judged.
const PAGE_LINKS: usize = 50_000;
/// The most target bytes kept for one deploy; pages past it are not judged.
pub(super) const DEPLOY_LINK_BYTES: u64 = 16 * 1024 * 1024;

/// One link target of a page and its 1-based line.
pub(super) type Link = (usize, String);

/// Where the scanner is within the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first line: it may open front matter.
    Start,
    /// Inside front matter closed by this fence.
    FrontMatter(&'static str),
    /// In the Markdown body.
    Body,
}

/// Extracts the link targets of one page from its bytes as they arrive.
#[derive(Debug)]
pub(super) struct LinkScanner {
    /// The bytes of the line not yet complete.
    pending: Vec<u8>,
    /// Complete body lines not yet parsed.
    segment: String,
    /// The line number of the segment's first line.
    segment_line: usize,
    /// The line number of the next complete line.
    line: usize,
    state: State,
    /// The open code fence: its character and length.
    fence: Option<(char, usize)>,
    links: Vec<Link>,
    /// Reference definitions seen so far (normalised label → target); the first one wins.
    defs: HashMap<String, String>,
    /// References no definition of their own segment answered, with their lines.
    refs: Vec<Link>,
    /// Target bytes this page may still keep (the deploy's remaining budget).
    room: u64,
}

impl LinkScanner {
    /// A scanner that keeps at most `room` bytes of targets.
    pub(super) fn new(room: u64) -> LinkScanner {
        LinkScanner {
            pending: Vec::new(),
            segment: String::new(),
            segment_line: 1,
            line: 1,
            state: State::Start,
            fence: None,
            links: Vec::new(),
            defs: HashMap::new(),
            refs: Vec::new(),
            room,
        }
    }

    /// Feeds the next bytes of the page.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(at) = bytes.iter().position(|b| *b == b'\n') {
            let (line, rest) = bytes.split_at(at + 1);
            self.pending.extend_from_slice(line);
            let whole = std::mem::take(&mut self.pending);
            self.line_done(&String::from_utf8_lossy(&whole));
            bytes = rest;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > SEGMENT_MAX {
            // A line this long is parsed as it stands; a link cut by it may go unjudged.
            let part = std::mem::take(&mut self.pending);
            self.segment.push_str(&String::from_utf8_lossy(&part));
            self.flush();
        }
    }

    /// Ends the page: its link targets, and how many target bytes they hold.
    pub(super) fn finish(mut self) -> (Vec<Link>, u64) {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.line_done(&String::from_utf8_lossy(&last));
        }
        self.flush();
        for (line, label) in std::mem::take(&mut self.refs) {
            if let Some(dest) = self.defs.get(&label)
                && internal(dest)
            {
                self.links.push((line, dest.clone()));
            }
        }
        self.links.sort();
        let used = self.links.iter().map(|(_, t)| t.len() as u64).sum();
        (self.links, used)
    }

    fn line_done(&mut self, line: &str) {
        let number = self.line;
        self.line += 1;
        match self.state {
            State::Start => {
                let first = line.strip_prefix('\u{feff}').unwrap_or(line).trim_end();
                if let Some(fence) = ["---", "+++"].into_iter().find(|f| *f == first) {
                    self.state = State::FrontMatter(fence);
                    return;
                }
                self.state = State::Body;
            }
            State::FrontMatter(fence) => {
                if line.trim_end() == fence {
                    self.state = State::Body;
                }
                return;
            }
            State::Body => {}
        }
        if self.segment.is_empty() {
            self.segment_line = number;
        }
        self.segment.push_str(line);
        self.track_fence(line);
        let blank = line.trim().is_empty() && self.fence.is_none();
        if blank && self.segment.len() >= SEGMENT || self.segment.len() >= SEGMENT_MAX {
            self.flush();
        }
    }

    /// Opens or closes a fenced code block (``` or ~~~, indented at most three spaces).
    fn track_fence(&mut self, line: &str) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            return;
        }
        let text = line.trim();
        let Some(c) = text.chars().next().filter(|c| *c == '`' || *c == '~') else {
            return;
        };
        let run = text.chars().take_while(|x| *x == c).count();
        if run < 3 {
            return;
        }
        match self.fence {
            None => self.fence = Some((c, run)),
            Some((open, len)) if open == c && run >= len && text.len() == run => {
                self.fence = None;
            }
            Some(_) => {}
        }
    }

    /// Parses the buffered segment and keeps the targets worth judging.
    fn flush(&mut self) {
        use pulldown_cmark::{Event, LinkType, Options, Parser, Tag};
        let segment = std::mem::take(&mut self.segment);
        let first = self.segment_line;
        let line_of = |offset: usize| {
            let before = segment.as_bytes().get(..offset).unwrap_or(&[]);
            first + before.iter().filter(|b| **b == b'\n').count()
        };
        let options = Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_GFM;
        let mut unresolved = Vec::new();
        let callback = |broken: pulldown_cmark::BrokenLink<'_>| {
            unresolved.push((line_of(broken.span.start), label(&broken.reference)));
            None
        };
        let events = Parser::new_with_broken_link_callback(&segment, options, Some(callback))
            .into_offset_iter();
        for (label, def) in events.reference_definitions().iter() {
            let cost = (label.len() + def.dest.len()) as u64;
            if self.defs.len() < PAGE_LINKS && cost <= self.room {
                let entry = self.defs.entry(self::label(label));
                if let std::collections::hash_map::Entry::Vacant(v) = entry {
                    self.room -= cost;
                    v.insert(def.dest.to_string());
                }
            }
        }
        for (event, range) in events {
            let dest = match event {
                Event::Start(
                    Tag::Link {
                        link_type,
                        dest_url,
                        ..
                    }
                    | Tag::Image {
                        link_type,
                        dest_url,
                        ..
                    },
                ) if link_type != LinkType::Email => dest_url,
                _ => continue,
            };
            if !internal(&dest) {
                continue;
            }
            let cost = dest.len() as u64;
            if self.links.len() >= PAGE_LINKS || cost > self.room {
                break;
            }
            self.room -= cost;
            self.links.push((line_of(range.start), dest.into_string()));
        }
        let room = PAGE_LINKS.saturating_sub(self.refs.len());
        self.refs.extend(unresolved.into_iter().take(room));
        // A segment forced out inside fenced code: the next one reopens the fence on a
        // synthetic line before the next real one, so code stays code.
        if let Some((c, n)) = self.fence {
            self.segment = std::iter::repeat_n(c, n).chain(['\n']).collect();
            self.segment_line = self.line.saturating_sub(1);
        }
    }
}

/// Whether `dest` may name a path of the site: not a URL with a scheme, not `//host`, not a
/// pure fragment or query.
fn internal(dest: &str) -> bool {
    let has_scheme = dest
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.contains('/') && !scheme.is_empty());
    !(has_scheme || dest.starts_with("//") || dest.starts_with('#') || dest.starts_with('?'))
}

/// A reference label as CommonMark matches it: case-folded, inner whitespace collapsed.
fn label(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The link targets of a whole page held in memory (a page an earlier deploy stored).
pub(super) fn scan(bytes: &[u8], room: u64) -> (Vec<Link>, u64) {
    let mut scanner = LinkScanner::new(room);
    scanner.feed(bytes);
    scanner.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_their_lines_across_segments_and_chunks() {
        let mut page =
            "---\ntitle: x\n\nmore: y\n---\n# T\n\n[a](a.md) [ext](https://x.y/)\n\n".to_owned();
        let filler = "Some words of a paragraph that fill the page.\n\n";
        while page.len() < 40 * 1024 {
            page.push_str(filler);
        }
        page.push_str("```\n[not](code.md)\n\n```\n\n[b](b.md#x)\n");
        let lines = page.lines().count();
        let mut scanner = LinkScanner::new(DEPLOY_LINK_BYTES);
        for chunk in page.as_bytes().chunks(7) {
            scanner.feed(chunk);
        }
        let (links, used) = scanner.finish();
        assert_eq!(
            links,
            vec![(8, "a.md".to_owned()), (lines, "b.md#x".to_owned())]
        );
        assert_eq!(used, 10);
        assert_eq!(scan(page.as_bytes(), 4).0, vec![(8, "a.md".to_owned())]);
    }
}
