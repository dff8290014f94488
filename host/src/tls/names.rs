//! Which host names are "local" (no HSTS, no ACME, served by the local CA) and which may get a
//! certificate from a public ACME CA.

use std::net::IpAddr;

/// `localhost`, any `*.localhost` name and IP addresses (with or without IPv6 brackets): names
/// no public CA certifies and on which HSTS would outlive the test that set it (browsers apply
/// a localhost HSTS entry to every port).
pub fn is_local(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host);
    host == "localhost" || host.ends_with(".localhost") || bare.parse::<IpAddr>().is_ok()
}

/// A vhost an ACME CA can certify: a public DNS name with at least two labels, not local, not
/// a wildcard or the catch-all `*`, only letters, digits, `-` and `.`.
pub fn is_acme_eligible(host: &str) -> bool {
    !is_local(host)
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !host.contains("..")
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names() {
        for local in [
            "localhost",
            "LOCALHOST.",
            "www.localhost",
            "a.b.localhost",
            "127.0.0.1",
            "::1",
            "[::1]",
            "10.1.2.3",
        ] {
            assert!(is_local(local), "{local}");
            assert!(!is_acme_eligible(local), "{local}");
        }
        for public in ["example.com", "localhost.example.com", "notlocalhost"] {
            assert!(!is_local(public), "{public}");
        }
    }

    #[test]
    fn acme_names() {
        assert!(is_acme_eligible("registry.example.com"));
        assert!(is_acme_eligible("a-b.example"));
        for no in ["*", "*.example.com", "intranet", "a..b", "a_b.example"] {
            assert!(!is_acme_eligible(no), "{no}");
        }
    }
}
