//! Crash test: a child process stages and commits in a loop and is SIGKILLed at random
//! moments. After each kill the store must reopen, verify, hold every commit the child
//! reported, and show no partially written object.
//!
//! This binary is its own child: with `EVERLOCK_CRASH_CHILD=<dir>` it runs the writer loop.
//! It uses `harness = false` so the child needs no test-filter tricks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use everlock_storage::{CommitId, CommitMeta, ObjectId, Op, Store};

const KILLS: u32 = 120;
/// A fresh store every few kills keeps the verify cost (which re-hashes everything) bounded.
const KILLS_PER_STORE: u32 = 12;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}

fn main() {
    if let Ok(dir) = std::env::var("EVERLOCK_CRASH_CHILD") {
        child(Path::new(&dir));
        return;
    }
    let started = Instant::now();
    parent();
    println!(
        "crash test: {KILLS} kills in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("1 passed, 0 failed");
}

/// The writer loop: reports `done <commit> <path> <blake3>` after each durable commit.
fn child(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open_dir(dir).await.unwrap();
        let mut rng = Rng(seed());
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        for i in 0u64.. {
            let meta = CommitMeta::new("crash", format!("step {i}"));
            let mut report = Vec::new();
            match rng.below(4) {
                0 | 1 => {
                    // A streamed object, big enough to be killed mid-stream.
                    let len = 1 + rng.below(300_000) as usize;
                    let data = rng.bytes(len);
                    let obj = store.stage(&data[..], None).await.unwrap();
                    let path = format!("big/{}", rng.below(8));
                    report.push((path.clone(), obj.id));
                    let c = store
                        .commit(vec![Op::Put { path, object: obj }], vec![], meta)
                        .await
                        .unwrap();
                    print_done(&mut out, c.id, &report);
                }
                2 => {
                    let mut ops = Vec::new();
                    for k in 0..3 {
                        let len = rng.below(40) as usize;
                        let data = rng.bytes(len);
                        let path = format!("small/{}/{k}", rng.below(5));
                        report.push((
                            path.clone(),
                            ObjectId::from_bytes(*blake3::hash(&data).as_bytes()),
                        ));
                        ops.push(Op::PutBytes { path, bytes: data });
                    }
                    let c = store.commit(ops, vec![], meta).await.unwrap();
                    print_done(&mut out, c.id, &report);
                }
                _ => {
                    // Staged but never committed: an orphan the GC must collect later.
                    let len = rng.below(100_000) as usize;
                    let data = rng.bytes(len);
                    store.stage(&data[..], None).await.unwrap();
                }
            }
        }
    });
}

fn print_done(out: &mut impl Write, id: CommitId, report: &[(String, ObjectId)]) {
    // One write per commit: a pipe write below PIPE_BUF is atomic, so a kill never leaves a
    // torn line that the parent could misread.
    let mut line = String::new();
    for (path, object) in report {
        line.push_str(&format!("done {id} {path} {object}\n"));
    }
    out.write_all(line.as_bytes()).unwrap();
    out.flush().unwrap();
}

fn parent() {
    let exe = std::env::current_exe().unwrap();
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng(seed());
    let mut reported_total = 0usize;
    for kill in 0..KILLS {
        let dir = root.path().join(format!("s{}", kill / KILLS_PER_STORE));
        let mut child = Command::new(&exe)
            .env("EVERLOCK_CRASH_CHILD", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            "ready",
            "child did not start"
        );
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let done: Vec<(CommitId, String, ObjectId)> = rx
            .try_iter()
            .filter_map(|l| {
                let mut w = l.strip_prefix("done ")?.split(' ');
                Some((
                    w.next()?.parse().ok()?,
                    w.next()?.to_owned(),
                    w.next()?.parse().ok()?,
                ))
            })
            .collect();
        reported_total += done.len();
        rt.block_on(async {
            let store = Store::open_dir(&dir).await.expect("reopen after kill");
            assert_eq!(
                std::fs::read_dir(dir.join("tmp")).unwrap().count(),
                0,
                "tmp/ cleaned on open"
            );
            let report = store.verify().await.unwrap();
            assert!(
                report.is_ok(),
                "verify after kill {kill}: {:?}",
                report.problems
            );
            for (commit, path, object) in &done {
                store
                    .commit_info(*commit)
                    .await
                    .unwrap_or_else(|e| panic!("reported commit {commit} lost: {e}"));
                let bytes = store.read_at(path, *commit).await.unwrap();
                assert_eq!(
                    blake3::hash(&bytes).as_bytes(),
                    object.as_bytes(),
                    "{path} at {commit}"
                );
            }
        });
    }
    assert!(
        reported_total > KILLS as usize,
        "the child must get real work done between kills ({reported_total})"
    );
}
