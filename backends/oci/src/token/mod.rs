//! Docker token authentication (issue #15 item 5): with `auth = "token"` an instance answers
//! 401 with a `Bearer` challenge naming its own token endpoint, `GET /v2/token` trades Basic
//! credentials (or none, for what `anon` may do) for a short-lived signed token carrying only
//! the granted actions, and requests carrying `Authorization: Bearer` are checked against it.
//!
//! A token is an HS256 JWT signed with a per-instance key kept in the instance's store
//! (created on first use). It does not stand in for a principal by itself: principals cannot
//! be forged, so the token's `jti` names a server-side session holding the principal the
//! token endpoint authenticated. Each request is then authorized twice: by the token's
//! actions and by the principal's current grants, so a revoked grant takes effect at once.
//! Sessions live in memory (bounded, and gone after a restart, when clients simply fetch a
//! new token after the next 401).

mod form;
mod issue;
mod jwt;
pub(crate) mod state;

use everlock_host::Scheme;
use everlock_host::auth::Principal;
use everlock_host::axum::extract::Request;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{AUTHORIZATION, HOST, HeaderValue, WWW_AUTHENTICATE};
use everlock_host::http::{Method, StatusCode, request::Parts};

use crate::error::{Code, OciError, OciResult};
use crate::registry::Registry;
use crate::respond::unauthorized;
use crate::route::Route;

pub(crate) use form::issue_form;
pub(crate) use issue::issue;
use jwt::Access;
use state::{AuthMode, now_secs};

/// Token lifetime in seconds.
pub(crate) const TOKEN_TTL_SECS: u64 = 300;

/// What a verified Bearer token allows.
pub(crate) struct Grant(Vec<Access>);

/// The principal and grant of a request carrying `Authorization: Bearer` on a token-auth
/// instance; `None` for every other request (which then authenticates as before). Basic
/// credentials on a token-auth instance count only at the token endpoint, as with Docker
/// Hub: elsewhere they get the Bearer challenge, so clients take the token flow. So does an
/// anonymous `GET /v2/`.
pub(crate) async fn bearer(
    reg: &Registry,
    route: &Route,
    parts: &Parts,
) -> OciResult<Option<(Principal, Grant)>> {
    if reg.settings.auth != AuthMode::Token {
        return Ok(None);
    }
    let Some(value) = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        // The anonymous ping answers 401 with the Bearer challenge, as Docker Hub does, even
        // when anon may read something: the Docker daemon learns the token realm only from a
        // 401 ping. After a 200 it sends no credentials at all (`docker login` "succeeds"
        // without checking them, and a push fails with 401 forever).
        if *route == Route::Base {
            return Err(unauthorized("authentication required"));
        }
        return Ok(None);
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        if *route != Route::Token && scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized(
                "this registry uses token authentication: fetch a token from /v2/token",
            ));
        }
        return Ok(None);
    }
    let store = reg.store().await?;
    let key = reg.tokens.key(store, &Principal::anon()).await?;
    let claims =
        jwt::verify(token.trim(), key, now_secs()).map_err(|e| unauthorized(&e.to_string()))?;
    let principal = reg
        .tokens
        .session(&claims.jti)
        .ok_or_else(|| unauthorized("token no longer valid; fetch a new one"))?;
    Ok(Some((principal, Grant(claims.access))))
}

/// The token action a request needs on its repository (`None`: no repository involved).
fn needed(route: &Route, method: &Method) -> Option<(String, &'static str)> {
    let write = matches!(*method, Method::PUT | Method::POST | Method::PATCH);
    let action = if *method == Method::DELETE {
        "delete"
    } else if write {
        "push"
    } else {
        "pull"
    };
    match route {
        Route::Base | Route::Catalog | Route::Token => None,
        Route::Tags(n) | Route::Manifest(n, _) | Route::Blob(n, _) | Route::Referrers(n, _) => {
            Some((n.as_str().to_owned(), action))
        }
        // Every upload request (status and cancel included) is part of a push.
        Route::UploadStart(n) | Route::Upload(n, _) => Some((n.as_str().to_owned(), "push")),
    }
}

/// The placeholder challenge of a refusal for want of scope: [`rewrite`] turns it into the
/// full challenge with `error="insufficient_scope"` (RFC 6750 section 3.1).
const INSUFFICIENT_SCOPE: &str = "Bearer error=\"insufficient_scope\"";

/// Refuses a Bearer request whose token does not carry the action it needs: 403 with a
/// challenge naming the scope and `error="insufficient_scope"`, as RFC 6750 says. Clients
/// that fetched a token for an earlier step (oras-py pulls a `pull` token for its blob `HEAD`,
/// then pushes) fetch a wider one on that 403; asking again gains nothing the principal may
/// not do, since the token endpoint grants only the principal's rights.
pub(crate) fn check(grant: Option<&Grant>, route: &Route, method: &Method) -> OciResult<()> {
    let (Some(Grant(access)), Some((name, action))) = (grant, needed(route, method)) else {
        return Ok(());
    };
    let granted = access.iter().any(|a| {
        a.kind == "repository"
            && a.name == name
            && a.actions.iter().any(|x| x == action || x == "*")
    });
    if granted {
        Ok(())
    } else {
        Err(OciError::new(
            StatusCode::FORBIDDEN,
            Code::Denied,
            format!("the token does not grant {action} on {name}"),
        )
        .with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(INSUFFICIENT_SCOPE),
        ))
    }
}

/// The Bearer challenge for a request to a token-auth instance: realm, service and the scope
/// the request needs. `None` for basic-auth instances.
pub(crate) fn challenge_for(reg: &Registry, req: &Request) -> Option<HeaderValue> {
    if reg.settings.auth != AuthMode::Token {
        return None;
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    // Only host-name characters go into the challenge: nothing a client sent can break out
    // of the quoted values.
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        .collect();
    let scheme = match req.extensions().get::<Scheme>() {
        Some(Scheme::Https) => "https",
        _ => "http",
    };
    let mut value = format!("Bearer realm=\"{scheme}://{host}/v2/token\",service=\"{host}\"");
    let route = Route::parse(req.uri().path()).ok().flatten();
    if let Some((name, action)) = route.and_then(|r| needed(&r, req.method())) {
        let actions = if action == "push" {
            "pull,push"
        } else {
            action
        };
        value.push_str(&format!(",scope=\"repository:{name}:{actions}\""));
    }
    HeaderValue::from_str(&value).ok()
}

/// Replaces the Basic challenge of a 401 (or of an anonymous ping) by the Bearer one, and
/// completes the challenge of a refusal for want of scope with its error.
pub(crate) fn rewrite(response: &mut Response, challenge: HeaderValue) {
    let Some(current) = response.headers().get(WWW_AUTHENTICATE) else {
        return;
    };
    let value = if current == INSUFFICIENT_SCOPE {
        let mut bytes = challenge.as_bytes().to_vec();
        bytes.extend_from_slice(b",error=\"insufficient_scope\"");
        HeaderValue::from_bytes(&bytes).unwrap_or(challenge)
    } else {
        challenge
    };
    response.headers_mut().insert(WWW_AUTHENTICATE, value);
}

#[cfg(test)]
mod tests;
