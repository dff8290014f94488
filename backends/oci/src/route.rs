//! Parsing `/v2/...` paths. Repository names contain slashes, so the path is read right to
//! left: the last segments say what is addressed, everything before them is the name.

use crate::error::{Code, OciError, OciResult};
use crate::names::Name;

/// What a request path addresses; names are validated, references are raw (each handler
/// decides how to answer a bad one).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags(Name),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(Name, String),
    /// `/v2/<name>/blobs/<digest>`
    Blob(Name, String),
    /// `/v2/<name>/blobs/uploads/`
    UploadStart(Name),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(Name, String),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(Name, String),
    /// `/v2/token`: the token endpoint of `auth = "token"` (no repository is one segment).
    Token,
}

impl Route {
    /// Parses a request path; `None` for a path outside `/v2` or of no known shape.
    pub(crate) fn parse(path: &str) -> OciResult<Option<Route>> {
        let Some(rest) = path.strip_prefix("/v2") else {
            return Ok(None);
        };
        if rest.is_empty() || rest == "/" {
            return Ok(Some(Route::Base));
        }
        let Some(rest) = rest.strip_prefix('/') else {
            return Ok(None);
        };
        if rest == "_catalog" {
            return Ok(Some(Route::Catalog));
        }
        if rest == "token" {
            return Ok(Some(Route::Token));
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let tail = |k: usize| segs.get(n.saturating_sub(k)..).unwrap_or(&[]);
        let name_before = |k: usize| -> OciResult<Name> {
            let joined = segs.get(..n.saturating_sub(k)).unwrap_or(&[]).join("/");
            Name::parse(&joined).ok_or_else(|| {
                OciError::bad(
                    Code::NameInvalid,
                    format!("invalid repository name {joined:?}"),
                )
            })
        };
        let route = match (n, tail(3), tail(2)) {
            (_, _, ["tags", "list"]) if n > 2 => Route::Tags(name_before(2)?),
            (_, ["blobs", "uploads", ""], _) if n > 3 => Route::UploadStart(name_before(3)?),
            (_, ["blobs", "uploads", id], _) if n > 3 => {
                Route::Upload(name_before(3)?, (*id).to_owned())
            }
            (_, _, ["blobs", "uploads"]) if n > 2 => Route::UploadStart(name_before(2)?),
            (_, _, ["blobs", d]) if n > 2 => Route::Blob(name_before(2)?, (*d).to_owned()),
            (_, _, ["manifests", r]) if n > 2 => Route::Manifest(name_before(2)?, (*r).to_owned()),
            (_, _, ["referrers", d]) if n > 2 => Route::Referrers(name_before(2)?, (*d).to_owned()),
            _ => return Ok(None),
        };
        Ok(Some(route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn parses_right_to_left() {
        let p = |s: &str| Route::parse(s).unwrap();
        assert_eq!(p("/v2/"), Some(Route::Base));
        assert_eq!(p("/v2"), Some(Route::Base));
        assert_eq!(p("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(p("/v2/token"), Some(Route::Token));
        assert_eq!(
            p("/v2/token/blobs/sha256:1"),
            Some(Route::Blob(name("token"), "sha256:1".into()))
        );
        assert_eq!(p("/v2/a/b/tags/list"), Some(Route::Tags(name("a/b"))));
        assert_eq!(
            p("/v2/a/blobs/uploads/"),
            Some(Route::UploadStart(name("a")))
        );
        assert_eq!(
            p("/v2/a/blobs/uploads"),
            Some(Route::UploadStart(name("a")))
        );
        assert_eq!(
            p("/v2/a/blobs/uploads/xyz"),
            Some(Route::Upload(name("a"), "xyz".into()))
        );
        assert_eq!(
            p("/v2/x/blobs/blobs/sha256:1"),
            Some(Route::Blob(name("x/blobs"), "sha256:1".into()))
        );
        assert_eq!(
            p("/v2/m/manifests/manifests/latest"),
            Some(Route::Manifest(name("m/manifests"), "latest".into()))
        );
        assert_eq!(
            p("/v2/r/referrers/sha256:x"),
            Some(Route::Referrers(name("r"), "sha256:x".into()))
        );
        assert_eq!(p("/v2/tags/list"), None);
        assert_eq!(p("/v2/a/unknown/x"), None);
        assert_eq!(p("/v3/a/tags/list"), None);
        assert_eq!(p("/v2x"), None);
        for bad in ["/v2/A/tags/list", "/v2//x/manifests/a", "/v2/a%2Fb/blobs/x"] {
            let err = Route::parse(bad).unwrap_err();
            assert_eq!(err.code, Code::NameInvalid, "{bad}");
        }
    }
}
