//! One console session over the host's SSH session abstraction: exec (one command, then its
//! exit status), a piped shell (lines in, no echo, no prompt) or an interactive terminal
//! (banner, prompt, line editor). Scripts (piped lines) run in `script`.

use std::sync::Arc;

use everlock_host::auth::Principal;
use everlock_host::{HostAdmin, SessionInput, SessionKind, SshSession};

use crate::complete;
use crate::editor::{Action, LineEditor};
use crate::exec::{Console, Failure, Reply};
use crate::prompt::{Prompt, Step};
use crate::script;
use crate::session_io::{audit_prompted, run_line, write_reply};

/// Printed when an interactive session starts.
pub const BANNER: &str = "Everlock Admin\nType /help for the commands, /quit to leave.\n";

/// The interactive prompt.
pub const PROMPT: &str = "> ";

/// Runs one session to completion and returns its exit status.
pub async fn serve(console: Arc<Console>, mut session: SshSession) -> u32 {
    let actor = session.principal.clone();
    match (session.kind.clone(), session.pty.is_some()) {
        (SessionKind::Exec(line), _) => match script::exec_as_script(&line) {
            Some(options) => script::run(&console, &actor, &mut session, options).await,
            None => {
                let reply = run_line(&console, &actor, &session, &line).await;
                let _ = session.output.stdout(reply.stdout).await;
                let _ = session.output.stderr(reply.stderr).await;
                reply.status
            }
        },
        (SessionKind::Shell, false) => {
            script::run(
                &console,
                &actor,
                &mut session,
                script::ScriptOptions::default(),
            )
            .await
        }
        (SessionKind::Shell, true) => {
            let admin = Arc::clone(console.admin());
            interactive(&console, &*admin, &actor, &mut session).await
        }
    }
}

/// Whether `line` carries a password (kept out of history and logs).
pub fn has_secret(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("/users") && matches!(words.next(), Some("add" | "passwd"))
}

/// A terminal session: the user's saved history is loaded first and saved once at the end,
/// however the session ends.
async fn interactive(
    console: &Console,
    host: &dyn HostAdmin,
    actor: &Principal,
    session: &mut SshSession,
) -> u32 {
    let loaded = console.history().load(actor).await;
    let mut editor = LineEditor::new(PROMPT);
    editor.set_history(loaded.clone());
    let status = terminal(console, host, actor, session, &mut editor).await;
    console
        .history()
        .save(actor, &loaded, editor.history())
        .await;
    status
}

/// The state of a terminal session between keys.
struct Terminal<'a> {
    console: &'a Console,
    actor: &'a Principal,
    editor: &'a mut LineEditor,
    asking: Option<Prompt>,
}

async fn terminal(
    console: &Console,
    host: &dyn HostAdmin,
    actor: &Principal,
    session: &mut SshSession,
    editor: &mut LineEditor,
) -> u32 {
    if !session.output.stdout(format!("{BANNER}{PROMPT}")).await {
        return 0;
    }
    let admin = host.auth().is_system_admin(actor);
    let completer = |before: &str| complete::candidates(host, admin, before);
    let mut t = Terminal {
        console,
        actor,
        editor,
        asking: None,
    };
    loop {
        let mut bytes = match session.input.recv().await {
            Some(SessionInput::Data(bytes)) => bytes,
            Some(SessionInput::Resize { .. }) => continue,
            Some(SessionInput::Eof) | None => return 0,
        };
        // The editor stops after each submitted line; the rest of the chunk is read once the
        // line has run (and a password prompt has hidden the input, if it asked for one).
        loop {
            let actions = t.editor.feed(&std::mem::take(&mut bytes), &completer);
            let submitted = actions.iter().any(|a| matches!(a, Action::Submit(_)));
            if let Some(status) = t.act(session, actions).await {
                return status;
            }
            if !submitted || !t.editor.has_pending_input() {
                break;
            }
        }
    }
}

impl Terminal<'_> {
    /// Carries out the editor's actions; `Some(status)` ends the session.
    async fn act(&mut self, session: &SshSession, actions: Vec<Action>) -> Option<u32> {
        for action in actions {
            let text = match action {
                Action::Echo(text) => text,
                Action::Submit(line) => match self.submit(session, line).await {
                    Some(text) => text,
                    None => return Some(0),
                },
                Action::Cancelled => {
                    self.asking = None;
                    self.editor.set_hidden(false);
                    PROMPT.to_owned()
                }
                Action::Exit => {
                    let _ = session.output.stdout("\n").await;
                    return Some(0);
                }
            };
            if !session.output.stdout(text).await {
                return Some(0);
            }
        }
        None
    }

    /// Handles a submitted line: an answer to a password prompt, the start of one, or a
    /// command. Returns what to print next, or `None` to end the session.
    async fn submit(&mut self, session: &SshSession, line: String) -> Option<String> {
        if let Some(prompt) = self.asking.take() {
            return Some(self.answer(session, prompt, line).await);
        }
        if let Some((prompt, question)) = Prompt::for_line(&line) {
            self.editor.remember(&line);
            self.editor.set_hidden(true);
            self.asking = Some(prompt);
            return Some(question);
        }
        if !has_secret(&line) {
            self.editor.remember(&line);
        }
        let reply = run_line(self.console, self.actor, session, &line).await;
        if write_reply(&session.output, &reply, true).await.is_some() || reply.quit {
            return None;
        }
        Some(PROMPT.to_owned())
    }

    /// Takes one hidden answer: asks the next question or runs the command.
    async fn answer(&mut self, session: &SshSession, prompt: Prompt, entry: String) -> String {
        let audit = prompt.audit_form();
        let reply = match prompt.answer(entry) {
            Step::Ask(next, question) => {
                self.asking = Some(next);
                return question;
            }
            Step::Mismatch => Reply::failure(Failure::PasswordMismatch),
            Step::Admin(command) => self.console.run(self.actor, command).await,
            Step::Own {
                current,
                new,
                repeat,
            } => {
                self.console
                    .change_own_password(self.actor, &current, &new, &repeat)
                    .await
            }
        };
        self.editor.set_hidden(false);
        audit_prompted(self.actor, session, &audit, reply.status);
        format!("{}{}{PROMPT}", reply.stdout, reply.stderr)
    }
}

#[cfg(test)]
mod tests;
