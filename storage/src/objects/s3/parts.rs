//! Upload session parts in the bucket: `<prefix><store>/uploads/<session>/<part name>`.

use std::io;
use std::time::SystemTime;

use object_store::PutMode;
use object_store::path::Path as Key;

use super::super::{PartKey, TempObject};
use super::{S3Objects, S3Temp, SINGLE_PUT_MAX};

impl S3Objects {
    /// The key of an upload session part.
    pub(super) fn part_key(&self, part: &PartKey) -> Key {
        self.uploads
            .clone()
            .join(part.session.as_str())
            .join(part.name())
    }

    /// Parts are written once under a fresh name, so the put needs no condition; a large
    /// part (one big PATCH) streams through multipart upload like a large object.
    pub(super) fn put_part_key(&self, part: &PartKey, temp: S3Temp) -> io::Result<()> {
        let key = self.part_key(part);
        let outcome = if temp.written <= SINGLE_PUT_MAX {
            self.put_spooled(&temp, &key, PutMode::Overwrite).map(drop)
        } else {
            self.put_multipart(&temp, &key)
        };
        temp.discard();
        outcome
    }

    pub(super) fn list_part_keys(&self) -> io::Result<Vec<(PartKey, SystemTime)>> {
        let metas = self.list_keys(&self.uploads)?;
        let mut out: Vec<(PartKey, SystemTime)> = metas
            .into_iter()
            .filter_map(|m| {
                let rel: Vec<String> = m
                    .location
                    .prefix_match(&self.uploads)?
                    .map(|p| p.as_ref().to_owned())
                    .collect();
                let [session, name] = rel.as_slice() else {
                    return None;
                };
                let part = PartKey::parse(session, name)?;
                Some((part, SystemTime::from(m.last_modified)))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}
