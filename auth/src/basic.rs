//! Parsing the HTTP `Authorization` header.

use base64::Engine as _;

/// What a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No header, or empty Basic credentials (`Basic Og==`, i.e. `:`): the `anon` principal.
    Anonymous,
    /// A login and password.
    Basic {
        /// The login as sent (validated later).
        login: String,
        /// The password.
        password: String,
    },
    /// Another scheme (e.g. `Bearer`) this server does not accept; answered like missing
    /// credentials so the client sees the Basic challenge.
    Unsupported,
}

/// Why an `Authorization` header was rejected (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Authorization header: {0}")]
pub struct Malformed(pub &'static str);

/// Parses the raw header value, if any.
pub fn parse_authorization(header: Option<&[u8]>) -> Result<Credentials, Malformed> {
    let Some(raw) = header else {
        return Ok(Credentials::Anonymous);
    };
    let text = std::str::from_utf8(raw)
        .map_err(|_| Malformed("not UTF-8"))?
        .trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(Credentials::Unsupported);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| Malformed("invalid base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| Malformed("credentials are not UTF-8"))?;
    let (login, password) = decoded
        .split_once(':')
        .ok_or(Malformed("credentials lack a `:`"))?;
    match (login.is_empty(), password.is_empty()) {
        (true, true) => Ok(Credentials::Anonymous),
        (true, false) => Err(Malformed("empty login")),
        _ => Ok(Credentials::Basic {
            login: login.to_owned(),
            password: password.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn table() {
        let basic = |l: &str, p: &str| Credentials::Basic {
            login: l.into(),
            password: p.into(),
        };
        let ok: Vec<(Option<String>, Credentials)> = vec![
            (None, Credentials::Anonymous),
            (Some("Basic Og==".into()), Credentials::Anonymous),
            (Some(b64("alice:s3cret")), basic("alice", "s3cret")),
            (
                Some(format!("bAsIc  {}", &b64("alice:a:b:c")[6..])),
                basic("alice", "a:b:c"),
            ),
            (Some(b64("alice:")), basic("alice", "")),
            (Some("Bearer abc".into()), Credentials::Unsupported),
            (Some("Digest x".into()), Credentials::Unsupported),
        ];
        for (header, want) in ok {
            assert_eq!(
                parse_authorization(header.as_deref().map(str::as_bytes)),
                Ok(want),
                "{header:?}"
            );
        }
        let bad: Vec<Vec<u8>> = vec![
            b"Basic !!!".to_vec(),
            b"Basic".to_vec(),
            b64("nocolon").into_bytes(),
            b64(":password").into_bytes(),
            vec![b'B', b'a', b's', b'i', b'c', b' ', 0xff],
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xffu8, b':', b'x'])
            )
            .into_bytes(),
        ];
        for header in bad {
            assert!(
                parse_authorization(Some(&header)).is_err(),
                "{:?}",
                String::from_utf8_lossy(&header)
            );
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Edits applied to a valid header: overwrite, insert or remove one byte.
        #[derive(Debug, Clone)]
        enum Edit {
            Set(usize, u8),
            Insert(usize, u8),
            Remove(usize),
        }

        fn edit() -> impl Strategy<Value = Edit> {
            prop_oneof![
                (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
                (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
                any::<usize>().prop_map(Edit::Remove),
            ]
        }

        fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
            for e in edits {
                let len = bytes.len();
                match *e {
                    Edit::Set(i, b) if len > 0 => bytes[i % len] = b,
                    Edit::Insert(i, b) => bytes.insert(i % (len + 1), b),
                    Edit::Remove(i) if len > 0 => {
                        bytes.remove(i % len);
                    }
                    _ => {}
                }
            }
            bytes
        }

        /// Whatever came back is well formed: a value that honours the parser's contract
        /// (a Basic login is never empty and never holds the `:` separator) or a typed error.
        fn check(header: &[u8]) {
            match parse_authorization(Some(header)) {
                Ok(Credentials::Basic { login, .. }) => {
                    assert!(!login.is_empty() && !login.contains(':'), "{login:?}");
                }
                Ok(Credentials::Anonymous | Credentials::Unsupported) => {}
                Err(Malformed(reason)) => assert!(!reason.is_empty()),
            }
        }

        proptest! {
            #[test]
            fn random_bytes_never_panic(header in proptest::collection::vec(any::<u8>(), 0..200)) {
                check(&header);
            }

            #[test]
            fn random_text_after_the_scheme_never_panics(
                scheme in "[Bb][Aa][Ss][Ii][Cc]|Bearer|",
                gap in " {0,3}",
                rest in "\\PC{0,80}",
            ) {
                check(format!("{scheme}{gap}{rest}").as_bytes());
            }

            #[test]
            fn valid_credentials_round_trip(
                login in "[^:]{1,40}",
                password in "\\PC{0,80}",
                scheme in "[Bb][Aa][Ss][Ii][Cc]",
                gap in " {1,3}",
            ) {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{login}:{password}"));
                let header = format!(" {scheme}{gap}{encoded} ");
                prop_assert_eq!(
                    parse_authorization(Some(header.as_bytes())),
                    Ok(Credentials::Basic { login, password })
                );
            }

            #[test]
            fn mutated_valid_headers_never_panic(
                login in "[a-z0-9-]{1,12}",
                password in "\\PC{0,24}",
                edits in proptest::collection::vec(edit(), 1..6),
            ) {
                let valid = b64(&format!("{login}:{password}")).into_bytes();
                check(&apply(valid, &edits));
            }

            #[test]
            fn other_schemes_are_unsupported(
                scheme in "[A-Za-z][A-Za-z0-9-]{0,10}",
                rest in "\\PC{0,40}",
            ) {
                prop_assume!(!scheme.eq_ignore_ascii_case("basic"));
                prop_assert_eq!(
                    parse_authorization(Some(format!("{scheme} {rest}").as_bytes())),
                    Ok(Credentials::Unsupported)
                );
            }
        }
    }
}
