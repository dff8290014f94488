//! Spec errors: `{"errors":[{"code","message","detail"}]}` with the conventional statuses
//! (reference/oci.md §10). Every failure of a request ends up here, so no handler can answer
//! a bad request with a 500.

use everlock_host::axum::body::Body;
use everlock_host::axum::response::{IntoResponse, Response};
use everlock_host::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use everlock_host::http::{HeaderName, StatusCode};
use everlock_host::storage::StorageError;

/// The error codes of the distribution spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not a spec code: distribution's generic `UNKNOWN`, used for server-side failures that
    /// clients should report verbatim (a full disk, 507; the shared metadata database out of
    /// reach, 503). distribution also has `UNAVAILABLE` for the latter, but the OCI spec does
    /// not list it, and clients decide to retry from the status and `Retry-After`, not the
    /// code; `TOOMANYREQUESTS` would wrongly tell the user they are being rate-limited.
    Unknown,
}

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::Unknown => "UNKNOWN",
        }
    }
}

/// A failed request: a status, a spec code, a message and extra headers.
#[derive(Debug, thiserror::Error)]
#[error("{} {}: {message}", status.as_u16(), code.as_str())]
pub(crate) struct OciError {
    pub(crate) status: StatusCode,
    pub(crate) code: Code,
    pub(crate) message: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl OciError {
    pub(crate) fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        OciError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A storage failure that is not the client's fault: logged, and answered 500 with a
    /// generic text (a `Database` error included), 507 when the disk is full, or 503 with
    /// `Retry-After: 1` while the shared metadata database is unreachable. Storage errors that
    /// are the client's own (too many open uploads) get their 4xx.
    pub(crate) fn internal(err: &StorageError) -> Self {
        match err {
            StorageError::Full(_) => return Self::storage_full(err),
            StorageError::Unavailable(_) => return Self::storage_unavailable(err),
            StorageError::TooManyUploads { limit, .. } => return Self::too_many_uploads(*limit),
            _ => {}
        }
        tracing::error!(error = %err, "oci: storage failure");
        OciError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Code::Unsupported,
            message: "internal storage error".into(),
            headers: Vec::new(),
        }
    }
}

impl OciError {
    /// 507 Insufficient Storage: the registry's disk (or quota) is full. The client may retry
    /// once an operator has freed space; nothing about the request was wrong.
    fn storage_full(err: &StorageError) -> Self {
        tracing::error!(error = %err, "oci: storage full");
        OciError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            Code::Unknown,
            "storage full: the registry has no space left; retry after space is freed",
        )
    }

    /// 503 `UNKNOWN` with `Retry-After: 1`: the shared metadata database cannot be reached
    /// (restarting, failing over, or this node's connections all busy). Nothing about the
    /// request was wrong, and another node or a retry a moment later may serve it.
    fn storage_unavailable(err: &StorageError) -> Self {
        tracing::warn!(error = %err, "oci: storage unavailable");
        OciError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unknown,
            "storage temporarily unavailable; retry",
        )
        .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// 429 `TOOMANYREQUESTS`: the repository has `limit` open upload sessions. Sessions end
    /// when finished, cancelled or expired, so a retry a minute later may succeed.
    fn too_many_uploads(limit: u64) -> Self {
        OciError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::TooManyRequests,
            format!(
                "this repository has {limit} open upload sessions; finish or cancel some first"
            ),
        )
        .with_header(RETRY_AFTER, HeaderValue::from_static("60"))
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errors": [{ "code": self.code.as_str(), "message": self.message }]
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// Shorthand for handler results.
pub(crate) type OciResult<T> = Result<T, OciError>;

#[cfg(test)]
mod tests {
    use super::{Code, OciError, RETRY_AFTER, StatusCode, StorageError};

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        let e = OciError::internal(&StorageError::Unavailable("connection refused".into()));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, Code::Unknown);
        let retry: Vec<_> = e
            .headers
            .iter()
            .filter(|(n, _)| *n == RETRY_AFTER)
            .collect();
        assert_eq!(retry.len(), 1);
        assert_eq!(retry.first().map(|(_, v)| v.as_bytes()), Some(&b"1"[..]));
    }

    #[test]
    fn a_database_failure_is_500_without_details() {
        let e = OciError::internal(&StorageError::Database(
            "permission denied for schema".into(),
        ));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.headers.is_empty());
        assert!(!e.message.contains("permission"), "{}", e.message);
    }
}
