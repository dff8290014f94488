//! `everlock-storage`: the versioned store behind every Everlock backend.
//!
//! Not implemented yet (issue "Versioned storage engine"); the crate exists so the workspace
//! has its final shape.
