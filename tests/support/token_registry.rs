//! A running Everlock registry with `auth = "token"` for the token-flow tests
//! (`tests/oci_token.rs` with skopeo and curl, `tests/oci_token_clients.rs` with oras-py,
//! podman and the Docker CLI): users seeded before the start, `anon` reading `public/*` only.
//!
//! Include it with `#[path = "support/token_registry.rs"] mod token_registry;` next to
//! `mod common;` and `mod oci_common;`.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::path::PathBuf;

use everlock_host::auth::{Auth, AuthOptions, Principal};
use everlock_host::storage::StoreManager;

use crate::common::Server;
use crate::oci_common::{ADMIN, seed_users};

/// One registry instance at `/v2` on `localhost`, authenticating with tokens.
pub const CONFIG: &str = "[backends.oci-http.instances.default]\nvhosts = [\"localhost\"]\nprefix = \"/v2\"\nstore = \"everlock-oci-local\"\n[backends.oci-http.instances.default.settings]\nauth = \"token\"\n";

/// A running token-auth registry: `alice` may push, `puller` may pull, `anon` may read
/// `public/*` and nothing else.
pub struct Registry {
    _dir: tempfile::TempDir,
    /// A scratch directory for the clients.
    pub work: PathBuf,
    /// The running server.
    pub server: Server,
    /// The server's CA certificate (PEM).
    pub ca: PathBuf,
    /// `localhost:<https port>`.
    pub host: String,
}

pub async fn start() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let data = dir.path().join("data");
    seed_users(&data, false).await;
    {
        let stores = StoreManager::new(&data);
        let options = AuthOptions {
            bcrypt_cost: 4,
            ..AuthOptions::default()
        };
        let auth = Auth::open(&stores, options).await.unwrap();
        let admin = Principal::test_user(ADMIN.0);
        auth.grant(&admin, "anon", "http/oci/default/public", "reader")
            .await
            .unwrap();
    }
    let server = Server::start_env(dir.path(), CONFIG, &[]);
    let ca = work.join("ca.pem");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let host = format!("localhost:{}", server.https.port());
    Registry {
        _dir: dir,
        work,
        server,
        ca,
        host,
    }
}
