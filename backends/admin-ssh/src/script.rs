//! Scripts: a session without a terminal reads lines (no echo, no prompt) and runs them in
//! order. Like `sh -e`, it stops at the first failing command and exits 1, so a script never
//! carries on from a state it did not expect; `ssh host -- --keep-going` runs every line and
//! exits with the status of the last one (the old behaviour).
//!
//! `/passwd` in a script (or `ssh host /passwd`) reads its three answers from the next lines:
//! the current password, the new one and the new one again.

use everlock_host::auth::Principal;
use everlock_host::{SessionInput, SshSession};

use crate::command::tokenize;
use crate::exec::{Console, Failure, Reply};
use crate::session_io::{audit_prompted, run_line, write_reply};

/// Longest line a piped session may send.
const MAX_PIPED_LINE: usize = 64 * 1024;

/// The exec argument that asks for the old run-everything behaviour.
pub const KEEP_GOING: &str = "--keep-going";

/// How a script runs.
#[derive(Debug, Clone, Default)]
pub struct ScriptOptions {
    /// Run every line whatever fails; exit with the last line's status.
    pub keep_going: bool,
    /// A line to run before reading any input (`ssh host /passwd` reads its answers).
    pub first: Option<String>,
}

/// What an exec request asks for: `Some` when it is a script (`--keep-going`, or `/passwd`,
/// which reads its answers from stdin) rather than one command.
pub fn exec_as_script(line: &str) -> Option<ScriptOptions> {
    let words = tokenize(line).ok()?;
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [KEEP_GOING] => Some(ScriptOptions {
            keep_going: true,
            first: None,
        }),
        ["/passwd"] => Some(ScriptOptions {
            keep_going: false,
            first: Some(line.to_owned()),
        }),
        _ => None,
    }
}

/// Splits the session's input into lines, across arbitrary chunks.
struct Lines {
    buffer: Vec<u8>,
    eof: bool,
}

/// One line of input, or a line over the limit (dropped).
enum Line {
    Text(String),
    TooLong,
}

impl Lines {
    /// The next line; the last one may lack its newline. `None` at the end of input.
    async fn next(&mut self, session: &mut SshSession) -> Option<Line> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line);
                return Some(Line::Text(line.trim_end_matches(['\n', '\r']).to_owned()));
            }
            if self.buffer.len() > MAX_PIPED_LINE {
                self.buffer.clear();
                return Some(Line::TooLong);
            }
            if self.eof {
                if self.buffer.is_empty() {
                    return None;
                }
                let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned();
                return Some(Line::Text(rest.trim_end_matches('\r').to_owned()));
            }
            match session.input.recv().await {
                Some(SessionInput::Data(bytes)) => self.buffer.extend_from_slice(&bytes),
                Some(SessionInput::Resize { .. }) => {}
                Some(SessionInput::Eof) | None => self.eof = true,
            }
        }
    }

    /// The next line as an answer to a prompt; `None` when the input ended.
    async fn answer(&mut self, session: &mut SshSession) -> Option<String> {
        match self.next(session).await? {
            Line::Text(text) => Some(text),
            Line::TooLong => Some(String::new()),
        }
    }
}

/// Runs a script to its end (or its first failure) and returns the exit status.
pub async fn run(
    console: &Console,
    actor: &Principal,
    session: &mut SshSession,
    mut options: ScriptOptions,
) -> u32 {
    let mut lines = Lines {
        buffer: Vec::new(),
        eof: false,
    };
    let mut status = 0;
    loop {
        let line = match options.first.take() {
            Some(line) => line,
            None => match lines.next(session).await {
                Some(Line::Text(line)) => line,
                Some(Line::TooLong) => {
                    let reply = Reply::failure(Failure::LineTooLong);
                    if write_reply(&session.output, &reply, false).await.is_some()
                        || !options.keep_going
                    {
                        return 1;
                    }
                    status = 1;
                    continue;
                }
                None => return status,
            },
        };
        let reply = if is_passwd(&line) {
            passwd(console, actor, session, &mut lines).await
        } else {
            run_line(console, actor, session, &line).await
        };
        if let Some(s) = write_reply(&session.output, &reply, false).await {
            return s;
        }
        if reply.quit {
            return status;
        }
        if !line.trim().is_empty() {
            status = reply.status;
            if status != 0 && !options.keep_going {
                return status;
            }
        }
    }
}

/// Whether the line is `/passwd` alone (with arguments it is a usage error, run as usual).
fn is_passwd(line: &str) -> bool {
    tokenize(line).is_ok_and(|w| w == ["/passwd"])
}

/// `/passwd` in a script: the next three lines are the current, new and repeated password.
async fn passwd(
    console: &Console,
    actor: &Principal,
    session: &mut SshSession,
    lines: &mut Lines,
) -> Reply {
    let mut answers = Vec::new();
    for _ in 0..3 {
        match lines.answer(session).await {
            Some(a) => answers.push(a),
            None => break,
        }
    }
    let reply = match answers.as_slice() {
        [current, new, repeat] => {
            console
                .change_own_password(actor, current, new, repeat)
                .await
        }
        _ => Reply::failure(Failure::PasswdInputEnded),
    };
    audit_prompted(actor, session, "/passwd", reply.status);
    reply
}
