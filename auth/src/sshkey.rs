//! SSH public keys in OpenSSH `authorized_keys` form, identified by their SHA-256 fingerprint.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::AuthError;

/// A validated OpenSSH public key (`ssh-ed25519 AAAA... comment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPublicKey {
    /// The canonical `algorithm base64 [comment]` line.
    openssh: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    fingerprint: String,
    /// The key's wire encoding, for comparison with keys presented during SSH login.
    key_data: Vec<u8>,
}

impl SshPublicKey {
    /// The `SHA256:...` fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The OpenSSH line.
    pub fn openssh(&self) -> &str {
        &self.openssh
    }

    /// Whether `other` (an OpenSSH line or wire key from an SSH client) is the same key,
    /// ignoring comments.
    pub fn same_key(&self, other: &SshPublicKey) -> bool {
        self.key_data == other.key_data
    }
}

impl FromStr for SshPublicKey {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = ssh_key::PublicKey::from_openssh(s.trim())
            .map_err(|e| AuthError::InvalidKey(e.to_string()))?;
        let openssh = key
            .to_openssh()
            .map_err(|e| AuthError::InvalidKey(e.to_string()))?;
        let key_data = key
            .to_bytes()
            .map_err(|e| AuthError::InvalidKey(e.to_string()))?;
        let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
        Ok(SshPublicKey {
            openssh,
            fingerprint,
            key_data,
        })
    }
}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.openssh)
    }
}

impl Serialize for SshPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.openssh)
    }
}

impl<'de> Deserialize<'de> for SshPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ed25519 public key (generated with `ssh-keygen -t ed25519`).
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJtf9yq1AWzgOm/d3FQdwxmzUfbFCh3ppQ/Z8zU0Q6t alice@laptop";

    #[test]
    fn parses_and_fingerprints() {
        let k: SshPublicKey = KEY.parse().unwrap();
        assert!(
            k.fingerprint().starts_with("SHA256:"),
            "{}",
            k.fingerprint()
        );
        assert!(k.openssh().starts_with("ssh-ed25519 AAAA"));
        let without_comment: SshPublicKey = KEY.rsplit_once(' ').unwrap().0.parse().unwrap();
        assert!(k.same_key(&without_comment));
        assert_eq!(k.fingerprint(), without_comment.fingerprint());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-ed25519 !!!!",
            "not a key at all",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGJtf9yq1AWzgOm/d3FQdwxmzUfbFCh3ppQ/Z8zU0Q6t",
        ] {
            assert!(bad.parse::<SshPublicKey>().is_err(), "{bad:?}");
        }
    }
}
