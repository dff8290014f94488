//! How a storage failure while serving becomes a status.

#![allow(clippy::unwrap_used, reason = "tests")]

use everlock_host::http::{StatusCode, header};
use everlock_host::storage::StorageError;

use super::storage_failure;

#[test]
fn an_unreachable_database_is_503_with_retry_after() {
    let r = storage_failure("s", &StorageError::Unavailable("connection refused".into()));
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), "1");
}

#[test]
fn a_database_failure_is_500() {
    let r = storage_failure("s", &StorageError::Database("permission denied".into()));
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.headers().get(header::RETRY_AFTER).is_none());
}
