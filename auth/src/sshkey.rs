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

    /// One key of each other supported type, made with `ssh-keygen -t ecdsa -b 256|384|521`
    /// and `ssh-keygen -t rsa -b 2048`, with the fingerprints `ssh-keygen -l` printed.
    const OTHER_KEYS: [(&str, &str); 4] = [
        (
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB0Lz2bxoie71wxqiGcJS6Q3OFlJilZh8nhV5p+tHCSbdg0z0henyPz4Z3pWRkwvAJ+8IX/hD3zlx8oXzT8pxno= k@p256",
            "SHA256:2qtKkWE8AFoyvgWoNq2tG6Jg0OYA3O/HFCqjvswOBEY",
        ),
        (
            "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBKGNW7f9ykirM1tNKNEvwlAf2Epme/oXzfLVfU0sOgfLs4lWfIaxHT0LMr+AdomefKRamH17gUbIdJTTCDP7jqNMVWyo7XrYo/wIwSKY5tK/tlX2wX4LCMPxiDkeck5t0Q== k@p384",
            "SHA256:YewH9o6f/WBdnBwa9shtsU8HNtCGv+e2VCjB3oRUFJU",
        ),
        (
            "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBADrr/YX3ySpA4/t+fvkJbTfV27VzKRno7+TYSeYZoDYhNgvk/sB1N80dSjnsM4dY7iMsI4fYF034DsY35ogci/16wBKzGGUpXc022CuH0RSpmtsihoqHH++pyx9V/fKqkmowQ0l/wfHsFWe5nGftdvOsSL/1OAGdM5Yvt0fbi3q5sCqvg== k@p521",
            "SHA256:A5v2qgHkbfoxSuzOOse4OgVplD3i0r18sd76wbgDuZI",
        ),
        (
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCFbAUCz/N59vix/QIg6ehiI2HiEX4XSd47/qnjjSbQluZ4ZeleEkwf5/MSQ2CFzWDUw08Oek7tVrOa8vijNoGi90W4IJ/LCj9jkI4liCbZQvU41DEqqn2IRc75eHvNJGPZB47QTHeR0SVMzX22KWUL/77R7S51PT/E6S5o0G8S7TK4TpZLJ5wMYhAP9ps9Y9ugK5ApJV4aVx1tUOdg1IghSFPQzq9pqI0UeMjbDnFAOVR5HRhjOKI1szvqnN95ZUA5dumScBXwW9poYAzq//e3FoRcW1OTFQyUFlULkILpMEFRlLDCYCZs4b8lBjkgDMLzDRcSHUV/KmmoXxe/+S/r k@rsa",
            "SHA256:Ch38GftHQAOdR5vtyRFA5W9FZtEP4UtsOdgl3h3opKA",
        ),
    ];

    #[test]
    fn parses_ecdsa_and_rsa_keys() {
        for (line, fingerprint) in OTHER_KEYS {
            let k: SshPublicKey = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(k.fingerprint(), fingerprint);
            let algorithm = line.split(' ').next().unwrap();
            assert!(k.openssh().starts_with(algorithm), "{}", k.openssh());
            // Stored and reloaded (TOML) the key stays the same key.
            let again: SshPublicKey = k.openssh().parse().unwrap();
            assert!(k.same_key(&again));
        }
        let (p256, _) = OTHER_KEYS[0];
        let (p384, _) = OTHER_KEYS[1];
        assert!(
            !p256
                .parse::<SshPublicKey>()
                .unwrap()
                .same_key(&p384.parse().unwrap())
        );
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
