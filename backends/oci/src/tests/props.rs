//! Property tests of every parser that sees the network in this backend: repository names,
//! tags, digests and references, request paths, `Range` and `Content-Range`, and manifests
//! (random JSON, structured and byte-level mutations of valid ones). Each must answer a typed
//! value or a typed error, never panic, and agree with the grammar.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::blobs::parse_range;
use crate::error::Code;
use crate::manifests::{self, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::names::{DigestError, MAX_NAME_LEN, Name, OciDigest, Reference, Tag};
use crate::route::Route;
use crate::uploads::parse_content_range;

/// A name component straight from the spec grammar.
const COMPONENT: &str = "[a-z0-9]{1,6}(([.]|_|__|-{1,3})[a-z0-9]{1,6}){0,3}";

fn name_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(COMPONENT, 1..5).prop_map(|c| c.join("/"))
}

fn sha256_strategy() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}"))
}

/// Strings that look like the inputs: mostly the grammar's alphabet, some anything.
fn nearly(alphabet: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(alphabet.chars().collect::<Vec<_>>()), 0..80)
            .prop_map(|v| v.into_iter().collect::<String>()),
        1 => any::<String>(),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z:./+0-9-]{0,20}".prop_map(Value::String),
        sha256_strategy().prop_map(Value::String),
        prop::sample::select(vec![OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "schemaVersion",
            "mediaType",
            "config",
            "layers",
            "manifests",
            "digest",
            "size",
            "urls",
            "subject",
            "artifactType",
            "annotations",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,8}",
    ]
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

/// A valid image manifest or index with its referenced digests.
fn valid_manifest() -> impl Strategy<Value = (Value, Vec<String>)> {
    (
        any::<bool>(),
        sha256_strategy(),
        prop::collection::vec(sha256_strategy(), 0..5),
        any::<u32>(),
        prop::option::of(sha256_strategy()),
    )
        .prop_map(|(index, first, rest, size, subject)| {
            let size = u64::from(size);
            let mut v = if index {
                let all: Vec<_> = std::iter::once(&first)
                    .chain(&rest)
                    .map(|d| descriptor(OCI_MANIFEST, d, size))
                    .collect();
                json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": all})
            } else {
                let layers: Vec<_> = rest
                    .iter()
                    .map(|d| descriptor("application/vnd.oci.image.layer.v1.tar", d, size))
                    .collect();
                json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor("application/vnd.oci.image.config.v1+json", &first, size),
                    "layers": layers,
                })
            };
            if let Some(s) = subject {
                v["subject"] = descriptor(OCI_MANIFEST, &s, 1);
            }
            let mut digests = vec![first];
            digests.extend(rest);
            (v, digests)
        })
}

/// The manifest parser answers a value or a 400 `MANIFEST_INVALID`, nothing else.
fn parse_is_typed(bytes: &[u8], content_type: Option<&str>) -> Result<(), TestCaseError> {
    if let Err(e) = manifests::parse(bytes, content_type) {
        prop_assert_eq!(e.status.as_u16(), 400, "{}", e);
        prop_assert_eq!(e.code, Code::ManifestInvalid, "{}", e);
    }
    Ok(())
}

/// Sets `value` at a random place of `target` (a field of an object or an array element, at
/// any depth chosen by `path`).
fn graft(target: &mut Value, path: &[usize], value: Value) {
    let Some((&step, rest)) = path.split_first() else {
        *target = value;
        return;
    };
    match target {
        Value::Object(obj) if !obj.is_empty() => {
            let key = obj
                .keys()
                .nth(step % obj.len())
                .cloned()
                .unwrap_or_default();
            if let Some(child) = obj.get_mut(&key) {
                graft(child, rest, value);
            }
        }
        Value::Array(arr) if !arr.is_empty() => {
            let i = step % arr.len();
            graft(&mut arr[i], rest, value);
        }
        other => *other = value,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn grammar_names_parse_and_round_trip(name in name_strategy()) {
        prop_assume!(name.len() <= MAX_NAME_LEN);
        let parsed = Name::parse(&name);
        prop_assert!(parsed.is_some(), "{name}");
        prop_assert_eq!(parsed.map(|n| n.to_string()), Some(name));
    }

    #[test]
    fn any_name_input_is_typed(s in nearly("abz09._-/A ")) {
        if let Some(n) = Name::parse(&s) {
            prop_assert_eq!(n.as_str(), s.as_str());
            prop_assert!(s.len() <= MAX_NAME_LEN);
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b)));
            prop_assert!(!s.starts_with('/') && !s.ends_with('/') && !s.contains("//"));
            prop_assert!(!s.contains("___") && !s.contains(".."));
        }
    }

    #[test]
    fn any_tag_input_is_typed(s in nearly("aZ09._-:/ ")) {
        if let Some(t) = Tag::parse(&s) {
            prop_assert_eq!(t.to_string(), s.clone());
            prop_assert!(!s.is_empty() && s.len() <= 128);
            prop_assert!(!s.starts_with(['.', '-']));
        }
    }

    #[test]
    fn grammar_tags_parse(s in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
        prop_assert!(Tag::parse(&s).is_some(), "{s}");
    }

    #[test]
    fn valid_digests_round_trip_and_mutations_are_typed(
        d in sha256_strategy(),
        at in any::<prop::sample::Index>(),
        with in any::<char>(),
    ) {
        let parsed = OciDigest::parse(&d).unwrap();
        prop_assert_eq!(parsed.to_string(), d.as_str());
        prop_assert!(parsed.to_store().is_some());
        // Replace one character: still valid only if it stayed lower-case hex.
        let mut chars: Vec<char> = d.chars().collect();
        let i = at.index(chars.len());
        chars[i] = with;
        let mutated: String = chars.into_iter().collect();
        match OciDigest::parse(&mutated) {
            Ok(p) => {
                prop_assert_eq!(p.to_string(), mutated.clone());
                prop_assert!(p.to_store().is_some());
            }
            Err(DigestError::Malformed | DigestError::Unsupported) => {}
        }
        // Truncated or extended: never valid.
        prop_assert!(OciDigest::parse(&d[..d.len() - 1]).is_err());
        let extended = format!("{d}0");
        prop_assert!(OciDigest::parse(&extended).is_err());
        prop_assert!(OciDigest::parse(&d.to_uppercase()).is_err());
    }

    #[test]
    fn any_reference_input_is_typed(s in nearly("sha256:0f9aZ._-+=/")) {
        match Reference::parse(&s) {
            Ok(Some(r)) => prop_assert_eq!(r.to_string(), s),
            Ok(None) => prop_assert!(!s.contains(':')),
            Err(_) => prop_assert!(s.contains(':')),
        }
    }

    #[test]
    fn any_request_path_is_typed(s in nearly("/v2abc_.-:0ftagslistmanifestsblobsuploadsreferrers")) {
        let _ = Route::parse(&s);
        let _ = Route::parse(&format!("/v2/{s}"));
    }

    #[test]
    fn ranges_are_typed_and_within_the_blob(s in nearly("bytes=0123456789-, "), size in 0u64..10_000) {
        if let Ok(Some((start, end))) = parse_range(&s, size) {
            prop_assert!(start <= end && end < size, "{s} {size} -> {start}-{end}");
        }
    }

    #[test]
    fn content_ranges_are_typed(s in nearly("bytes=0123456789- /"), a in any::<u64>(), b in any::<u64>()) {
        if let Some((start, end)) = parse_content_range(&s) {
            prop_assert!(start <= end);
        }
        let (lo, hi) = (a.min(b), a.max(b));
        let exact = format!("{lo}-{hi}");
        prop_assert_eq!(parse_content_range(&exact), Some((lo, hi)));
    }

    #[test]
    fn random_json_manifests_are_typed(v in json_value(), ct in prop::option::of(prop::sample::select(vec![OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, "text/plain", ""]))) {
        parse_is_typed(v.to_string().as_bytes(), ct)?;
    }

    #[test]
    fn valid_manifests_parse_with_their_references((v, digests) in valid_manifest()) {
        let parsed = manifests::parse(v.to_string().as_bytes(), None).unwrap();
        let refs: Vec<String> = parsed
            .blobs
            .iter()
            .chain(&parsed.manifests)
            .map(ToString::to_string)
            .collect();
        for d in &digests {
            prop_assert!(refs.contains(d), "{d} missing from {refs:?}");
        }
    }

    #[test]
    fn grafted_manifests_are_typed(
        (v, _) in valid_manifest(),
        path in prop::collection::vec(any::<usize>(), 0..4),
        value in json_value(),
    ) {
        let mut v = v;
        graft(&mut v, &path, value);
        parse_is_typed(v.to_string().as_bytes(), None)?;
        parse_is_typed(v.to_string().as_bytes(), Some(OCI_MANIFEST))?;
    }

    #[test]
    fn byte_mutated_manifests_are_typed(
        (v, _) in valid_manifest(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = v.to_string().into_bytes();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        parse_is_typed(&bytes, None)?;
    }
}
