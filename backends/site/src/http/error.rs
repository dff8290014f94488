//! Why a site request was not answered with content, and the one place where each reason
//! becomes a status: a client's mistake is a 4xx, never a 500; an unreachable database is a 503
//! that invites a retry; a page that cannot be rendered is a 500 whose details go to the log,
//! never into the response.

use std::io;

use everlock_host::axum::response::Response;
use everlock_host::http::{self, HeaderValue, StatusCode, header};
use everlock_host::storage::StorageError;

use crate::http::reply::plain;
use crate::markdown::pool::RenderError;
use crate::markdown::site::ReadError;

/// Why a request was not answered with content.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The path is outside the instance prefix, is not a safe site path, or names nothing and
    /// the site has no 404 page of its own (404).
    #[error("not found")]
    NotFound,
    /// A method other than GET and HEAD (405 with `Allow`).
    #[error("method {0} not allowed")]
    MethodNotAllowed(http::Method),
    /// Reading the site's files or its history failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A Markdown page, listing or taxonomy page could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The selected content could not be opened for the response body.
    #[error("cannot open the content: {0}")]
    Content(io::Error),
    /// The response could not be assembled from its parts.
    #[error("cannot build the response: {0}")]
    Response(http::Error),
}

impl ServeError {
    /// The status this failure is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::NotFound => StatusCode::NOT_FOUND,
            ServeError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ServeError::Storage(e) => storage_status(e),
            ServeError::Render(RenderError::Read(ReadError::Storage(e))) => storage_status(e),
            ServeError::Render(_) | ServeError::Content(_) | ServeError::Response(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Whether the failure is the server's side (5xx), not the answer to what was asked.
    pub fn is_server_fault(&self) -> bool {
        self.status().is_server_error()
    }

    /// The response: a fixed text per reason, so no internal detail (a store path, a template
    /// error) ever reaches the client; [`ServeError::log`] records those.
    pub fn response(&self) -> Response {
        let status = self.status();
        let text = match self {
            ServeError::NotFound => "not found\n",
            ServeError::MethodNotAllowed(_) => "method not allowed\n",
            ServeError::Render(e) if e.is_over_budget() => {
                "this page's layout ran past its rendering budget; the site's author has to simplify it\n"
            }
            ServeError::Render(RenderError::Read(ReadError::Storage(_)))
            | ServeError::Storage(_)
            | ServeError::Content(_) => {
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    "storage unavailable; retry\n"
                } else {
                    "storage error\n"
                }
            }
            ServeError::Render(_) => "this page could not be rendered\n",
            ServeError::Response(_) => "internal error\n",
        };
        let mut r = plain(status, text);
        match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            // Nothing is wrong with the site: a retry a moment later works.
            StatusCode::SERVICE_UNAVAILABLE => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        r
    }

    /// Logs a failure of the server's side with its details; a client's mistake is not logged.
    pub fn log(&self, site: &str, path: &str) {
        match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(site = %site, path = %path, "storage unavailable: {}", self.chain());
            }
            s if s.is_server_error() => {
                tracing::error!(site = %site, path = %path, "cannot serve: {}", self.chain());
            }
            _ => {}
        }
    }

    /// The message with every cause behind it (`render worker failed: task 7 panicked ...`).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

/// A storage failure's status: 503 while the shared metadata database is unreachable, 500 for
/// anything else.
fn storage_status(e: &StorageError) -> StatusCode {
    match e {
        StorageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
