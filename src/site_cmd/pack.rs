//! Packing a site directory for `everlock site deploy`: listing and hashing its files and
//! writing the tar.gz that is streamed to the server.
//!
//! The archive is a multi-member gzip stream: each file's member is compressed at a level that
//! suits its content, so images, fonts and archives (compressed already) are stored, not
//! compressed a second time for nothing. The server's reader takes multi-member gzip as one
//! stream.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use indicatif::ProgressBar;

/// The archive name of the manifest entry of an incremental upload (the server takes the first
/// entry as the manifest whatever its name; the name is for people reading the archive).
pub(super) const MANIFEST_ENTRY: &str = ".everlock-deploy-manifest.json";

/// One file to pack: its path on disk and its name in the archive.
#[derive(Debug)]
pub(super) struct FileToPack {
    pub(super) disk: PathBuf,
    pub(super) name: String,
    pub(super) size: u64,
}

/// Lists the regular files under `dir` with their archive names; links are refused because the
/// server refuses them too, and it is better to say so before uploading anything.
pub(super) fn collect(dir: &Path) -> anyhow::Result<Vec<FileToPack>> {
    let meta = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((disk, name)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&disk)
            .with_context(|| format!("cannot list {}", disk.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot list {}", disk.display()))?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                bail!("{} has a name that is not UTF-8", entry.path().display());
            };
            let archive_name = if name.is_empty() {
                file_name.to_owned()
            } else {
                format!("{name}/{file_name}")
            };
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            if kind.is_symlink() {
                bail!(
                    "{} is a symbolic link; sites hold regular files only",
                    entry.path().display()
                );
            } else if kind.is_dir() {
                stack.push((entry.path(), archive_name));
            } else if kind.is_file() {
                let size = entry
                    .metadata()
                    .with_context(|| format!("cannot stat {}", entry.path().display()))?
                    .len();
                out.push(FileToPack {
                    disk: entry.path(),
                    name: archive_name,
                    size,
                });
            } else {
                bail!("{} is not a regular file", entry.path().display());
            }
        }
    }
    Ok(out)
}

/// Extensions of formats that are compressed already: gzip would spend CPU for nothing.
const INCOMPRESSIBLE: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "avif", "heic", "ico", "woff", "woff2", "gz", "tgz", "br",
    "zst", "xz", "bz2", "zip", "7z", "rar", "jar", "mp3", "mp4", "m4a", "m4v", "mov", "webm",
    "ogg", "ogv", "opus", "flac", "pdf", "wasm.gz",
];

/// Whether a file's name says its content is compressed already.
pub(super) fn incompressible(name: &str) -> bool {
    let name = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| INCOMPRESSIBLE.contains(&ext))
}

/// The blake3 hash of each file (the server names contents by it), in hex.
pub(super) fn hash_files(files: &[FileToPack]) -> anyhow::Result<Vec<String>> {
    files
        .iter()
        .map(|f| {
            let mut hasher = blake3::Hasher::new();
            let file = fs::File::open(&f.disk)
                .with_context(|| format!("cannot open {}", f.disk.display()))?;
            hasher
                .update_reader(file)
                .with_context(|| format!("cannot read {}", f.disk.display()))?;
            Ok(hasher.finalize().to_hex().to_string())
        })
        .collect()
}

/// A gzip stream made of members, each compressed at its own level.
struct Members<W: Write> {
    encoder: Option<GzEncoder<W>>,
    level: Compression,
}

impl<W: Write> Members<W> {
    fn new(writer: W) -> Members<W> {
        let level = Compression::fast();
        Members {
            encoder: Some(GzEncoder::new(writer, level)),
            level,
        }
    }

    /// Ends the current member and starts one at `level` (if it differs).
    fn set_level(&mut self, level: Compression) -> io::Result<()> {
        if level == self.level {
            return Ok(());
        }
        let writer = self.take()?.finish()?;
        self.encoder = Some(GzEncoder::new(writer, level));
        self.level = level;
        Ok(())
    }

    fn take(&mut self) -> io::Result<GzEncoder<W>> {
        self.encoder
            .take()
            .ok_or_else(|| io::Error::other("the archive was already finished"))
    }

    fn finish(mut self) -> io::Result<W> {
        self.take()?.finish()
    }
}

impl<W: Write> Write for Members<W> {
    #[allow(
        clippy::disallowed_methods,
        reason = "forwards one write; the count it returns tells the caller about short writes"
    )]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Some(e) => e.write(buf),
            None => Err(io::Error::other("the archive was already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Some(e) => e.flush(),
            None => Ok(()),
        }
    }
}

/// Writes the tar.gz of `files` (after the manifest entry, if any) into `writer`; on failure
/// the error also goes down the channel, so the upload is cut short instead of looking
/// complete.
pub(super) fn pack(
    manifest: Option<Vec<u8>>,
    files: Vec<FileToPack>,
    writer: ChannelWriter,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let tx = writer.tx.clone();
    let result = (|| -> anyhow::Result<()> {
        let mut builder = tar::Builder::new(Members::new(writer));
        builder.mode(tar::HeaderMode::Deterministic);
        if let Some(manifest) = manifest {
            let mut header = regular(manifest.len() as u64);
            builder
                .append_data(&mut header, MANIFEST_ENTRY, &manifest[..])
                .context("cannot pack the manifest")?;
        }
        for file in files {
            let level = if incompressible(&file.name) {
                Compression::none()
            } else {
                Compression::fast()
            };
            builder.get_mut().set_level(level)?;
            let handle = fs::File::open(&file.disk)
                .with_context(|| format!("cannot open {}", file.disk.display()))?;
            let mut header = regular(file.size);
            let reader = Counting {
                inner: handle.take(file.size),
                bar: bar.clone(),
            };
            builder
                .append_data(&mut header, &file.name, reader)
                .with_context(|| format!("cannot pack {}", file.disk.display()))?;
        }
        let members = builder.into_inner().context("cannot finish the archive")?;
        members
            .finish()
            .context("cannot finish the archive")?
            .flush()?;
        Ok(())
    })();
    if let Err(e) = &result {
        let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
    }
    result
}

fn regular(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Counts bytes read into the progress bar.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A `Write` that sends what it receives to the request body.
pub(super) struct ChannelWriter {
    pub(super) tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the server closed the upload")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_formats_are_recognised() {
        assert!(incompressible("img/logo.PNG"));
        assert!(incompressible("fonts/a.woff2"));
        assert!(!incompressible("index.html"));
        assert!(!incompressible("noext"));
    }

    /// Members at different levels read back as one stream, and a stored member of random
    /// bytes costs (almost) nothing beyond the bytes themselves.
    #[test]
    fn members_form_one_gzip_stream() {
        let mut m = Members::new(Vec::new());
        m.write_all(&b"text ".repeat(1000)).unwrap();
        m.set_level(Compression::none()).unwrap();
        let mut noise = vec![0u8; 100_000];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        m.write_all(&noise).unwrap();
        let out = m.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back.len(), 5000 + noise.len());
        assert!(out.len() < noise.len() + 1000, "{}", out.len());
    }
}
