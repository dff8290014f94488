//! `POST /v2/token` with an OAuth2 form (`application/x-www-form-urlencoded`): the variant
//! of the token request that distribution's client (Docker, and tools built on it) and
//! go-containerregistry send when they prefer OAuth2 to Basic. `grant_type=password` carries
//! `username` and `password` in the form; they are checked exactly as Basic credentials
//! (same throttling, same access log). This registry issues no refresh tokens, so
//! `grant_type=refresh_token` is refused with OAuth2's `invalid_grant` and the client falls
//! back to its credentials.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{AUTHORIZATION, HeaderValue};
use everlock_host::http::{StatusCode, request::Parts};
use everlock_host::http_auth;
use http_body_util::BodyExt as _;

use super::issue::{require_token_mode, respond};
use crate::error::{Code, OciError, OciResult};
use crate::registry::Registry;
use crate::respond::{json_response, login_error};

/// Bytes of form read at most: credentials and a few scopes fit many times over.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Issues a token for the credentials of an OAuth2 form; `principal` is who the request's own
/// `Authorization` header (if any) authenticated, used when the form names no user.
pub(crate) async fn issue_form(
    reg: &Registry,
    principal: Principal,
    mut parts: Parts,
    body: Body,
) -> OciResult<Response> {
    require_token_mode(reg)?;
    let limited = http_body_util::Limited::new(body, MAX_FORM_BYTES);
    let Ok(bytes) = limited.collect().await.map(|c| c.to_bytes()) else {
        return Err(OciError::bad(
            Code::Unsupported,
            format!("the token form must be under {MAX_FORM_BYTES} bytes"),
        ));
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let principal = match field("grant_type") {
        Some("password") => match (field("username"), field("password")) {
            (Some(user), Some(password)) => login(reg, &mut parts, user, password).await?,
            _ => {
                return Ok(oauth_error(
                    "invalid_request",
                    "username and password are required",
                ));
            }
        },
        Some("refresh_token") => {
            return Ok(oauth_error(
                "invalid_grant",
                "this registry issues no refresh tokens; use grant_type=password",
            ));
        }
        // No grant type: the caller's own Authorization header (or none: anon) decides.
        None => principal,
        Some(_) => {
            return Ok(oauth_error(
                "unsupported_grant_type",
                "grant_type must be password",
            ));
        }
    };
    respond(reg, &principal, &pairs).await
}

/// Checks `user` and `password` through the same path as Basic credentials, so throttling
/// and the access log's login apply unchanged.
async fn login(
    reg: &Registry,
    parts: &mut Parts,
    user: &str,
    password: &str,
) -> OciResult<Principal> {
    let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    let value = HeaderValue::from_str(&basic).map_err(|_| {
        OciError::bad(
            Code::Unsupported,
            "the username or password is not a header value",
        )
    })?;
    parts.headers.insert(AUTHORIZATION, value);
    http_auth::authenticate(&reg.auth, parts)
        .await
        .map_err(|e| login_error(&e))
}

/// An OAuth2 error answer (RFC 6749 section 5.2).
fn oauth_error(error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    json_response(StatusCode::BAD_REQUEST, body.to_string())
}
