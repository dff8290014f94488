//! Sessions end to end without SSH: exec, scripts, terminals, prompts and history.

use everlock_host::auth::AdminPassword;
use everlock_host::config::Config;
use everlock_host::test_util::TestEnv;
use everlock_host::{Host, Pty, Registry, SessionOutputChunk, SessionPipe};

use super::*;

static CONSOLE: everlock_host::BackendFactory = crate::FACTORY;

async fn setup() -> (TestEnv, Host) {
    let env = TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("pw".to_owned()))
        .await
        .unwrap();
    let mut host = Host::new(
        Registry::from_factories([&CONSOLE]).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_host::auth::SystemAuthority::for_tests(),
        tokio_util::sync::CancellationToken::new(),
    );
    host.grant_administration(crate::KIND).unwrap();
    host.start(Config {
        data_dir: env.dir.path().to_owned(),
        ..Config::default()
    })
    .await
    .unwrap();
    (env, host)
}

fn start(host: &Host, kind: SessionKind, pty: bool) -> (tokio::task::JoinHandle<u32>, SessionPipe) {
    start_as(
        Arc::new(Console::new(host.test_administration())),
        "admin",
        kind,
        pty,
    )
}

fn start_as(
    console: Arc<Console>,
    login: &str,
    kind: SessionKind,
    pty: bool,
) -> (tokio::task::JoinHandle<u32>, SessionPipe) {
    let (session, pipe) = SshSession::pipe(
        Principal::test_user(login),
        "127.0.0.1:9".parse().unwrap(),
        kind,
        pty.then(|| Pty {
            term: "xterm".to_owned(),
            cols: 80,
            rows: 24,
        }),
    );
    (tokio::spawn(serve(console, session)), pipe)
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
        (
            0,
            "LOGIN  ADMIN  GROUPS  KEYS\nadmin  yes    -       0\nanon   -      -       0\n".into(),
            String::new()
        )
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
async fn piped_shell_stops_at_the_first_failure_unless_keep_going() {
    let (_env, host) = setup().await;
    let script: [&[u8]; 2] = [
        b"/groups add ops\r\n/groups li",
        b"st\n\n/nope\n/groups add later",
    ];
    let (task, pipe) = start(&host, SessionKind::Shell, false);
    for chunk in script {
        pipe.input.send(SessionInput::Data(chunk.to_vec())).unwrap();
    }
    pipe.input.send(SessionInput::Eof).unwrap();
    let (status, out, err) = finish(task, pipe).await;
    assert_eq!(out, "created group 'ops'\nops  members: -  grants: -\n");
    assert!(err.starts_with("unknown command `/nope`\n"), "{err}");
    assert_eq!(status, 1, "the script stopped at the failing line");
    let names = |host: &Host| -> Vec<String> {
        host.auth()
            .list_groups(&Principal::test_user("admin"))
            .unwrap()
            .into_iter()
            .map(|g| g.name)
            .collect()
    };
    assert_eq!(names(&host), ["ops"], "nothing after the failure ran");

    // `ssh host -- --keep-going`: every line runs, the last status is the exit code.
    let (task, pipe) = start(&host, SessionKind::Exec("--keep-going".into()), false);
    for chunk in script {
        pipe.input.send(SessionInput::Data(chunk.to_vec())).unwrap();
    }
    pipe.input.send(SessionInput::Eof).unwrap();
    let (status, _, err) = finish(task, pipe).await;
    assert!(err.contains("group 'ops' already exists"), "{err}");
    assert_eq!(status, 0, "the last line succeeded");
    assert_eq!(names(&host), ["later", "ops"]);

    let (task, pipe) = start(&host, SessionKind::Shell, false);
    pipe.input
        .send(SessionInput::Data(b"/quit\n/groups add never\n".to_vec()))
        .unwrap();
    assert_eq!(finish(task, pipe).await.0, 0);
    assert!(!names(&host).contains(&"never".to_owned()));
}

/// `/passwd` without a terminal reads the current and new password (twice) from the
/// next lines; a script continues after it.
#[tokio::test]
async fn piped_passwd_reads_its_answers_from_the_next_lines() {
    let (_env, host) = setup().await;
    let (task, pipe) = start(&host, SessionKind::Exec("/passwd".into()), false);
    pipe.input
        .send(SessionInput::Data(b"pw\nshort\nshort\n".to_vec()))
        .unwrap();
    pipe.input.send(SessionInput::Eof).unwrap();
    let (status, _, err) = finish(task, pipe).await;
    assert_eq!(
        (status, err.as_str()),
        (1, "password too short: use at least 8 characters\n")
    );
    let (task, pipe) = start(&host, SessionKind::Shell, false);
    pipe.input
        .send(SessionInput::Data(
            b"/passwd\npw\nnew-admin-pw\nnew-admin-pw\n/groups list\n".to_vec(),
        ))
        .unwrap();
    pipe.input.send(SessionInput::Eof).unwrap();
    let (status, out, err) = finish(task, pipe).await;
    assert_eq!((status, err.as_str()), (0, ""));
    assert_eq!(out, "password updated for 'admin'\nno groups\n");
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        host.auth()
            .verify_password("admin", "new-admin-pw", ip)
            .await
            .is_ok()
    );
    let (task, pipe) = start(&host, SessionKind::Exec("/passwd".into()), false);
    pipe.input
        .send(SessionInput::Data(b"only-one\n".to_vec()))
        .unwrap();
    pipe.input.send(SessionInput::Eof).unwrap();
    let (status, _, err) = finish(task, pipe).await;
    assert_eq!(status, 1);
    assert!(
        err.starts_with("/passwd without a terminal reads three lines"),
        "{err}"
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
        b"hunter2-long\r",
        b"hunter2-long\r",
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
        out.contains(
            "> /users add carol\r\npassword for 'carol': \r\nrepeat: \r\nuser 'carol' created\n> "
        ),
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
            .verify_password("carol", "hunter2-long", ip)
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

/// A terminal session typed key by key: the keys, then the session's output.
async fn type_keys(console: &Arc<Console>, login: &str, keys: &[&[u8]]) -> String {
    let (task, pipe) = start_as(Arc::clone(console), login, SessionKind::Shell, true);
    for k in keys {
        pipe.input.send(SessionInput::Data(k.to_vec())).unwrap();
    }
    let (status, out, _) = finish(task, pipe).await;
    assert_eq!(status, 0);
    out
}

/// `/passwd` on a terminal asks for the current password and the new one twice, never
/// echoing them; a user without administrator rights may run it.
#[tokio::test]
async fn terminal_passwd_changes_the_users_own_password() {
    let (_env, host) = setup().await;
    let admin = Principal::test_user("admin");
    host.auth()
        .add_user(&admin, "alice", "alice-old-pw")
        .await
        .unwrap();
    let console = Arc::new(Console::new(host.test_administration()));
    let out = type_keys(
        &console,
        "alice",
        &[
            b"/passwd\r",
            b"alice-old-pw\r",
            b"short\r",
            b"short\r",
            b"/passwd\r",
            b"alice-old-pw\r",
            b"alice-new-pw\r",
            b"alice-new-pw\r",
            b"\x04",
        ],
    )
    .await;
    assert!(
        !out.contains("alice-old-pw") && !out.contains("short\r"),
        "{out:?}"
    );
    assert!(
        out.contains("> /passwd\r\ncurrent password: \r\nnew password: \r\nrepeat new password: \r\npassword too short: use at least 8 characters\n> "),
        "{out:?}"
    );
    assert!(out.contains("password updated for 'alice'\n> "), "{out:?}");
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        host.auth()
            .verify_password("alice", "alice-new-pw", ip)
            .await
            .is_ok()
    );
}

/// History is kept per user in the console's store: a new session recalls the last one's
/// lines with Up and Ctrl-R, another user's history stays theirs, and secrets never enter.
#[tokio::test]
async fn history_persists_per_user_across_sessions() {
    let (env, host) = setup().await;
    host.auth()
        .add_user(&Principal::test_user("admin"), "bob", "bob-password")
        .await
        .unwrap();
    let store =
        everlock_host::InstanceStore::new(env.stores.clone(), "admin-ssh-console".parse().unwrap());
    let console = Arc::new(
        Console::new(host.test_administration())
            .with_history(crate::history::HistoryStore::new(store.clone())),
    );
    type_keys(
        &console,
        "admin",
        &[
            b"/groups add ops\r",
            b"/users passwd bob secret-password\r",
            b"/help keys\r",
            b"\x04",
        ],
    )
    .await;
    let saved = store
        .get()
        .await
        .unwrap()
        .read("history/admin")
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(saved).unwrap(),
        "/groups add ops\n/help keys\n"
    );
    let out = type_keys(
        &console,
        "admin",
        &[b"\x1b[A\x1b[A", b"\x03\x12add\r", b"\x04"],
    )
    .await;
    assert!(
        out.contains("> /groups add ops"),
        "Up twice recalls the older line: {out:?}"
    );
    assert!(
        out.contains("(reverse-i-search)'add': /groups add ops\r\x1b[K> /groups add ops\r\ngroup 'ops' already exists"),
        "{out:?}"
    );
    // Bob starts with an empty history: Up rings nothing up.
    let out = type_keys(&console, "bob", &[b"\x1b[A\r", b"\x04"]).await;
    assert!(!out.contains("/groups add ops"), "{out:?}");
}

/// Pasted (or `ssh -tt` piped) input arrives in one chunk: the answers to a password prompt
/// in it are still read hidden, never echoed or remembered.
#[tokio::test]
async fn one_chunk_with_prompt_answers_echoes_no_password() {
    let (_env, host) = setup().await;
    let console = Arc::new(Console::new(host.test_administration()));
    let out = type_keys(
        &console,
        "admin",
        &[b"/users add carol\rcarol-s3cret\rcarol-s3cret\r/groups list\r\x04"],
    )
    .await;
    assert!(!out.contains("carol-s3cret"), "{out:?}");
    assert!(
        out.contains("user 'carol' created\n> /groups list\r\nno groups\n> "),
        "{out:?}"
    );
}
