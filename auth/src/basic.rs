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
}
