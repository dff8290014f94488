//! The archive side of a deploy: walks a tar or tar.gz stream on a blocking thread and hands
//! each regular file, chunk by chunk, to a [`Sink`].
//!
//! Memory stays bounded whatever the archive says about itself. The `tar` crate's ordinary
//! iterator buffers GNU long-name/long-link and PAX extension entries whole before it yields
//! the entry they describe, so a 2 MB tar.gz declaring a 2 GiB long name used to grow the
//! server by gigabytes. The walk therefore iterates *raw* entries and handles those metadata
//! entries itself, refusing any over [`MAX_META`] before reading a byte of it. Every byte the
//! decompressor produces (headers and padding included) counts against `max-deploy-bytes`,
//! on top of the request bytes, so a gzip bomb stops at the same limit as a big upload.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read};

use bytes::Bytes;

use super::DeployError;
use super::links::{DEPLOY_LINK_BYTES, Link, LinkScanner};

/// The longest path accepted inside an archive, in bytes.
const MAX_PATH: usize = 1024;
/// The sum of all path lengths in one archive. Paths are the one part of an archive the
/// deploy keeps in memory for its whole duration (several times: seen sets, staged objects,
/// commit operations), so they get a budget of their own.
const MAX_PATHS_TOTAL: u64 = 16 * 1024 * 1024;
/// The largest metadata entry (GNU long name or link, PAX extended header) accepted. Real
/// ones hold a path or a few attributes; anything bigger is an attack on memory.
pub(super) const MAX_META: u64 = 64 * 1024;
/// Chunk size for moving file bytes from the archive thread to the store.
const CHUNK: usize = 64 * 1024;
/// The bytes of each Markdown page kept to check its front matter.
pub(super) const PAGE_HEAD: u64 = 8 * 1024;
/// All page heads together (4,096 pages' worth).
const HEADS_TOTAL: u64 = 32 * 1024 * 1024;
/// Files the deploy keeps in memory for validation (site.toml, layouts, `_redirects`,
/// `_headers`), at most this big.
const VALIDATE_MAX: u64 = 1024 * 1024;
/// All the files kept for validation together: without it, an archive of many 1 MiB layouts
/// (well within `max-deploy-bytes`) would be held in memory whole.
const VALIDATE_TOTAL: u64 = 4 * 1024 * 1024;

/// The deploy limits from the site's settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// `max-deploy-bytes`: request bytes, decompressed bytes and file bytes each stay below.
    pub(super) max_bytes: u64,
    /// `max-deploy-files`: files and directories together.
    pub(super) max_files: u64,
    /// Keep `site.toml` and layouts for validation (Markdown sites).
    pub(super) validate: bool,
}

/// Where the walk sends regular files.
pub(super) trait Sink {
    /// A regular file named `path` starts; the chunks that follow until the next `start` (or
    /// the end of the walk) are its content.
    fn start(&mut self, path: &str) -> Result<(), DeployError>;
    /// The next chunk of the current file.
    fn chunk(&mut self, chunk: Bytes) -> Result<(), DeployError>;
    /// Reading the current file failed; the walk returns an error right after this.
    fn abort(&mut self, error: &io::Error);
}

/// What the archive walk collected besides the files it sent to the sink.
#[derive(Debug, Default)]
pub(super) struct Walked {
    /// The first [`PAGE_HEAD`] bytes of Markdown pages, for their front matter.
    pub(super) heads: BTreeMap<String, Vec<u8>>,
    /// Small files kept for validation (`site.toml`, `layouts/*.html`).
    pub(super) validate: BTreeMap<String, Vec<u8>>,
    /// The internal link targets of every uploaded Markdown page, read from the whole page.
    pub(super) links: BTreeMap<String, Vec<Link>>,
    /// The link target bytes the deploy may still keep (see [`DEPLOY_LINK_BYTES`]).
    pub(super) link_room: u64,
}

/// The metadata entries that describe the next real entry.
#[derive(Debug, Default)]
struct Pending {
    /// A GNU long name (`L`), trailing NULs removed.
    long_name: Option<Vec<u8>>,
    /// Whether a GNU long link (`K`) was seen (links are refused anyway).
    long_link: bool,
    /// The `path` record of a PAX local header (`x`).
    pax_path: Option<Vec<u8>>,
    /// The `size` record of a PAX local header.
    pax_size: Option<u64>,
    /// Whether a PAX local header was seen.
    pax: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && !self.long_link && !self.pax
    }
}

/// Running totals of the walk.
#[derive(Debug, Default)]
struct Totals {
    entries: u64,
    file_bytes: u64,
    path_bytes: u64,
    kept_bytes: u64,
    head_bytes: u64,
}

/// Walks the archive in `reader`, sending each regular file to `sink`.
pub(super) fn walk<'a, R: Read + 'a>(
    reader: R,
    limits: Limits,
    sink: &mut impl Sink,
) -> Result<Walked, DeployError> {
    let mut archive = tar::Archive::new(decompressed(reader, limits)?);
    let mut pending = Pending::default();
    let mut totals = Totals::default();
    let mut seen_files = BTreeSet::new();
    let mut seen_dirs = BTreeSet::new();
    let mut walked = Walked {
        link_room: DEPLOY_LINK_BYTES,
        ..Walked::default()
    };
    for entry in archive.entries().map_err(read_error)?.raw(true) {
        let mut entry = entry.map_err(read_error)?;
        let kind = entry.header().entry_type();
        if absorb_meta(&mut entry, kind, &mut pending)? {
            continue;
        }
        let Some(path) = entry_path(&entry, std::mem::take(&mut pending))? else {
            continue;
        };
        count_entry(&mut totals, &path, limits)?;
        if kind.is_dir() {
            seen_dirs.insert(path);
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "{path:?} is {}; only regular files and directories are accepted",
                describe_kind(kind)
            )));
        }
        take_file(&mut entry, &path, limits, &mut totals, &mut walked, sink)?;
        seen_files.insert(path);
    }
    if !pending.is_empty() {
        return Err(bad(
            "the archive ends with a long-name or PAX header that describes no entry",
        ));
    }
    check_file_dir_clash(&seen_files, &seen_dirs)?;
    Ok(walked)
}

/// The cleaned path of an entry: a GNU long name or PAX path from the metadata entries before
/// it, else its header's; `None` for the archive root (`./`).
fn entry_path<R: Read>(
    entry: &tar::Entry<'_, R>,
    meta: Pending,
) -> Result<Option<String>, DeployError> {
    if meta.pax_size.is_some_and(|s| s != entry.size()) {
        // The tar crate frames raw entries by the header's size; a PAX size that disagrees
        // would make this archive mean something else to other tools, so refuse it.
        return Err(bad("a PAX size record disagrees with its header's size"));
    }
    let raw_path = match meta.long_name.or(meta.pax_path) {
        Some(p) => p,
        None => entry.path_bytes().into_owned(),
    };
    clean_path(&raw_path)
}

/// Streams one regular file into the sink within the deploy's limits, keeping what validation
/// needs: the whole of `site.toml`, `_redirects`, `_headers` and layouts, a Markdown page's
/// head (its front matter) and the internal links of the whole page.
fn take_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &str,
    limits: Limits,
    totals: &mut Totals,
    walked: &mut Walked,
    sink: &mut impl Sink,
) -> Result<(), DeployError> {
    let size = entry.size();
    totals.file_bytes = totals.file_bytes.saturating_add(size);
    if totals.file_bytes > limits.max_bytes {
        return Err(unpacks_too_large(limits));
    }
    let keep = super::kept_for_validation(path, limits.validate);
    if keep {
        totals.kept_bytes = totals.kept_bytes.saturating_add(size);
        if size > VALIDATE_MAX || totals.kept_bytes > VALIDATE_TOTAL {
            return Err(DeployError::TooLarge(format!(
                "{path} is too large: site.toml, _redirects, _headers and each layout may hold {VALIDATE_MAX} \
                 bytes, all of them together {VALIDATE_TOTAL}"
            )));
        }
    }
    sink.start(path)?;
    // A page's head holds its front matter; heads are kept within their own budget, so
    // a site of very many pages has only its first pages' front matter checked.
    let page = limits.validate && !keep && path.ends_with(".md");
    let head = page && totals.head_bytes + PAGE_HEAD <= HEADS_TOTAL;
    let limit = if keep {
        Some(u64::MAX)
    } else {
        head.then_some(PAGE_HEAD)
    };
    // Links are extracted from the whole page as it streams, within the deploy's budget.
    let mut scanner = page.then(|| LinkScanner::new(walked.link_room));
    let kept = copy_file(entry, sink, limit, scanner.as_mut())?;
    if let Some(scanner) = scanner {
        let (links, used) = scanner.finish();
        walked.link_room = walked.link_room.saturating_sub(used);
        walked.links.insert(path.to_owned(), links);
    }
    if let Some(kept) = kept {
        if head {
            totals.head_bytes += kept.len() as u64;
            walked.heads.insert(path.to_owned(), kept);
        } else {
            walked.validate.insert(path.to_owned(), kept);
        }
    }
    Ok(())
}

/// The decompressed archive stream: request bytes are counted (the body may have no
/// `Content-Length`), gzip is detected by its magic bytes, and the bytes that come out are
/// counted again, so a small request that inflates enormously stops at the same limit.
fn decompressed<'a, R: Read + 'a>(
    reader: R,
    limits: Limits,
) -> Result<Counted<Box<dyn Read + 'a>>, DeployError> {
    let request = Counted {
        inner: reader,
        read: 0,
        max: limits.max_bytes,
        what: "archive larger than",
    };
    let mut buffered = BufReader::with_capacity(CHUNK, request);
    let gzip = buffered
        .fill_buf()
        .map_err(read_error)?
        .starts_with(&[0x1f, 0x8b]);
    let source: Box<dyn Read + 'a> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    Ok(Counted {
        inner: source,
        read: 0,
        max: limits.max_bytes,
        what: "the archive unpacks to more than",
    })
}

/// Handles a metadata entry (GNU `L`/`K`, PAX `x`/`g`): refuses it if it declares more than
/// [`MAX_META`] bytes, before reading any of it, else reads it and records what it says about
/// the next entry. Returns whether `entry` was such an entry.
fn absorb_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    kind: tar::EntryType,
    pending: &mut Pending,
) -> Result<bool, DeployError> {
    let what = match kind {
        tar::EntryType::GNULongName => "a GNU long-name entry",
        tar::EntryType::GNULongLink => "a GNU long-link entry",
        tar::EntryType::XHeader => "a PAX extended header",
        tar::EntryType::XGlobalHeader => "a PAX global header",
        _ => return Ok(false),
    };
    let size = entry.size();
    if size > MAX_META {
        return Err(DeployError::TooLarge(format!(
            "{what} declares {size} bytes; archive metadata entries are limited to {MAX_META} bytes"
        )));
    }
    // The size was checked above, so this reads at most MAX_META bytes.
    let mut data = Vec::new();
    entry.read_to_end(&mut data).map_err(read_error)?;
    match kind {
        tar::EntryType::GNULongName => {
            if pending.long_name.is_some() {
                return Err(bad("two long-name entries describe the same entry"));
            }
            while data.last() == Some(&0) {
                data.pop();
            }
            pending.long_name = Some(data);
        }
        tar::EntryType::GNULongLink => pending.long_link = true,
        tar::EntryType::XHeader => {
            if pending.pax {
                return Err(bad("two PAX headers describe the same entry"));
            }
            pending.pax = true;
            read_pax(&data, pending)?;
        }
        // Global headers (git archive writes one holding the commit id) set defaults for the
        // whole archive that a site does not use: ownership, times, comments.
        _ => {}
    }
    Ok(true)
}

/// Reads the records of a PAX local header that matter here.
fn read_pax(data: &[u8], pending: &mut Pending) -> Result<(), DeployError> {
    for record in tar::PaxExtensions::new(data) {
        let record = record.map_err(|e| bad(format!("a PAX header is malformed: {e}")))?;
        match record.key_bytes() {
            b"path" => pending.pax_path = Some(record.value_bytes().to_vec()),
            b"size" => {
                let size = record
                    .value()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| bad("a PAX size record is not a number"))?;
                pending.pax_size = Some(size);
            }
            key if key.starts_with(b"GNU.sparse.") => {
                return Err(bad("sparse files are not accepted"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Counts one file or directory against the entry and path budgets.
fn count_entry(totals: &mut Totals, path: &str, limits: Limits) -> Result<(), DeployError> {
    totals.entries += 1;
    if totals.entries > limits.max_files {
        return Err(DeployError::TooLarge(format!(
            "the archive holds more than {} files and directories",
            limits.max_files
        )));
    }
    totals.path_bytes = totals.path_bytes.saturating_add(path.len() as u64);
    if totals.path_bytes > MAX_PATHS_TOTAL {
        return Err(DeployError::TooLarge(format!(
            "the archive's paths add up to more than {MAX_PATHS_TOTAL} bytes"
        )));
    }
    Ok(())
}

/// Copies one file's content to the sink; returns up to `keep` bytes of it too when asked.
fn copy_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    sink: &mut impl Sink,
    keep: Option<u64>,
    mut links: Option<&mut LinkScanner>,
) -> Result<Option<Vec<u8>>, DeployError> {
    let mut kept = keep.map(|_| Vec::new());
    let limit = usize::try_from(keep.unwrap_or(0)).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                sink.abort(&e);
                return Err(read_error(e));
            }
        };
        let chunk = Bytes::copy_from_slice(buf.get(..n).unwrap_or(&[]));
        if let Some(kept) = kept.as_mut() {
            let room = limit.saturating_sub(kept.len()).min(chunk.len());
            kept.extend_from_slice(chunk.get(..room).unwrap_or(&[]));
        }
        if let Some(links) = links.as_mut() {
            links.feed(&chunk);
        }
        sink.chunk(chunk)?;
    }
    Ok(kept)
}

/// A path cannot be both a file and a directory: the site would be ambiguous.
fn check_file_dir_clash(
    files: &BTreeSet<String>,
    dirs: &BTreeSet<String>,
) -> Result<(), DeployError> {
    for file in files {
        let dir_prefix = format!("{file}/");
        if dirs.contains(file)
            || files
                .range(dir_prefix.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&dir_prefix))
        {
            return Err(bad(format!("{file:?} is both a file and a directory")));
        }
    }
    Ok(())
}

fn describe_kind(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "a symbolic link",
        tar::EntryType::Link => "a hard link",
        tar::EntryType::Char | tar::EntryType::Block => "a device file",
        tar::EntryType::Fifo => "a FIFO",
        tar::EntryType::GNUSparse => "a sparse file",
        _ => "an unsupported entry type",
    }
}

/// Turns an archive path into a store key: relative, no `..`, no empty segments; `./` prefixes
/// and the root directory entry are dropped (`None`).
pub(super) fn clean_path(raw: &[u8]) -> Result<Option<String>, DeployError> {
    let text = std::str::from_utf8(raw).map_err(|_| bad("an archive path is not UTF-8"))?;
    if text.starts_with('/') || text.contains('\\') || text.contains('\0') {
        return Err(bad(format!("{text:?} is an absolute or unsafe path")));
    }
    if text.len() > MAX_PATH {
        return Err(bad(format!("a path is longer than {MAX_PATH} bytes")));
    }
    let mut segments = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(bad(format!("{text:?} contains `..`"))),
            s if s.chars().any(char::is_control) => {
                return Err(bad(format!("{text:?} contains a control character")));
            }
            s => segments.push(s),
        }
    }
    Ok((!segments.is_empty()).then(|| segments.join("/")))
}

fn bad(message: impl Into<String>) -> DeployError {
    DeployError::BadArchive(message.into())
}

fn unpacks_too_large(limits: Limits) -> DeployError {
    DeployError::TooLarge(format!(
        "the archive unpacks to more than the {}-byte limit",
        limits.max_bytes
    ))
}

fn read_error(e: io::Error) -> DeployError {
    if e.kind() == io::ErrorKind::FileTooLarge {
        DeployError::TooLarge(e.to_string())
    } else {
        bad(format!("cannot read the archive: {e}"))
    }
}

/// Counts bytes read and stops past the limit.
struct Counted<R> {
    inner: R,
    read: u64,
    max: u64,
    /// The start of the error message (`"… the N-byte limit"` follows).
    what: &'static str,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.max {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("{} the {}-byte limit", self.what, self.max),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
