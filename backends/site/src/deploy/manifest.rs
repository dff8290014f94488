//! Incremental deploys (issue #16 item 5): the client first sends the manifest of the new site
//! (every path with the blake3 hash and size of its content) and the server answers which
//! contents it lacks. The upload that follows carries the manifest as its first archive entry
//! and only the missing contents; every other path reuses an object the site's current HEAD
//! already references (the store names objects by their blake3 hash, so equal hashes are equal
//! bytes). The deploy is still one atomic commit, and a manifest equal to HEAD commits nothing.

use std::collections::{BTreeMap, HashMap};

use everlock_host::storage::{CommitId, Entry, ObjectId, ObjectRef, StorageError, Store};
use serde::{Deserialize, Serialize};

use super::DeployError;
use super::archive::clean_path;

/// The request header that marks an upload whose first archive entry is the manifest.
pub const MANIFEST_HEADER: &str = "everlock-deploy-manifest";
/// The largest manifest accepted, in bytes: about 100,000 files with long paths.
pub const MAX_MANIFEST: u64 = 32 * 1024 * 1024;

/// One file of the new site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// The path in the site, as an archive path (`docs/index.md`).
    pub path: String,
    /// The blake3 hash of the content, 64 lowercase hex digits.
    pub blake3: String,
    /// The content's size in bytes.
    pub size: u64,
}

/// The whole new site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Every file, each path once.
    pub files: Vec<ManifestFile>,
}

/// The answer to a manifest: which contents to upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    /// The blake3 hashes the server does not have, each once.
    pub missing: Vec<String>,
    /// The manifest is exactly the current site: there is nothing to deploy.
    pub unchanged: bool,
}

/// A checked manifest: paths are clean and unique, hashes well-formed.
#[derive(Debug)]
pub struct Checked {
    /// Path to (content id, size).
    pub files: BTreeMap<String, (ObjectId, u64)>,
}

impl Manifest {
    /// Parses and checks a manifest against the site's file limit.
    pub fn parse(bytes: &[u8], max_files: u64) -> Result<Checked, DeployError> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("the deploy manifest is not valid: {e}")))?;
        if manifest.files.is_empty() {
            return Err(bad("the deploy manifest lists no files"));
        }
        if manifest.files.len() as u64 > max_files {
            return Err(DeployError::TooLarge(format!(
                "the deploy manifest lists more than {max_files} files"
            )));
        }
        let mut files = BTreeMap::new();
        for file in manifest.files {
            let clean = clean_path(file.path.as_bytes())?;
            if clean.as_deref() != Some(file.path.as_str()) {
                return Err(bad(format!(
                    "manifest path {:?} is not in canonical form",
                    file.path
                )));
            }
            let id = parse_id(&file.blake3)?;
            if files.insert(file.path.clone(), (id, file.size)).is_some() {
                return Err(bad(format!("manifest path {:?} appears twice", file.path)));
            }
        }
        Ok(Checked { files })
    }
}

fn parse_id(hex_text: &str) -> Result<ObjectId, DeployError> {
    let bytes = hex::decode(hex_text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| bad(format!("{hex_text:?} is not a blake3 hash (64 hex digits)")))?;
    Ok(ObjectId::from_bytes(bytes))
}

/// The contents the site's HEAD references, by id, with the commit they are read at.
#[derive(Debug, Default)]
pub struct Known {
    /// The HEAD commit, `None` for an empty site.
    pub head: Option<CommitId>,
    /// HEAD's files by path.
    pub current: HashMap<String, Entry>,
    /// One HEAD entry per content id.
    pub by_id: HashMap<ObjectId, Entry>,
}

impl Known {
    /// Lists the site's HEAD.
    pub async fn load(store: &Store) -> Result<Known, StorageError> {
        let Some(head) = store.head().await? else {
            return Ok(Known::default());
        };
        let entries = store.list_at("", head.id).await?;
        let mut known = Known {
            head: Some(head.id),
            ..Known::default()
        };
        for entry in entries {
            known
                .by_id
                .entry(entry.object)
                .or_insert_with(|| entry.clone());
            known.current.insert(entry.path.clone(), entry);
        }
        Ok(known)
    }

    /// What the client must upload for `checked`.
    pub fn missing(&self, checked: &Checked) -> Missing {
        let mut missing: Vec<String> = checked
            .files
            .values()
            .filter(|(id, _)| !self.by_id.contains_key(id))
            .map(|(id, _)| id.to_hex())
            .collect();
        missing.sort();
        missing.dedup();
        Missing {
            missing,
            unchanged: self.is_current(checked.files.iter().map(|(p, (id, _))| (p, id))),
        }
    }

    /// Whether `files` (path, id) is exactly HEAD.
    pub fn is_current<'a>(
        &self,
        files: impl ExactSizeIterator<Item = (&'a String, &'a ObjectId)>,
    ) -> bool {
        self.head.is_some()
            && files.len() == self.current.len()
            && files
                .into_iter()
                .all(|(p, id)| self.current.get(p).is_some_and(|e| e.object == *id))
    }

    /// A reference to a HEAD object with this id, usable in a commit.
    pub fn reuse(&self, id: &ObjectId) -> Option<ObjectRef> {
        self.by_id.get(id).map(|e| ObjectRef {
            id: e.object,
            sha256: e.sha256,
            sha512: None,
            size: e.size,
        })
    }
}

/// Resolves every manifest path to an object: the uploaded one (whose hash must match what the
/// manifest says) or one HEAD already has. Uploaded files the manifest does not list are an
/// error, so the archive cannot smuggle in paths the client did not declare.
pub fn resolve(
    checked: &Checked,
    uploaded: BTreeMap<String, ObjectRef>,
    known: &Known,
) -> Result<BTreeMap<String, ObjectRef>, DeployError> {
    let mut by_id: HashMap<ObjectId, ObjectRef> = HashMap::new();
    for (path, object) in &uploaded {
        let Some((want, _)) = checked.files.get(path) else {
            return Err(bad(format!(
                "{path:?} was uploaded but the manifest does not list it"
            )));
        };
        if object.id != *want {
            return Err(bad(format!(
                "{path:?} does not match its manifest hash (it changed during the deploy?)"
            )));
        }
        by_id.insert(object.id, object.clone());
    }
    let mut out = BTreeMap::new();
    for (path, (id, _)) in &checked.files {
        let object = match by_id.get(id) {
            Some(o) => o.clone(),
            None => known.reuse(id).ok_or_else(|| {
                bad(format!(
                    "the content of {path:?} was neither uploaded nor on the server (the site \
                     changed since the manifest was answered); deploy again"
                ))
            })?,
        };
        out.insert(path.clone(), object);
    }
    Ok(out)
}

fn bad(message: impl Into<String>) -> DeployError {
    DeployError::BadArchive(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: &[(&str, &[u8])]) -> Vec<u8> {
        let files = files
            .iter()
            .map(|(p, c)| ManifestFile {
                path: (*p).to_owned(),
                blake3: blake3::hash(c).to_hex().to_string(),
                size: c.len() as u64,
            })
            .collect();
        serde_json::to_vec(&Manifest { files }).unwrap()
    }

    #[test]
    fn manifests_are_checked() {
        assert!(Manifest::parse(&manifest(&[("a.html", b"a")]), 10).is_ok());
        for bad in [
            manifest(&[("../a", b"a")]),
            manifest(&[("./a", b"a")]),
            manifest(&[("a", b"a"), ("a", b"b")]),
            manifest(&[]),
            br#"{"files":[{"path":"a","blake3":"zz","size":1}]}"#.to_vec(),
            br#"{"files":[],"extra":1}"#.to_vec(),
        ] {
            assert!(
                Manifest::parse(&bad, 10).is_err(),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        let two = manifest(&[("a", b"a"), ("b", b"b")]);
        assert!(matches!(
            Manifest::parse(&two, 1),
            Err(DeployError::TooLarge(_))
        ));
    }

    #[test]
    fn an_empty_site_lacks_everything_once() {
        let checked =
            Manifest::parse(&manifest(&[("a", b"x"), ("b", b"x"), ("c", b"y")]), 10).unwrap();
        let m = Known::default().missing(&checked);
        assert_eq!(m.missing.len(), 2);
        assert!(!m.unchanged);
    }

    #[test]
    fn uploads_must_match_the_manifest() {
        let checked = Manifest::parse(&manifest(&[("a", b"x")]), 10).unwrap();
        let known = Known::default();
        // Nothing uploaded and nothing known: the content is missing.
        assert!(resolve(&checked, BTreeMap::new(), &known).is_err());
        let wrong = ObjectRef {
            id: ObjectId::from_bytes(*blake3::hash(b"other").as_bytes()),
            sha256: everlock_host::storage::Sha256::from_bytes([0; 32]),
            sha512: None,
            size: 5,
        };
        let mut up = BTreeMap::new();
        up.insert("a".to_owned(), wrong.clone());
        assert!(resolve(&checked, up, &known).is_err());
        let mut up = BTreeMap::new();
        up.insert("b".to_owned(), wrong);
        assert!(resolve(&checked, up, &known).is_err());
    }
}
