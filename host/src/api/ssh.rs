//! What an SSH backend sees of a session: who logged in, whether it is an exec request or a
//! shell (with or without a terminal), input bytes in, text out, and an exit status.
//!
//! The abstraction hides russh completely, so a backend's console can be driven by a test
//! through [`SshSession::pipe`] without any SSH connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use everlock_auth::Principal;
use tokio::sync::mpsc;

/// The future a session runs as; it resolves to the exit status sent to the client.
pub type SessionFuture = Pin<Box<dyn Future<Output = u32> + Send>>;

/// The SSH service of an SSH backend instance: runs one session channel to completion.
pub trait SshService: Send + Sync + 'static {
    /// Serves `session` and returns its exit status. The frontend sends the status, then EOF,
    /// then closes the channel, so the service only returns.
    fn run(&self, session: SshSession) -> SessionFuture;
}

/// What the client asked the channel to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    /// `ssh host 'command'`: exactly one command, given as the raw string the client sent.
    Exec(String),
    /// `ssh host` (interactive with a terminal, or piped input without one).
    Shell,
}

/// The terminal a client requested (`pty-req`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pty {
    /// `$TERM` on the client side.
    pub term: String,
    /// Width in columns (80 when the client sent 0).
    pub cols: u32,
    /// Height in rows (24 when the client sent 0).
    pub rows: u32,
}

/// One event from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionInput {
    /// Bytes the client sent, in arbitrary chunks (escape sequences and UTF-8 characters may
    /// be split across chunks).
    Data(Vec<u8>),
    /// The terminal was resized.
    Resize {
        /// New width in columns.
        cols: u32,
        /// New height in rows.
        rows: u32,
    },
    /// The client will send no more data.
    Eof,
}

/// One piece of output for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutputChunk {
    /// Standard output. With a terminal, the frontend turns each bare `\n` into `\r\n`.
    Stdout(String),
    /// Standard error (SSH extended data 1).
    Stderr(String),
}

/// Where a session writes its output. Sending waits when the frontend is behind, which
/// bounds the memory one session can queue.
#[derive(Debug, Clone)]
pub struct SessionOutput {
    tx: mpsc::Sender<SessionOutputChunk>,
}

impl SessionOutput {
    /// An output handle and the receiver the frontend (or a test) drains.
    pub fn channel(capacity: usize) -> (SessionOutput, mpsc::Receiver<SessionOutputChunk>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (SessionOutput { tx }, rx)
    }

    /// Writes `text` to standard output; `false` once the client is gone.
    pub async fn stdout(&self, text: impl Into<String>) -> bool {
        self.send(SessionOutputChunk::Stdout(text.into())).await
    }

    /// Writes `text` to standard error; `false` once the client is gone.
    pub async fn stderr(&self, text: impl Into<String>) -> bool {
        self.send(SessionOutputChunk::Stderr(text.into())).await
    }

    async fn send(&self, chunk: SessionOutputChunk) -> bool {
        let empty = match &chunk {
            SessionOutputChunk::Stdout(s) | SessionOutputChunk::Stderr(s) => s.is_empty(),
        };
        empty || self.tx.send(chunk).await.is_ok()
    }
}

/// One session channel handed to an [`SshService`].
#[derive(Debug)]
pub struct SshSession {
    /// The authenticated user.
    pub principal: Principal,
    /// The client's address (for logs and audit).
    pub remote: SocketAddr,
    /// Exec or shell.
    pub kind: SessionKind,
    /// The terminal, when the client requested one.
    pub pty: Option<Pty>,
    /// Events from the client; `None` from `recv` means the channel is gone. The queue is
    /// bounded: while it is full the frontend stops reading from the client.
    pub input: mpsc::Receiver<SessionInput>,
    /// Output to the client.
    pub output: SessionOutput,
}

/// Client events queued for a session at most; each is at most one SSH packet (32 KiB with
/// russh's defaults), so one channel holds at most about 1 MiB of unread input.
pub const SESSION_INPUT_CAPACITY: usize = 32;

/// Feeds client events into a session's bounded input queue.
#[derive(Debug, Clone)]
pub struct SessionInputSender {
    tx: mpsc::Sender<SessionInput>,
}

impl SessionInputSender {
    /// Queues `input` without waiting; fails when the session is gone or its queue is full
    /// (tests feed a few events this way).
    pub fn send(&self, input: SessionInput) -> Result<(), mpsc::error::TrySendError<SessionInput>> {
        self.tx.try_send(input)
    }

    /// Queues `input`, waiting while the queue is full (backpressure); fails when the
    /// session is gone.
    pub async fn send_wait(&self, input: SessionInput) -> Result<(), SessionInput> {
        self.tx.send(input).await.map_err(|e| e.0)
    }

    /// Whether the session has stopped reading (its receiver is gone).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The test-side ends of a [`SshSession::pipe`].
#[derive(Debug)]
pub struct SessionPipe {
    /// Feeds client events into the session.
    pub input: SessionInputSender,
    /// Receives the session's output.
    pub output: mpsc::Receiver<SessionOutputChunk>,
}

impl SshSession {
    /// A session connected to in-memory channels instead of SSH, for tests of SSH backends
    /// (and for the frontend, which uses the same plumbing).
    pub fn pipe(
        principal: Principal,
        remote: SocketAddr,
        kind: SessionKind,
        pty: Option<Pty>,
    ) -> (SshSession, SessionPipe) {
        let (input_tx, input_rx) = mpsc::channel(SESSION_INPUT_CAPACITY);
        let (output, output_rx) = SessionOutput::channel(64);
        (
            SshSession {
                principal,
                remote,
                kind,
                pty,
                input: input_rx,
                output,
            },
            SessionPipe {
                input: SessionInputSender { tx: input_tx },
                output: output_rx,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pipe_carries_input_and_output_and_skips_empty_writes() {
        let (mut session, mut pipe) = SshSession::pipe(
            Principal::anon(),
            "127.0.0.1:1".parse().unwrap(),
            SessionKind::Shell,
            None,
        );
        pipe.input.send(SessionInput::Data(b"x".to_vec())).unwrap();
        assert_eq!(
            session.input.recv().await,
            Some(SessionInput::Data(b"x".to_vec()))
        );
        assert!(session.output.stdout("").await);
        assert!(session.output.stderr("e").await);
        assert_eq!(
            pipe.output.recv().await,
            Some(SessionOutputChunk::Stderr("e".to_owned()))
        );
        drop(pipe);
        assert!(!session.output.stdout("gone").await);
    }

    #[tokio::test]
    async fn input_is_bounded_and_waits_for_the_session() {
        let (mut session, pipe) = SshSession::pipe(
            Principal::anon(),
            "127.0.0.1:1".parse().unwrap(),
            SessionKind::Shell,
            None,
        );
        for _ in 0..SESSION_INPUT_CAPACITY {
            pipe.input.send(SessionInput::Data(vec![0; 1024])).unwrap();
        }
        // A full queue refuses more without waiting...
        assert!(matches!(
            pipe.input.send(SessionInput::Eof),
            Err(mpsc::error::TrySendError::Full(_))
        ));
        // ...and a waiting send completes only once the session has read something.
        let waiting = pipe.input.send_wait(SessionInput::Eof);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
        assert!(session.input.recv().await.is_some());
        assert!(waiting.await.is_ok());
        drop(session);
        assert!(pipe.input.is_closed());
        assert!(pipe.input.send_wait(SessionInput::Eof).await.is_err());
    }
}
