//! Manifests (reference/oci.md §6): validation, push as one commit, reads by tag or digest,
//! and deletes of tags and manifests.

use std::collections::BTreeSet;

use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION};
use everlock_host::http::{StatusCode, request::Parts};
use everlock_host::storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};
use futures_util::StreamExt as _;
use serde_json::{Map, Value};

use crate::blobs::stat;
use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::names::{Algorithm, DigestError, Name, OciDigest, Reference, Tag};
use crate::registry::{Registry, empty, header};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What a valid manifest references and says about itself.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) media_type: String,
    /// Config and layers that must exist as blobs of the repository.
    pub(crate) blobs: BTreeSet<OciDigest>,
    /// Child manifests of an index.
    pub(crate) manifests: BTreeSet<OciDigest>,
    pub(crate) subject: Option<OciDigest>,
    /// `artifactType`, else the config media type (image manifests only).
    pub(crate) artifact_type: Option<String>,
    pub(crate) annotations: Option<Value>,
}

impl Parsed {
    pub(crate) fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

fn invalid(message: impl Into<String>) -> OciError {
    OciError::bad(Code::ManifestInvalid, message)
}

/// Parses and validates manifest bytes pushed with `content_type` (parameters ignored).
pub(crate) fn parse(bytes: &[u8], content_type: Option<&str>) -> OciResult<Parsed> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(invalid("a manifest is a JSON object"));
    };
    if obj.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("only schemaVersion 2 manifests are accepted"));
    }
    let known = |t: &str| [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&t);
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| known(c));
    let field = match obj.get("mediaType") {
        None => None,
        Some(Value::String(s)) if known(s) => Some(s.clone()),
        Some(other) => return Err(invalid(format!("unsupported mediaType {other}"))),
    };
    let media_type = match (ct, field) {
        (Some(c), Some(f)) if c != f => {
            return Err(invalid(format!(
                "Content-Type {c} does not match mediaType {f}"
            )));
        }
        (Some(c), _) => c,
        (None, Some(f)) => f,
        (None, None) if obj.contains_key("manifests") => OCI_INDEX.to_owned(),
        (None, None) if obj.contains_key("config") => OCI_MANIFEST.to_owned(),
        (None, None) => return Err(invalid("cannot tell the manifest's media type")),
    };
    let mut parsed = Parsed {
        media_type,
        ..Parsed::default()
    };
    if parsed.is_index() {
        let list = obj
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("an index needs a manifests array"))?;
        for d in list {
            parsed.manifests.insert(descriptor(d, "manifests[]")?.0);
        }
    } else {
        let config = obj
            .get("config")
            .ok_or_else(|| invalid("an image manifest needs a config descriptor"))?;
        let (config_digest, config_type, _) = descriptor(config, "config")?;
        parsed.blobs.insert(config_digest);
        match obj.get("layers") {
            None | Some(Value::Null) => {}
            Some(Value::Array(layers)) => {
                for layer in layers {
                    let (d, media_type, foreign) = descriptor(layer, "layers[]")?;
                    // Non-distributable layers live elsewhere (their `urls`) and are never
                    // pushed, so they are not required (distribution 2.8 answers 500 here).
                    let nondistributable =
                        media_type.contains("nondistributable") || media_type.contains("foreign");
                    if !(foreign || nondistributable) {
                        parsed.blobs.insert(d);
                    }
                }
            }
            Some(_) => return Err(invalid("layers must be an array")),
        }
        parsed.artifact_type = Some(config_type);
    }
    if let Some(t) = obj.get("artifactType") {
        let t = t
            .as_str()
            .ok_or_else(|| invalid("artifactType must be a string"))?;
        parsed.artifact_type = Some(t.to_owned());
    }
    if let Some(subject) = obj.get("subject") {
        parsed.subject = Some(descriptor(subject, "subject")?.0);
    }
    match obj.get("annotations") {
        None | Some(Value::Null) => {}
        Some(a @ Value::Object(_)) => parsed.annotations = Some(a.clone()),
        Some(_) => return Err(invalid("annotations must be an object")),
    }
    Ok(parsed)
}

/// A descriptor's digest, media type and whether it names external `urls`.
fn descriptor(v: &Value, what: &str) -> OciResult<(OciDigest, String, bool)> {
    let obj: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| invalid(format!("{what} is not a descriptor object")))?;
    let media_type = obj
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} needs a mediaType")))?;
    let raw = obj
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} needs a digest")))?;
    let digest = OciDigest::parse(raw).map_err(|e| match e {
        DigestError::Malformed => invalid(format!("{what} has a malformed digest {raw:?}")),
        DigestError::Unsupported => invalid(format!(
            "{what} uses an unsupported digest algorithm {raw:?}"
        )),
    })?;
    if obj.get("size").and_then(Value::as_u64).is_none() {
        return Err(invalid(format!("{what} needs a non-negative integer size")));
    }
    let foreign = obj
        .get("urls")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty());
    Ok((digest, media_type.to_owned(), foreign))
}

/// Reads a manifest body, refusing more than `limit` bytes with 413.
async fn read_body(parts: &Parts, body: Body, limit: u64) -> OciResult<Vec<u8>> {
    let too_large = || {
        OciError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::SizeInvalid,
            format!("manifests are limited to {limit} bytes"),
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out =
        Vec::with_capacity(usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| OciError::bad(Code::ManifestInvalid, format!("request body: {e}")))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `PUT /v2/<name>/manifests/<reference>`.
pub(crate) async fn put(
    reg: &Registry,
    principal: &Principal,
    name: &Name,
    raw: &str,
    parts: &Parts,
    body: Body,
) -> OciResult<Response> {
    let reference = match Reference::parse(raw) {
        Ok(Some(r)) => r,
        Ok(None) | Err(DigestError::Malformed) => {
            return Err(OciError::bad(
                Code::ManifestInvalid,
                format!("invalid tag or digest {raw:?}"),
            ));
        }
        Err(DigestError::Unsupported) => {
            return Err(OciError::bad(
                Code::DigestInvalid,
                format!("unsupported digest algorithm in {raw:?}"),
            ));
        }
    };
    let bytes = read_body(parts, body, reg.settings.max_manifest_bytes).await?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = parse(&bytes, content_type)?;
    let (digest, tag) = match &reference {
        Reference::Digest(d) => {
            let actual = OciDigest::of(d.alg(), &bytes);
            if actual != *d {
                return Err(OciError::bad(
                    Code::DigestInvalid,
                    format!("manifest has digest {actual}, not {d}"),
                ));
            }
            (actual, None)
        }
        Reference::Tag(t) => (OciDigest::of(Algorithm::Sha256, &bytes), Some(t.clone())),
    };
    let store = reg.store().await?;
    let (ops, preconditions) =
        push_ops(store, name, &digest, tag.as_ref(), &parsed, &bytes).await?;
    let message = match &tag {
        Some(t) => format!("oci: push manifest {name}:{t} -> {digest}"),
        None => format!("oci: push manifest {name}@{digest}"),
    };
    store
        .commit(
            ops,
            preconditions,
            CommitMeta::new(principal.name(), message),
        )
        .await
        .map_err(|e| match e {
            StorageError::Conflict { path, .. } | StorageError::NotFound(path) => OciError::bad(
                Code::ManifestBlobUnknown,
                format!("{path} was removed while the manifest was pushed; push it again"),
            ),
            e => OciError::internal(&e),
        })?;
    let mut response = empty(StatusCode::CREATED);
    let h = response.headers_mut();
    h.insert(LOCATION, header(&format!("/v2/{name}/manifests/{digest}"))?);
    h.insert("docker-content-digest", header(&digest.to_string())?);
    if let Some(subject) = &parsed.subject {
        h.insert("oci-subject", header(&subject.to_string())?);
    }
    Ok(response)
}

/// The operations and preconditions of a manifest push. Referenced blobs and child
/// manifests must exist in the repository; their links (and child media types) are written
/// again, and the commit requires them unchanged, so a concurrent `gc` either sees the new
/// version and keeps them, or wins and this push fails with `MANIFEST_BLOB_UNKNOWN`.
async fn push_ops(
    store: &Store,
    name: &Name,
    digest: &OciDigest,
    tag: Option<&Tag>,
    parsed: &Parsed,
    bytes: &[u8],
) -> OciResult<(Vec<Op>, Vec<Precondition>)> {
    let mut ops = vec![
        Op::PutBytes {
            path: layout::manifest(name, digest),
            bytes: bytes.to_vec(),
        },
        Op::PutBytes {
            path: layout::media_type(name, digest),
            bytes: parsed.media_type.clone().into_bytes(),
        },
    ];
    let mut pre = Vec::new();
    if let Some(t) = tag {
        ops.push(Op::PutBytes {
            path: layout::tag(name, t),
            bytes: digest.to_string().into_bytes(),
        });
    }
    let unknown = |what: &str, d: &OciDigest| {
        OciError::bad(
            Code::ManifestBlobUnknown,
            format!("{what} {d} is not in repository {name}"),
        )
    };
    for d in &parsed.blobs {
        let link_path = layout::blob_link(name, d);
        let blob_path = layout::blob(d);
        let link = stat(store, &link_path)
            .await?
            .ok_or_else(|| unknown("blob", d))?;
        let blob = stat(store, &blob_path)
            .await?
            .ok_or_else(|| unknown("blob", d))?;
        ops.push(Op::PutBytes {
            path: link_path.clone(),
            bytes: d.to_string().into_bytes(),
        });
        pre.push(Precondition {
            path: link_path,
            expected: Expected::Object(link.object),
        });
        pre.push(Precondition {
            path: blob_path,
            expected: Expected::Object(blob.object),
        });
    }
    for d in parsed.manifests.iter().filter(|d| *d != digest) {
        let path = layout::manifest(name, d);
        let entry = stat(store, &path)
            .await?
            .ok_or_else(|| unknown("manifest", d))?;
        let media_type = store
            .read(&layout::media_type(name, d))
            .await
            .map_err(|_| unknown("manifest", d))?;
        ops.push(Op::PutBytes {
            path: layout::media_type(name, d),
            bytes: media_type,
        });
        pre.push(Precondition {
            path,
            expected: Expected::Object(entry.object),
        });
    }
    if let Some(subject) = &parsed.subject {
        let mut desc = serde_json::json!({
            "mediaType": parsed.media_type,
            "digest": digest.to_string(),
            "size": bytes.len(),
        });
        if let Some(obj) = desc.as_object_mut() {
            if let Some(t) = &parsed.artifact_type {
                obj.insert("artifactType".into(), Value::String(t.clone()));
            }
            if let Some(a) = &parsed.annotations {
                obj.insert("annotations".into(), a.clone());
            }
        }
        ops.push(Op::PutBytes {
            path: layout::referrer(name, subject, digest),
            bytes: desc.to_string().into_bytes(),
        });
    }
    Ok((ops, pre))
}

/// Resolves a reference to a digest; `None` when the tag does not exist.
pub(crate) async fn resolve(
    store: &Store,
    name: &Name,
    reference: &Reference,
) -> OciResult<Option<OciDigest>> {
    match reference {
        Reference::Digest(d) => Ok(Some(d.clone())),
        Reference::Tag(t) => match store.read(&layout::tag(name, t)).await {
            Ok(bytes) => Ok(std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| OciDigest::parse(s).ok())),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(OciError::internal(&e)),
        },
    }
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`: the exact bytes pushed, with their type.
pub(crate) async fn get(reg: &Registry, name: &Name, raw: &str, head: bool) -> OciResult<Response> {
    let unknown = || {
        OciError::not_found(
            Code::ManifestUnknown,
            format!("manifest {raw:?} unknown to {name}"),
        )
    };
    let reference = match Reference::parse(raw) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(unknown()),
        Err(_) if head => return Err(unknown()),
        Err(_) => {
            return Err(OciError::bad(
                Code::DigestInvalid,
                format!("invalid digest {raw:?}"),
            ));
        }
    };
    let store = reg.store().await?;
    let digest = resolve(store, name, &reference)
        .await?
        .ok_or_else(unknown)?;
    let bytes = match store.read(&layout::manifest(name, &digest)).await {
        Ok(b) => b,
        Err(StorageError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(OciError::internal(&e)),
    };
    let media_type = match store.read(&layout::media_type(name, &digest)).await {
        Ok(t) => String::from_utf8(t).unwrap_or_else(|_| OCI_MANIFEST.to_owned()),
        Err(StorageError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(OciError::internal(&e)),
    };
    let len = bytes.len();
    let mut response = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(bytes))
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, header(&media_type)?);
    h.insert(CONTENT_LENGTH, len.into());
    h.insert("docker-content-digest", header(&digest.to_string())?);
    h.insert(ETAG, header(&format!("\"{digest}\""))?);
    Ok(response)
}

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
            Ok(_) => return Ok(empty(StatusCode::ACCEPTED)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn parses_the_four_formats_and_rejects_the_rest() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d('a'), "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d('b'), "size": 3},
                {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": d('c'), "size": 3, "urls": ["https://x"]}
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d('e'), "size": 1},
            "annotations": {"k": "v"},
            "unknownField": true
        });
        let p = parse(
            m.to_string().as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json; charset=x"),
        )
        .unwrap();
        assert_eq!(p.media_type, OCI_MANIFEST);
        assert_eq!(
            p.blobs.len(),
            2,
            "the non-distributable layer is not required"
        );
        assert_eq!(p.subject.unwrap().to_string(), d('e'));
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        let idx = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": d('f'), "size": 5, "platform": {}}]});
        let p = parse(idx.to_string().as_bytes(), None).unwrap();
        assert!(p.is_index());
        assert_eq!(p.manifests.len(), 1);
        let bad: &[(&str, Option<&str>)] = &[
            ("", None),
            ("[]", None),
            ("{\"schemaVersion\":1}", None),
            ("{\"schemaVersion\":2}", None),
            ("{\"schemaVersion\":2,\"config\":{}}", None),
            (
                "{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"config\":{}}",
                None,
            ),
            (
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}",
                Some(OCI_MANIFEST),
            ),
            ("{\"schemaVersion\":2,\"manifests\":{}}", None),
            (
                "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:AB\",\"size\":1}}",
                None,
            ),
            (
                "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:ab\",\"size\":-1}}",
                None,
            ),
        ];
        for (body, ct) in bad {
            let err = parse(body.as_bytes(), *ct).unwrap_err();
            assert_eq!(err.code, Code::ManifestInvalid, "{body}");
        }
    }
}
