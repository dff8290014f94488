//! Archive bombs against the deploy endpoint: metadata entries declaring gigabytes and gzip
//! streams that inflate past `max-deploy-bytes`. Each is refused with 413 and the process's
//! peak memory grows by less than 128 MiB.
//!
//! This file holds a single test on purpose: peak RSS is per process, and a test binary runs
//! its tests in parallel threads of one process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::io::Write;

use common::{TestSite, basic, collect, tar};
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, StatusCode};

const MIB: u64 = 1024 * 1024;
/// The most a deploy may grow the process by (issue #10: any deploy under 128 MiB).
const MAX_GROWTH: u64 = 128 * MIB;

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `total` bytes of `byte` as concatenated gzip members (one 1 MiB member compressed once and
/// repeated), so gigabytes inflate from about a kilobyte per MiB without compressing them here.
fn inflating(byte: u8, total: u64) -> Vec<u8> {
    let member = gz(&vec![byte; MIB as usize]);
    let mut out = Vec::with_capacity(member.len() * (total / MIB) as usize);
    for _ in 0..total / MIB {
        out.extend_from_slice(&member);
    }
    out
}

/// A tar header of `kind` declaring `size` bytes.
fn header(name: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A tar.gz whose first entry is `kind` declaring and holding `size` bytes, followed by an
/// ordinary file: the shape of the archive that drove the server to 4.4 GB.
fn bomb(kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut body = gz(&header("././@LongLink", kind, size));
    body.extend_from_slice(&inflating(b'a', size));
    body.extend_from_slice(&gz(&tar(&[("index.html", b"x")])));
    body
}

/// A kibibyte figure from `/proc/self/status`.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Runs a deploy of `body` and returns its status, message and the growth of peak RSS.
async fn deploy_measured(s: &TestSite, body: Vec<u8>) -> (StatusCode, String, u64) {
    let req = Request::put("/.well-known/everlock/deploy")
        .header("host", "site.example")
        .header("authorization", basic("will", "will-pw"))
        .body(Body::from(body))
        .unwrap();
    let before = status_kib("VmRSS:") * 1024;
    // Resetting the high-water mark (Linux ≥ 4.0) makes VmHWM this deploy's own peak; where it
    // is not allowed, the older peak only makes the measured growth larger, never smaller.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (r, bytes) = collect(s.send(req).await).await;
    let peak = status_kib("VmHWM:") * 1024;
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let message = json["error"].as_str().unwrap_or_default().to_owned();
    (r.status(), message, peak.saturating_sub(before))
}

#[tokio::test]
async fn archive_bombs_are_refused_in_bounded_memory() {
    // A limit far above the bombs, so only the metadata check can stop them.
    let s = TestSite::new("bombs", "max-deploy-bytes = 17179869184", false).await;
    let cases = [
        (tar::EntryType::GNULongName, "GNU long-name entry"),
        (tar::EntryType::GNULongLink, "GNU long-link entry"),
        (tar::EntryType::XHeader, "PAX extended header"),
        (tar::EntryType::XGlobalHeader, "PAX global header"),
    ];
    for (kind, what) in cases {
        let body = bomb(kind, 2 << 30);
        assert!(
            body.len() < 4 * MIB as usize,
            "{what}: {} bytes",
            body.len()
        );
        let (status, message, growth) = deploy_measured(&s, body).await;
        eprintln!(
            "{what} declaring 2 GiB: {status}, peak RSS +{} KiB",
            growth / 1024
        );
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{what}: {message}");
        assert!(
            message.contains(what) && message.contains("65536"),
            "{message}"
        );
        assert!(growth < MAX_GROWTH, "{what}: grew by {growth} bytes");
    }

    // A gzip bomb whose bytes hide outside any file (a directory entry carrying 1 GiB): no
    // declared file size reveals it, only counting what the decompressor produces does.
    let small = TestSite::new("gzip", "max-deploy-bytes = 67108864", false).await;
    let mut body = gz(&header("dir/", tar::EntryType::Directory, 1 << 30));
    body.extend_from_slice(&inflating(0, 1 << 30));
    body.extend_from_slice(&gz(&tar(&[("index.html", b"x")])));
    assert!(body.len() < 2 * MIB as usize);
    let (status, message, growth) = deploy_measured(&small, body).await;
    eprintln!(
        "gzip bomb inflating to 1 GiB: {status}, peak RSS +{} KiB",
        growth / 1024
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{message}");
    assert!(message.contains("unpacks to more than"), "{message}");
    assert!(growth < MAX_GROWTH, "grew by {growth} bytes");

    // A file that inflates past the limit is refused from its declared size.
    let mut body = gz(&header("zeros.bin", tar::EntryType::Regular, 1 << 30));
    body.extend_from_slice(&inflating(0, 1 << 30));
    let (status, message, growth) = deploy_measured(&small, body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{message}");
    assert!(growth < MAX_GROWTH, "grew by {growth} bytes");

    // Nothing was committed, and an ordinary deploy still works.
    assert_eq!(s.get("/", &[]).await.0.status(), StatusCode::NOT_FOUND);
    let (status, message, _) = deploy_measured(&s, gz(&tar(&[("index.html", b"ok")]))).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(s.get("/", &[]).await.1, b"ok");
}
