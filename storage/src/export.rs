//! Export of a store's history as a `git fast-import` stream, for inspection with git tools.
//!
//! Git is never a source of truth here (reference/storage.md §8): the export is read-only and
//! can be regenerated at any time. Each store commit becomes one git commit, in seq order, with an
//! `Everlock-Commit:` trailer naming the store commit. The commits go to `HEAD` by default:
//! fast-import follows the symbolic ref, so they land on whatever branch the importing
//! repository's HEAD names (`master`, `main`, ...) and `git log` shows them in a fresh one.
//! Content above a size threshold, and purged content, is exported as a small pointer text so
//! that the export stays small.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use crate::digest::ObjectId;
use crate::error::{Result, StorageError};
use crate::meta::MetaRead;
use crate::objects::ObjectBackend;
use crate::record::{Record, RecordOp};
use crate::store::inner::Inner;

/// Options of `Store::export`.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Content larger than this is exported as an LFS-style pointer (`oid sha256:…`, `size N`).
    pub max_blob: u64,
    /// The ref to write: `HEAD` (the default) for the importing repository's current branch,
    /// or a full ref such as `refs/heads/everlock`.
    pub branch: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            max_blob: 1024 * 1024,
            branch: "HEAD".into(),
        }
    }
}

pub(crate) fn export(inner: &Inner, out: &mut dyn Write, opts: &ExportOptions) -> Result<()> {
    inner.snapshot(|meta| {
        let mut walk = Walk {
            inner,
            meta,
            opts,
            purged: meta.purged_versions()?.into_iter().collect(),
            marks: HashMap::new(),
            next_mark: 1,
        };
        meta.for_each_commit(&mut |row| walk.commit(out, row.seq, &row.record))?;
        out.flush()?;
        Ok(())
    })
}

/// The export's state while it walks the commits of one metadata snapshot.
struct Walk<'a> {
    inner: &'a Inner,
    meta: &'a dyn MetaRead,
    opts: &'a ExportOptions,
    /// Purged versions as `(path, seq)`.
    purged: HashSet<(String, u64)>,
    /// The blob mark of every object already written, and whether it was a purged pointer.
    marks: HashMap<(ObjectId, bool), u64>,
    next_mark: u64,
}

impl Walk<'_> {
    /// Writes one store commit as a git commit, with the blobs it introduces first.
    fn commit(&mut self, out: &mut dyn Write, seq: u64, bytes: &[u8]) -> Result<()> {
        let record = Record::decode(bytes)?;
        let mut files = Vec::new();
        for op in &record.ops {
            match op {
                RecordOp::Put {
                    path,
                    object,
                    size,
                    sha256,
                } => {
                    let is_purged = self.purged.contains(&(path.clone(), seq));
                    let mark = self.blob(out, *object, *size, *sha256, is_purged)?;
                    files.push(format!("M 100644 :{mark} {}\n", quote(path)));
                }
                RecordOp::Delete { path } => files.push(format!("D {}\n", quote(path))),
                RecordOp::Purge { .. } => {}
            }
        }
        let id = crate::record::id_of(bytes);
        let name = sanitize(&record.principal);
        let email = name.replace(' ', "-");
        let secs = record.time_ms.div_euclid(1000);
        writeln!(out, "commit {}", self.opts.branch)?;
        writeln!(out, "committer {name} <{email}@everlock> {secs} +0000")?;
        let message = format!(
            "{}\n\nEverlock-Commit: {id}\nEverlock-Seq: {seq}\n",
            record.message.trim_end()
        );
        write_data(out, message.as_bytes())?;
        for line in files {
            out.write_all(line.as_bytes())?;
        }
        out.write_all(b"\n")?;
        Ok(())
    }

    /// The mark of an object's blob, writing the blob the first time it is needed.
    fn blob(
        &mut self,
        out: &mut dyn Write,
        object: ObjectId,
        size: u64,
        sha256: crate::digest::Sha256,
        is_purged: bool,
    ) -> Result<u64> {
        let key = (object, is_purged);
        if let Some(m) = self.marks.get(&key) {
            return Ok(*m);
        }
        let mark = self.next_mark;
        self.next_mark += 1;
        writeln!(out, "blob\nmark :{mark}")?;
        if is_purged {
            let text = format!("everlock: content purged\noid sha256:{sha256}\nsize {size}\n");
            write_data(out, text.as_bytes())?;
        } else if size > self.opts.max_blob {
            let text = format!(
                "version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
            );
            write_data(out, text.as_bytes())?;
        } else {
            write_object(self.inner, self.meta, out, &object, size)?;
        }
        self.marks.insert(key, mark);
        Ok(mark)
    }
}

fn write_data(out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    writeln!(out, "data {}", bytes.len())?;
    out.write_all(bytes)?;
    out.write_all(b"\n")
}

/// Streams an object as a `data` block without loading it into memory.
fn write_object(
    inner: &Inner,
    meta: &dyn MetaRead,
    out: &mut dyn Write,
    id: &ObjectId,
    size: u64,
) -> Result<()> {
    if let Some(bytes) = meta.inline_bytes(id)? {
        return Ok(write_data(out, &bytes)?);
    }
    writeln!(out, "data {size}")?;
    let file = inner.objects.open(id)?;
    // The length was promised up front, so a file of another length must abort the export
    // rather than desynchronise the stream.
    let copied = io::copy(&mut file.take(size), out)?;
    if copied != size {
        return Err(StorageError::Corrupt(format!(
            "object {id} is {copied} bytes, expected {size}"
        )));
    }
    out.write_all(b"\n")?;
    Ok(())
}

/// Quotes a path for fast-import when it starts with `"` (control characters never occur in
/// store paths, and spaces are fine unquoted in `M` and `D` lines).
fn quote(path: &str) -> String {
    if !path.starts_with('"') {
        return path.to_owned();
    }
    let mut q = String::with_capacity(path.len() + 2);
    q.push('"');
    for c in path.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// A committer name git accepts: no angle brackets or newlines, never empty.
fn sanitize(principal: &str) -> String {
    let s: String = principal
        .chars()
        .map(|c| {
            if c == '<' || c == '>' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let s = s.trim().to_owned();
    if s.is_empty() { "unknown".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_names() {
        assert_eq!(quote("a b/c"), "a b/c");
        assert_eq!(quote("\"x\\y"), "\"\\\"x\\\\y\"");
        assert_eq!(sanitize("<evil>\nname"), "_evil__name");
        assert_eq!(sanitize("  "), "unknown");
    }
}
