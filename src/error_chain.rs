//! One line per failure: the cause chain of an error, each message once.
//!
//! Library errors often both print their cause (`"users store: {0}"`) and return it as their
//! `source()`, so anyhow's `{:#}` would print it twice (`users store: store in use by another
//! process: /d: store in use by another process: /d`). Rather than ask every error type to
//! choose, the binary drops a cause whose text the line already holds.

/// `outer: cause: root cause`, skipping each cause already contained in its predecessor.
pub(crate) fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !previous.is_empty() && previous.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        previous = text;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like a thiserror `#[error("users store: {0}")] Storage(#[from] ...)` variant.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "users store: {}", self.0)
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_printed_by_its_parent_appears_once() {
        let in_use = std::io::Error::other("store in use by another process: /d/everlock-users");
        let e = anyhow::Error::new(Outer(in_use)).context("cannot start");
        assert_eq!(
            format!("{e:#}"),
            "cannot start: users store: store in use by another process: /d/everlock-users: \
             store in use by another process: /d/everlock-users",
            "the duplication this module exists for"
        );
        assert_eq!(
            one_line(&e),
            "cannot start: users store: store in use by another process: /d/everlock-users"
        );
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io)
            .context("cannot read config file x.toml")
            .context("startup");
        assert_eq!(
            one_line(&e),
            "startup: cannot read config file x.toml: no such file"
        );
    }
}
