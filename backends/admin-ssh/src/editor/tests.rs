//! Table tests of the editor: keys, chunking, echo, history, completion, hidden input, caps.

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
    let mut input = input.to_vec();
    loop {
        let mut submitted = false;
        for a in e.feed(&std::mem::take(&mut input), &no_completion) {
            match a {
                Action::Submit(l) => {
                    submitted = true;
                    e.remember(&l);
                    lines.push(l)
                }
                Action::Exit => exit = true,
                Action::Echo(_) | Action::Cancelled => {}
            }
        }
        if !submitted || !e.has_pending_input() {
            break;
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

#[test]
fn ctrl_r_searches_the_history_backwards() {
    let mut e = LineEditor::new("> ");
    e.set_history(vec![
        "/users grants ann".into(),
        "/groups list".into(),
        "/users grants bob".into(),
    ]);
    // Typing narrows to the newest match and shows it.
    let echo = e.feed(b"draft\x12gran", &no_completion);
    assert_eq!(
        echo.last(),
        Some(&Action::Echo(
            "draft\r\x1b[K(reverse-i-search)'': \r\x1b[K(reverse-i-search)'g': /users grants bob\
             \r\x1b[K(reverse-i-search)'gr': /users grants bob\
             \r\x1b[K(reverse-i-search)'gra': /users grants bob\
             \r\x1b[K(reverse-i-search)'gran': /users grants bob"
                .into()
        ))
    );
    // Ctrl-R again: the next older match; Enter runs it.
    let actions = e.feed(b"\x12\r", &no_completion);
    assert_eq!(
        actions.last(),
        Some(&Action::Submit("/users grants ann".into()))
    );
    // Ctrl-G gives the line typed before the search back; a failed search says so.
    let actions = e.feed(b"mine\x12zzz\x07", &no_completion);
    let echo: String = actions
        .iter()
        .filter_map(|a| match a {
            Action::Echo(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        echo.contains("(failed reverse-i-search)'zzz': "),
        "{echo:?}"
    );
    assert!(echo.ends_with("\r\x1b[K> mine"), "{echo:?}");
    assert_eq!(e.line(), "mine");
    // Another key keeps the match on the line and then acts: Right arrow, then edit.
    let mut e = LineEditor::new("> ");
    e.set_history(vec!["/groups list".into()]);
    e.feed(b"\x12list\x1b[D\x7f", &no_completion);
    assert_eq!(e.line(), "/groups lit");
    // Ctrl-L redraws (it used to be Ctrl-R).
    let actions = e.feed(b"\x0c", &no_completion);
    assert_eq!(actions, [Action::Echo("\r\n> /groups lit\x1b[1D".into())]);
}

#[test]
fn saved_history_is_bounded() {
    let mut e = LineEditor::new("> ");
    e.set_history((0..MAX_HISTORY + 3).map(|i| i.to_string()).collect());
    assert_eq!(e.history().len(), MAX_HISTORY);
    assert_eq!(e.history().first().map(String::as_str), Some("3"));
}

/// A chunk holding a line and more stops at the line: the rest waits until the console has
/// acted on it (a password prompt hides what follows).
#[test]
fn feeding_stops_after_a_submitted_line() {
    let mut e = LineEditor::new("> ");
    let actions = e.feed(b"/passwd\rs3cret\r", &no_completion);
    assert_eq!(
        actions,
        [
            Action::Echo("/passwd\r\n".into()),
            Action::Submit("/passwd".into())
        ]
    );
    assert!(e.has_pending_input());
    e.set_hidden(true);
    assert_eq!(
        e.feed(b"", &no_completion),
        [Action::Echo("\r\n".into()), Action::Submit("s3cret".into())]
    );
    assert!(!e.has_pending_input());
}
