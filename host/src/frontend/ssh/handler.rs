//! The russh `Handler` of one connection: a thin adapter that authenticates against `Auth`,
//! turns channel requests into [`SshSession`]s for the SSH backend, and pumps their output
//! back to the client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use everlock_auth::{Auth, Principal, SshPublicKey};
use russh::keys::{Algorithm, HashAlg};
use russh::server::{
    Auth as Verdict, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::sync::mpsc;

use super::gate::Ticket;
use crate::api::ssh::{
    Pty, SessionInput, SessionInputSender, SessionKind, SessionOutputChunk, SshService, SshSession,
};
use crate::routes::InstanceTable;

/// Session channels one connection may hold open at once; the console needs one.
const MAX_CHANNELS: usize = 4;

/// How long the output of a finished session may take to drain before the channel closes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the connection waits for a session to take more input while its queue is full.
/// Waiting stops reading from the client (backpressure); but a session that is itself
/// waiting to send output, which this same connection task delivers, would wait forever, so
/// after this long the session's input is closed instead, and the session ends.
#[cfg(not(test))]
const INPUT_STALL_TIMEOUT: Duration = Duration::from_secs(10);
#[cfg(test)]
const INPUT_STALL_TIMEOUT: Duration = Duration::from_secs(1);

/// One SSH connection's state.
pub(super) struct Connection {
    auth: Auth,
    table: Arc<InstanceTable>,
    remote: SocketAddr,
    /// Set only by a successful password check or a verified key signature, never by a key
    /// offer, and cleared on every rejection.
    principal: Option<Principal>,
    /// The pre-authentication slot, handed back at the first successful login.
    ticket: Option<Ticket>,
    /// A key accepted on offer whose signed request has not reached `auth_publickey` yet.
    /// russh rejects a bad signature without calling the handler, so the refusal is logged
    /// when the client moves on (or leaves).
    pending_key: Option<KeyAttempt>,
    channels: HashMap<ChannelId, ChannelState>,
    /// Where logins and sessions are counted.
    metrics: crate::metrics::Metrics,
}

#[derive(Default)]
struct ChannelState {
    pty: Option<Pty>,
    /// A program (shell or exec) runs on the channel.
    started: bool,
    /// `None` before the program starts and after its input was closed.
    input: Option<SessionInputSender>,
}

impl ChannelState {
    /// Whether the channel still counts against the per-connection limit: its program has
    /// not started yet or still reads input.
    fn live(&self) -> bool {
        !self.started || self.input.as_ref().is_some_and(|tx| !tx.is_closed())
    }
}

/// A public key a client tried, as logged: never more than its public fingerprint.
struct KeyAttempt {
    login: String,
    fingerprint: String,
    algorithm: String,
}

impl KeyAttempt {
    fn new(login: &str, key: &russh::keys::PublicKey, algorithm: &Algorithm) -> KeyAttempt {
        KeyAttempt {
            login: login.to_owned(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            algorithm: algorithm.as_str().to_owned(),
        }
    }
}

impl Connection {
    pub(super) fn new(
        auth: Auth,
        table: Arc<InstanceTable>,
        remote: SocketAddr,
        ticket: Ticket,
    ) -> Connection {
        Connection {
            auth,
            table,
            remote,
            principal: None,
            ticket: Some(ticket),
            pending_key: None,
            channels: HashMap::new(),
            metrics: crate::metrics::Metrics::default(),
        }
    }

    /// Counts this connection's logins and sessions in `metrics`.
    pub(super) fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Connection {
        self.metrics = metrics;
        self
    }

    fn reject(&mut self) -> Verdict {
        self.principal = None;
        Verdict::Reject {
            proceed_with_methods: Some(methods()),
            partial_success: false,
        }
    }

    fn refused(&mut self, login: &str, method: &'static str) -> Verdict {
        self.metrics.ssh_login(method, false);
        tracing::info!(target: "everlock::ssh", login = %login.escape_debug(), remote = %self.remote, method, "SSH login refused");
        self.reject()
    }

    /// Logs a refused public key (its fingerprint, never more) and why.
    fn refused_key(&mut self, attempt: &KeyAttempt, reason: &str) -> Verdict {
        self.metrics.ssh_login("publickey", false);
        tracing::info!(
            target: "everlock::ssh",
            login = %attempt.login.escape_debug(),
            remote = %self.remote,
            method = "publickey",
            key = %attempt.fingerprint,
            algorithm = %attempt.algorithm,
            reason,
            "SSH login refused"
        );
        self.reject()
    }

    /// A key accepted on offer never produced a verified signature: logs the refusal and
    /// counts it as a failure, as a wrong password is.
    fn settle_pending_key(&mut self) {
        if let Some(attempt) = self.pending_key.take() {
            self.auth.record_failure(&attempt.login, self.remote.ip());
            self.refused_key(&attempt, "no valid signature");
        }
    }

    /// Logs the login (with the key's fingerprint for a key login) and hands the
    /// pre-authentication slot back.
    fn accepted(
        &mut self,
        principal: Principal,
        method: &'static str,
        key: Option<&KeyAttempt>,
    ) -> Verdict {
        self.metrics.ssh_login(method, true);
        tracing::info!(
            target: "everlock::ssh",
            login = %principal,
            remote = %self.remote,
            method,
            key = key.map(|k| k.fingerprint.as_str()),
            algorithm = key.map(|k| k.algorithm.as_str()),
            "SSH login"
        );
        self.principal = Some(principal);
        // Logged in: the connection no longer counts against the pre-authentication budgets
        // and the login grace timer stops.
        if let Some(ticket) = self.ticket.take() {
            ticket.authenticated();
        }
        Verdict::Accept
    }

    /// The first live instance that serves SSH sessions.
    fn service(&self) -> Option<Arc<dyn SshService>> {
        self.table
            .snapshot()
            .instances()
            .find_map(|instance| instance.ssh.clone())
    }

    fn start(
        &mut self,
        channel: ChannelId,
        kind: SessionKind,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let service = self.service();
        let (Some(principal), Some(state), Some(service)) = (
            self.principal.clone(),
            self.channels.get_mut(&channel),
            service,
        ) else {
            return session.channel_failure(channel);
        };
        if state.started {
            // One program per channel, as in OpenSSH.
            return session.channel_failure(channel);
        }
        session.channel_success(channel)?;
        let crlf = state.pty.is_some();
        let (ssh_session, pipe) = SshSession::pipe(principal, self.remote, kind, state.pty.clone());
        state.started = true;
        state.input = Some(pipe.input);
        let handle = session.handle();
        let open = self.metrics.ssh_session();
        tokio::spawn(async move {
            let _open = open;
            let pump = tokio::spawn(pump(pipe.output, handle.clone(), channel, crlf));
            let status = service.run(ssh_session).await;
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, pump).await;
            // exit-status, then EOF, then close: without the status OpenSSH exits 255.
            let _ = handle.exit_status_request(channel, status).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    /// Hands `input` to the channel's session, waiting while its queue is full: meanwhile
    /// this connection reads nothing more from the client, whose window then runs out.
    async fn send_input(&mut self, channel: ChannelId, input: SessionInput) {
        let Some(tx) = self.channels.get(&channel).and_then(|s| s.input.clone()) else {
            return;
        };
        if tokio::time::timeout(INPUT_STALL_TIMEOUT, tx.send_wait(input))
            .await
            .is_err()
        {
            tracing::warn!(target: "everlock::ssh", remote = %self.remote, "SSH session stopped reading its input; closing it");
            if let Some(state) = self.channels.get_mut(&channel) {
                state.input = None;
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.settle_pending_key();
    }
}

/// Password and public key only: OpenSSH tries keyboard-interactive before password when it
/// is offered, which would only add a useless round trip.
fn methods() -> MethodSet {
    MethodSet::from(&[MethodKind::Password, MethodKind::PublicKey][..])
}

/// Converts a key presented by a client into the auth crate's form.
fn to_auth_key(key: &russh::keys::PublicKey) -> Option<SshPublicKey> {
    key.to_openssh().ok()?.parse().ok()
}

/// Copies a session's output to the channel, turning bare `\n` into `\r\n` for terminals
/// (a bare `\n` staircases the lines on a PTY).
async fn pump(
    mut output: mpsc::Receiver<SessionOutputChunk>,
    handle: russh::server::Handle,
    channel: ChannelId,
    crlf: bool,
) {
    let mut last_was_cr = false;
    while let Some(chunk) = output.recv().await {
        let (text, stderr) = match chunk {
            SessionOutputChunk::Stdout(t) => (t, false),
            SessionOutputChunk::Stderr(t) => (t, true),
        };
        let text = if crlf {
            to_crlf(&text, &mut last_was_cr)
        } else {
            text
        };
        let sent = if stderr {
            handle.extended_data(channel, 1, text.into_bytes()).await
        } else {
            handle.data(channel, text.into_bytes()).await
        };
        if sent.is_err() {
            return;
        }
    }
}

/// `\n` → `\r\n` unless the `\n` already follows a `\r` (possibly at the end of the previous
/// chunk, tracked in `last_was_cr`).
fn to_crlf(text: &str, last_was_cr: &mut bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\n' && !*last_was_cr {
            out.push('\r');
        }
        out.push(c);
        *last_was_cr = c == '\r';
    }
    out
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Verdict, Self::Error> {
        self.settle_pending_key();
        Ok(self.reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Verdict, Self::Error> {
        self.settle_pending_key();
        // Shares the cache and the throttle with HTTP Basic; bcrypt runs on the blocking pool.
        match self
            .auth
            .verify_password(user, password, self.remote.ip())
            .await
        {
            Ok(principal) if principal.login().is_some() => {
                Ok(self.accepted(principal, "password", None))
            }
            Ok(_) | Err(_) => Ok(self.refused(user, "password")),
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Verdict, Self::Error> {
        // Only spares the client a signature for keys that cannot succeed; the identity is
        // decided in `auth_publickey`, after the signature is verified.
        self.settle_pending_key();
        self.principal = None;
        let attempt = KeyAttempt::new(user, offer.public_key, offer.algorithm);
        if *offer.algorithm == (Algorithm::Rsa { hash: None }) {
            return Ok(self.refused_key(&attempt, "ssh-rsa (SHA-1) signatures are not accepted"));
        }
        if self.auth.throttled(user, self.remote.ip()).is_some() {
            return Ok(self.refused_key(&attempt, "throttled"));
        }
        let known =
            to_auth_key(offer.public_key).is_some_and(|k| self.auth.verify_key(user, &k).is_some());
        if !known {
            return Ok(self.refused_key(&attempt, "key not registered for this login"));
        }
        self.pending_key = Some(attempt);
        Ok(Verdict::Accept)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Verdict, Self::Error> {
        // The signature is verified: whatever is decided here is logged here.
        self.pending_key = None;
        let ip = self.remote.ip();
        let attempt = KeyAttempt::new(user, key.public_key, key.algorithm);
        if *key.algorithm == (Algorithm::Rsa { hash: None }) {
            return Ok(self.refused_key(&attempt, "ssh-rsa (SHA-1) signatures are not accepted"));
        }
        if self.auth.throttled(user, ip).is_some() {
            return Ok(self.refused_key(&attempt, "throttled"));
        }
        match to_auth_key(key.public_key).and_then(|k| self.auth.verify_key(user, &k)) {
            Some(principal) => Ok(self.accepted(principal, "publickey", Some(&attempt))),
            None => {
                self.auth.record_failure(user, ip);
                Ok(self.refused_key(&attempt, "key not registered for this login"))
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The `Channel` is dropped: everything arrives through the callbacks below, and an
        // undrained `Channel` would stall the whole connection.
        // Channels whose session has finished (closed by the server side) no longer count.
        self.channels.retain(|_, state| state.live());
        if self.principal.is_some() && self.channels.len() < MAX_CHANNELS {
            self.channels.insert(channel.id(), ChannelState::default());
            reply.accept().await;
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(state) if !state.started => {
                // `ssh -tt` from a non-terminal sends 0x0.
                state.pty = Some(Pty {
                    term: term.to_owned(),
                    cols: if col_width == 0 { 80 } else { col_width },
                    rows: if row_height == 0 { 24 } else { row_height },
                });
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, SessionKind::Shell, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match std::str::from_utf8(data) {
            Ok(command) => self.start(channel, SessionKind::Exec(command.to_owned()), session),
            Err(_) => session.channel_failure(channel),
        }
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.send_input(channel, SessionInput::Data(data.to_vec()))
            .await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.send_input(channel, SessionInput::Eof).await;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(pty) = self.channels.get_mut(&channel).and_then(|s| s.pty.as_mut()) {
            pty.cols = col_width.max(1);
            pty.rows = row_height.max(1);
        }
        self.send_input(
            channel,
            SessionInput::Resize {
                cols: col_width.max(1),
                rows: row_height.max(1),
            },
        )
        .await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping the input sender tells the session the client is gone.
        self.channels.remove(&channel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_translation_handles_pairs_split_across_chunks() {
        let mut cr = false;
        assert_eq!(to_crlf("a\nb\r\nc", &mut cr), "a\r\nb\r\nc");
        assert_eq!(to_crlf("x\r", &mut cr), "x\r");
        assert_eq!(to_crlf("\ny\n", &mut cr), "\ny\r\n");
        assert_eq!(to_crlf("\x1b[2D", &mut cr), "\x1b[2D");
    }
}
