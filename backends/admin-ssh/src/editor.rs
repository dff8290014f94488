//! The terminal line editor of an interactive (PTY) session: turns the raw bytes a client
//! sends into edits of the current line, echo for the terminal, submitted lines and exit.
//!
//! It is a pure state machine (bytes in, actions out), so every key is table-tested without
//! SSH. Bytes arrive in arbitrary chunks; partial escape sequences and partial UTF-8
//! characters wait in `pending` for the next chunk.

/// Longest line accepted; further input is refused with a bell.
pub const MAX_LINE: usize = 1024;

/// Lines kept in the history.
pub const MAX_HISTORY: usize = 1000;

mod keys;
mod search;
#[cfg(test)]
mod tests;

use keys::{Key, decode};

/// What the console must do after feeding bytes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this to the terminal.
    Echo(String),
    /// Run this line, then print a new prompt.
    Submit(String),
    /// Ctrl-D on an empty line: end the session.
    Exit,
    /// Ctrl-C or Ctrl-D while reading a hidden line (a password prompt): abandon it.
    Cancelled,
}

/// Completion: given the line up to the cursor, the candidates for its last word (whole
/// words, not suffixes).
pub type Completer<'a> = &'a dyn Fn(&str) -> Vec<String>;

/// The state of one interactive session's input line.
#[derive(Debug, Default)]
pub struct LineEditor {
    prompt: String,
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Index into `history` while browsing with Up/Down.
    browsing: Option<usize>,
    /// The line being typed before browsing started, restored by Down past the newest entry.
    draft: Vec<char>,
    /// Killed text for Ctrl-Y.
    yank: Vec<char>,
    /// Bytes of an incomplete escape sequence or UTF-8 character.
    pending: Vec<u8>,
    /// The previous key was `\r`.
    after_cr: bool,
    /// Reading a secret: nothing is echoed, nothing is remembered, no editing but Backspace.
    hidden: bool,
    /// A Ctrl-R reverse search in progress.
    search: Option<search::Search>,
}

impl LineEditor {
    /// An editor that shows `prompt` on redraws.
    pub fn new(prompt: &str) -> LineEditor {
        LineEditor {
            prompt: prompt.to_owned(),
            ..LineEditor::default()
        }
    }

    /// The current line.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    /// The cursor position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Turns hidden input (for password prompts) on or off; the current line is cleared.
    pub fn set_hidden(&mut self, hidden: bool) {
        self.hidden = hidden;
        self.reset();
    }

    /// Replaces the history (a user's saved history, at the start of a session).
    pub fn set_history(&mut self, lines: Vec<String>) {
        self.history = lines;
        let excess = self.history.len().saturating_sub(MAX_HISTORY);
        self.history.drain(..excess);
    }

    /// The history, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Adds a submitted line to the history (the console leaves out lines with secrets).
    pub fn remember(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(line.to_owned());
    }

    /// Feeds bytes from the client and returns what to do, in order. Stops after a submitted
    /// line (see [`LineEditor::has_pending_input`]).
    pub fn feed(&mut self, bytes: &[u8], complete: Completer<'_>) -> Vec<Action> {
        self.pending.extend_from_slice(bytes);
        let mut actions = Vec::new();
        let mut echo = String::new();
        while let Some((key, used)) = decode(&self.pending) {
            self.pending.drain(..used.min(self.pending.len()));
            let after_cr = std::mem::replace(&mut self.after_cr, key == Key::Cr);
            if key == Key::Lf && after_cr {
                continue;
            }
            self.apply(key, &mut echo, &mut actions, complete);
            // A submitted line may change how the next bytes are read (a password prompt
            // hides them), so the rest waits for the console to feed again. Pasted or
            // piped input (`ssh -tt host < script`) arrives in one chunk, and must not have
            // its passwords echoed as ordinary keys.
            if matches!(
                actions.last(),
                Some(Action::Submit(_) | Action::Cancelled | Action::Exit)
            ) {
                break;
            }
        }
        flush(&mut echo, &mut actions);
        actions
    }

    /// Whether the last [`LineEditor::feed`] stopped at a submitted line with more input
    /// waiting: the console then feeds again (with no new bytes) once it has acted on it.
    pub fn has_pending_input(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Applies one key to the visible line: echo collects what the terminal must show,
    /// actions what the console must do (in order, with echo flushed before each).
    fn apply(
        &mut self,
        key: Key,
        echo: &mut String,
        actions: &mut Vec<Action>,
        complete: Completer<'_>,
    ) {
        if self.hidden {
            self.apply_hidden(key, echo, actions);
            return;
        }
        if self.search.is_some() && !self.apply_search(key, echo) {
            return;
        }
        match key {
            Key::Char(c) => self.insert(&[c], echo),
            Key::Cr | Key::Lf => self.submit(echo, actions),
            Key::Backspace => self.backspace(echo),
            Key::Delete => self.delete_right(echo),
            Key::CtrlD => self.ctrl_d(echo, actions),
            Key::Interrupt => {
                echo.push_str("^C\r\n");
                echo.push_str(&self.prompt);
                self.reset();
            }
            Key::KillLine => {
                self.yank = std::mem::take(&mut self.line);
                self.replace_line(Vec::new(), echo);
            }
            Key::KillToEnd => {
                self.yank = self.line.split_off(self.cursor);
                echo.push_str("\x1b[K");
            }
            Key::Yank => {
                let text = self.yank.clone();
                self.insert(&text, echo);
            }
            Key::Home | Key::End | Key::Left | Key::Right => self.move_cursor(key, echo),
            Key::Up => self.history_up(echo),
            Key::Down => self.history_down(echo),
            Key::Tab => self.complete(echo, complete),
            Key::Redraw => {
                echo.push_str("\r\n");
                self.redraw_prompt_and_line(echo);
            }
            Key::ReverseSearch => self.start_search(echo),
            Key::Ignored | Key::Abort => {}
        }
    }

    /// Enter: ends the line on screen and submits it.
    fn submit(&mut self, echo: &mut String, actions: &mut Vec<Action>) {
        echo.push_str("\r\n");
        flush(echo, actions);
        let line = self.line();
        self.reset();
        actions.push(Action::Submit(line));
    }

    /// Backspace: at the end of the line a rubout; inside it, the tail shifts left.
    fn backspace(&mut self, echo: &mut String) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        self.line.remove(self.cursor);
        if self.cursor == self.line.len() {
            echo.push_str("\x08 \x08");
        } else {
            echo.push('\x08');
            self.redraw_tail(echo, 1);
        }
    }

    /// Ctrl-D: ends the session on an empty line, deletes right otherwise (as in a shell).
    fn ctrl_d(&mut self, echo: &mut String, actions: &mut Vec<Action>) {
        if self.line.is_empty() {
            flush(echo, actions);
            actions.push(Action::Exit);
        } else {
            self.delete_right(echo);
        }
    }

    /// Home, End, Left and Right, each within the line.
    fn move_cursor(&mut self, key: Key, echo: &mut String) {
        match key {
            Key::Home => {
                move_left(echo, self.cursor);
                self.cursor = 0;
            }
            Key::End => {
                move_right(echo, self.line.len() - self.cursor);
                self.cursor = self.line.len();
            }
            Key::Left if self.cursor > 0 => {
                self.cursor -= 1;
                move_left(echo, 1);
            }
            Key::Right if self.cursor < self.line.len() => {
                self.cursor += 1;
                move_right(echo, 1);
            }
            _ => {}
        }
    }

    /// Up: the previous history entry; the first Up keeps the typed line as the draft.
    fn history_up(&mut self, echo: &mut String) {
        let next = match self.browsing {
            None if !self.history.is_empty() => {
                self.draft = self.line.clone();
                Some(self.history.len() - 1)
            }
            None => None,
            Some(i) => Some(i.saturating_sub(1)),
        };
        if let Some(i) = next
            && next != self.browsing
        {
            self.browsing = Some(i);
            let entry = self.history.get(i).cloned().unwrap_or_default();
            self.replace_line(entry.chars().collect(), echo);
        }
    }

    /// Down: the next history entry, or back to the draft past the newest one.
    fn history_down(&mut self, echo: &mut String) {
        let Some(i) = self.browsing else {
            return;
        };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            let entry = self.history.get(i + 1).cloned().unwrap_or_default();
            self.replace_line(entry.chars().collect(), echo);
        } else {
            self.browsing = None;
            let draft = std::mem::take(&mut self.draft);
            self.replace_line(draft, echo);
        }
    }

    /// Prints the prompt and the line again, with the cursor where it was.
    fn redraw_prompt_and_line(&self, echo: &mut String) {
        echo.push_str(&self.prompt);
        echo.extend(self.line.iter());
        move_left(echo, self.line.len() - self.cursor);
    }

    /// Keys while reading a secret: characters and Backspace edit silently, Enter submits,
    /// Ctrl-C (or Ctrl-D) abandons; everything else is ignored so nothing leaks on screen.
    fn apply_hidden(&mut self, key: Key, echo: &mut String, actions: &mut Vec<Action>) {
        match key {
            Key::Char(c) if self.line.len() < MAX_LINE => self.line.push(c),
            Key::Backspace => {
                self.line.pop();
            }
            Key::Cr | Key::Lf => self.submit(echo, actions),
            Key::Interrupt | Key::CtrlD => {
                echo.push_str("^C\r\n");
                flush(echo, actions);
                self.reset();
                actions.push(Action::Cancelled);
            }
            _ => {}
        }
        self.cursor = self.line.len();
    }

    fn reset(&mut self) {
        self.line.clear();
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
    }

    fn insert(&mut self, chars: &[char], echo: &mut String) {
        if self.line.len() + chars.len() > MAX_LINE {
            echo.push('\x07');
            return;
        }
        for (i, c) in chars.iter().enumerate() {
            self.line.insert(self.cursor + i, *c);
        }
        self.cursor += chars.len();
        echo.extend(chars.iter());
        if self.cursor < self.line.len() {
            self.redraw_tail(echo, 0);
        }
    }

    fn delete_right(&mut self, echo: &mut String) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            self.redraw_tail(echo, 1);
        }
    }

    /// Rewrites the line from the cursor to the end, blanks `erased` cells left over from a
    /// deletion, and moves the cursor back where it was.
    fn redraw_tail(&self, echo: &mut String, erased: usize) {
        let tail = self.line.get(self.cursor..).unwrap_or_default();
        echo.extend(tail.iter());
        echo.extend(std::iter::repeat_n(' ', erased));
        move_left(echo, tail.len() + erased);
    }

    /// Replaces the whole line on screen and puts the cursor at its end.
    fn replace_line(&mut self, new: Vec<char>, echo: &mut String) {
        move_left(echo, self.cursor);
        echo.extend(new.iter());
        echo.push_str("\x1b[K");
        self.cursor = new.len();
        self.line = new;
    }

    fn complete(&mut self, echo: &mut String, complete: Completer<'_>) {
        let before: String = self
            .line
            .get(..self.cursor)
            .unwrap_or_default()
            .iter()
            .collect();
        let word_start = before.rfind(' ').map_or(0, |i| i + 1);
        let word = before.get(word_start..).unwrap_or_default();
        let candidates: Vec<String> = complete(&before)
            .into_iter()
            .filter(|c| c.starts_with(word))
            .collect();
        match candidates.as_slice() {
            [] => echo.push('\x07'),
            [only] => {
                let mut rest: Vec<char> =
                    only.get(word.len()..).unwrap_or_default().chars().collect();
                rest.push(' ');
                self.insert(&rest, echo);
            }
            many => {
                let common = common_prefix(many);
                if common.len() > word.len() {
                    let rest: Vec<char> = common
                        .get(word.len()..)
                        .unwrap_or_default()
                        .chars()
                        .collect();
                    self.insert(&rest, echo);
                } else {
                    echo.push_str("\r\n");
                    echo.push_str(&many.join("  "));
                    echo.push_str("\r\n");
                    self.redraw_prompt_and_line(echo);
                }
            }
        }
    }
}

fn flush(echo: &mut String, actions: &mut Vec<Action>) {
    if !echo.is_empty() {
        actions.push(Action::Echo(std::mem::take(echo)));
    }
}

fn move_left(echo: &mut String, n: usize) {
    if n > 0 {
        echo.push_str(&format!("\x1b[{n}D"));
    }
}

fn move_right(echo: &mut String, n: usize) {
    if n > 0 {
        echo.push_str(&format!("\x1b[{n}C"));
    }
}

fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut end = first.len();
    for w in words {
        end = end.min(
            first
                .char_indices()
                .zip(w.chars())
                .find(|((_, a), b)| a != b)
                .map_or(first.len().min(w.len()), |((i, _), _)| i),
        );
    }
    first.get(..end).unwrap_or_default().to_owned()
}
