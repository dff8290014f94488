//! Manifest and tag deletes, each guarded by the versions it removes.

use everlock_host::auth::Principal;
use everlock_host::axum::response::Response;
use everlock_host::http::StatusCode;
use everlock_host::storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};

use super::parse;
use crate::blobs::stat;
use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::names::{Name, OciDigest, Reference};
use crate::registry::Registry;
use crate::respond::empty;

pub(crate) fn delete_disabled() -> OciError {
    OciError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unsupported,
        "deletes are disabled on this registry",
    )
}

/// `DELETE /v2/<name>/manifests/<reference>`: a tag deletes only the tag; a digest deletes
/// the manifest, every tag pointing at it and its referrers entry, in one commit.
pub(crate) async fn delete(
    reg: &Registry,
    principal: &Principal,
    name: &Name,
    raw: &str,
) -> OciResult<Response> {
    if !reg.settings.allow_delete {
        return Err(delete_disabled());
    }
    let unknown = || {
        OciError::not_found(
            Code::ManifestUnknown,
            format!("manifest {raw:?} unknown to {name}"),
        )
    };
    let reference = match Reference::parse(raw) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(unknown()),
        Err(_) => {
            return Err(OciError::bad(
                Code::DigestInvalid,
                format!("invalid digest {raw:?}"),
            ));
        }
    };
    let store = reg.store().await?;
    // A tag moved or a manifest re-pushed between our reads and the commit makes the
    // preconditions fail; reading again resolves it.
    for _ in 0..5 {
        let (ops, pre, message) = match &reference {
            Reference::Tag(t) => {
                let path = layout::tag(name, t);
                let entry = stat(store, &path).await?.ok_or_else(unknown)?;
                (
                    vec![Op::Delete { path: path.clone() }],
                    vec![Precondition {
                        path,
                        expected: Expected::Version(entry.version),
                    }],
                    format!("oci: delete tag {name}:{t}"),
                )
            }
            Reference::Digest(d) => {
                let (ops, pre) = delete_manifest_ops(store, name, d)
                    .await?
                    .ok_or_else(unknown)?;
                (ops, pre, format!("oci: delete manifest {name}@{d}"))
            }
        };
        match store
            .commit(ops, pre, CommitMeta::new(principal.name(), message))
            .await
        {
            Ok(_) => {
                let (tag, digest) = match &reference {
                    Reference::Tag(t) => (Some(t), None),
                    Reference::Digest(d) => (None, Some(d)),
                };
                crate::webhooks::deleted(&reg.webhooks, principal, name, tag, digest);
                return Ok(empty(StatusCode::ACCEPTED));
            }
            Err(StorageError::Conflict { .. } | StorageError::NotFound(_)) => continue,
            Err(e) => return Err(OciError::internal(&e)),
        }
    }
    Err(OciError::new(
        StatusCode::CONFLICT,
        Code::Unsupported,
        "the manifest keeps changing; try again",
    ))
}

/// The deletes of a manifest, its media type, its tags and its referrers entry, each
/// guarded by its current version; `None` if the manifest does not exist.
pub(crate) async fn delete_manifest_ops(
    store: &Store,
    name: &Name,
    d: &OciDigest,
) -> OciResult<Option<(Vec<Op>, Vec<Precondition>)>> {
    let mut ops = Vec::new();
    let mut pre = Vec::new();
    let mut remove = |path: String, version: u64| {
        ops.push(Op::Delete { path: path.clone() });
        pre.push(Precondition {
            path,
            expected: Expected::Version(version),
        });
    };
    let manifest_path = layout::manifest(name, d);
    let Some(entry) = stat(store, &manifest_path).await? else {
        return Ok(None);
    };
    let bytes = store
        .read(&manifest_path)
        .await
        .map_err(|e| OciError::internal(&e))?;
    remove(manifest_path, entry.version);
    let type_path = layout::media_type(name, d);
    if let Some(e) = stat(store, &type_path).await? {
        remove(type_path, e.version);
    }
    // A tag's content is the digest text, so its sha256 identifies the tags to remove
    // without reading each one.
    let target = everlock_host::storage::Sha256::from_bytes(
        <sha2::Sha256 as sha2::Digest>::digest(d.to_string().as_bytes()).into(),
    );
    let tags = store
        .list(&layout::tags_prefix(name))
        .await
        .map_err(|e| OciError::internal(&e))?;
    for t in tags.into_iter().filter(|t| t.sha256 == target) {
        remove(t.path, t.version);
    }
    if let Ok(parsed) = parse(&bytes, None)
        && let Some(subject) = parsed.subject
    {
        let path = layout::referrer(name, &subject, d);
        if let Some(e) = stat(store, &path).await? {
            remove(path, e.version);
        }
    }
    Ok(Some((ops, pre)))
}
