//! The request dispatcher of a registry instance: every request arrives at [`handle`], is
//! authenticated, and goes to the handler of its route. It sits above every handler module
//! and nothing imports it but the backend (`lib.rs`), so imports flow one way.

use std::sync::Arc;

use everlock_host::auth::{AccessPath, Action, Principal};
use everlock_host::axum::extract::{Request, State};
use everlock_host::axum::response::{IntoResponse, Response};
use everlock_host::http::header::{HeaderValue, WWW_AUTHENTICATE};
use everlock_host::http::{Method, StatusCode, request::Parts};
use everlock_host::http_auth;

use crate::error::{Code, OciError, OciResult};
use crate::registry::Registry;
use crate::respond::{REALM, json_response, login_error, unauthorized};
use crate::route::Route;
use crate::token::Grant;

/// The axum fallback handler: every request of the instance arrives here.
pub(crate) async fn handle(State(reg): State<Arc<Registry>>, req: Request) -> Response {
    // The web UI (`ui`) answers its own paths before anything of the registry API.
    let (parts, body) = req.into_parts();
    if let Some(r) = crate::ui::handle(&reg, &parts).await {
        return r;
    }
    let req = Request::from_parts(parts, body);
    let challenge = crate::token::challenge_for(&reg, &req);
    let mut response = match dispatch(&reg, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(c) = challenge {
        crate::token::rewrite(&mut response, c);
    }
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// Who sent the request: the principal behind a Bearer token (with what the token grants) on
/// a token-auth instance, else whoever the Basic credentials name (or `anon`).
async fn authenticate(
    reg: &Registry,
    route: &Route,
    parts: &Parts,
) -> OciResult<(Principal, Option<Grant>)> {
    if let Some((principal, grant)) = crate::token::bearer(reg, route, parts).await? {
        return Ok((principal, Some(grant)));
    }
    let principal = http_auth::authenticate(&reg.auth, parts)
        .await
        .map_err(|e| login_error(&e))?;
    Ok((principal, None))
}

/// Routes an authenticated request to the handler of its route and method.
async fn dispatch(reg: &Registry, req: Request) -> OciResult<Response> {
    let (parts, body) = req.into_parts();
    let Some(route) = Route::parse(parts.uri.path())? else {
        return Err(OciError::not_found(
            Code::NameUnknown,
            "not a registry endpoint",
        ));
    };
    let (principal, grant) = authenticate(reg, &route, &parts).await?;
    let method = parts.method.clone();
    let head = method == Method::HEAD;
    let read = method == Method::GET || head;
    crate::mirror::serve::refuse_push(reg, &route, &method)?;
    crate::token::check(grant.as_ref(), &route, &method)?;
    match route {
        Route::Token if read => crate::token::issue(reg, &principal, &parts).await,
        Route::Token if method == Method::POST => {
            crate::token::issue_form(reg, principal, parts, body).await
        }
        Route::Base if read => ping(reg, &principal),
        Route::Catalog if read => crate::listing::catalog(reg, &principal, &parts).await,
        Route::Tags(name) if read => {
            reg.require(&principal, &name, Action::Read)?;
            crate::listing::tags(reg, &name, &parts).await
        }
        Route::Referrers(name, d) if read => {
            reg.require(&principal, &name, Action::Read)?;
            crate::listing::referrers(reg, &name, &d, &parts).await
        }
        Route::Blob(name, d) if read => {
            reg.require(&principal, &name, Action::Read)?;
            if let Some(r) = crate::mirror::serve::blob(reg, &principal, &name, &d, head).await? {
                return Ok(r);
            }
            crate::blobs::get(reg, &name, &d, &parts, head).await
        }
        Route::Blob(name, d) if method == Method::DELETE => {
            reg.require(&principal, &name, Action::Delete)?;
            crate::blobs::delete(reg, &principal, &name, &d).await
        }
        Route::Manifest(name, r) if read => {
            reg.require(&principal, &name, Action::Read)?;
            crate::mirror::serve::refresh_manifest(reg, &principal, &name, &r).await;
            let response = crate::manifests::get(reg, &name, &r, head).await?;
            if !head {
                crate::webhooks::pulled(&reg.webhooks, &principal, &name, &r, &response);
            }
            Ok(response)
        }
        Route::Manifest(name, r) if method == Method::PUT => {
            reg.require(&principal, &name, Action::Write)?;
            crate::manifests::put(reg, &principal, &name, &r, &parts, body).await
        }
        Route::Manifest(name, r) if method == Method::DELETE => {
            reg.require(&principal, &name, Action::Delete)?;
            crate::manifests::delete(reg, &principal, &name, &r).await
        }
        Route::UploadStart(name) if method == Method::POST => {
            reg.require(&principal, &name, Action::Write)?;
            crate::uploads::start(reg, &principal, &name, &parts, body).await
        }
        Route::Upload(name, id) => {
            reg.require(&principal, &name, Action::Write)?;
            match method {
                Method::GET | Method::HEAD => crate::uploads::status(reg, &name, &id).await,
                Method::PATCH => crate::uploads::patch(reg, &name, &id, &parts, body).await,
                Method::PUT => {
                    crate::uploads::finish(reg, &principal, &name, &id, &parts, body).await
                }
                Method::DELETE => crate::uploads::cancel(reg, &name, &id).await,
                _ => Err(method_not_allowed()),
            }
        }
        _ => Err(method_not_allowed()),
    }
}

/// `GET /v2/`. Anonymous callers get 401 with the Basic challenge, unless anon may read
/// something in this registry: then 200, because the Docker CLI gives up on a Basic challenge
/// when it has no credentials, and so could never pull anonymously. The 200 still carries the
/// challenge: containers/image (skopeo, podman, buildah) reads challenges from a 200 ping too,
/// and keeps sending credentials for pushes.
fn ping(reg: &Registry, principal: &Principal) -> OciResult<Response> {
    if *principal != Principal::anon() {
        return Ok(json_response(StatusCode::OK, "{}".into()));
    }
    let instance = AccessPath::from_segments(["http", "oci", reg.instance.as_str()]);
    let readable =
        instance.is_ok_and(|path| reg.auth.authorize_within(principal, &path, Action::Read));
    if !readable {
        return Err(unauthorized("authentication required"));
    }
    let mut response = json_response(StatusCode::OK, "{}".into());
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, http_auth::challenge(REALM));
    Ok(response)
}

fn method_not_allowed() -> OciError {
    OciError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unsupported,
        "method not allowed here",
    )
}
