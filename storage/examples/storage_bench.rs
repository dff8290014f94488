//! Storage benchmark driver, run by `bench/storage/run.sh` (one mode per process, so that the
//! peak RSS it reports belongs to that mode alone).
//!
//! Modes:
//! - `ceiling-inline <bytes> <dir>`: the machine's ingest ceiling on one thread: hash with
//!   blake3 and sha256 (64 KiB updates), write, `fdatasync`, `link`, directory `fsync`.
//! - `ceiling-threaded <bytes> <dir>`: the same with hashing on a second thread.
//! - `ceiling-writeback <bytes> <dir>`: threaded, and writeback started every 16 MiB (the
//!   trick `stage` uses), so the final `fdatasync` only waits for the tail.
//! - `stage <bytes> <dir>`: `Store::stage` of the same stream, then a commit.
//! - `small <count> <dir>`: sequential small durable commits (`Store::write`, 100 bytes).
//! - `small-parallel <count> <dir>`: the same from 8 concurrent tasks.
//! - `small-sync <count> <dir>`: sequential small commits through `Store::commit_blocking`.
//!
//! Every mode streams the same pseudo-random data (random data matters: zeros skew disk and
//! hash timings) and prints one `key=value` line.

use std::error::Error;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use everlock_storage::{CommitMeta, Op, Store};
use sha2::Digest as _;
use tokio::io::{AsyncRead, ReadBuf};

type Res<T> = Result<T, Box<dyn Error>>;

const POOL: usize = 8 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;
const PIECE: usize = 64 * 1024;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(n), Some(dir)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: storage_bench <mode> <bytes|count> <dir>".into());
    };
    let n: u64 = n.parse()?;
    let dir = PathBuf::from(dir);
    fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let detail = match mode.as_str() {
        "ceiling-inline" => ceiling(n, &dir, false, false)?,
        "ceiling-threaded" => ceiling(n, &dir, true, false)?,
        "ceiling-writeback" => ceiling(n, &dir, true, true)?,
        "stage" => stage(n, &dir)?,
        "small" => small(n, &dir, 1)?,
        "small-parallel" => small(n, &dir, 8)?,
        "small-sync" => small_sync(n, &dir)?,
        other => return Err(format!("unknown mode {other}").into()),
    };
    let secs = started.elapsed().as_secs_f64();
    let rate = if mode.starts_with("small") {
        format!("commits_per_sec={:.0}", n as f64 / secs)
    } else {
        format!("gb_per_sec={:.3}", n as f64 / secs / 1e9)
    };
    println!(
        "mode={mode} n={n} secs={secs:.3} {rate} peak_rss_kib={} {detail}",
        vm_hwm_kib()?
    );
    Ok(())
}

/// Deterministic pseudo-random bytes, seeded per run so repeated runs never dedupe.
fn pool() -> Arc<Vec<u8>> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut v = Vec::with_capacity(POOL);
    while v.len() < POOL {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    Arc::new(v)
}

/// An endless cycle over the pool, cut at `remaining` bytes.
struct Source {
    pool: Arc<Vec<u8>>,
    pos: usize,
    remaining: u64,
}

impl Source {
    fn fill(&mut self, out: &mut [u8]) -> usize {
        let want = out
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < want {
            let avail = self.pool.get(self.pos..).unwrap_or_default();
            let n = avail.len().min(want - done);
            if let (Some(dst), Some(src)) = (out.get_mut(done..done + n), avail.get(..n)) {
                dst.copy_from_slice(src);
            }
            done += n;
            self.pos = (self.pos + n) % self.pool.len();
        }
        self.remaining -= done as u64;
        done
    }
}

impl AsyncRead for Source {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

struct Hashers {
    blake3: blake3::Hasher,
    sha256: sha2::Sha256,
}

impl Hashers {
    fn update(&mut self, data: &[u8]) {
        for piece in data.chunks(PIECE) {
            self.blake3.update(piece);
            self.sha256.update(piece);
        }
    }

    fn finish(self) -> String {
        format!(
            "blake3={} sha256={}",
            self.blake3.finalize().to_hex(),
            hex::encode(self.sha256.finalize())
        )
    }
}

fn ceiling(bytes: u64, dir: &Path, threaded: bool, writeback: bool) -> Res<String> {
    let mut src = Source {
        pool: pool(),
        pos: 0,
        remaining: bytes,
    };
    let tmp = dir.join("ceiling.tmp");
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let mut hashers = Hashers {
        blake3: blake3::Hasher::new(),
        sha256: sha2::Sha256::new(),
    };
    let digests = if threaded {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(4);
        let (mut written, mut flushed) = (0u64, 0u64);
        let hasher = std::thread::spawn(move || {
            for chunk in rx {
                hashers.update(&chunk);
            }
            hashers.finish()
        });
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = src.fill(&mut buf);
            if n == 0 {
                break;
            }
            buf.truncate(n);
            let chunk = Arc::new(buf);
            tx.send(chunk.clone())?;
            file.write_all(&chunk)?;
            written += n as u64;
            if writeback && written - flushed >= 16 * 1024 * 1024 {
                let len = std::num::NonZeroU64::new(written - flushed);
                rustix::fs::fadvise(&file, flushed, len, rustix::fs::Advice::DontNeed)?;
                flushed = written;
            }
        }
        drop(tx);
        hasher.join().map_err(|_| "hasher thread panicked")?
    } else {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = src.fill(&mut buf);
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            hashers.update(chunk);
            file.write_all(chunk)?;
        }
        hashers.finish()
    };
    file.sync_data()?;
    fs::create_dir_all(dir.join("objects"))?;
    let target = dir.join("objects").join("ceiling");
    fs::hard_link(&tmp, &target)?;
    fs::remove_file(&tmp)?;
    File::open(dir.join("objects"))?.sync_all()?;
    Ok(digests)
}

fn stage(bytes: u64, dir: &Path) -> Res<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Store::open_dir(dir.join("store")).await?;
        let src = Source {
            pool: pool(),
            pos: 0,
            remaining: bytes,
        };
        let obj = store.stage(src, None).await?;
        store
            .commit(
                vec![Op::Put {
                    path: "blob".into(),
                    object: obj.clone(),
                }],
                vec![],
                CommitMeta::new("bench", "1 GiB"),
            )
            .await?;
        Ok(format!("blake3={} sha256={}", obj.id, obj.sha256))
    })
}

fn small(count: u64, dir: &Path, tasks: u64) -> Res<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Store::open_dir(dir.join("store")).await?;
        let mut handles = Vec::new();
        for t in 0..tasks {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..count / tasks {
                    let body = format!("{t}-{i}-{}", "x".repeat(90)).into_bytes();
                    store
                        .write(
                            &format!("tags/{t}/{i}"),
                            body,
                            CommitMeta::new("bench", "small"),
                        )
                        .await?;
                }
                Ok::<_, everlock_storage::StorageError>(())
            }));
        }
        for h in handles {
            h.await??;
        }
        let head = store.head().await?.map_or(0, |c| c.seq);
        Ok(format!("tasks={tasks} commits={head}"))
    })
}

/// Sequential small commits without the async layer, to separate SQLite and fsync costs from
/// the thread hand-offs of the async API.
fn small_sync(count: u64, dir: &Path) -> Res<String> {
    let store = Store::open_dir_blocking(&dir.join("store"))?;
    for i in 0..count {
        let body = format!("{i}-{}", "x".repeat(90)).into_bytes();
        let op = Op::PutBytes {
            path: format!("tags/{i}"),
            bytes: body,
        };
        store.commit_blocking(vec![op], &[], &CommitMeta::new("bench", "small"))?;
    }
    Ok("tasks=1 api=blocking".into())
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn vm_hwm_kib() -> Res<u64> {
    let status = fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}
