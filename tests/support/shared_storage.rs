//! Shared storage for multi-node tests: a private PostgreSQL 15 (`support/postgres.rs`) and a
//! SeaweedFS S3 gateway (`storage/tests/support/seaweedfs.rs`), and the `[storage]` section
//! and environment that point every node at them.
//!
//! Include it next to its two parts:
//! ```ignore
//! #[path = "support/postgres.rs"] mod postgres;
//! #[path = "../storage/tests/support/seaweedfs.rs"] mod seaweedfs;
//! #[path = "support/shared_storage.rs"] mod shared_storage;
//! ```

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: each test crate uses a subset, and a panic is a test failure"
)]

use crate::postgres::Postgres;
use crate::seaweedfs::{self, SeaweedFs};

/// A running PostgreSQL and SeaweedFS; dropping it stops both.
pub struct SharedStorage {
    pub pg: Postgres,
    pub weed: SeaweedFs,
}

impl SharedStorage {
    /// Starts both services. `None` (after a SKIP line) when either is not installed and
    /// `CI` is unset. Blocks for a few seconds.
    pub fn start() -> Option<SharedStorage> {
        let pg = Postgres::start()?;
        let weed = SeaweedFs::start()?;
        Some(SharedStorage { pg, weed })
    }

    /// The `[storage]` section of every node: objects in the bucket under `prefix`, metadata
    /// in the database. The S3 secret comes from the environment ([`SharedStorage::env`]).
    pub fn section(&self, prefix: &str) -> String {
        format!(
            "[storage]\nobjects = \"s3\"\nmeta = \"postgres\"\n[storage.s3]\nendpoint = \"{}\"\nbucket = \"{}\"\nprefix = \"{prefix}\"\naccess-key-id = \"{}\"\nallow-http = true\n[storage.postgres]\nurl = \"{}\"\n",
            self.weed.endpoint,
            seaweedfs::BUCKET,
            seaweedfs::ACCESS_KEY,
            self.pg.url(),
        )
    }

    /// The environment every node and every `everlock store` command needs.
    pub fn env() -> Vec<(&'static str, &'static str)> {
        vec![(
            "EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY",
            seaweedfs::SECRET_KEY,
        )]
    }
}
