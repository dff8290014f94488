//! Links every backend crate into the binary.
//!
//! rustc drops a dependency nothing references, and with it the backend's
//! `register_backend!` registration, so each backend is named here once. This is the only
//! place that lists concrete backends; integration tests include this file with
//! `#[path = "../src/linked.rs"] mod linked;` for the same reason.

// Linked only for inventory registration: do not remove.
#[cfg(feature = "backend-admin-ssh")]
use everlock_backend_admin_ssh as _;
#[cfg(feature = "backend-oci-http")]
use everlock_backend_oci_http as _;
#[cfg(feature = "backend-site-http")]
use everlock_backend_site_http as _;
#[cfg(feature = "backend-hello-http")]
use everlock_example_hello_backend as _;

/// The kinds this build must register, from the enabled features; a test compares it with
/// what the registry actually collected, so a forgotten `use` line fails CI.
#[allow(
    dead_code,
    reason = "used by the binary's tests and by integration tests"
)]
pub(crate) fn expected_kinds() -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if cfg!(feature = "backend-hello-http") {
        kinds.push("hello-http");
    }
    if cfg!(feature = "backend-oci-http") {
        kinds.push("oci-http");
    }
    if cfg!(feature = "backend-site-http") {
        kinds.push("site-http");
    }
    if cfg!(feature = "backend-admin-ssh") {
        kinds.push("admin-ssh");
    }
    kinds.sort_unstable();
    kinds
}
