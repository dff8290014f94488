//! Validation of store paths, list prefixes and store names.
//!
//! Paths are validated once at the API boundary so that the metadata never holds a path that
//! the git export, the prefix scan or a filesystem-minded caller would misread.

use crate::error::{Result, StorageError};

/// The longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Checks a path: non-empty `/`-separated segments, none empty, `.` or `..`, no control
/// characters, no leading or trailing `/`.
pub fn validate_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(StorageError::invalid("path", "empty"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(StorageError::invalid(
            "path",
            format!("longer than {MAX_PATH_LEN} bytes"),
        ));
    }
    check_chars("path", path)?;
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(StorageError::invalid(
                "path",
                format!("{path:?} has an empty, `.` or `..` segment"),
            ));
        }
    }
    Ok(())
}

/// Checks a list prefix: any string a path could start with (it may be empty or end in `/`).
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_PATH_LEN {
        return Err(StorageError::invalid(
            "prefix",
            format!("longer than {MAX_PATH_LEN} bytes"),
        ));
    }
    check_chars("prefix", prefix)
}

/// The exclusive upper bound of the paths that start with `prefix`, for an index range scan.
///
/// U+10FFFF is the largest code point and UTF-8 preserves code point order, so every path that
/// starts with `prefix` sorts below `prefix + U+10FFFF`: `check_chars` rejects U+10FFFF itself.
pub(crate) fn prefix_upper_bound(prefix: &str) -> String {
    let mut upper = String::with_capacity(prefix.len() + 4);
    upper.push_str(prefix);
    upper.push(char::MAX);
    upper
}

/// Checks a store name: 1 to 64 lowercase ASCII letters, digits and `-`.
pub fn validate_store_name(name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(StorageError::invalid(
            "store name",
            format!("{name:?}: use 1 to 64 lowercase letters, digits and `-`"),
        ));
    }
    Ok(())
}

fn check_chars(what: &'static str, s: &str) -> Result<()> {
    if let Some(c) = s.chars().find(|c| c.is_control() || *c == char::MAX) {
        return Err(StorageError::invalid(
            what,
            format!("{s:?} contains the character {c:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["a", "a/b", "blobs/sha256/ab", "é/ü", "a b"] {
            validate_path(ok).unwrap();
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/../b",
            "a\nb",
            "a\0",
            "\u{10FFFF}",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
        validate_prefix("").unwrap();
        validate_prefix("a/").unwrap();
        assert!(validate_prefix("a\n").is_err());
    }

    #[test]
    fn upper_bound_covers_all_extensions() {
        let up = prefix_upper_bound("a/");
        for p in ["a/", "a/b", "a/\u{10FFFD}zz", "a/\u{FFFF}"] {
            assert!(p < up.as_str(), "{p:?}");
        }
        assert!("a0" > up.as_str());
    }

    #[test]
    fn store_names() {
        for ok in ["default", "everlock-users", "a1"] {
            validate_store_name(ok).unwrap();
        }
        for bad in ["", "_host", "Upper", "a/b", "..", "a.b", &"x".repeat(65)] {
            assert!(validate_store_name(bad).is_err(), "{bad:?}");
        }
    }
}
