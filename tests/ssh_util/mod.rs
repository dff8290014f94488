//! A small russh client for the SSH end-to-end tests: password or key login, exec with exit
//! status, and an interactive PTY session whose output can be read as a screen.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Disconnect};

/// Accepts any host key and remembers it.
pub struct Client {
    pub host_key: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key {
            *self.host_key.lock().unwrap() = Some(key.clone());
        }
        Ok(true)
    }
}

/// A deterministic Ed25519 key for tests.
pub fn test_key(seed: u8) -> PrivateKey {
    PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&[seed; 32])),
        "test@everlock",
    )
    .unwrap()
}

/// A connected, not yet authenticated session.
pub struct Conn {
    pub handle: Handle<Client>,
    pub host_key: Arc<Mutex<Option<PublicKey>>>,
}

pub async fn connect(addr: SocketAddr) -> Conn {
    let host_key = Arc::new(Mutex::new(None));
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..client::Config::default()
    });
    let handle = client::connect(
        config,
        addr,
        Client {
            host_key: Arc::clone(&host_key),
        },
    )
    .await
    .unwrap();
    Conn { handle, host_key }
}

/// Connects and logs in with a password; panics if refused.
pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Conn {
    let mut conn = connect(addr).await;
    let result = conn
        .handle
        .authenticate_password(user, password)
        .await
        .unwrap();
    assert!(result.success(), "password login as {user} refused");
    conn
}

/// Connects and tries a key; returns whether the server accepted it.
pub async fn login_key(addr: SocketAddr, user: &str, key: &PrivateKey) -> (Conn, bool) {
    let mut conn = connect(addr).await;
    let result = conn
        .handle
        .authenticate_publickey(
            user,
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        )
        .await
        .unwrap();
    let ok = result.success();
    (conn, ok)
}

/// What an exec request produced.
#[derive(Debug)]
pub struct Output {
    pub status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
    /// EOF arrived before the channel closed.
    pub eof: bool,
}

impl Conn {
    /// Runs one command and waits for the channel to close.
    pub async fn exec(&self, command: &str) -> Output {
        let mut channel = self.handle.channel_open_session().await.unwrap();
        channel.exec(true, command).await.unwrap();
        let mut out = Output {
            status: None,
            stdout: String::new(),
            stderr: String::new(),
            eof: false,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, channel.wait()).await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.push_str(&String::from_utf8_lossy(&data)),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    out.stderr.push_str(&String::from_utf8_lossy(&data))
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    assert!(!out.eof, "exit status after EOF");
                    out.status = Some(exit_status);
                }
                ChannelMsg::Eof => out.eof = true,
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        out
    }

    /// Opens an interactive shell with a PTY.
    pub async fn shell(&self, cols: u32, rows: u32) -> Terminal {
        let channel = self.handle.channel_open_session().await.unwrap();
        channel
            .request_pty(true, "xterm", cols, rows, 0, 0, &[])
            .await
            .unwrap();
        channel.request_shell(true).await.unwrap();
        Terminal {
            channel,
            raw: String::new(),
            status: None,
            closed: false,
        }
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "bye", "")
            .await;
    }
}

/// An interactive session: keys in, raw output collected.
pub struct Terminal {
    pub channel: russh::Channel<client::Msg>,
    pub raw: String,
    pub status: Option<u32>,
    pub closed: bool,
}

impl Terminal {
    pub async fn send(&self, keys: &[u8]) {
        self.channel.data_bytes(keys.to_vec()).await.unwrap();
    }

    /// Reads output until `raw` contains `needle` (after `from`), or panics after 10 s.
    pub async fn wait_for(&mut self, needle: &str) {
        let start = self.raw.len();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.raw.get(start..).unwrap_or_default().contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "never saw {needle:?}; screen so far:\n{}",
                self.screen()
            );
            match tokio::time::timeout(left, self.channel.wait()).await {
                Ok(Some(msg)) => self.absorb(msg),
                Ok(None) => panic!("channel closed before {needle:?}; raw: {:?}", self.raw),
                Err(_) => {}
            }
        }
    }

    /// Reads until the channel closes; returns the exit status.
    pub async fn wait_close(&mut self) -> Option<u32> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.channel.wait()).await {
                Ok(Some(msg)) => self.absorb(msg),
                Ok(None) => break,
                Err(_) => panic!("channel did not close; raw: {:?}", self.raw),
            }
        }
        self.status
    }

    fn absorb(&mut self, msg: ChannelMsg) {
        match msg {
            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                self.raw.push_str(&String::from_utf8_lossy(&data))
            }
            ChannelMsg::ExitStatus { exit_status } => self.status = Some(exit_status),
            ChannelMsg::Close => self.closed = true,
            _ => {}
        }
    }

    /// The screen the raw output paints on an ideal terminal (CR, LF, BS, CSI n C/D/K).
    pub fn screen(&self) -> String {
        render(&self.raw)
    }
}

/// A tiny terminal emulator: enough of VT100 to check what a user sees.
pub fn render(raw: &str) -> String {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\x08' => col = col.saturating_sub(1),
            '\x07' => {}
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    let n: usize = n.parse().unwrap_or(1);
                    match chars.next() {
                        Some('C') => col += n,
                        Some('D') => col = col.saturating_sub(n),
                        Some('K') => lines[row].truncate(col),
                        _ => {}
                    }
                }
            }
            c => {
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines
        .iter()
        .map(|l| l.iter().collect::<String>().trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
