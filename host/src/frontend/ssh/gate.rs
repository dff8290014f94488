//! The pre-authentication gate: how many connections may wait to log in, per client address
//! and in total, and a kill switch for the socket of each.
//!
//! A connection that has not logged in holds a [`Ticket`]. Authenticating hands the ticket
//! back, so logged-in sessions never count against these budgets and a flood of connections
//! that never log in cannot take the slots admins need. Beyond the per-address cap a new
//! connection is refused before the SSH handshake; when the total budget is full, the oldest
//! waiting connection of the address holding the most slots makes room, so a flood from a few
//! addresses cannot keep a newcomer from another address out.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Admission control for connections that have not authenticated yet.
#[derive(Debug)]
pub(super) struct Gate {
    total: usize,
    per_address: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    waiting: usize,
    /// Per address, the waiting connections, oldest first, with the switch that kills each.
    by_address: HashMap<IpAddr, VecDeque<(u64, CancellationToken)>>,
}

impl State {
    /// Forgets connection `id` of `ip`; `false` when it was already gone (evicted).
    fn remove(&mut self, ip: IpAddr, id: u64) -> bool {
        let Some(queue) = self.by_address.get_mut(&ip) else {
            return false;
        };
        let Some(at) = queue.iter().position(|(i, _)| *i == id) else {
            return false;
        };
        queue.remove(at);
        if queue.is_empty() {
            self.by_address.remove(&ip);
        }
        self.waiting = self.waiting.saturating_sub(1);
        true
    }

    /// Kills the oldest waiting connection of the address holding the most slots.
    fn evict_one(&mut self) -> Option<IpAddr> {
        let ip = self
            .by_address
            .iter()
            .max_by_key(|(_, queue)| queue.len())
            .map(|(ip, _)| *ip)?;
        let (id, kill) = self.by_address.get(&ip)?.front()?.clone();
        kill.cancel();
        self.remove(ip, id).then_some(ip)
    }
}

impl Gate {
    /// A gate letting `total` connections wait to log in, at most `per_address` from one
    /// client address.
    pub(super) fn new(total: usize, per_address: usize) -> Arc<Gate> {
        Arc::new(Gate {
            total: total.max(1),
            per_address: per_address.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every change is one step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a new connection from `ip` wait to log in, or refuses it (`None`) when its
    /// address already has `per_address` waiting. `kill` is cancelled if the connection is
    /// evicted later to make room for another.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr, kill: CancellationToken) -> Option<Ticket> {
        let ip = ip.to_canonical();
        let mut state = self.state();
        if state.by_address.get(&ip).map_or(0, VecDeque::len) >= self.per_address {
            return None;
        }
        if state.waiting >= self.total
            && let Some(victim) = state.evict_one()
        {
            tracing::debug!(target: "everlock::ssh", %victim, "SSH pre-auth budget full; dropped the oldest unauthenticated connection of the busiest address");
        }
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        state.waiting += 1;
        state
            .by_address
            .entry(ip)
            .or_default()
            .push_back((id, kill));
        Some(Ticket {
            gate: Arc::clone(self),
            ip,
            id,
            authenticated: CancellationToken::new(),
        })
    }

    /// Connections waiting to log in (for tests).
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.state().waiting
    }
}

/// The slot of one connection that has not logged in yet; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
    id: u64,
    authenticated: CancellationToken,
}

impl Ticket {
    /// Cancelled once the connection has logged in (the login grace timer watches it).
    pub(super) fn on_authenticated(&self) -> CancellationToken {
        self.authenticated.clone()
    }

    /// The connection logged in: frees its slot and stops the login grace timer.
    pub(super) fn authenticated(self) {
        self.authenticated.cancel();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.state().remove(self.ip, self.id);
    }
}

/// A TCP stream that fails every read and write once `kill` is cancelled, so a connection
/// can be ended for certain from outside russh's session task (a disconnect message alone
/// waits for a peer that may never read it).
pub(super) struct Killable {
    inner: TcpStream,
    read_kill: Pin<Box<WaitForCancellationFutureOwned>>,
    write_kill: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Killable {
    pub(super) fn new(inner: TcpStream, kill: &CancellationToken) -> Killable {
        Killable {
            inner,
            read_kill: Box::pin(kill.clone().cancelled_owned()),
            write_kill: Box::pin(kill.clone().cancelled_owned()),
        }
    }
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by the server",
    )
}

impl AsyncRead for Killable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_cap_refuses_and_released_slots_come_back() {
        let gate = Gate::new(100, 2);
        let a = gate
            .admit(ip("10.0.0.1"), CancellationToken::new())
            .unwrap();
        let _b = gate
            .admit(ip("10.0.0.1"), CancellationToken::new())
            .unwrap();
        assert!(
            gate.admit(ip("10.0.0.1"), CancellationToken::new())
                .is_none()
        );
        // The IPv4-mapped IPv6 form is the same client.
        assert!(
            gate.admit(ip("::ffff:10.0.0.1"), CancellationToken::new())
                .is_none()
        );
        assert!(
            gate.admit(ip("10.0.0.2"), CancellationToken::new())
                .is_some()
        );
        let signal = a.on_authenticated();
        a.authenticated();
        assert!(signal.is_cancelled());
        assert_eq!(gate.waiting(), 1);
        assert!(
            gate.admit(ip("10.0.0.1"), CancellationToken::new())
                .is_some()
        );
    }

    #[test]
    fn a_full_budget_evicts_the_oldest_of_the_busiest_address() {
        let gate = Gate::new(4, 3);
        let kills: Vec<CancellationToken> = (0..4).map(|_| CancellationToken::new()).collect();
        let flood: Vec<Ticket> = kills
            .iter()
            .take(3)
            .map(|k| gate.admit(ip("10.0.0.9"), k.clone()).unwrap())
            .collect();
        let admin_kill = CancellationToken::new();
        let admin = gate.admit(ip("10.0.0.1"), admin_kill.clone()).unwrap();
        assert_eq!(gate.waiting(), 4);
        // A newcomer from a third address takes the flood's oldest slot, not the admin's.
        let _newcomer = gate.admit(ip("10.0.0.2"), kills[3].clone()).unwrap();
        assert!(kills[0].is_cancelled());
        assert!(!kills[1].is_cancelled() && !admin_kill.is_cancelled());
        assert_eq!(gate.waiting(), 4);
        // The evicted ticket's drop does not free a slot twice.
        drop(flood);
        assert_eq!(gate.waiting(), 2);
        drop(admin);
        assert_eq!(gate.waiting(), 1);
    }

    #[tokio::test]
    async fn killed_streams_fail_reads_and_writes() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (socket, _) = listener.accept().await.unwrap();
        let kill = CancellationToken::new();
        let mut stream = Killable::new(socket, &kill);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            let read = stream.read(&mut buf).await;
            (read.map_err(|e| e.kind()), stream)
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        kill.cancel();
        let (read, mut stream) = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, Err(io::ErrorKind::ConnectionAborted));
        assert!(stream.write_all(b"x").await.is_err());
    }
}
