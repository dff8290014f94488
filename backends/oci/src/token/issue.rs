//! `GET /v2/token?service=<s>&scope=repository:<name>:<actions>[&scope=...]`: the token
//! endpoint. The caller has already been authenticated by Basic credentials, or is `anon`;
//! the token grants, per requested repository, only the actions this principal may do now.

use std::time::{Duration, UNIX_EPOCH};

use everlock_host::auth::{Action, Principal};
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CACHE_CONTROL, HeaderValue};
use everlock_host::http::{StatusCode, request::Parts};

use super::TOKEN_TTL_SECS;
use super::jwt::{self, Access, Claims};
use super::state::{AuthMode, now_secs};
use crate::error::{Code, OciError, OciResult};
use crate::names::Name;
use crate::registry::Registry;
use crate::respond::json_response;

/// Scopes honoured per token request; more are ignored (a token is meant for one operation).
const MAX_SCOPES: usize = 16;

/// Issues a token for `principal` (`GET`: service and scopes in the query).
pub(crate) async fn issue(
    reg: &Registry,
    principal: &Principal,
    parts: &Parts,
) -> OciResult<Response> {
    require_token_mode(reg)?;
    let pairs: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    respond(reg, principal, &pairs).await
}

/// Refuses token requests to a basic-auth instance.
pub(super) fn require_token_mode(reg: &Registry) -> OciResult<()> {
    if reg.settings.auth == AuthMode::Token {
        Ok(())
    } else {
        Err(OciError::not_found(
            Code::NameUnknown,
            "this registry does not issue tokens (auth = \"basic\")",
        ))
    }
}

/// The token answer for `principal`, given the request's parameters (`service`, and `scope`
/// repeated or space-separated; `account`, `client_id`, `offline_token` and the like are
/// accepted and ignored: the token always names the authenticated principal, and this
/// registry issues no refresh tokens, so clients keep using their credentials).
pub(super) async fn respond(
    reg: &Registry,
    principal: &Principal,
    pairs: &[(String, String)],
) -> OciResult<Response> {
    let service = pairs
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let scopes: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter(|s| !s.is_empty())
        .take(MAX_SCOPES)
        .collect();
    let access = grant(reg, principal, &scopes);
    let store = reg.store().await?;
    let key = reg.tokens.key(store, principal).await?;
    let now = now_secs();
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| {
        OciError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unsupported,
            e.to_string(),
        )
    })?;
    let claims = Claims {
        iss: jwt::ISSUER.to_owned(),
        sub: principal
            .login()
            .map(|l| l.as_str().to_owned())
            .unwrap_or_default(),
        aud: service,
        exp: now + TOKEN_TTL_SECS,
        nbf: now,
        iat: now,
        jti: hex::encode(id),
        access,
    };
    let token = jwt::sign(&claims, key).map_err(|e| {
        OciError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unsupported,
            e.to_string(),
        )
    })?;
    reg.tokens
        .open_session(claims.jti.clone(), principal.clone(), claims.exp);
    let mut response = json_response(StatusCode::OK, body(&token, now).to_string());
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The JSON answer: `token` and its OAuth2 alias `access_token` (clients read either),
/// `expires_in` and `issued_at` (RFC 3339), from which clients schedule a new token.
pub(super) fn body(token: &str, now: u64) -> serde_json::Value {
    let issued = UNIX_EPOCH + Duration::from_secs(now);
    serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL_SECS,
        "issued_at": humantime::format_rfc3339_seconds(issued).to_string(),
    })
}

/// The granted subset of the requested scopes (`repository:<name>:<a,b>`); unknown types,
/// invalid names and actions the principal may not do are left out, never an error (the
/// client learns its rights from the next request's answer, as with Docker Hub).
fn grant(reg: &Registry, principal: &Principal, scopes: &[&str]) -> Vec<Access> {
    let mut out: Vec<Access> = Vec::new();
    for scope in scopes {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let Some(name) = Name::parse(name).filter(|_| kind == "repository") else {
            continue;
        };
        let mut granted: Vec<String> = Vec::new();
        for action in actions.split(',') {
            let wanted: &[(&str, Action)] = match action {
                "pull" => &[("pull", Action::Read)],
                "push" => &[("push", Action::Write)],
                "delete" => &[("delete", Action::Delete)],
                "*" => &[
                    ("pull", Action::Read),
                    ("push", Action::Write),
                    ("delete", Action::Delete),
                ],
                _ => &[],
            };
            for (word, a) in wanted {
                if !granted.iter().any(|g| g == word) && reg.allowed(principal, &name, *a) {
                    granted.push((*word).to_owned());
                }
            }
        }
        match out.iter_mut().find(|a| a.name == name.as_str()) {
            Some(existing) => {
                for g in granted {
                    if !existing.actions.contains(&g) {
                        existing.actions.push(g);
                    }
                }
            }
            None => out.push(Access {
                kind: "repository".to_owned(),
                name: name.as_str().to_owned(),
                actions: granted,
            }),
        }
    }
    out
}
