//! On-the-fly compression (issue #16 item 3): a compressible representation without
//! precompressed sidecars is compressed once per content hash and coding, on the blocking pool,
//! and the result is kept in a cache bounded by bytes, so a busy page costs one compression and
//! then a hash-map lookup per request.
//!
//! The cache key is the content's blake3 hash (the store's object id, or the hash of a rendered
//! page), so a new deploy can never be served an old compression. Concurrent first requests for
//! one key share one compression. Compressions that do not save at least an eighth are
//! remembered as "not worth it" and the identity representation is served.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::OnceCell;

use everlock_host::http::{HeaderMap, header};
use everlock_host::storage::StorageError;

use crate::http::encoding::{self, Coding};

/// Representations larger than this are served as they are stored (or from their sidecars):
/// compressing them would hold the whole input and output in memory.
pub const MAX_INPUT: u64 = 8 * 1024 * 1024;
/// Below this size the coding's framing eats the gain.
pub const MIN_INPUT: u64 = 256;
/// The bytes the cache may hold (compressed bodies plus a small per-entry overhead).
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// What an entry costs besides its body: it keeps "not worth it" entries bounded too.
const ENTRY_OVERHEAD: usize = 128;

/// Brotli quality: 9 is within a few percent of 11 at a tenth of the time; the result is
/// cached, so the one-time cost matters less than the ratio.
const BROTLI_QUALITY: i32 = 9;
/// Zstandard level: a good ratio that still compresses tens of MB/s.
const ZSTD_LEVEL: i32 = 12;
/// Gzip level.
const GZIP_LEVEL: u32 = 9;

/// Whether a content type is worth compressing: text, JavaScript, JSON, XML, SVG, WebAssembly
/// and uncompressed fonts. Images, archives and media are compressed already.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/manifest+json"
                | "font/ttf"
                | "font/otf"
                | "application/vnd.ms-fontobject"
        )
}

/// The cache key: a content hash and the coding.
type Key = ([u8; 32], Coding);

/// One cached compression; `None` when compressing did not pay.
type Cell = Arc<OnceCell<Option<Bytes>>>;

#[derive(Debug)]
struct Slot {
    cell: Cell,
    /// The bytes this slot was charged once filled (0 while compressing).
    charged: usize,
}

#[derive(Debug, Default)]
struct State {
    bytes: usize,
    map: HashMap<Key, Slot>,
    /// Insertion order, for first-in-first-out eviction.
    order: VecDeque<Key>,
}

/// A byte-bounded cache of compressed bodies, shared by a site's requests.
#[derive(Debug)]
pub struct CompressCache {
    budget: usize,
    state: Mutex<State>,
}

impl Default for CompressCache {
    fn default() -> CompressCache {
        CompressCache::new(CACHE_BYTES)
    }
}

impl CompressCache {
    /// An empty cache holding at most `budget` bytes.
    pub fn new(budget: usize) -> CompressCache {
        CompressCache {
            budget,
            state: Mutex::new(State::default()),
        }
    }

    /// The bytes currently charged (tests and metrics).
    pub fn charged(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The compressed body of the content with hash `hash` in `coding`, compressing it (once,
    /// whatever the concurrency) from what `load` returns on a miss. `Ok(None)`: not worth it.
    pub async fn get<F, Fut, E>(
        &self,
        hash: [u8; 32],
        coding: Coding,
        load: F,
    ) -> Result<Option<Bytes>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<io::Error>,
    {
        let key = (hash, coding);
        let cell = {
            let mut state = self.lock();
            let State { map, order, .. } = &mut *state;
            map.entry(key)
                .or_insert_with(|| {
                    order.push_back(key);
                    Slot {
                        cell: Arc::new(OnceCell::new()),
                        charged: 0,
                    }
                })
                .cell
                .clone()
        };
        let mut filled = false;
        let value = cell
            .get_or_try_init(|| async {
                let input = load().await?;
                let out = tokio::task::spawn_blocking(move || compress_if_smaller(coding, &input))
                    .await
                    .map_err(io::Error::other)??;
                filled = true;
                Ok::<_, E>(out)
            })
            .await?
            .clone();
        if filled {
            self.charge(key, &cell, value.as_ref().map_or(0, Bytes::len));
        }
        Ok(value)
    }

    /// Charges a freshly filled slot (if it is still cached) and evicts the oldest entries
    /// until the cache fits its budget again.
    fn charge(&self, key: Key, cell: &Cell, len: usize) {
        let mut state = self.lock();
        let cost = len + ENTRY_OVERHEAD;
        match state.map.get_mut(&key) {
            Some(slot) if Arc::ptr_eq(&slot.cell, cell) => slot.charged = cost,
            _ => return,
        }
        state.bytes += cost;
        while state.bytes > self.budget {
            let Some(old) = state.order.pop_front() else {
                break;
            };
            if let Some(slot) = state.map.remove(&old) {
                state.bytes = state.bytes.saturating_sub(slot.charged);
            }
        }
    }
}

/// Compresses `input`, or `None` when the result would not be at least an eighth smaller.
fn compress_if_smaller(coding: Coding, input: &[u8]) -> io::Result<Option<Bytes>> {
    let out = compress(coding, input)?;
    Ok((out.len() < input.len() - input.len() / 8).then(|| Bytes::from(out)))
}

/// Compresses `input` in one go.
pub fn compress(coding: Coding, input: &[u8]) -> io::Result<Vec<u8>> {
    match coding {
        Coding::Br => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                ..Default::default()
            };
            let mut out = Vec::with_capacity(input.len() / 3);
            brotli::BrotliCompress(&mut &input[..], &mut out, &params)?;
            Ok(out)
        }
        Coding::Zstd => zstd::bulk::compress(input, ZSTD_LEVEL),
        Coding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 3),
                flate2::Compression::new(GZIP_LEVEL),
            );
            enc.write_all(input)?;
            enc.finish()
        }
    }
}

/// Whether a body of this type and size gets compressed on the fly (and so varies by
/// `Accept-Encoding` even when served as it is).
pub(crate) fn compressible_size(content_type: &str, len: u64) -> bool {
    compressible(content_type) && (MIN_INPUT..=MAX_INPUT).contains(&len)
}

/// The compressed variant of a body the client may take compressed: none for a range request
/// (ranges address the identity bytes), an incompressible type, or a client that accepts no
/// coding; otherwise from the site's cache, compressing on a miss.
pub(crate) async fn on_the_fly<F, Fut>(
    cache: &CompressCache,
    req_headers: &HeaderMap,
    content_type: &str,
    hash: [u8; 32],
    len: u64,
    load: F,
) -> Result<Option<(Coding, Bytes)>, StorageError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Bytes, StorageError>>,
{
    if req_headers.contains_key(header::RANGE) || !compressible_size(content_type, len) {
        return Ok(None);
    }
    let accept = req_headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let Some(coding) = encoding::choose(accept, &Coding::ALL) else {
        return Ok(None);
    };
    let bytes = cache.get(hash, coding, load).await?;
    Ok(bytes.map(|b| (coding, b)))
}

/// A compressed variant's strong ETag: the identity ETag with the coding inside the quotes, so
/// the variants never share a validator.
pub(crate) fn coded_etag(etag: &str, coding: Coding) -> String {
    format!("{}-{}\"", etag.trim_end_matches('"'), coding.token())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn text(n: usize) -> Bytes {
        Bytes::from("<p>compressible text, repeated</p>\n".repeat(n))
    }

    #[test]
    fn every_coding_round_trips() {
        let input = text(100);
        let br = compress(Coding::Br, &input).unwrap();
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, input);
        let zs = compress(Coding::Zstd, &input).unwrap();
        assert_eq!(zstd::bulk::decompress(&zs, input.len()).unwrap(), input);
        let gz = compress(Coding::Gzip, &input).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, input);
    }

    #[test]
    fn types() {
        assert!(compressible("text/html; charset=utf-8"));
        assert!(compressible("application/json"));
        assert!(compressible("image/svg+xml"));
        assert!(!compressible("image/png"));
        assert!(!compressible("application/octet-stream"));
        assert!(!compressible("font/woff2"));
    }

    #[tokio::test]
    async fn compresses_once_per_hash_and_coding() {
        let cache = CompressCache::default();
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, io::Error>(text(100))
        };
        let a = cache.get([1; 32], Coding::Br, load).await.unwrap().unwrap();
        let b = cache.get([1; 32], Coding::Br, load).await.unwrap().unwrap();
        assert_eq!(a, b);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        cache
            .get([1; 32], Coding::Gzip, load)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn incompressible_content_is_remembered_as_not_worth_it() {
        let cache = CompressCache::default();
        let mut noise = vec![0u8; 4096];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        let noise = Bytes::from(noise);
        let got = cache
            .get([2; 32], Coding::Gzip, || async {
                Ok::<_, io::Error>(noise.clone())
            })
            .await
            .unwrap();
        assert_eq!(got, None);
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_budget() {
        let cache = CompressCache::new(4096);
        for i in 0..200u8 {
            let mut hash = [0; 32];
            hash[0] = i;
            cache
                .get(hash, Coding::Gzip, || async {
                    Ok::<_, io::Error>(text(200))
                })
                .await
                .unwrap();
            assert!(cache.charged() <= 4096, "{} bytes", cache.charged());
        }
        assert!(cache.lock().map.len() < 200);
    }
}
