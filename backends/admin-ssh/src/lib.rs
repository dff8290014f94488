//! `admin-ssh`: the SSH admin console.
//!
//! Not implemented yet: the crate exists so the workspace has its final shape and the binary
//! links it. It registers no kind until the console is built (issue "SSH admin console").
