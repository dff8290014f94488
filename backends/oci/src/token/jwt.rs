//! Compact JWTs signed with HMAC-SHA256 (RFC 7519, `alg: HS256`): what the token endpoint
//! issues and what `Authorization: Bearer` carries.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Issuer written into and required from every token.
pub(crate) const ISSUER: &str = "everlock";

/// One repository's granted actions (the Docker token spec's `access` entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Access {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) actions: Vec<String>,
}

/// The claims of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    /// The login, empty for anonymous tokens.
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) nbf: u64,
    pub(crate) iat: u64,
    /// Random id naming the server-side session that holds the authenticated principal.
    pub(crate) jti: String,
    pub(crate) access: Vec<Access>,
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("bad token signature")]
    Signature,
    #[error("token expired or not yet valid")]
    Expired,
    #[error("unusable signing key")]
    Key,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// HMAC-SHA256 under `key` (HMAC takes keys of any length, so this fails only in theory).
fn mac(key: &[u8]) -> Result<Hmac<Sha256>, JwtError> {
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).map_err(|_| JwtError::Key)
}

/// Signs `claims` with `key`.
pub(crate) fn sign(claims: &Claims, key: &[u8]) -> Result<String, JwtError> {
    let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Malformed)?;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut m = mac(key)?;
    m.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    Ok(format!("{input}.{signature}"))
}

/// Verifies the signature (in constant time), the header, the issuer and the validity
/// window of `token` at `now` (Unix seconds).
pub(crate) fn verify(token: &str, key: &[u8], now: u64) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Malformed)?;
    let mut m = mac(key)?;
    m.update(header.as_bytes());
    m.update(b".");
    m.update(payload.as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| JwtError::Signature)?;
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| JwtError::Malformed)?;
    if header.get("alg").and_then(serde_json::Value::as_str) != Some("HS256") {
        return Err(JwtError::Malformed);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(JwtError::Malformed);
    }
    if now >= claims.exp || now + 5 < claims.nbf {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "alice".into(),
            aud: "localhost".into(),
            exp: 1300,
            nbf: 1000,
            iat: 1000,
            jti: "j".into(),
            access: vec![Access {
                kind: "repository".into(),
                name: "team/app".into(),
                actions: vec!["pull".into()],
            }],
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampering_is_refused() {
        let key = [7u8; 32];
        let t = sign(&claims(), &key).unwrap();
        assert_eq!(verify(&t, &key, 1100).unwrap(), claims());
        assert_eq!(verify(&t, &[8u8; 32], 1100), Err(JwtError::Signature));
        assert_eq!(verify(&t, &key, 1300), Err(JwtError::Expired));
        assert_eq!(verify(&t, &key, 900), Err(JwtError::Expired));
        // Granting oneself push by editing the payload breaks the signature.
        let mut forged = claims();
        forged.access[0].actions.push("push".into());
        let forged_payload = sign(&forged, &key).unwrap();
        let mut pieces: Vec<&str> = t.split('.').collect();
        pieces[1] = forged_payload.split('.').nth(1).unwrap();
        assert_eq!(
            verify(&pieces.join("."), &key, 1100),
            Err(JwtError::Signature)
        );
        for bad in ["", "a.b", "a.b.c.d", "..."] {
            assert!(verify(bad, &key, 1100).is_err(), "{bad}");
        }
        // `alg: none` with an empty signature is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            t.split('.').nth(1).unwrap()
        );
        assert!(verify(&none, &key, 1100).is_err());
    }
}
