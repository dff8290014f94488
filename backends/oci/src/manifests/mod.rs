//! Manifests (reference/oci.md §6), one concern per module: validation (`validate`), push
//! as one commit (`push`), reads by tag or digest (`read`), and deletes of tags and
//! manifests (`remove`).

mod push;
mod read;
mod remove;
mod validate;

pub(crate) use push::put;
pub(crate) use read::{get, resolve};
pub(crate) use remove::{delete, delete_disabled, delete_manifest_ops};
pub(crate) use validate::{Parsed, parse};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
