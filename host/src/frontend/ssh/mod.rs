//! The SSH frontend (russh): accepts connections, authenticates users against `Auth`
//! (password or a registered public key), and hands each session channel to the live SSH
//! backend instance (the admin console) as an [`SshSession`](crate::api::SshSession).
//!
//! # Layout
//! - the transport-free session abstraction SSH backends implement is `crate::api::ssh`.
//! - `handler`: the per-connection russh handler (authentication, channels, output pump).
//! - `gate`: the budgets of connections that have not logged in yet, and a kill switch.
//! - `hostkey`: the host key, generated once and kept in the data directory.

mod gate;
mod handler;
pub mod hostkey;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKey};
use russh::server::{Handler, RunningSession};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SshFrontendConfig;
use crate::runtime::Host;

// Connections served at once (configuration decides the budgets within it).
use crate::config::SSH_MAX_CONNECTIONS as MAX_CONNECTIONS;

/// How long sessions get to say goodbye after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The key and signature algorithms clients may authenticate with (and the server-sig-algs
/// extension announces): Ed25519, ECDSA on the three NIST curves, and RSA with SHA-2 only.
/// `ssh-rsa` (SHA-1 signatures) is left out, as OpenSSH has done by default since 8.8.
const KEY_ALGORITHMS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

/// Settings of one SSH listener.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The host key presented to clients.
    pub host_key: PrivateKey,
    /// Connections without traffic for this long are dropped; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// How long each rejected authentication attempt takes (1 s in production).
    pub auth_rejection_time: Duration,
    /// How long a connection has to log in, from the moment it is accepted.
    pub login_grace: Duration,
    /// Connections that have not logged in yet, from all addresses together.
    pub max_unauthenticated: usize,
    /// Connections that have not logged in yet from one client address.
    pub max_unauthenticated_per_address: usize,
}

impl SshSettings {
    /// The settings `[frontend-ssh]` describes, with `host_key`.
    pub fn from_config(host_key: PrivateKey, config: &SshFrontendConfig) -> SshSettings {
        SshSettings {
            host_key,
            idle_timeout: (config.idle_timeout_secs > 0)
                .then(|| Duration::from_secs(config.idle_timeout_secs)),
            auth_rejection_time: Duration::from_secs(1),
            login_grace: Duration::from_secs(config.login_grace_secs.get()),
            max_unauthenticated: config.max_unauthenticated.get(),
            max_unauthenticated_per_address: config.max_unauthenticated_per_address.get(),
        }
    }

    /// The russh server configuration for these settings.
    pub fn russh_config(&self) -> russh::server::Config {
        russh::server::Config {
            keys: vec![self.host_key.clone()],
            methods: russh::MethodSet::from(
                &[russh::MethodKind::Password, russh::MethodKind::PublicKey][..],
            ),
            auth_rejection_time: self.auth_rejection_time,
            // OpenSSH opens with a `none` probe; without this every login starts with a
            // one-second stall.
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: self.idle_timeout,
            nodelay: true,
            preferred: russh::Preferred {
                key: Cow::Borrowed(KEY_ALGORITHMS),
                ..russh::Preferred::default()
            },
            ..russh::server::Config::default()
        }
    }
}

/// What every connection task shares.
struct Shared {
    config: Arc<russh::server::Config>,
    gate: Arc<gate::Gate>,
    login_grace: Duration,
    host: Host,
    shutdown: CancellationToken,
}

/// Serves SSH on `listener` until `shutdown` is cancelled, then disconnects every client
/// and returns.
pub async fn run(
    listener: TcpListener,
    settings: SshSettings,
    host: Host,
    shutdown: CancellationToken,
) {
    let shared = Arc::new(Shared {
        config: Arc::new(settings.russh_config()),
        gate: gate::Gate::new(
            settings.max_unauthenticated.min(MAX_CONNECTIONS / 2),
            settings.max_unauthenticated_per_address,
        ),
        login_grace: settings.login_grace,
        host,
        shutdown: shutdown.clone(),
    });
    let tracker = TaskTracker::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (socket, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "SSH accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        tracker.spawn(async move {
            serve_connection(&shared, socket, remote).await;
            drop(permit);
        });
    }
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE * 3, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("SSH sessions still open at shutdown; dropping them");
    }
}

/// Why a connection is being closed by the server.
#[derive(Debug, Clone, Copy)]
enum Closing {
    Shutdown,
    LoginGrace,
    Evicted,
}

impl Closing {
    /// How long the session may take to deliver the goodbye before its socket is cut. A
    /// connection that never logged in gets little: it is often still in key exchange, where
    /// the message cannot be sent at all, and its slot stays taken until the socket closes.
    fn patience(self) -> Duration {
        match self {
            Closing::Shutdown => SHUTDOWN_GRACE,
            Closing::LoginGrace | Closing::Evicted => Duration::from_millis(200),
        }
    }

    fn message(self) -> &'static str {
        match self {
            Closing::Shutdown => "server shutting down",
            Closing::LoginGrace => "login grace time exceeded",
            Closing::Evicted => "too many unauthenticated connections",
        }
    }
}

async fn serve_connection(shared: &Shared, socket: tokio::net::TcpStream, remote: SocketAddr) {
    let kill = CancellationToken::new();
    // Refused before the handshake: the socket is simply closed.
    let Some(ticket) = shared.gate.admit(remote.ip(), kill.clone()) else {
        tracing::debug!(target: "everlock::ssh", %remote, "SSH connection refused: too many unauthenticated connections from this address");
        return;
    };
    let _open = shared
        .host
        .metrics()
        .connection(crate::metrics::Listener::Ssh);
    let _ = socket.set_nodelay(true);
    let deadline = Instant::now() + shared.login_grace;
    let authenticated = ticket.on_authenticated();
    let handler = handler::Connection::new(
        shared.host.auth().clone(),
        Arc::clone(shared.host.table()),
        remote,
        ticket,
    )
    .with_metrics(shared.host.metrics().clone());
    let stream = gate::Killable::new(socket, &kill);
    let started = russh::server::run_stream(Arc::clone(&shared.config), stream, handler);
    // The version exchange counts against the login grace time too; dropping the future
    // drops (closes) the socket.
    let running = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        _ = kill.cancelled() => return,
        started = tokio::time::timeout_at(deadline, started) => match started {
            Ok(Ok(running)) => running,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "SSH handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(target: "everlock::ssh", %remote, "SSH login grace time exceeded");
                return;
            }
        },
    };
    let mut running = std::pin::pin!(running);
    let closing = tokio::select! {
        result = &mut running => return ended(remote, result),
        _ = authenticated.cancelled() => None,
        _ = tokio::time::sleep_until(deadline) => Some(Closing::LoginGrace),
        _ = kill.cancelled() => Some(Closing::Evicted),
        _ = shared.shutdown.cancelled() => Some(Closing::Shutdown),
    };
    let closing = match closing {
        Some(closing) => closing,
        None => tokio::select! {
            result = &mut running => return ended(remote, result),
            _ = shared.shutdown.cancelled() => Closing::Shutdown,
        },
    };
    if matches!(closing, Closing::LoginGrace) {
        tracing::info!(target: "everlock::ssh", %remote, "SSH login grace time exceeded");
    }
    close(running, &kill, closing).await;
}

fn ended<E: std::fmt::Display>(remote: SocketAddr, result: Result<(), E>) {
    if let Err(e) = result {
        tracing::debug!(%remote, error = %e, "SSH connection ended with an error");
    }
}

/// Says goodbye, gives the session a moment to flush it, then cuts the socket.
async fn close<H: Handler>(
    mut running: Pin<&mut RunningSession<H>>,
    kill: &CancellationToken,
    why: Closing,
) {
    let handle = running.handle();
    let _ = tokio::time::timeout(
        SHUTDOWN_GRACE,
        handle.disconnect(
            russh::Disconnect::ByApplication,
            why.message().to_owned(),
            String::new(),
        ),
    )
    .await;
    if tokio::time::timeout(why.patience(), &mut running)
        .await
        .is_err()
    {
        kill.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut running).await;
    }
}

#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod tests;
