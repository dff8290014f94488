//! Host-name normalisation shared by configuration (`Vhost`) and request routing.
//!
//! One function decides what a host *is*, so a vhost written in the configuration and the
//! `Host` header of a request can never disagree about case, ports, trailing dots or IPv6
//! brackets.

use std::net::Ipv6Addr;

/// Why a host string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostNameError {
    /// The host is empty (or only a port).
    #[error("empty host")]
    Empty,
    /// The host contains characters or a shape no hostname or IP literal has.
    #[error("invalid host `{0}`")]
    Invalid(String),
}

/// Normalises a `Host` header or URI authority to the form vhosts are stored in.
///
/// Rules: ASCII case is folded; a `:port` suffix is removed when the port is a valid `u16`;
/// one trailing dot is removed; IPv6 literals lose their brackets (`[::1]:8443` → `::1`).
/// Anything else that is not a plausible hostname or IP literal is rejected rather than
/// guessed at, because a guess could route a request to the wrong tenant.
pub fn normalize_host(raw: &str) -> Result<String, HostNameError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(HostNameError::Empty);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        // A bracketed IPv6 literal, optionally followed by `:port`.
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| HostNameError::Invalid(raw.to_owned()))?;
        if !after.is_empty() && !is_port_suffix(after) {
            return Err(HostNameError::Invalid(raw.to_owned()));
        }
        let addr: Ipv6Addr = inside
            .parse()
            .map_err(|_| HostNameError::Invalid(raw.to_owned()))?;
        return Ok(addr.to_string());
    }
    if raw.matches(':').count() > 1 {
        // Unbracketed IPv6 is not valid in a Host header, but it is how people write
        // addresses in configuration, so accept it when it parses exactly.
        let addr: Ipv6Addr = raw
            .parse()
            .map_err(|_| HostNameError::Invalid(raw.to_owned()))?;
        return Ok(addr.to_string());
    }
    let name = match raw.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        Some(_) => return Err(HostNameError::Invalid(raw.to_owned())),
        None => raw,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(HostNameError::Empty);
    }
    let valid = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(HostNameError::Invalid(raw.to_owned()));
    }
    Ok(name.to_ascii_lowercase())
}

/// Whether `s` is `:` followed by a valid port number.
fn is_port_suffix(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|port| port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let ok: &[(&str, &str)] = &[
            ("localhost", "localhost"),
            ("LocalHost", "localhost"),
            ("EXAMPLE.com", "example.com"),
            ("example.com:8080", "example.com"),
            ("example.com.", "example.com"),
            ("example.com.:443", "example.com"),
            ("127.0.0.1", "127.0.0.1"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("[::1]", "::1"),
            ("[::1]:8443", "::1"),
            ("[0:0:0:0:0:0:0:1]:80", "::1"),
            ("[2001:DB8::1]", "2001:db8::1"),
            ("::1", "::1"),
            ("team.localhost", "team.localhost"),
            ("under_score.example", "under_score.example"),
            ("  spaced.example ", "spaced.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ];
        for (input, want) in ok {
            assert_eq!(
                normalize_host(input).as_deref(),
                Ok(*want),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn rejection_table() {
        let empty: &[&str] = &["", "   ", ":8080", ".", ".:80"];
        for input in empty {
            assert_eq!(
                normalize_host(input),
                Err(HostNameError::Empty),
                "input {input:?}"
            );
        }
        let invalid: &[&str] = &[
            "example.com:http",
            "example.com:99999",
            "exa mple.com",
            "example..com",
            "example.com..",
            "[::1",
            "[::1]x",
            "[::1]:notaport",
            "[not-ipv6]",
            "1:2:3",
            "ho$t",
            "host/path",
            "user@host",
            "\u{e9}t\u{e9}.example",
            "a\r\nb",
        ];
        for input in invalid {
            assert!(
                matches!(normalize_host(input), Err(HostNameError::Invalid(_))),
                "input {input:?} should be invalid, got {:?}",
                normalize_host(input)
            );
        }
    }

    #[test]
    fn overlong_names_are_rejected() {
        let label = "a".repeat(64);
        assert!(normalize_host(&label).is_err());
        let name = ["a"; 130].join(".");
        assert!(normalize_host(&name).is_err());
    }

    mod properties {
        #![allow(
            clippy::indexing_slicing,
            reason = "test code: a panic is a test failure"
        )]

        use super::*;
        use crate::api::Vhost;
        use proptest::prelude::*;

        /// What every accepted host must look like, and that normalising it again changes
        /// nothing; every rejection names the (trimmed) input.
        fn check(raw: &str) -> Result<(), TestCaseError> {
            match normalize_host(raw) {
                Ok(host) => {
                    prop_assert!(!host.is_empty());
                    prop_assert!(host.is_ascii(), "{host:?}");
                    prop_assert_eq!(host.to_ascii_lowercase(), host.as_str());
                    if host.contains(':') {
                        prop_assert!(host.parse::<Ipv6Addr>().is_ok(), "{host:?}");
                    } else {
                        prop_assert!(host.len() <= 253, "{host:?}");
                        prop_assert!(!host.ends_with('.'), "{host:?}");
                    }
                    prop_assert_eq!(normalize_host(&host), Ok(host));
                }
                Err(HostNameError::Empty) => {}
                Err(HostNameError::Invalid(shown)) => prop_assert_eq!(shown.as_str(), raw.trim()),
            }
            match raw.parse::<Vhost>() {
                Ok(vhost) => {
                    let expected = if raw.trim() == Vhost::ANY {
                        Vhost::ANY.to_owned()
                    } else {
                        normalize_host(raw).unwrap_or_default()
                    };
                    prop_assert_eq!(vhost.as_str(), expected.as_str());
                    let again = vhost.as_str().parse::<Vhost>().ok();
                    prop_assert_eq!(again.as_ref(), Some(&vhost));
                }
                Err(_) => prop_assert!(normalize_host(raw).is_err(), "{raw:?}"),
            }
            Ok(())
        }

        /// A plausible host: labels, an optional trailing dot and port, random case.
        fn hostlike() -> impl Strategy<Value = String> {
            (
                proptest::collection::vec("[a-zA-Z0-9_-]{1,12}", 1..6),
                any::<bool>(),
                proptest::option::of(any::<u16>()),
            )
                .prop_map(|(labels, dot, port)| {
                    let mut host = labels.join(".");
                    if dot {
                        host.push('.');
                    }
                    if let Some(port) = port {
                        host.push_str(&format!(":{port}"));
                    }
                    host
                })
        }

        /// One edit at a character position: insert, delete or replace a character.
        fn mutate(s: &str, at: usize, op: u8, c: char) -> String {
            let mut chars: Vec<char> = s.chars().collect();
            let at = at % (chars.len() + 1);
            match op % 3 {
                0 => chars.insert(at, c),
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ if at < chars.len() => chars[at] = c,
                _ => chars.push(c),
            }
            chars.into_iter().collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_text_is_a_host_or_a_typed_error(raw in "\\PC{0,80}|[a-zA-Z0-9.:\\[\\]_ -]{0,300}") {
                check(&raw)?;
            }

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                check(&String::from_utf8_lossy(&bytes))?;
            }

            #[test]
            fn plausible_hosts_normalise_to_their_lowercase_name(raw in hostlike()) {
                let name = raw.rsplit_once(':').map_or(raw.as_str(), |(name, _)| name);
                let name = name.strip_suffix('.').unwrap_or(name);
                if name.len() <= 253 {
                    prop_assert_eq!(normalize_host(&raw), Ok(name.to_ascii_lowercase()));
                }
                check(&raw)?;
            }

            #[test]
            fn mutated_hosts_are_a_host_or_a_typed_error(
                raw in hostlike(),
                edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<char>()), 1..4),
            ) {
                let mut mutated = raw;
                for (at, op, c) in edits {
                    mutated = mutate(&mutated, at, op, c);
                }
                check(&mutated)?;
            }

            #[test]
            fn ipv6_literals_lose_brackets_and_port(addr in any::<Ipv6Addr>(), port in any::<u16>()) {
                let want = addr.to_string();
                prop_assert_eq!(normalize_host(&format!("[{addr}]:{port}")), Ok(want.clone()));
                prop_assert_eq!(normalize_host(&format!("[{addr}]")), Ok(want.clone()));
                prop_assert_eq!(normalize_host(&want), Ok(want));
                check(&format!("[{addr}]:{port}"))?;
            }
        }
    }
}
