//! In-process tests of the SSH frontend with the russh client: a test SSH kind that echoes
//! what it receives, so only the frontend is under test (authentication, throttling shared
//! with HTTP, exec status ordering, idle timeout, shutdown).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use everlock_auth::{AdminPassword, Principal};
use russh::ChannelMsg;
use russh::client;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::api::{
    Backend, BackendContext, BackendFactory, BuildError, Frontend, SessionFuture, SessionInput,
    SessionKind, SshService, SshSession,
};
use crate::config::Config;
use crate::registry::Registry;
use crate::test_util::TestEnv;

struct Echo;

impl Backend for Echo {
    fn service(&self) -> crate::api::Service {
        crate::api::Service::Ssh(Arc::new(Echo))
    }
}

impl SshService for Echo {
    fn run(&self, mut session: SshSession) -> SessionFuture {
        Box::pin(async move {
            match session.kind.clone() {
                SessionKind::Exec(cmd) if cmd == "stall" => {
                    // Reads nothing for a while, then reports what was queued meanwhile.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let mut queued = 0;
                    while let Some(input) = session.input.recv().await {
                        if let SessionInput::Data(d) = input {
                            queued += d.len();
                        }
                    }
                    session.output.stdout(format!("queued {queued}\n")).await;
                    0
                }
                SessionKind::Exec(cmd) => {
                    session
                        .output
                        .stdout(format!("{cmd} by {}\n", session.principal))
                        .await;
                    session.output.stderr("to stderr\n").await;
                    3
                }
                SessionKind::Shell => {
                    let pty = session.pty.is_some();
                    while let Some(input) = session.input.recv().await {
                        match input {
                            SessionInput::Data(d) => {
                                let text = String::from_utf8_lossy(&d).into_owned();
                                session.output.stdout(format!("[{text}] pty={pty}\n")).await;
                            }
                            SessionInput::Eof => break,
                            SessionInput::Resize { .. } => {}
                        }
                    }
                    0
                }
            }
        })
    }
}

fn check(_: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
    Ok(Vec::new())
}
fn build(_: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
    Ok(Box::new(Echo))
}
fn default_instances() -> Vec<crate::api::DefaultInstance> {
    vec![crate::api::DefaultInstance {
        name: "echo",
        vhosts: &[],
        prefix: "/",
        store: "echo-ssh-echo",
        public: false,
        seed: &[],
    }]
}
static ECHO: BackendFactory = BackendFactory {
    kind: "echo-ssh",
    frontend: Frontend::Ssh,
    summary: "test",
    check,
    build,
    default_instances,
    example_settings: "",
    access_root: None,
    console: None,
};

pub(super) struct Client;
impl client::Handler for Client {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub(super) struct Running {
    pub(super) addr: SocketAddr,
    pub(super) env: TestEnv,
    pub(super) shutdown: CancellationToken,
    pub(super) task: tokio::task::JoinHandle<()>,
}

async fn start(idle: Option<Duration>) -> Running {
    start_with(|s| s.idle_timeout = idle).await
}

/// Starts the frontend with the test defaults changed by `tweak`.
pub(super) async fn start_with(tweak: impl FnOnce(&mut SshSettings)) -> Running {
    let env = TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("pw".to_owned()))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let host = Host::new(
        Registry::from_factories([&ECHO]).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_auth::SystemAuthority::for_tests(),
        shutdown.clone(),
    );
    host.start(Config {
        data_dir: env.dir.path().to_owned(),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut settings = SshSettings {
        host_key: hostkey::load_or_create(env.dir.path()).unwrap(),
        idle_timeout: None,
        auth_rejection_time: Duration::from_millis(5),
        login_grace: Duration::from_secs(30),
        max_unauthenticated: 64,
        max_unauthenticated_per_address: 10,
    };
    tweak(&mut settings);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(run(listener, settings, host, shutdown.clone()));
    Running {
        addr,
        env,
        shutdown,
        task,
    }
}

pub(super) async fn connect(addr: SocketAddr) -> client::Handle<Client> {
    client::connect(Arc::new(client::Config::default()), addr, Client)
        .await
        .unwrap()
}

pub(super) async fn password(
    addr: SocketAddr,
    user: &str,
    pw: &str,
) -> (client::Handle<Client>, bool) {
    let mut h = connect(addr).await;
    let ok = h.authenticate_password(user, pw).await.unwrap().success();
    (h, ok)
}

/// Collects an exec's messages in order until the channel closes.
pub(super) async fn exec(h: &client::Handle<Client>, cmd: &str) -> Vec<String> {
    let mut ch = h.channel_open_session().await.unwrap();
    ch.exec(true, cmd).await.unwrap();
    let mut events = Vec::new();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), ch.wait())
        .await
        .unwrap()
    {
        events.push(match msg {
            ChannelMsg::Data { data } => format!("out:{}", String::from_utf8_lossy(&data)),
            ChannelMsg::ExtendedData { data, ext } => {
                format!("err{ext}:{}", String::from_utf8_lossy(&data))
            }
            ChannelMsg::ExitStatus { exit_status } => format!("status:{exit_status}"),
            ChannelMsg::Eof => "eof".to_owned(),
            ChannelMsg::Close => "close".to_owned(),
            ChannelMsg::Success => continue,
            other => format!("{other:?}"),
        });
    }
    events
}

#[tokio::test]
async fn exec_sends_output_then_status_then_eof_then_close() {
    let r = start(None).await;
    let (h, ok) = password(r.addr, "admin", "pw").await;
    assert!(ok);
    let events = exec(&h, "hello world").await;
    assert_eq!(
        events,
        [
            "out:hello world by admin\n",
            "err1:to stderr\n",
            "status:3",
            "eof",
            "close"
        ]
    );
    // Several channels one after the other on one connection.
    for _ in 0..6 {
        assert!(exec(&h, "again").await.contains(&"status:3".to_owned()));
    }
    r.shutdown.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn shell_input_reaches_the_service_and_pty_output_gets_crlf() {
    let r = start(None).await;
    let (h, _) = password(r.addr, "admin", "pw").await;
    let mut ch = h.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm", 0, 0, 0, 0, &[])
        .await
        .unwrap();
    ch.request_shell(true).await.unwrap();
    ch.data_bytes(&b"abc"[..]).await.unwrap();
    ch.eof().await.unwrap();
    let mut out = String::new();
    let mut status = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), ch.wait())
        .await
        .unwrap()
    {
        match msg {
            ChannelMsg::Data { data } => out.push_str(&String::from_utf8_lossy(&data)),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    assert_eq!(out, "[abc] pty=true\r\n");
    assert_eq!(status, Some(0));
    r.shutdown.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn failed_logins_are_throttled_like_http_and_keys_need_registration() {
    let r = start(None).await;
    let ip = "127.0.0.1".parse().unwrap();
    // The default policy allows five free failures; the sixth starts a lockout.
    for _ in 0..6 {
        assert!(!password(r.addr, "admin", "wrong").await.1);
    }
    // The throttle is the shared one: HTTP Basic is locked out too, and so is the right
    // password over SSH.
    assert!(r.env.auth.throttled("admin", ip).is_some());
    assert!(!password(r.addr, "admin", "pw").await.1);

    // Keys: only a registered key, for its owner, after the signature is verified.
    let admin = Principal::test_user("admin");
    r.env.auth.add_user(&admin, "bob", "bob-pw").await.unwrap();
    let key = PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&[9; 32])),
        "bob",
    )
    .unwrap();
    let line = key.public_key().to_openssh().unwrap();
    let with_key = |user: &'static str, key: PrivateKey| async move {
        let mut h = connect(r.addr).await;
        h.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
            .await
            .unwrap()
            .success()
    };
    assert!(
        !with_key("bob", key.clone()).await,
        "unregistered key accepted"
    );
    r.env.auth.add_key(&admin, "bob", &line).await.unwrap();
    assert!(with_key("bob", key.clone()).await);
    assert!(!with_key("anon", key.clone()).await);
    let other = PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&[10; 32])),
        "x",
    )
    .unwrap();
    assert!(!with_key("bob", other).await);
    r.shutdown.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn idle_connections_are_dropped_and_shutdown_disconnects_everyone() {
    let r = start(Some(Duration::from_millis(300))).await;
    let (idle, ok) = password(r.addr, "admin", "pw").await;
    assert!(ok);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(idle.is_closed(), "idle connection still open");

    let r = start(None).await;
    let (h, _) = password(r.addr, "admin", "pw").await;
    let mut ch = h.channel_open_session().await.unwrap();
    ch.request_shell(true).await.unwrap();
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), r.task)
        .await
        .expect("the SSH listener did not stop")
        .unwrap();
    // The client sees the connection end.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while ch.wait().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "client still connected after shutdown");
}
