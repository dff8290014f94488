//! Key material with shared storage (`StoreManager::is_shared`: PostgreSQL metadata, several
//! nodes): the local CA and the SSH host key live in the `everlock-system` store instead of
//! `<data-dir>/_host/`, so every node presents the same CA and the same host key. Each is
//! created once with an `Absent` precondition; two nodes starting together both generate one,
//! the first commit wins and the other node reads the winner's.
//!
//! Single-node servers keep the files under `<data-dir>/_host/` as before.

use std::path::Path;
use std::sync::Arc;

use everlock_storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store, StoreManager};

use super::{GeneratedCertPaths, LocalCa, TlsError, TlsState};
use crate::config::CertificateConfig;
use crate::config::SYSTEM_STORE;

/// The local CA certificate in the system store.
pub const CA_CERT_PATH: &str = "tls/local-ca/ca.pem";
/// The local CA key in the system store.
pub const CA_KEY_PATH: &str = "tls/local-ca/ca-key.pem";
/// The SSH host key in the system store.
pub const SSH_HOST_KEY_PATH: &str = "ssh/host_ed25519.pem";

/// Reads `paths` from `store`; when none exists, stores what `make` returns (one value per
/// path) in one commit that requires every path absent, and on losing that race reads the
/// winner's values. A partial set (some paths present) is an error: it is never repaired by
/// overwriting what another node may be serving.
pub async fn get_or_create(
    store: &Store,
    paths: &[&str],
    make: impl FnOnce() -> Result<Vec<Vec<u8>>, String>,
    message: &str,
) -> Result<Vec<Vec<u8>>, String> {
    if let Some(values) = read_all(store, paths).await? {
        return Ok(values);
    }
    let values = make()?;
    let ops = paths
        .iter()
        .zip(values.iter())
        .map(|(p, v)| Op::PutBytes {
            path: (*p).to_owned(),
            bytes: v.clone(),
        })
        .collect();
    let preconditions = paths
        .iter()
        .map(|p| Precondition {
            path: (*p).to_owned(),
            expected: Expected::Absent,
        })
        .collect();
    match store
        .commit(ops, preconditions, CommitMeta::new("system", message))
        .await
    {
        Ok(_) => Ok(values),
        Err(StorageError::Conflict { .. }) => read_all(store, paths)
            .await?
            .ok_or_else(|| format!("{} changed while being created", paths.join(", "))),
        Err(e) => Err(e.to_string()),
    }
}

/// Every path's content, `None` when none exists. All paths are read at one commit: reading
/// each at the newest state could see another node's creating commit land between two reads
/// and mistake a complete record for a partial one.
async fn read_all(store: &Store, paths: &[&str]) -> Result<Option<Vec<Vec<u8>>>, String> {
    let Some(head) = store.head().await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let mut values = Vec::with_capacity(paths.len());
    for path in paths {
        match store.read_at(path, head.id).await {
            Ok(v) => values.push(v),
            Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if values.is_empty() {
        Ok(None)
    } else if values.len() == paths.len() {
        Ok(Some(values))
    } else {
        Err(format!(
            "the system store holds only part of {}",
            paths.join(", ")
        ))
    }
}

/// The HTTPS listener's TLS state: with shared storage the CA comes from the system store (and
/// `ca.pem` is also written to `<data-dir>/_host/tls/` for clients on this machine), else from
/// the data directory.
pub async fn tls_state(
    stores: &StoreManager,
    data_dir: &Path,
    certs: &[CertificateConfig],
) -> Result<Arc<TlsState>, TlsError> {
    if !stores.is_shared() {
        return TlsState::new(data_dir, certs);
    }
    let store_err = |reason: String| TlsError::Load {
        path: format!("{SYSTEM_STORE}:{CA_CERT_PATH}").into(),
        reason,
    };
    let store = stores
        .open(SYSTEM_STORE)
        .await
        .map_err(|e| store_err(e.to_string()))?;
    let values = get_or_create(
        &store,
        &[CA_CERT_PATH, CA_KEY_PATH],
        || {
            let (cert, key) = super::local_ca::generate_ca().map_err(|e| e.to_string())?;
            Ok(vec![cert.into_bytes(), key.into_bytes()])
        },
        "tls: local certificate authority",
    )
    .await
    .map_err(store_err)?;
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let (cert, key) = match values.as_slice() {
        [cert, key] => (text(cert), text(key)),
        _ => return Err(store_err("unexpected CA record".to_owned())),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let local = LocalCa::from_pem(&cert, &key, &provider)?;
    publish_ca_copy(data_dir, &cert);
    TlsState::with_ca(provider, local, certs)
}

/// Writes the shared CA certificate where single-node servers keep theirs, so `curl --cacert
/// <data-dir>/_host/tls/ca.pem` works on every node; a failure only costs that convenience.
fn publish_ca_copy(data_dir: &Path, cert: &str) {
    let paths = GeneratedCertPaths::new(data_dir);
    let written = paths
        .ca_cert
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| super::files::write_public(&paths.ca_cert, cert.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(path = %paths.ca_cert.display(), error = %e, "cannot write a copy of the shared CA certificate");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[tokio::test]
    async fn two_nodes_creating_at_once_agree_on_one_value() {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreManager::new(dir.path());
        let store = stores.open(SYSTEM_STORE).await.unwrap();
        let make =
            |tag: &'static str| move || Ok(vec![tag.as_bytes().to_vec(), tag.as_bytes().to_vec()]);
        let paths = ["x/a", "x/b"];
        let (one, two) = tokio::join!(
            get_or_create(&store, &paths, make("one"), "t"),
            get_or_create(&store, &paths, make("two"), "t"),
        );
        let (one, two) = (one.unwrap(), two.unwrap());
        assert_eq!(one, two, "both callers see the committed value");
        assert_eq!(one[0], one[1]);
        // Later calls read it and never call `make`.
        let again = get_or_create(&store, &paths, || Err("must not run".to_owned()), "t")
            .await
            .unwrap();
        assert_eq!(again, one);
        // A partial record is refused rather than overwritten.
        let err = get_or_create(&store, &["x/a", "x/c"], make("three"), "t")
            .await
            .unwrap_err();
        assert!(err.contains("only part"), "{err}");
    }

    #[tokio::test]
    async fn a_ca_from_the_store_issues_verifiable_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreManager::new(dir.path());
        let store = stores.open(SYSTEM_STORE).await.unwrap();
        let values = get_or_create(
            &store,
            &[CA_CERT_PATH, CA_KEY_PATH],
            || {
                let (c, k) = crate::tls::local_ca::generate_ca().map_err(|e| e.to_string())?;
                Ok(vec![c.into_bytes(), k.into_bytes()])
            },
            "t",
        )
        .await
        .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca = LocalCa::from_pem(
            std::str::from_utf8(&values[0]).unwrap(),
            std::str::from_utf8(&values[1]).unwrap(),
            &provider,
        )
        .unwrap();
        let leaf = ca.leaf("node.localhost").unwrap();
        assert_eq!(leaf.cert.len(), 2, "leaf and CA");
        assert_eq!(leaf.cert[1].as_ref(), {
            use rustls_pki_types::pem::PemObject;
            rustls_pki_types::CertificateDer::from_pem_slice(&values[0])
                .unwrap()
                .as_ref()
                .to_vec()
        });
    }
}
