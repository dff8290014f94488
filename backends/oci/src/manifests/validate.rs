//! Manifest validation: the four accepted formats and what a manifest references.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::error::{Code, OciError, OciResult};
use crate::names::{DigestError, OciDigest};

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

pub(super) fn invalid(message: impl Into<String>) -> OciError {
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
    let mut parsed = Parsed {
        media_type: media_type_of(&obj, content_type)?,
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
        image_references(&obj, &mut parsed)?;
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

/// The manifest's media type from its Content-Type and its `mediaType` field (they must
/// agree when both are given), else guessed from its shape.
fn media_type_of(obj: &Map<String, Value>, content_type: Option<&str>) -> OciResult<String> {
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
    Ok(media_type)
}

/// The config and distributable layers of an image manifest, and its config media type as
/// the default artifact type.
fn image_references(obj: &Map<String, Value>, parsed: &mut Parsed) -> OciResult<()> {
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
    Ok(())
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
