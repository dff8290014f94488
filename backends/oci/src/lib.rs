//! `oci-http`: the OCI Distribution registry backend.
//!
//! Not implemented yet: the crate exists so the workspace has its final shape and the binary
//! links it. It registers no kind until the registry is built (issue "OCI registry backend"),
//! so `everlock backends` never lists a kind that cannot serve.
