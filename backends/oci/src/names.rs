//! The OCI grammars: repository names, tags and digests (reference/oci.md §3), validated by
//! hand so that every malformed value gets a precise error instead of reaching the store.

use std::fmt;

use everlock_host::storage::{Digest as StoreDigest, Sha256, Sha512};
use sha2::Digest as _;

/// Clients cap `host[:port]/name` at 255 characters; we cap the name itself there.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// A validated repository name such as `team/app`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Name(String);

impl Name {
    /// Checks `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
    pub(crate) fn parse(s: &str) -> Option<Name> {
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return None;
        }
        s.split('/')
            .all(valid_name_component)
            .then(|| Name(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `/`-separated component: alphanumeric runs joined by `.`, `_`, `__` or any run of `-`.
fn valid_name_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or `-+`, always followed by an alphanumeric.
        let run_end = bytes
            .iter()
            .skip(i)
            .position(|&x| alnum(x))
            .map_or(bytes.len(), |p| i + p);
        let sep = c.get(i..run_end).unwrap_or("");
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
        i = run_end;
    }
    true
}

/// A validated tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tag(String);

impl Tag {
    pub(crate) fn parse(s: &str) -> Option<Tag> {
        let mut bytes = s.bytes();
        let first = bytes.next()?;
        let ok = (first.is_ascii_alphanumeric() || first == b'_')
            && s.len() <= 128
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Tag(s.to_owned()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digest algorithms this registry verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// Why a digest string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestError {
    /// Not `algorithm:encoded` per the descriptor grammar.
    Malformed,
    /// Well-formed, but an algorithm we do not verify.
    Unsupported,
}

/// A validated `sha256:<64 hex>` or `sha512:<128 hex>` digest (lower-case hex only).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct OciDigest {
    alg: Algorithm,
    hex: String,
}

impl OciDigest {
    pub(crate) fn parse(s: &str) -> Result<OciDigest, DigestError> {
        let (alg, hex) = s.split_once(':').ok_or(DigestError::Malformed)?;
        let alg_ok = !alg.is_empty()
            && alg.split(['+', '.', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        let hex_ok = !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !alg_ok || !hex_ok {
            return Err(DigestError::Malformed);
        }
        let (alg, len) = match alg {
            "sha256" => (Algorithm::Sha256, 64),
            "sha512" => (Algorithm::Sha512, 128),
            _ => return Err(DigestError::Unsupported),
        };
        let lower_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != len || !lower_hex {
            return Err(DigestError::Malformed);
        }
        Ok(OciDigest {
            alg,
            hex: hex.to_owned(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub(crate) fn sha256_of(bytes: &[u8]) -> OciDigest {
        OciDigest {
            alg: Algorithm::Sha256,
            hex: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` with algorithm `alg`.
    pub(crate) fn of(alg: Algorithm, bytes: &[u8]) -> OciDigest {
        match alg {
            Algorithm::Sha256 => Self::sha256_of(bytes),
            Algorithm::Sha512 => OciDigest {
                alg,
                hex: hex::encode(sha2::Sha512::digest(bytes)),
            },
        }
    }

    pub(crate) fn alg(&self) -> Algorithm {
        self.alg
    }

    pub(crate) fn hex(&self) -> &str {
        &self.hex
    }

    /// The store's form of this digest, used to verify staged content.
    pub(crate) fn to_store(&self) -> Option<StoreDigest> {
        Some(match self.alg {
            Algorithm::Sha256 => StoreDigest::Sha256(self.hex.parse::<Sha256>().ok()?),
            Algorithm::Sha512 => StoreDigest::Sha512(self.hex.parse::<Sha512>().ok()?),
        })
    }

    /// `<alg>/<hex>`: the digest as two store path segments.
    pub(crate) fn path(&self) -> String {
        format!("{}/{}", self.alg.as_str(), self.hex)
    }
}

impl fmt::Display for OciDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg.as_str(), self.hex)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(Tag),
    Digest(OciDigest),
}

impl Reference {
    /// `Ok(None)` for something that is neither a valid tag nor digest-shaped (no `:`), which
    /// reads answer with 404 (the conformance suites ask exactly that).
    pub(crate) fn parse(s: &str) -> Result<Option<Reference>, DigestError> {
        if s.contains(':') {
            return OciDigest::parse(s).map(|d| Some(Reference::Digest(d)));
        }
        Ok(Tag::parse(s).map(Reference::Tag))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in [
            "a",
            "library/ubuntu",
            "a.b_c__d---e/f0",
            "x/y/z/w",
            "0",
            &"a".repeat(255),
        ] {
            assert!(Name::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a_.b",
            "a b",
            "a%2fb",
            "_catalog",
            "é",
            &"a".repeat(256),
        ] {
            assert!(Name::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests() {
        for ok in ["latest", "_x", "V1.2-rc_3", &"a".repeat(128)] {
            assert!(Tag::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129), "tag!"] {
            assert!(Tag::parse(bad).is_none(), "{bad}");
        }
        let good = format!("sha256:{}", "a".repeat(64));
        let d = OciDigest::parse(&good).unwrap();
        assert_eq!(d.to_string(), good);
        assert_eq!(d.path(), format!("sha256/{}", "a".repeat(64)));
        assert!(OciDigest::parse(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert_eq!(
            OciDigest::parse(&format!("sha256:{}", "A".repeat(64))),
            Err(DigestError::Malformed)
        );
        assert_eq!(
            OciDigest::parse("sha256:totallywrong"),
            Err(DigestError::Malformed)
        );
        assert_eq!(OciDigest::parse("md5:abcd"), Err(DigestError::Unsupported));
        for bad in [
            "",
            ":",
            "sha256",
            "sha256:",
            ":abc",
            "SHA256:aa",
            "sha256:a b",
        ] {
            assert_eq!(OciDigest::parse(bad), Err(DigestError::Malformed), "{bad}");
        }
        assert_eq!(
            OciDigest::sha256_of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Reference::parse(".INVALID_MANIFEST_NAME"), Ok(None));
        assert!(matches!(
            Reference::parse("latest"),
            Ok(Some(Reference::Tag(_)))
        ));
    }
}
