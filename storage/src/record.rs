//! The canonical commit record, whose blake3 hash is the commit id.
//!
//! The record is a small line-based text so that an auditor can read it with `sqlite3`. Free
//! text (principal, message, paths) is length-prefixed, so no value can forge a line boundary,
//! which keeps the encoding injective: two different commits never share a record.
//!
//! ```text
//! everlock-commit 1
//! seq 7
//! parent <64 hex> | -
//! time <unix ms>
//! principal <len> <text>
//! message <len> <text>
//! put <len> <path> <blake3 hex> <size> <sha256 hex>
//! delete <len> <path>
//! purge <len> <path> <version>
//! ```

use crate::digest::{CommitId, ObjectId, Sha256};
use crate::error::{Result, StorageError};

const MAGIC: &str = "everlock-commit 1";

/// One operation as recorded in the commit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordOp {
    /// The path now holds this content.
    Put {
        path: String,
        object: ObjectId,
        size: u64,
        sha256: Sha256,
    },
    /// The path was deleted.
    Delete { path: String },
    /// Retention purged the content of `path` at `version`.
    Purge { path: String, version: u64 },
}

/// A decoded commit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) parent: Option<CommitId>,
    pub(crate) time_ms: i64,
    pub(crate) principal: String,
    pub(crate) message: String,
    pub(crate) ops: Vec<RecordOp>,
}

impl Record {
    /// The canonical bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        out.push_str(MAGIC);
        out.push('\n');
        out.push_str(&format!("seq {}\n", self.seq));
        match &self.parent {
            Some(p) => out.push_str(&format!("parent {p}\n")),
            None => out.push_str("parent -\n"),
        }
        out.push_str(&format!("time {}\n", self.time_ms));
        out.push_str(&format!(
            "principal {} {}\n",
            self.principal.len(),
            self.principal
        ));
        out.push_str(&format!(
            "message {} {}\n",
            self.message.len(),
            self.message
        ));
        for op in &self.ops {
            match op {
                RecordOp::Put {
                    path,
                    object,
                    size,
                    sha256,
                } => {
                    out.push_str(&format!(
                        "put {} {path} {object} {size} {sha256}\n",
                        path.len()
                    ));
                }
                RecordOp::Delete { path } => {
                    out.push_str(&format!("delete {} {path}\n", path.len()))
                }
                RecordOp::Purge { path, version } => {
                    out.push_str(&format!("purge {} {path} {version}\n", path.len()));
                }
            }
        }
        out.into_bytes()
    }

    /// The id of this record: blake3 of the canonical bytes.
    #[cfg(test)]
    pub(crate) fn id(&self) -> CommitId {
        id_of(&self.encode())
    }

    /// Parses canonical bytes; anything else is reported as corruption.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|_| corrupt("record is not UTF-8"))?;
        let mut p = Parser { rest: text };
        p.literal(MAGIC)?;
        p.literal("\nseq ")?;
        let seq = p.number()?;
        p.literal("\nparent ")?;
        let parent_text = p.word()?;
        let parent = if parent_text == "-" {
            None
        } else {
            Some(parent_text.parse()?)
        };
        p.literal("\ntime ")?;
        let time_ms = p.word()?.parse::<i64>().map_err(|_| corrupt("bad time"))?;
        p.literal("\nprincipal ")?;
        let principal = p.counted()?.to_owned();
        p.literal("\nmessage ")?;
        let message = p.counted()?.to_owned();
        p.literal("\n")?;
        let mut ops = Vec::new();
        while !p.rest.is_empty() {
            let kind = p.word()?;
            p.literal(" ")?;
            let path = p.counted()?.to_owned();
            let op = match kind {
                "put" => {
                    p.literal(" ")?;
                    let object = p.word()?.parse()?;
                    p.literal(" ")?;
                    let size = p.number()?;
                    p.literal(" ")?;
                    let sha256 = p.word()?.parse()?;
                    RecordOp::Put {
                        path,
                        object,
                        size,
                        sha256,
                    }
                }
                "delete" => RecordOp::Delete { path },
                "purge" => {
                    p.literal(" ")?;
                    RecordOp::Purge {
                        path,
                        version: p.number()?,
                    }
                }
                other => return Err(corrupt(&format!("unknown operation {other:?}"))),
            };
            p.literal("\n")?;
            ops.push(op);
        }
        let record = Record {
            seq,
            parent,
            time_ms,
            principal,
            message,
            ops,
        };
        // Re-encoding must give the same bytes, otherwise two byte strings would decode to one
        // record (for example a number written with a leading zero).
        if record.encode() != bytes {
            return Err(corrupt("record is not in canonical form"));
        }
        Ok(record)
    }
}

/// The commit id of canonical record bytes.
pub(crate) fn id_of(bytes: &[u8]) -> CommitId {
    CommitId(*blake3::hash(bytes).as_bytes())
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("commit record: {what}"))
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn literal(&mut self, lit: &str) -> Result<()> {
        self.rest = self
            .rest
            .strip_prefix(lit)
            .ok_or_else(|| corrupt(&format!("expected {lit:?}")))?;
        Ok(())
    }

    /// Text up to the next space or newline.
    fn word(&mut self) -> Result<&'a str> {
        let end = self.rest.find([' ', '\n']).unwrap_or(self.rest.len());
        let (word, rest) = self
            .rest
            .split_at_checked(end)
            .ok_or_else(|| corrupt("bad word"))?;
        self.rest = rest;
        Ok(word)
    }

    fn number(&mut self) -> Result<u64> {
        self.word()?
            .parse::<u64>()
            .map_err(|_| corrupt("bad number"))
    }

    /// `<len> <text>`, where text is exactly `len` bytes and may contain anything.
    fn counted(&mut self) -> Result<&'a str> {
        let len = usize::try_from(self.number()?).map_err(|_| corrupt("bad length"))?;
        self.literal(" ")?;
        let (text, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or_else(|| corrupt("length out of range"))?;
        self.rest = rest;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            seq: 2,
            parent: Some(CommitId([7; 32])),
            time_ms: 1_700_000_000_123,
            principal: "alice".into(),
            message: "multi\nline message put 3 x".into(),
            ops: vec![
                RecordOp::Put {
                    path: "a b/c".into(),
                    object: ObjectId([1; 32]),
                    size: 5,
                    sha256: Sha256([2; 32]),
                },
                RecordOp::Delete { path: "d".into() },
                RecordOp::Purge {
                    path: "e".into(),
                    version: 1,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), r);
        let first = Record {
            parent: None,
            ops: vec![],
            ..r
        };
        assert_eq!(Record::decode(&first.encode()).unwrap(), first);
    }

    #[test]
    fn id_depends_on_parent_and_every_field() {
        let r = sample();
        let other_parent = Record {
            parent: Some(CommitId([8; 32])),
            ..r.clone()
        };
        let other_msg = Record {
            message: "x".into(),
            ..r.clone()
        };
        assert_ne!(r.id(), other_parent.id());
        assert_ne!(r.id(), other_msg.id());
    }

    #[test]
    fn rejects_tampered_bytes() {
        let mut bytes = sample().encode();
        assert!(Record::decode(&bytes[..bytes.len() - 1]).is_err());
        bytes.extend_from_slice(b"junk\n");
        assert!(Record::decode(&bytes).is_err());
        let zero = String::from_utf8(sample().encode())
            .unwrap()
            .replace("seq 2", "seq 02");
        assert!(Record::decode(zero.as_bytes()).is_err());
    }
}
