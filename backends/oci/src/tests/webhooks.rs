//! Webhooks in process: a small HTTP receiver checks the signature and the envelope of push,
//! pull and delete events; failed deliveries stay queued in the store and are retried.

use super::*;
use std::sync::Mutex;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// One request the receiver got: its headers (lower-cased names) and body.
#[derive(Clone, Debug)]
pub(super) struct Received {
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Received {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 receiver answering `status` to every request.
pub(super) struct Receiver {
    pub(super) url: String,
    pub(super) got: Arc<Mutex<Vec<Received>>>,
    pub(super) status: Arc<Mutex<u16>>,
}

impl Receiver {
    pub(super) async fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(status));
        let (g, s) = (got.clone(), status.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (g, s) = (g.clone(), s.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, len) = loop {
                        let n = sock.read(&mut chunk).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break (i + 4, len);
                        }
                    };
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let headers = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                        .collect();
                    let body = buf[head_end..head_end + len].to_vec();
                    g.lock().unwrap().push(Received { headers, body });
                    let code = *s.lock().unwrap();
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        Receiver { url, got, status }
    }

    pub(super) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the receiver got {} requests, not {n}",
            self.got.lock().unwrap().len()
        );
    }
}

#[tokio::test]
async fn push_pull_and_delete_events_arrive_signed() {
    let rx = Receiver::start(200).await;
    let settings = format!(
        "[[webhooks]]\nurl = \"{}\"\nevents = [\"push\", \"pull\", \"delete\"]\nsecret = \"s3cret\"\n",
        rx.url
    );
    let reg = Reg::with_settings(&settings).await;
    let (d, manifest) = reg.push_image("team/app", "v1", "one").await;
    let r = reg.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg.call("DELETE", "/v2/team/app/manifests/v1", ADMIN).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let got = rx.wait_for(3).await;
    let mut events: Vec<Value> = Vec::new();
    for g in &got {
        let sig = g.header("x-everlock-signature-256").unwrap();
        assert_eq!(sig, crate::webhooks::signature("s3cret", &g.body));
        assert_eq!(g.header("content-type"), Some("application/json"));
        assert!(g.header("x-everlock-delivery").is_some());
        events.push(serde_json::from_slice(&g.body).unwrap());
    }
    events.sort_by_key(|e| e["timestamp"].as_str().unwrap().to_owned());
    let push = events.iter().find(|e| e["action"] == "push").unwrap();
    assert_eq!(push["repository"], "team/app");
    assert_eq!(push["tag"], "v1");
    assert_eq!(push["digest"], d.as_str());
    assert_eq!(push["media_type"], OCI_MANIFEST);
    assert_eq!(push["size"], manifest.len());
    assert_eq!(push["actor"], "alice");
    assert_eq!(push["instance"], "default");
    let pull = events.iter().find(|e| e["action"] == "pull").unwrap();
    assert_eq!(pull["actor"], "bob");
    assert_eq!(pull["digest"], d.as_str());
    let delete = events.iter().find(|e| e["action"] == "delete").unwrap();
    assert_eq!(delete["tag"], "v1");
    assert_eq!(delete["actor"], "admin");
    // Delivered entries leave the queue.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = reg.store().await.list("_webhooks/queue/").await.unwrap();
    assert!(queued.is_empty(), "{queued:?}");
}

#[tokio::test]
async fn a_failing_receiver_keeps_the_delivery_queued_and_gets_it_again() {
    let rx = Receiver::start(500).await;
    let settings = format!("[[webhooks]]\nurl = \"{}\"\nevents = [\"push\"]\n", rx.url);
    let reg = Reg::with_settings(&settings).await;
    reg.push_image("app", "v1", "one").await;
    let first = rx.wait_for(1).await;
    assert!(
        first[0].header("x-everlock-signature-256").is_none(),
        "no secret, no signature"
    );
    // The failure is recorded in the stored queue entry.
    let store = reg.store().await;
    let mut queued = Vec::new();
    for _ in 0..100 {
        queued = store.list("_webhooks/queue/").await.unwrap();
        let q: Value = serde_json::from_slice(&store.read(&queued[0].path).await.unwrap()).unwrap();
        if q["attempts"] == 1 {
            assert_eq!(q["last_error"], "HTTP 500");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(queued.len(), 1);
    // The retry (after a one-second backoff) succeeds and empties the queue.
    *rx.status.lock().unwrap() = 200;
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body, "the same delivery again");
    for _ in 0..100 {
        if store.list("_webhooks/queue/").await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the delivered entry stayed queued");
}
