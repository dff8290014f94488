//! [`S3Error`]: what can go wrong talking to the bucket, and its `io::Error` kinds.

use std::io;

use object_store::path::Path as Key;

/// What can go wrong talking to the bucket; converted to `io::Error` with a matching kind.
#[derive(Debug, thiserror::Error)]
pub(crate) enum S3Error {
    /// The configuration cannot work.
    #[error("invalid S3 configuration: {0}")]
    Config(String),
    /// A request failed (after the client's retries).
    #[error("S3 {op} of {key} failed: {source}")]
    Request {
        /// The operation, e.g. `put`.
        op: &'static str,
        /// The object key.
        key: String,
        /// The client's error.
        #[source]
        source: object_store::Error,
    },
    /// The local spool file could not be read while uploading.
    #[error("reading the spool file: {0}")]
    Spool(#[source] io::Error),
    /// The bytes read back differ in length from what was announced.
    #[error("{key}: expected {expected} bytes, got {got}")]
    Length {
        /// The object key.
        key: String,
        /// Bytes expected.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The client runtime is gone (the backend is shutting down).
    #[error("the S3 client runtime has stopped")]
    RuntimeGone,
}

impl From<S3Error> for io::Error {
    fn from(e: S3Error) -> Self {
        use object_store::Error as E;
        let kind = match &e {
            S3Error::Config(_) => io::ErrorKind::InvalidInput,
            S3Error::Spool(io) => io.kind(),
            S3Error::Length { .. } => io::ErrorKind::UnexpectedEof,
            S3Error::RuntimeGone => io::ErrorKind::Interrupted,
            S3Error::Request { source, .. } => match source {
                E::NotFound { .. } => io::ErrorKind::NotFound,
                E::AlreadyExists { .. } | E::Precondition { .. } => io::ErrorKind::AlreadyExists,
                E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                    io::ErrorKind::PermissionDenied
                }
                E::NotSupported { .. } | E::NotImplemented { .. } => io::ErrorKind::Unsupported,
                E::InvalidPath { .. } => io::ErrorKind::InvalidInput,
                // List and multipart errors arrive as `Generic` around a private retry error;
                // S3's own error codes in the response body are stable protocol names.
                other if is_auth_failure(other) => io::ErrorKind::PermissionDenied,
                // S3 has no "storage full": a full backend shows up as a 5xx, i.e. `Other`.
                _ => io::ErrorKind::Other,
            },
        };
        io::Error::new(kind, e)
    }
}

/// Whether a wrapped S3 error response is an authentication or authorisation failure.
fn is_auth_failure(e: &object_store::Error) -> bool {
    const CODES: [&str; 4] = [
        "<Code>AccessDenied</Code>",
        "<Code>SignatureDoesNotMatch</Code>",
        "<Code>InvalidAccessKeyId</Code>",
        "403 Forbidden",
    ];
    let text = e.to_string();
    CODES.iter().any(|c| text.contains(c))
}

pub(super) fn request(op: &'static str, key: &Key) -> impl FnOnce(object_store::Error) -> S3Error {
    let key = key.to_string();
    move |source| S3Error::Request { op, key, source }
}
