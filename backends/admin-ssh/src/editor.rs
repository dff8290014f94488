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

/// A decoded key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Char(char),
    /// `\r`, or `ESC O M` (keypad Enter).
    Cr,
    /// `\n`; right after `\r` it is the second half of the same Enter.
    Lf,
    Backspace,
    Delete,
    Interrupt,
    CtrlD,
    KillLine,
    KillToEnd,
    Home,
    End,
    Left,
    Right,
    Up,
    Down,
    Tab,
    Redraw,
    Yank,
    Ignored,
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

    /// Feeds bytes from the client and returns what to do, in order.
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
        }
        flush(&mut echo, &mut actions);
        actions
    }

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
        match key {
            Key::Char(c) => self.insert(&[c], echo),
            Key::Cr | Key::Lf => {
                echo.push_str("\r\n");
                flush(echo, actions);
                let line = self.line();
                self.reset();
                actions.push(Action::Submit(line));
            }
            Key::Backspace => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.line.remove(self.cursor);
                    if self.cursor == self.line.len() {
                        echo.push_str("\x08 \x08");
                    } else {
                        echo.push('\x08');
                        self.redraw_tail(echo, 1);
                    }
                }
            }
            Key::Delete => self.delete_right(echo),
            Key::CtrlD => {
                if self.line.is_empty() {
                    flush(echo, actions);
                    actions.push(Action::Exit);
                } else {
                    self.delete_right(echo);
                }
            }
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
            Key::Home => {
                move_left(echo, self.cursor);
                self.cursor = 0;
            }
            Key::End => {
                move_right(echo, self.line.len() - self.cursor);
                self.cursor = self.line.len();
            }
            Key::Left => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    move_left(echo, 1);
                }
            }
            Key::Right => {
                if self.cursor < self.line.len() {
                    self.cursor += 1;
                    move_right(echo, 1);
                }
            }
            Key::Up => {
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
            Key::Down => {
                if let Some(i) = self.browsing {
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
            }
            Key::Tab => self.complete(echo, complete),
            Key::Redraw => {
                echo.push_str("\r\n");
                echo.push_str(&self.prompt);
                echo.extend(self.line.iter());
                move_left(echo, self.line.len() - self.cursor);
            }
            Key::Ignored => {}
        }
    }

    /// Keys while reading a secret: characters and Backspace edit silently, Enter submits,
    /// Ctrl-C (or Ctrl-D) abandons; everything else is ignored so nothing leaks on screen.
    fn apply_hidden(&mut self, key: Key, echo: &mut String, actions: &mut Vec<Action>) {
        match key {
            Key::Char(c) if self.line.len() < MAX_LINE => self.line.push(c),
            Key::Backspace => {
                self.line.pop();
            }
            Key::Cr | Key::Lf => {
                echo.push_str("\r\n");
                flush(echo, actions);
                let line = self.line();
                self.reset();
                actions.push(Action::Submit(line));
            }
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
                    echo.push_str(&self.prompt);
                    echo.extend(self.line.iter());
                    move_left(echo, self.line.len() - self.cursor);
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

/// Decodes one key from the start of `bytes`: `Some((key, bytes used))`, or `None` when the
/// bytes are an incomplete sequence (or empty) and more input is needed.
fn decode(bytes: &[u8]) -> Option<(Key, usize)> {
    let first = *bytes.first()?;
    let key = match first {
        0x1b => return decode_escape(bytes),
        b'\r' => Key::Cr,
        b'\n' => Key::Lf,
        0x7f | 0x08 => Key::Backspace,
        0x03 => Key::Interrupt,
        0x04 => Key::CtrlD,
        0x15 => Key::KillLine,
        0x0b => Key::KillToEnd,
        0x01 => Key::Home,
        0x05 => Key::End,
        0x02 => Key::Left,
        0x06 => Key::Right,
        0x10 => Key::Up,
        0x0e => Key::Down,
        0x09 => Key::Tab,
        0x12 => Key::Redraw,
        0x19 => Key::Yank,
        0x00..=0x1f => Key::Ignored,
        0x20..=0x7e => Key::Char(char::from(first)),
        _ => return decode_utf8(bytes),
    };
    Some((key, 1))
}

fn decode_utf8(bytes: &[u8]) -> Option<(Key, usize)> {
    let first = *bytes.first()?;
    let len = match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        // A stray continuation byte or an invalid lead byte: drop it.
        _ => return Some((Key::Ignored, 1)),
    };
    let Some(seq) = bytes.get(..len) else {
        // Wait for the rest, unless what is there already cannot be a continuation.
        let valid_so_far = bytes.iter().skip(1).all(|b| b & 0xc0 == 0x80);
        return (!valid_so_far).then_some((Key::Ignored, 1));
    };
    match std::str::from_utf8(seq).ok().and_then(|s| s.chars().next()) {
        Some(c) if !c.is_control() => Some((Key::Char(c), len)),
        _ => Some((Key::Ignored, 1)),
    }
}

fn decode_escape(bytes: &[u8]) -> Option<(Key, usize)> {
    match bytes.get(1)? {
        b'[' => {
            // CSI: parameter and intermediate bytes, then one final byte 0x40-0x7e.
            let rest = bytes.get(2..)?;
            let end = rest.iter().position(|b| (0x40..=0x7e).contains(b))?;
            let params = rest.get(..end).unwrap_or_default();
            let final_byte = rest.get(end).copied().unwrap_or(0);
            let key = match (params, final_byte) {
                (b"", b'A') => Key::Up,
                (b"", b'B') => Key::Down,
                (b"", b'C') => Key::Right,
                (b"", b'D') => Key::Left,
                (b"", b'H') | (b"1", b'~') | (b"7", b'~') => Key::Home,
                (b"", b'F') | (b"4", b'~') | (b"8", b'~') => Key::End,
                (b"3", b'~') => Key::Delete,
                _ => Key::Ignored,
            };
            Some((key, 2 + end + 1))
        }
        b'O' => {
            let key = match bytes.get(2)? {
                b'A' => Key::Up,
                b'B' => Key::Down,
                b'C' => Key::Right,
                b'D' => Key::Left,
                b'H' => Key::Home,
                b'F' => Key::End,
                b'M' => Key::Cr,
                _ => Key::Ignored,
            };
            Some((key, 3))
        }
        // ESC followed by anything else (Alt-key): ignore the pair.
        _ => Some((Key::Ignored, 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_completion(_: &str) -> Vec<String> {
        Vec::new()
    }

    fn commands(before: &str) -> Vec<String> {
        if before.contains(' ') {
            vec!["list".into(), "add".into(), "assign".into()]
        } else {
            vec!["/users".into(), "/groups".into(), "/help".into()]
        }
    }

    /// Feeds `input` and returns (submitted lines, exit seen, current line, cursor).
    fn run(input: &[u8]) -> (Vec<String>, bool, String, usize) {
        let mut e = LineEditor::new("> ");
        let mut lines = Vec::new();
        let mut exit = false;
        for a in e.feed(input, &no_completion) {
            match a {
                Action::Submit(l) => {
                    e.remember(&l);
                    lines.push(l)
                }
                Action::Exit => exit = true,
                Action::Echo(_) | Action::Cancelled => {}
            }
        }
        (lines, exit, e.line(), e.cursor())
    }

    #[test]
    fn keys_edit_the_line() {
        let cases: &[(&[u8], &[&str], &str, usize)] = &[
            (b"abc\r", &["abc"], "", 0),
            (b"abc\r\n", &["abc"], "", 0),
            (b"abc\n", &["abc"], "", 0),
            (b"a\r\r", &["a", ""], "", 0),
            (b"abc\x7f\x7fd\r", &["ad"], "", 0),
            (b"abc\x08", &[], "ab", 2),
            (b"ac\x1b[Db", &[], "abc", 2),
            (b"ac\x1bODb", &[], "abc", 2),
            (b"abc\x1b[D\x1b[D\x1b[C\x7f", &[], "ac", 1),
            (b"bc\x01a", &[], "abc", 1),
            (b"bc\x1b[Ha\x05d", &[], "abcd", 4),
            (b"bc\x1b[1~a\x1b[4~d", &[], "abcd", 4),
            (b"abc\x01\x1b[3~", &[], "bc", 0),
            (b"abc\x01\x04", &[], "bc", 0),
            (b"hello\x15x", &[], "x", 1),
            (b"hello\x01\x06\x0b", &[], "h", 1),
            (b"hello\x03", &[], "", 0),
            (b"hello\x03ok\r", &["ok"], "", 0),
            (b"ab\x15\x19\x19", &[], "abab", 4),
            (b"a\x1b[99;5zb", &[], "ab", 2),
            (b"a\x1bxb", &[], "ab", 2),
            (b"a\x00\x07b", &[], "ab", 2),
            ("é€😀".as_bytes(), &[], "é€😀", 3),
            (b"a\xff\x80b", &[], "ab", 2),
        ];
        for (input, lines, line, cursor) in cases {
            let (got_lines, exit, got_line, got_cursor) = run(input);
            assert!(!exit, "{input:?}");
            assert_eq!(&got_lines, lines, "{input:?}");
            assert_eq!(&got_line, line, "{input:?}");
            assert_eq!(got_cursor, *cursor, "{input:?}");
        }
    }

    #[test]
    fn ctrl_d_exits_only_on_an_empty_line() {
        assert!(run(b"\x04").1);
        assert!(!run(b"a\x04").1);
        let (lines, exit, _, _) = run(b"x\r\x04");
        assert_eq!(lines, ["x"]);
        assert!(exit);
    }

    #[test]
    fn sequences_split_across_chunks_are_reassembled() {
        let mut e = LineEditor::new("> ");
        let all: &[u8] = "ab\x1b[Dé\r".as_bytes();
        let mut submitted = Vec::new();
        for b in all {
            for a in e.feed(&[*b], &no_completion) {
                if let Action::Submit(l) = a {
                    submitted.push(l);
                }
            }
        }
        assert_eq!(submitted, ["aéb"]);
        // A \r\n pair split across chunks is still one Enter.
        let mut e = LineEditor::new("> ");
        let a = e.feed(b"x\r", &no_completion);
        assert!(a.contains(&Action::Submit("x".into())));
        assert!(
            !e.feed(b"\n", &no_completion)
                .iter()
                .any(|a| matches!(a, Action::Submit(_)))
        );
    }

    #[test]
    fn echo_is_what_a_terminal_needs() {
        let mut e = LineEditor::new("> ");
        assert_eq!(e.feed(b"ab", &no_completion), [Action::Echo("ab".into())]);
        assert_eq!(
            e.feed(b"\x7f", &no_completion),
            [Action::Echo("\x08 \x08".into())]
        );
        assert_eq!(
            e.feed(b"\x1b[D", &no_completion),
            [Action::Echo("\x1b[1D".into())]
        );
        // Inserting in the middle rewrites the tail and moves back.
        assert_eq!(
            e.feed(b"X", &no_completion),
            [Action::Echo("Xa\x1b[1D".into())]
        );
        assert_eq!(
            e.feed(b"\x03", &no_completion),
            [Action::Echo("^C\r\n> ".into())]
        );
        assert_eq!(
            e.feed(b"q\r", &no_completion),
            [Action::Echo("q\r\n".into()), Action::Submit("q".into())]
        );
    }

    #[test]
    fn history_up_and_down() {
        let mut e = LineEditor::new("> ");
        for l in ["/users list", "/groups list", "/groups list", ""] {
            e.remember(l);
        }
        e.feed(b"dra", &no_completion);
        e.feed(b"\x1b[A", &no_completion);
        assert_eq!(e.line(), "/groups list");
        e.feed(b"\x1b[A", &no_completion);
        assert_eq!(e.line(), "/users list");
        e.feed(b"\x1b[A", &no_completion);
        assert_eq!(e.line(), "/users list", "stays at the oldest");
        e.feed(b"\x1b[B", &no_completion);
        assert_eq!(e.line(), "/groups list");
        e.feed(b"\x1b[B", &no_completion);
        assert_eq!(e.line(), "dra", "the draft comes back");
        let actions = e.feed(b"\x10\r", &no_completion);
        assert!(actions.contains(&Action::Submit("/groups list".into())));
    }

    #[test]
    fn tab_completes_unique_and_common_prefixes_and_lists_the_rest() {
        let mut e = LineEditor::new("> ");
        e.feed(b"/u\t", &commands);
        assert_eq!(e.line(), "/users ");
        e.feed(b"l\t", &commands);
        assert_eq!(e.line(), "/users list ");
        let mut e = LineEditor::new("> ");
        let actions = e.feed(b"/users a\t", &commands);
        assert_eq!(e.line(), "/users a");
        let echo: String = actions
            .iter()
            .filter_map(|a| match a {
                Action::Echo(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert!(echo.contains("add  assign\r\n> /users a"), "{echo:?}");
        let mut e = LineEditor::new("> ");
        e.feed(b"/x\t", &commands);
        assert_eq!(e.line(), "/x");
    }

    #[test]
    fn hidden_input_echoes_nothing_and_can_be_cancelled() {
        let mut e = LineEditor::new("> ");
        e.set_hidden(true);
        assert_eq!(
            e.feed(b"s3x\x7fcr\x1b[Dt\r", &no_completion),
            [Action::Echo("\r\n".into()), Action::Submit("s3crt".into())]
        );
        assert_eq!(
            e.feed(b"abc\x03", &no_completion),
            [Action::Echo("^C\r\n".into()), Action::Cancelled]
        );
        e.set_hidden(false);
        assert_eq!(e.feed(b"x", &no_completion), [Action::Echo("x".into())]);
    }

    #[test]
    fn line_length_is_capped() {
        let (_, _, line, _) = run(&[b'a'; MAX_LINE + 10]);
        assert_eq!(line.len(), MAX_LINE);
    }

    #[test]
    fn history_is_capped() {
        let mut e = LineEditor::new("> ");
        for i in 0..MAX_HISTORY + 5 {
            e.remember(&format!("l{i}"));
        }
        assert_eq!(e.history.len(), MAX_HISTORY);
        assert_eq!(e.history.first().unwrap(), "l5");
    }
}
