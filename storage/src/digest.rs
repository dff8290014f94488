//! Hash newtypes: object ids (blake3), OCI digests (sha256, sha512) and commit ids.

use std::fmt;
use std::str::FromStr;

use crate::error::StorageError;

macro_rules! hex_newtype {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) [u8; $len]);

        impl $name {
            /// The raw hash bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Wraps raw hash bytes.
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Lowercase hex, as used in file names and on the command line.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Reads a value stored as a blob column, rejecting a wrong length as corruption.
            #[allow(dead_code, reason = "not every hash type is stored in a blob column")]
            pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self, StorageError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| {
                    StorageError::Corrupt(format!("{} of {} bytes", $what, bytes.len()))
                })?;
                Ok(Self(arr))
            }
        }

        impl FromStr for $name {
            type Err = StorageError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).map_err(|e| {
                    StorageError::invalid($what, format!("{s:?} is not {} hex digits: {e}", $len * 2))
                })?;
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
    };
}

hex_newtype!(
    /// The blake3 hash of an object's bytes: its name on disk and in the metadata.
    ObjectId,
    32,
    "object id"
);
hex_newtype!(
    /// A sha256 digest, the OCI content address.
    Sha256,
    32,
    "sha256 digest"
);
hex_newtype!(
    /// A sha512 digest, computed only when a caller asks for it.
    Sha512,
    64,
    "sha512 digest"
);
hex_newtype!(
    /// A commit id: the blake3 hash of the commit's canonical record, which includes the parent
    /// id, so the ids form a hash chain.
    CommitId,
    32,
    "commit id"
);

/// A digest a caller announces before staging content, checked once the stream ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Digest {
    /// Expect this blake3 hash.
    Blake3(ObjectId),
    /// Expect this sha256 digest (the usual OCI case).
    Sha256(Sha256),
    /// Expect this sha512 digest; asking for it turns on sha512 hashing.
    Sha512(Sha512),
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Blake3(d) => write!(f, "blake3:{d}"),
            Digest::Sha256(d) => write!(f, "sha256:{d}"),
            Digest::Sha512(d) => write!(f, "sha512:{d}"),
        }
    }
}

impl FromStr for Digest {
    type Err = StorageError;

    /// Parses the OCI `algorithm:hex` form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("sha256", h)) => Ok(Digest::Sha256(h.parse()?)),
            Some(("sha512", h)) => Ok(Digest::Sha512(h.parse()?)),
            Some(("blake3", h)) => Ok(Digest::Blake3(h.parse()?)),
            _ => Err(StorageError::invalid(
                "digest",
                format!("{s:?} is not sha256:, sha512: or blake3:"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = ObjectId(*blake3::hash(b"x").as_bytes());
        assert_eq!(id.to_hex().parse::<ObjectId>().unwrap(), id);
        assert!("zz".parse::<ObjectId>().is_err());
        assert!(ObjectId::from_slice(&[0; 3]).is_err());
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
        assert!("md5:00".parse::<Digest>().is_err());
    }
}
