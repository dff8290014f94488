//! Password hashing with bcrypt's non-truncating API, and generated passwords.
//!
//! Plain bcrypt silently ignores everything after byte 72, so two long passwords sharing a
//! prefix would both verify. The non-truncating functions reject such passwords instead.

use base64::Engine as _;

use crate::error::{AuthError, PasswordTooShort};

/// The longest password bcrypt verifies in full: its 72-byte input includes the terminating
/// NUL byte, so 71 bytes of password.
pub const MAX_PASSWORD_BYTES: usize = 71;

/// The shortest password a user may choose unless the operator configures another minimum:
/// eight characters, NIST SP 800-63B's floor for passwords a person picks.
pub const DEFAULT_MIN_PASSWORD_CHARS: usize = 8;

/// Refuses a new password of fewer than `min` characters (Unicode scalar values, so a
/// passphrase in any script counts what the user typed, not its UTF-8 bytes). Only new
/// passwords are checked: existing ones keep working when the minimum is raised.
pub fn check_min_length(password: &str, min: usize) -> Result<(), PasswordTooShort> {
    if password.chars().count() < min {
        Err(PasswordTooShort { min })
    } else {
        Ok(())
    }
}

/// Rejects passwords bcrypt cannot take whole.
pub(crate) fn validate(password: &str) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::InvalidPassword("empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidPassword(
            "longer than 71 bytes, which bcrypt cannot verify in full",
        ));
    }
    Ok(())
}

/// Hashes a validated password. CPU-heavy: call it on the blocking pool.
pub(crate) fn hash(password: &str, cost: u32) -> Result<String, AuthError> {
    validate(password)?;
    bcrypt::non_truncating_hash(password, cost).map_err(|e| AuthError::Hash(e.to_string()))
}

/// Verifies `password` against `hash`; any error (including an over-long password) is a
/// mismatch. CPU-heavy: call it on the blocking pool.
pub(crate) fn verify(password: &str, hash: &str) -> bool {
    bcrypt::non_truncating_verify(password, hash).unwrap_or(false)
}

/// A random password of 24 URL-safe characters (144 bits).
pub(crate) fn generate() -> Result<String, AuthError> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_verifies_without_truncation() {
        let h = hash("correct horse", 4).unwrap();
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        let longest = "x".repeat(MAX_PASSWORD_BYTES);
        let h = hash(&longest, 4).unwrap();
        assert!(verify(&longest, &h));
        // A longer password sharing the prefix must not verify (plain bcrypt would say yes),
        // and cannot be set.
        assert!(!verify(&format!("{longest}y"), &h));
        assert!(!verify(&format!("{longest}yyyyyyyyyy"), &h));
        assert!(matches!(
            hash(&"x".repeat(72), 4),
            Err(AuthError::InvalidPassword(_))
        ));
        assert!(matches!(
            hash(&"x".repeat(100), 4),
            Err(AuthError::InvalidPassword(_))
        ));
        assert!(hash("", 4).is_err());
        assert!(!verify("x", "not a bcrypt hash"));
    }

    #[test]
    fn minimum_length_counts_characters() {
        assert_eq!(
            check_min_length("x", DEFAULT_MIN_PASSWORD_CHARS),
            Err(PasswordTooShort { min: 8 })
        );
        assert!(check_min_length("1234567", 8).is_err());
        assert!(check_min_length("12345678", 8).is_ok());
        // Eight characters of two bytes each: counted as eight, not sixteen, and seven of
        // them as seven.
        assert!(check_min_length(&"é".repeat(8), 8).is_ok());
        assert!(check_min_length(&"é".repeat(7), 8).is_err());
        assert!(check_min_length("", 0).is_ok());
        assert_eq!(
            PasswordTooShort { min: 12 }.to_string(),
            "password too short: use at least 12 characters"
        );
    }

    #[test]
    fn generated_passwords_are_random_and_valid() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        validate(&a).unwrap();
    }
}
