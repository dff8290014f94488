//! Repository patterns of the `retention` and `quota` settings.
//!
//! `*` matches any characters within one path segment, `**` matches any characters across
//! segments, `?` one character other than `/`; everything else matches itself. So `team/*`
//! is every repository directly under `team/`, `team/**` every one at any depth, and `*`
//! every top-level repository. Segments match like the grant paths of `everlock-auth`, where
//! `*` is one segment too.

/// Whether `name` matches `pattern`. Names are at most 255 bytes and patterns come from the
/// configuration, so the backtracking stays small.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    matches_bytes(pattern.as_bytes(), name.as_bytes())
}

fn matches_bytes(p: &[u8], n: &[u8]) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some((b'*', rest)) => {
            if let Some(after) = rest.strip_prefix(b"*") {
                return (0..=n.len()).any(|i| n.get(i..).is_some_and(|t| matches_bytes(after, t)));
            }
            for i in 0..=n.len() {
                if n.get(i..).is_some_and(|t| matches_bytes(rest, t)) {
                    return true;
                }
                if n.get(i) == Some(&b'/') {
                    break;
                }
            }
            false
        }
        Some((b'?', rest)) => match n.split_first() {
            Some((c, tail)) => *c != b'/' && matches_bytes(rest, tail),
            None => false,
        },
        Some((c, rest)) => match n.split_first() {
            Some((d, tail)) => c == d && matches_bytes(rest, tail),
            None => false,
        },
    }
}

/// Checks a pattern from the settings: non-empty, no whitespace.
pub(crate) fn validate(pattern: &str, what: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.chars().any(char::is_whitespace) {
        return Err(format!(
            "{what}: repositories = {pattern:?} must be a non-empty pattern without spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn star_stays_in_one_segment_and_double_star_crosses() {
        assert!(matches("team/*", "team/app"));
        assert!(!matches("team/*", "team/a/b"));
        assert!(!matches("team/*", "team"));
        assert!(!matches("team/*", "teams/app"));
        assert!(matches("team/**", "team/a/b"));
        assert!(matches("**", "x/y/z"));
        assert!(matches("*", "app"));
        assert!(!matches("*", "a/b"));
        assert!(matches("team/app-?", "team/app-1"));
        assert!(!matches("team/app-?", "team/app-"));
        assert!(matches("*/app", "team/app"));
        assert!(matches("team/*-dev", "team/web-dev"));
        assert!(!matches("team/*-dev", "team/web-prod"));
        assert!(matches("exact/name", "exact/name"));
        assert!(!matches("exact/name", "exact/name2"));
    }
}
