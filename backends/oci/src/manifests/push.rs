//! `PUT /v2/<name>/manifests/<reference>`: a validated manifest, its tags and referrers
//! entry written in one commit that requires every referenced blob unchanged.

use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use everlock_host::http::{StatusCode, request::Parts};
use everlock_host::storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};
use futures_util::StreamExt as _;
use serde_json::Value;

use super::{Parsed, parse};
use crate::blobs::stat;
use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::names::{Algorithm, DigestError, Name, OciDigest, Reference, Tag};
use crate::registry::Registry;
use crate::respond::{empty, header};

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
    let reference = parse_reference(raw)?;
    let bytes = read_body(parts, body, reg.settings.max_manifest_bytes).await?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = parse(&bytes, content_type)?;
    let query_tags = query_tags(parts)?;
    let (digest, tag) = digest_and_tag(&reference, &bytes)?;
    let mut tags: Vec<Tag> = tag.iter().cloned().collect();
    tags.extend(
        query_tags
            .iter()
            .filter(|t| Some(*t) != tag.as_ref())
            .cloned(),
    );
    let store = reg.store().await?;
    let (ops, preconditions) = push_ops(store, name, &digest, &tags, &parsed, &bytes).await?;
    let size = bytes.len() as u64;
    crate::quota::check(
        &reg.quota,
        &reg.settings.quota,
        store,
        name,
        &digest,
        &parsed,
        size,
    )
    .await?;
    let message = match tags.as_slice() {
        [] => format!("oci: push manifest {name}@{digest}"),
        list => {
            let list: Vec<String> = list.iter().map(ToString::to_string).collect();
            format!("oci: push manifest {name}:{} -> {digest}", list.join(","))
        }
    };
    store
        .commit(
            ops,
            preconditions,
            CommitMeta::new(principal.name(), message),
        )
        .await
        .map_err(commit_error)?;
    crate::webhooks::pushed(
        &reg.webhooks,
        principal,
        name,
        &tags,
        &digest,
        &parsed.media_type,
        bytes.len(),
    );
    created(name, &digest, &parsed, &query_tags)
}

/// The reference of a manifest push: a tag or a digest of a supported algorithm.
fn parse_reference(raw: &str) -> OciResult<Reference> {
    match Reference::parse(raw) {
        Ok(Some(r)) => Ok(r),
        Ok(None) | Err(DigestError::Malformed) => Err(OciError::bad(
            Code::ManifestInvalid,
            format!("invalid tag or digest {raw:?}"),
        )),
        Err(DigestError::Unsupported) => Err(OciError::bad(
            Code::DigestInvalid,
            format!("unsupported digest algorithm in {raw:?}"),
        )),
    }
}

/// The digest the manifest is stored under and the tag the path names, if any. A push by
/// digest must match the bytes, so a client cannot store content under a false name.
fn digest_and_tag(reference: &Reference, bytes: &[u8]) -> OciResult<(OciDigest, Option<Tag>)> {
    match reference {
        Reference::Digest(d) => {
            let actual = OciDigest::of(d.alg(), bytes);
            if actual != *d {
                return Err(OciError::bad(
                    Code::DigestInvalid,
                    format!("manifest has digest {actual}, not {d}"),
                ));
            }
            Ok((actual, None))
        }
        Reference::Tag(t) => Ok((OciDigest::of(Algorithm::Sha256, bytes), Some(t.clone()))),
    }
}

/// A push commit that lost a race with `gc` (a required blob changed or vanished) asks the
/// client to push again; anything else is the server's fault.
fn commit_error(e: StorageError) -> OciError {
    match e {
        StorageError::Conflict { path, .. } | StorageError::NotFound(path) => OciError::bad(
            Code::ManifestBlobUnknown,
            format!("{path} was removed while the manifest was pushed; push it again"),
        ),
        e => OciError::internal(&e),
    }
}

/// The 201 of a manifest push: where it lives, its digest, its subject and `?tag=` tags.
fn created(
    name: &Name,
    digest: &OciDigest,
    parsed: &Parsed,
    query_tags: &[Tag],
) -> OciResult<Response> {
    let mut response = empty(StatusCode::CREATED);
    let h = response.headers_mut();
    h.insert(LOCATION, header(&format!("/v2/{name}/manifests/{digest}"))?);
    h.insert("docker-content-digest", header(&digest.to_string())?);
    if let Some(subject) = &parsed.subject {
        h.insert("oci-subject", header(&subject.to_string())?);
    }
    for t in query_tags {
        h.append("oci-tag", header(&t.to_string())?);
    }
    Ok(response)
}

/// Most `?tag=` parameters one manifest push may carry; more is answered 414, as the spec
/// suggests for a request whose tag list the registry will not take.
const MAX_QUERY_TAGS: usize = 100;

/// The `?tag=` parameters of a manifest push (distribution-spec main, end-7b), in order and
/// without duplicates; an invalid tag refuses the whole push, so no tag is half-applied.
fn query_tags(parts: &Parts) -> OciResult<Vec<Tag>> {
    let mut tags: Vec<Tag> = Vec::new();
    let pairs = parts
        .uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for (key, value) in pairs.into_iter().filter(|(k, _)| k == "tag") {
        let t = Tag::parse(&value).ok_or_else(|| {
            OciError::bad(Code::ManifestInvalid, format!("invalid tag {value:?}"))
        })?;
        if !tags.contains(&t) {
            tags.push(t);
        }
        if tags.len() > MAX_QUERY_TAGS {
            return Err(OciError::new(
                StatusCode::URI_TOO_LONG,
                Code::ManifestInvalid,
                format!("at most {MAX_QUERY_TAGS} {key} parameters per push"),
            ));
        }
    }
    Ok(tags)
}

/// The operations and preconditions of a manifest push. Referenced blobs and child
/// manifests must exist in the repository; their links (and child media types) are written
/// again, and the commit requires them unchanged, so a concurrent `gc` either sees the new
/// version and keeps them, or wins and this push fails with `MANIFEST_BLOB_UNKNOWN`.
async fn push_ops(
    store: &Store,
    name: &Name,
    digest: &OciDigest,
    tags: &[Tag],
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
    for t in tags {
        ops.push(Op::PutBytes {
            path: layout::tag(name, t),
            bytes: digest.to_string().into_bytes(),
        });
    }
    require_references(store, name, digest, parsed, &mut ops, &mut pre).await?;
    if let Some(subject) = &parsed.subject {
        ops.push(referrer_op(name, subject, digest, parsed, bytes.len()));
    }
    Ok((ops, pre))
}

/// Rewrites the links of every blob and child manifest `parsed` references and requires
/// them unchanged at commit; a reference missing from the repository refuses the push.
async fn require_references(
    store: &Store,
    name: &Name,
    digest: &OciDigest,
    parsed: &Parsed,
    ops: &mut Vec<Op>,
    pre: &mut Vec<Precondition>,
) -> OciResult<()> {
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
    Ok(())
}

/// The referrers entry of a manifest with a `subject`: its descriptor, kept under the
/// subject so the referrers API lists it without reading every manifest.
fn referrer_op(
    name: &Name,
    subject: &OciDigest,
    digest: &OciDigest,
    parsed: &Parsed,
    size: usize,
) -> Op {
    let mut desc = serde_json::json!({
        "mediaType": parsed.media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    if let Some(obj) = desc.as_object_mut() {
        if let Some(t) = &parsed.artifact_type {
            obj.insert("artifactType".into(), Value::String(t.clone()));
        }
        if let Some(a) = &parsed.annotations {
            obj.insert("annotations".into(), a.clone());
        }
    }
    Op::PutBytes {
        path: layout::referrer(name, subject, digest),
        bytes: desc.to_string().into_bytes(),
    }
}
