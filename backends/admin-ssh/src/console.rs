//! One console session over the host's SSH session abstraction: exec (one command, then its
//! exit status), a piped shell (lines in, no echo, no prompt) or an interactive terminal
//! (banner, prompt, line editor).

use std::sync::Arc;

use everlock_host::auth::Principal;
use everlock_host::{Host, SessionInput, SessionKind, SessionOutput, SshSession};

use crate::command::{Command, UsersCmd, tokenize};
use crate::complete;
use crate::editor::{Action, LineEditor};
use crate::exec::{Console, Reply};

/// Printed when an interactive session starts.
pub const BANNER: &str = "Everlock Admin\nType /help for the commands, /quit to leave.\n";

/// The interactive prompt.
pub const PROMPT: &str = "> ";

/// Longest line a piped session may send.
const MAX_PIPED_LINE: usize = 64 * 1024;

/// Runs one session to completion and returns its exit status.
pub async fn serve(console: Arc<Console>, host: Host, mut session: SshSession) -> u32 {
    let actor = session.principal.clone();
    match (session.kind.clone(), session.pty.is_some()) {
        (SessionKind::Exec(line), _) => {
            let reply = run_line(&console, &actor, &session, &line).await;
            let _ = session.output.stdout(reply.stdout).await;
            let _ = session.output.stderr(reply.stderr).await;
            reply.status
        }
        (SessionKind::Shell, false) => piped(&console, &actor, &mut session).await,
        (SessionKind::Shell, true) => interactive(&console, &host, &actor, &mut session).await,
    }
}

/// Executes a line and records it in the audit log: only its parsed, redacted form.
async fn run_line(console: &Console, actor: &Principal, session: &SshSession, line: &str) -> Reply {
    let reply = console.execute(actor, line).await;
    if !line.trim().is_empty() {
        tracing::info!(
            target: "everlock::audit",
            actor = %actor,
            remote = %session.remote,
            command = %crate::audit::audit_form(console.families(), line),
            status = reply.status,
            "console command"
        );
    }
    reply
}

/// A password being asked for on a terminal (`/users add <login>` or `/users passwd <login>`
/// without the password).
#[derive(Debug)]
struct PasswordPrompt {
    add: bool,
    login: String,
    /// The first entry, waiting for the confirmation.
    first: Option<String>,
}

/// `Some` when `line` is `/users add|passwd <login>` without a password: on a terminal the
/// console then asks for it with echo off, so it never shows on screen or in any history.
fn prompt_target(line: &str) -> Option<PasswordPrompt> {
    let words = tokenize(line).ok()?;
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["/users", verb @ ("add" | "passwd"), login] => Some(PasswordPrompt {
            add: *verb == "add",
            login: (*login).to_owned(),
            first: None,
        }),
        _ => None,
    }
}

/// Whether `line` carries a password (kept out of history and logs).
pub fn has_secret(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("/users") && matches!(words.next(), Some("add" | "passwd"))
}

async fn piped(console: &Console, actor: &Principal, session: &mut SshSession) -> u32 {
    let mut buffer: Vec<u8> = Vec::new();
    let mut status = 0;
    loop {
        let eof = match session.input.recv().await {
            Some(SessionInput::Data(bytes)) => {
                buffer.extend_from_slice(&bytes);
                false
            }
            Some(SessionInput::Resize { .. }) => continue,
            Some(SessionInput::Eof) | None => true,
        };
        while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            let reply = run_line(console, actor, session, line).await;
            if let Some(s) = write_reply(&session.output, &reply, false).await {
                return s;
            }
            if reply.quit {
                return status;
            }
            if !line.trim().is_empty() {
                status = reply.status;
            }
        }
        if buffer.len() > MAX_PIPED_LINE {
            buffer.clear();
            let _ = session.output.stderr("line too long\n").await;
            status = 1;
        }
        if eof {
            let rest = String::from_utf8_lossy(&buffer).into_owned();
            let rest = rest.trim_end_matches('\r');
            if !rest.trim().is_empty() {
                let reply = run_line(console, actor, session, rest).await;
                let _ = write_reply(&session.output, &reply, false).await;
                status = reply.status;
            }
            return status;
        }
    }
}

/// Writes a reply; `Some(status)` when the client is gone and the session should end.
async fn write_reply(output: &SessionOutput, reply: &Reply, terminal: bool) -> Option<u32> {
    let ok = output.stdout(reply.stdout.clone()).await
        && if terminal {
            // On a terminal both streams land on the same screen; one stream keeps their
            // order exact.
            output.stdout(reply.stderr.clone()).await
        } else {
            output.stderr(reply.stderr.clone()).await
        };
    (!ok).then_some(reply.status)
}

async fn interactive(
    console: &Console,
    host: &Host,
    actor: &Principal,
    session: &mut SshSession,
) -> u32 {
    let mut editor = LineEditor::new(PROMPT);
    if !session.output.stdout(format!("{BANNER}{PROMPT}")).await {
        return 0;
    }
    let completer = |before: &str| complete::candidates(host, before);
    let mut asking: Option<PasswordPrompt> = None;
    loop {
        let bytes = match session.input.recv().await {
            Some(SessionInput::Data(bytes)) => bytes,
            Some(SessionInput::Resize { .. }) => continue,
            Some(SessionInput::Eof) | None => return 0,
        };
        for action in editor.feed(&bytes, &completer) {
            let text = match action {
                Action::Echo(text) => text,
                Action::Submit(line) => match asking.take() {
                    Some(prompt) => {
                        let (next, text) = answer(console, actor, session, prompt, line).await;
                        if next.is_none() {
                            editor.set_hidden(false);
                        }
                        asking = next;
                        text
                    }
                    None => match prompt_target(&line) {
                        Some(prompt) => {
                            editor.remember(&line);
                            editor.set_hidden(true);
                            let text = format!("password for '{}': ", prompt.login);
                            asking = Some(prompt);
                            text
                        }
                        None => {
                            if !has_secret(&line) {
                                editor.remember(&line);
                            }
                            let reply = run_line(console, actor, session, &line).await;
                            if write_reply(&session.output, &reply, true).await.is_some()
                                || reply.quit
                            {
                                return 0;
                            }
                            PROMPT.to_owned()
                        }
                    },
                },
                Action::Cancelled => {
                    asking = None;
                    editor.set_hidden(false);
                    PROMPT.to_owned()
                }
                Action::Exit => {
                    let _ = session.output.stdout("\n").await;
                    return 0;
                }
            };
            if !session.output.stdout(text).await {
                return 0;
            }
        }
    }
}

/// Handles one hidden entry of a password prompt: returns the prompt still pending (after
/// the first entry) and what to print next.
async fn answer(
    console: &Console,
    actor: &Principal,
    session: &SshSession,
    mut prompt: PasswordPrompt,
    entry: String,
) -> (Option<PasswordPrompt>, String) {
    let Some(first) = prompt.first.take() else {
        prompt.first = Some(entry);
        return (Some(prompt), "repeat: ".to_owned());
    };
    if first != entry {
        return (None, format!("passwords do not match\n{PROMPT}"));
    }
    let (login, password) = (prompt.login, entry);
    let command = Command::Users(if prompt.add {
        UsersCmd::Add { login, password }
    } else {
        UsersCmd::Passwd { login, password }
    });
    let reply = console.run(actor, command).await;
    tracing::info!(
        target: "everlock::audit",
        actor = %actor,
        remote = %session.remote,
        command = if prompt.add { "/users add (prompted)" } else { "/users passwd (prompted)" },
        status = reply.status,
        "console command"
    );
    (None, format!("{}{}{PROMPT}", reply.stdout, reply.stderr))
}

#[cfg(test)]
mod tests {
    use everlock_host::auth::AdminPassword;
    use everlock_host::config::Config;
    use everlock_host::test_util::TestEnv;
    use everlock_host::{Pty, Registry, SessionOutputChunk, SessionPipe};

    use super::*;

    static CONSOLE: everlock_host::BackendFactory = crate::FACTORY;

    async fn setup() -> (TestEnv, Host) {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("pw".to_owned()))
            .await
            .unwrap();
        let host = Host::new(
            Registry::from_factories([&CONSOLE]).unwrap(),
            env.stores.clone(),
            env.auth.clone(),
            everlock_host::auth::SystemAuthority::for_tests(),
            tokio_util::sync::CancellationToken::new(),
        );
        host.start(Config {
            data_dir: env.dir.path().to_owned(),
            ..Config::default()
        })
        .await
        .unwrap();
        (env, host)
    }

    fn start(
        host: &Host,
        kind: SessionKind,
        pty: bool,
    ) -> (tokio::task::JoinHandle<u32>, SessionPipe) {
        let (session, pipe) = SshSession::pipe(
            Principal::test_user("admin"),
            "127.0.0.1:9".parse().unwrap(),
            kind,
            pty.then(|| Pty {
                term: "xterm".to_owned(),
                cols: 80,
                rows: 24,
            }),
        );
        let console = Arc::new(Console::new(host.clone()));
        (tokio::spawn(serve(console, host.clone(), session)), pipe)
    }

    /// Waits for the session to end; returns (status, stdout, stderr).
    async fn finish(
        task: tokio::task::JoinHandle<u32>,
        mut pipe: SessionPipe,
    ) -> (u32, String, String) {
        let status = task.await.unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        while let Ok(chunk) = pipe.output.try_recv() {
            match chunk {
                SessionOutputChunk::Stdout(s) => out.push_str(&s),
                SessionOutputChunk::Stderr(s) => err.push_str(&s),
            }
        }
        (status, out, err)
    }

    #[tokio::test]
    async fn exec_runs_one_command_with_its_status() {
        let (_env, host) = setup().await;
        let (task, pipe) = start(&host, SessionKind::Exec("/users list".into()), false);
        assert_eq!(
            finish(task, pipe).await,
            (0, "admin  admin\nanon\n".into(), String::new())
        );
        let (task, pipe) = start(&host, SessionKind::Exec("/users add bob".into()), false);
        let (status, out, err) = finish(task, pipe).await;
        assert_eq!((status, out.as_str()), (1, ""));
        assert!(
            err.starts_with("missing <password>\nusage: /users add"),
            "{err}"
        );
        let (task, pipe) = start(&host, SessionKind::Exec("/groups add 'a b'".into()), false);
        let (status, _, err) = finish(task, pipe).await;
        assert_eq!(status, 1);
        assert!(err.starts_with("invalid group name `a b`"), "{err}");
    }

    #[tokio::test]
    async fn piped_shell_runs_each_line_without_echo_or_prompt() {
        let (_env, host) = setup().await;
        let (task, pipe) = start(&host, SessionKind::Shell, false);
        pipe.input
            .send(SessionInput::Data(
                b"/groups add ops\r\n/groups li".to_vec(),
            ))
            .unwrap();
        pipe.input
            .send(SessionInput::Data(b"st\n\n/nope\n/groups list".to_vec()))
            .unwrap();
        pipe.input.send(SessionInput::Eof).unwrap();
        let (status, out, err) = finish(task, pipe).await;
        assert_eq!(
            out,
            "created group 'ops'\nops  members: -  grants: -\nops  members: -  grants: -\n"
        );
        assert!(err.starts_with("unknown command `/nope`\n"), "{err}");
        assert_eq!(status, 0, "the last line succeeded");

        let (task, pipe) = start(&host, SessionKind::Shell, false);
        pipe.input
            .send(SessionInput::Data(b"/users list\n/frob\n".to_vec()))
            .unwrap();
        pipe.input.send(SessionInput::Eof).unwrap();
        assert_eq!(finish(task, pipe).await.0, 1, "the last line failed");

        let (task, pipe) = start(&host, SessionKind::Shell, false);
        pipe.input
            .send(SessionInput::Data(b"/quit\n/groups add never\n".to_vec()))
            .unwrap();
        assert_eq!(finish(task, pipe).await.0, 0);
        assert!(
            host.auth()
                .list_groups(&Principal::test_user("admin"))
                .unwrap()
                .iter()
                .all(|g| g.name != "never")
        );
    }

    #[tokio::test]
    async fn terminal_session_shows_banner_prompt_echo_and_history() {
        let (_env, host) = setup().await;
        let (task, pipe) = start(&host, SessionKind::Shell, true);
        for keys in [
            &b"/groups add tx"[..],
            b"\x7f\x7fops\r",
            b"/users passwd admin secret-pw\r",
            b"\x1b[A",
            b"\x03",
            b"/gro\t",
            b"list\r",
            b"\x04",
        ] {
            pipe.input.send(SessionInput::Data(keys.to_vec())).unwrap();
        }
        let (status, out, err) = finish(task, pipe).await;
        assert_eq!(status, 0);
        assert!(err.is_empty(), "{err}");
        assert!(out.starts_with("Everlock Admin\n"), "{out}");
        assert!(
            out.contains("> /groups add tx\x08 \x08\x08 \x08ops\r\ncreated group 'ops'\n> "),
            "{out:?}"
        );
        // The password line is not in the history: Up recalls the line before it.
        assert!(
            out.contains("password updated for 'admin'\n> /groups add ops\x1b[K^C\r\n> "),
            "{out:?}"
        );
        assert!(
            out.ends_with("> /groups list\r\nops  members: -  grants: -\n> \n"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn terminal_asks_for_passwords_without_echo() {
        let (_env, host) = setup().await;
        let (task, pipe) = start(&host, SessionKind::Shell, true);
        for keys in [
            &b"/users add carol\r"[..],
            b"hunter2\r",
            b"hunter2\r",
            b"/users passwd carol\r",
            b"one\r",
            b"two\r",
            b"/users passwd carol\r",
            b"abc\x03",
            b"\x1b[A\x15\x04",
        ] {
            pipe.input.send(SessionInput::Data(keys.to_vec())).unwrap();
        }
        let (status, out, _) = finish(task, pipe).await;
        assert_eq!(status, 0);
        assert!(
            !out.contains("hunter2") && !out.contains("one") && !out.contains("abc"),
            "{out:?}"
        );
        assert!(
            out.contains("> /users add carol\r\npassword for 'carol': \r\nrepeat: \r\nuser 'carol' created\n> "),
            "{out:?}"
        );
        assert!(
            out.contains("repeat: \r\npasswords do not match\n> "),
            "{out:?}"
        );
        assert!(out.contains("password for 'carol': ^C\r\n> "), "{out:?}");
        let ip = "127.0.0.1".parse().unwrap();
        assert!(
            host.auth()
                .verify_password("carol", "hunter2", ip)
                .await
                .is_ok()
        );
    }

    #[test]
    fn secret_lines_stay_out_of_the_history() {
        assert!(has_secret("/users add bob s3cret"));
        assert!(has_secret("/users passwd bob 'a b'"));
        assert!(!has_secret("/groups add x"));
    }
}
