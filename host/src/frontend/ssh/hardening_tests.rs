//! Pre-authentication hardening of the SSH frontend, driven with raw sockets and the russh
//! client: the login grace time, the budgets of connections that have not logged in, and the
//! bounded input queue of a session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;
use russh::client;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::tests::{Client, exec, password, start_with};
use crate::api::SESSION_INPUT_CAPACITY;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP connection from `local` (a loopback address) to `addr`.
async fn tcp_from(local: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A connection that sends an SSH version line and then nothing.
async fn version_only(local: IpAddr, addr: SocketAddr) -> TcpStream {
    let mut s = tcp_from(local, addr).await;
    s.write_all(b"SSH-2.0-x\r\n").await.unwrap();
    s
}

/// Whether the server answered with its version line (`false`: it closed the connection).
async fn admitted(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 8];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => {
            assert!(buf.starts_with(b"SSH-2.0-"), "{buf:?}");
            true
        }
        Ok(_) => false,
        Err(_) => panic!("the server neither answered nor closed the connection"),
    }
}

/// How long until the server closes `s` (`None`: still open after `within`).
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(start + within, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Password login from a chosen loopback address.
async fn password_from(
    local: IpAddr,
    addr: SocketAddr,
    user: &str,
    pw: &str,
) -> (client::Handle<Client>, bool) {
    let stream = tcp_from(local, addr).await;
    let mut h = client::connect_stream(Arc::new(client::Config::default()), stream, Client)
        .await
        .unwrap();
    let ok = h.authenticate_password(user, pw).await.unwrap().success();
    (h, ok)
}

#[tokio::test]
async fn connections_that_do_not_log_in_are_closed_after_the_login_grace_time() {
    let r = start_with(|s| s.login_grace = Duration::from_millis(600)).await;
    let opened = Instant::now();
    let mut silent = TcpStream::connect(r.addr).await.unwrap();
    let mut version = version_only(ip("127.0.0.1"), r.addr).await;
    let (h, ok) = password(r.addr, "admin", "pw").await;
    assert!(ok);
    for s in [&mut silent, &mut version] {
        closed_within(s, Duration::from_secs(5))
            .await
            .expect("a connection that never logged in is still open");
        let after = opened.elapsed();
        assert!(
            after >= Duration::from_millis(550),
            "closed after {after:?}"
        );
    }
    // A logged-in connection outlives the grace time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        exec(&h, "still here")
            .await
            .contains(&"status:3".to_owned())
    );
    r.shutdown.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn a_flood_from_one_address_is_capped_before_the_handshake() {
    // Defaults: 10 per address, 64 in all, out of 256 connection slots.
    let r = start_with(|_| {}).await;
    let mut flood = Vec::new();
    // More than every connection slot; before the cap, the 257th waited in the backlog and
    // the admin below could not get in for the 600 s inactivity timeout.
    for i in 0..300 {
        let mut s = version_only(ip("127.0.0.1"), r.addr).await;
        assert_eq!(admitted(&mut s).await, i < 10, "connection {i}");
        flood.push(s);
    }
    let (h, ok) = password_from(ip("127.0.0.2"), r.addr, "admin", "pw").await;
    assert!(ok);
    assert!(exec(&h, "admin").await.contains(&"status:3".to_owned()));
    r.shutdown.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn a_distributed_flood_cannot_take_the_slots_of_admins() {
    let r = start_with(|s| {
        s.max_unauthenticated = 20;
        s.max_unauthenticated_per_address = 5;
    })
    .await;
    // 60 waiting connections from 12 addresses: three times the budget.
    let mut flood = Vec::new();
    for a in 10..22 {
        for _ in 0..5 {
            let mut s = version_only(ip(&format!("127.0.0.{a}")), r.addr).await;
            assert!(admitted(&mut s).await);
            flood.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut open = 0;
    for s in &mut flood {
        if closed_within(s, Duration::from_millis(30)).await.is_none() {
            open += 1;
        }
    }
    assert_eq!(
        open, 20,
        "the budget of waiting connections is not enforced"
    );
    // An admin from another address still gets in, and logged-in sessions do not count
    // against the budgets: more of them than the per-address cap stay open together.
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let (h, ok) = password_from(ip("127.0.0.2"), r.addr, "admin", "pw").await;
        assert!(ok);
        sessions.push(h);
    }
    for h in &sessions {
        assert!(exec(h, "admin").await.contains(&"status:3".to_owned()));
    }
    r.shutdown.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn a_session_that_stops_reading_holds_back_the_client_not_the_server() {
    let r = start_with(|_| {}).await;
    let (h, ok) = password(r.addr, "admin", "pw").await;
    assert!(ok);
    let mut ch = h.channel_open_session().await.unwrap();
    ch.exec(true, "stall").await.unwrap();
    let mut writer = ch.make_writer();
    // 4 MiB, twice the SSH window: unbounded, all of it piled up in the server.
    let push = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(15), ch.wait())
        .await
        .expect("the stalled session never ended")
    {
        if let ChannelMsg::Data { data } = msg {
            out.push_str(&String::from_utf8_lossy(&data));
        }
    }
    push.abort();
    let queued: usize = out
        .strip_prefix("queued ")
        .and_then(|n| n.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    // At most the queue's capacity in SSH packets (32 KiB each) waited for the session.
    assert!(
        queued > 0 && queued <= SESSION_INPUT_CAPACITY * 32 * 1024,
        "{queued}"
    );
    // The connection still serves other channels.
    assert!(exec(&h, "after").await.contains(&"status:3".to_owned()));
    r.shutdown.cancel();
    r.task.await.unwrap();
}
