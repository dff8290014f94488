//! Routing one HTTP request by Host and path prefix to an instance's router: the host a
//! request names, the instance table lookup, and the plain-text answers when nothing matches.

use axum::body::Body;
use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use tower::ServiceExt;

use crate::api::vhost::{HostNameError, normalize_host};
use crate::routes::{InstanceTable, Resolution};

/// The `https-redirect` of the instance `host` and `path` route to, if that instance has one.
pub(super) fn instance_redirect(table: &InstanceTable, host: &str, path: &str) -> Option<bool> {
    match table.snapshot().resolve(host, path) {
        Resolution::Found(instance) => instance.https_redirect,
        _ => None,
    }
}

/// What routing decided, for the access log and the metrics.
#[derive(Debug, Default)]
pub struct Routed {
    /// The normalised host, or `-`.
    pub host: String,
    /// `kind/name` of the instance that answered, or `-`.
    pub instance: String,
    /// The kind of the instance that answered, or `-`.
    pub kind: &'static str,
    /// The name of the instance that answered, or `-`.
    pub name: String,
}

impl Routed {
    /// A request that no instance answered, to `host`.
    pub(super) fn unrouted(host: String) -> Routed {
        Routed {
            host,
            instance: "-".to_owned(),
            kind: "-",
            name: "-".to_owned(),
        }
    }
}

/// Routes one request through the current instance table and runs the chosen instance's
/// router. Public so tests can drive routing without sockets.
pub async fn route(table: &InstanceTable, req: Request<Body>) -> (Response<Body>, Routed) {
    let mut routed = Routed::unrouted("-".to_owned());
    let host = match request_host(&req) {
        Ok(h) => h,
        Err(message) => return (text(StatusCode::BAD_REQUEST, message), routed),
    };
    routed.host.clone_from(&host);
    // Hold one snapshot for the whole request, so a concurrent table swap cannot change
    // which instance serves it halfway.
    let snapshot = table.snapshot();
    match snapshot.resolve(&host, req.uri().path()) {
        Resolution::Found(instance) => {
            routed.instance = instance.id();
            routed.kind = instance.kind;
            routed.name = instance.name.to_string();
            let Some(router) = instance.router.clone() else {
                return (
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("instance {} cannot serve HTTP", instance.id()),
                    ),
                    routed,
                );
            };
            let response = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            (response, routed)
        }
        Resolution::UnknownHost => (
            text(
                StatusCode::NOT_FOUND,
                format!("No backend configured for host: {host}"),
            ),
            routed,
        ),
        Resolution::NoPrefix => (
            text(
                StatusCode::NOT_FOUND,
                format!(
                    "No backend configured for host: {host} and path: {}",
                    req.uri().path()
                ),
            ),
            routed,
        ),
    }
}

/// The request's host: the URI authority (HTTP/2 `:authority`, or an absolute-form HTTP/1.1
/// target), else the single `Host` header, normalised. The error is the response text.
pub(super) fn request_host<B>(req: &Request<B>) -> Result<String, String> {
    let raw = if let Some(authority) = req.uri().authority() {
        authority.as_str().to_owned()
    } else {
        let mut values = req.headers().get_all(HOST).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v
                .to_str()
                .map_err(|_| "Invalid Host header".to_owned())?
                .to_owned(),
            (Some(_), Some(_)) => return Err("Multiple Host headers".to_owned()),
            (None, _) => {
                return Err(if req.version() == Version::HTTP_11 {
                    "Missing Host header".to_owned()
                } else {
                    "Missing Host header (HTTP/1.0 clients must send one)".to_owned()
                });
            }
        }
    };
    normalize_host(&raw).map_err(|e| match e {
        HostNameError::Empty => "Empty Host header".to_owned(),
        HostNameError::Invalid(_) => "Invalid Host header".to_owned(),
    })
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
