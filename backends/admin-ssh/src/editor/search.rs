//! Ctrl-R: incremental reverse search through the history, as in bash and readline. The
//! line shows `(reverse-i-search)'query': match`; typing narrows, Ctrl-R again finds the
//! next older match, Backspace widens, Enter runs the match, Ctrl-G or Ctrl-C gives the
//! original line back, and any other key keeps the match on the line and then acts on it.

use super::keys::Key;
use super::{LineEditor, MAX_LINE, move_left};

/// The state of a search.
#[derive(Debug, Default)]
pub(super) struct Search {
    /// What is searched for.
    query: Vec<char>,
    /// The history index of the current match, if any.
    found: Option<usize>,
    /// The line as it was when the search started.
    saved: Vec<char>,
    /// The cursor as it was.
    saved_cursor: usize,
}

impl LineEditor {
    /// Ctrl-R on the line: starts a search with an empty query.
    pub(super) fn start_search(&mut self, echo: &mut String) {
        self.search = Some(Search {
            saved: self.line.clone(),
            saved_cursor: self.cursor,
            ..Search::default()
        });
        self.show_search(echo);
    }

    /// A key during a search. Returns true when the key must then be applied to the line as
    /// usual (the search ended by keeping its match).
    pub(super) fn apply_search(&mut self, key: Key, echo: &mut String) -> bool {
        let Some(mut search) = self.search.take() else {
            return true;
        };
        match key {
            Key::Char(c) if search.query.len() < MAX_LINE => {
                search.query.push(c);
                search.found = self.find(&search.query, self.history.len());
            }
            Key::Backspace => {
                search.query.pop();
                search.found = self.find(&search.query, self.history.len());
            }
            Key::ReverseSearch => {
                let before = search.found.unwrap_or(self.history.len());
                if let Some(older) = self.find(&search.query, before) {
                    search.found = Some(older);
                } else {
                    echo.push('\x07');
                }
            }
            Key::Abort | Key::Interrupt => {
                self.line = search.saved;
                self.cursor = search.saved_cursor;
                self.end_search_display(echo);
                return false;
            }
            _ => {
                if let Some(entry) = search.found.and_then(|i| self.history.get(i)) {
                    self.line = entry.chars().collect();
                    self.cursor = self.line.len();
                }
                self.end_search_display(echo);
                return true;
            }
        }
        self.search = Some(search);
        self.show_search(echo);
        false
    }

    /// The newest history entry before index `before` that contains `query`.
    fn find(&self, query: &[char], before: usize) -> Option<usize> {
        let query: String = query.iter().collect();
        self.history
            .get(..before)?
            .iter()
            .rposition(|entry| entry.contains(&query))
    }

    /// Redraws the search line.
    fn show_search(&self, echo: &mut String) {
        let Some(search) = &self.search else {
            return;
        };
        let query: String = search.query.iter().collect();
        let found = search
            .found
            .and_then(|i| self.history.get(i))
            .map_or("", String::as_str);
        let failed = if search.found.is_none() && !query.is_empty() {
            "failed "
        } else {
            ""
        };
        echo.push_str(&format!(
            "\r\x1b[K({failed}reverse-i-search)'{query}': {found}"
        ));
    }

    /// Replaces the search line with the prompt and the line.
    fn end_search_display(&self, echo: &mut String) {
        echo.push_str("\r\x1b[K");
        echo.push_str(&self.prompt);
        echo.extend(self.line.iter());
        move_left(echo, self.line.len() - self.cursor);
    }
}
