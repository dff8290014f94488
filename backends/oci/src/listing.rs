//! Content discovery: the tag list and `_catalog` with `n`/`last`/`Link` paging, and the
//! referrers API (reference/oci.md §7, §8).

use std::collections::BTreeSet;

use everlock_host::auth::{Action, Principal};
use everlock_host::axum::response::Response;
use everlock_host::http::header::{CONTENT_TYPE, LINK};
use everlock_host::http::{StatusCode, request::Parts};
use serde_json::Value;

use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::manifests::OCI_INDEX;
use crate::names::{Name, OciDigest};
use crate::registry::Registry;
use crate::respond::{header, json_response, query};

/// Entries per page when the client sends no `n` (distribution's default).
const DEFAULT_PAGE: usize = 1000;

/// `n` and `last` of a listing request.
struct Page {
    n: Option<usize>,
    last: Option<String>,
}

fn page(parts: &Parts) -> OciResult<Page> {
    let q = query(parts);
    let n = match q.get("n") {
        None => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            OciError::bad(
                Code::Unsupported,
                format!("n={v:?} is not a non-negative integer"),
            )
        })?),
    };
    Ok(Page {
        n,
        last: q.get("last").cloned(),
    })
}

/// Applies `last` and `n` to a sorted list; returns the page and whether more remain.
fn paginate(all: Vec<String>, page: &Page) -> (Vec<String>, bool) {
    let after: Vec<String> = match &page.last {
        Some(last) => all.into_iter().filter(|t| t > last).collect(),
        None => all,
    };
    let limit = page.n.unwrap_or(DEFAULT_PAGE);
    let more = after.len() > limit && limit > 0;
    (after.into_iter().take(limit).collect(), more)
}

fn link(base: &str, limit: usize, last: &str) -> String {
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{base}?n={limit}&last={last}>; rel=\"next\"")
}

/// `GET /v2/<name>/tags/list`.
pub(crate) async fn tags(reg: &Registry, name: &Name, parts: &Parts) -> OciResult<Response> {
    let page = page(parts)?;
    let store = reg.store().await?;
    let prefix = layout::tags_prefix(name);
    let all: Vec<String> = store
        .list(&prefix)
        .await
        .map_err(|e| OciError::internal(&e))?
        .into_iter()
        .filter_map(|e| e.path.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    // A mirror also lists what its upstream has, so clients can discover what to pull.
    let all: Vec<String> = match crate::mirror::tags::upstream_tags(reg, name).await {
        Some(upstream) => all
            .into_iter()
            .chain(upstream)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        None => all,
    };
    if all.is_empty() {
        let manifests = store
            .list(&layout::manifests_prefix(name))
            .await
            .map_err(|e| OciError::internal(&e))?;
        if manifests.is_empty() {
            return Err(OciError::not_found(
                Code::NameUnknown,
                format!("repository {name} not known"),
            ));
        }
    }
    let (tags, more) = paginate(all, &page);
    let body = serde_json::json!({ "name": name.as_str(), "tags": tags });
    let mut response = json_response(StatusCode::OK, body.to_string());
    if more && let Some(last) = tags.last() {
        let limit = page.n.unwrap_or(DEFAULT_PAGE);
        response.headers_mut().insert(
            LINK,
            header(&link(&format!("/v2/{name}/tags/list"), limit, last))?,
        );
    }
    Ok(response)
}

/// Every repository of the registry (those holding at least one manifest).
pub(crate) async fn repositories(store: &everlock_host::storage::Store) -> OciResult<Vec<Name>> {
    let entries = store
        .list(layout::REPOS)
        .await
        .map_err(|e| OciError::internal(&e))?;
    let mut names = BTreeSet::new();
    for e in entries {
        let Some(rest) = e.path.strip_prefix(layout::REPOS) else {
            continue;
        };
        if let Some((name, _)) = rest.split_once(layout::MANIFESTS_DIR)
            && let Some(name) = Name::parse(name)
        {
            names.insert(name);
        }
    }
    Ok(names.into_iter().collect())
}

/// `GET /v2/_catalog`: only the repositories the caller may read.
pub(crate) async fn catalog(
    reg: &Registry,
    principal: &Principal,
    parts: &Parts,
) -> OciResult<Response> {
    let page = page(parts)?;
    let store = reg.store().await?;
    let readable: Vec<String> = repositories(store)
        .await?
        .into_iter()
        .filter(|n| reg.allowed(principal, n, Action::Read))
        .map(|n| n.as_str().to_owned())
        .collect();
    if readable.is_empty() && *principal == Principal::anon() {
        // Nothing is public: ask for credentials rather than claim the registry is empty.
        return Err(crate::respond::unauthorized("authentication required"));
    }
    let (repos, more) = paginate(readable, &page);
    let body = serde_json::json!({ "repositories": repos });
    let mut response = json_response(StatusCode::OK, body.to_string());
    if more && let Some(last) = repos.last() {
        let limit = page.n.unwrap_or(DEFAULT_PAGE);
        response
            .headers_mut()
            .insert(LINK, header(&link("/v2/_catalog", limit, last))?);
    }
    Ok(response)
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an index of the manifests whose
/// `subject` is the digest; an unknown subject gives an empty index, never 404.
pub(crate) async fn referrers(
    reg: &Registry,
    name: &Name,
    raw: &str,
    parts: &Parts,
) -> OciResult<Response> {
    let subject = OciDigest::parse(raw)
        .map_err(|_| OciError::bad(Code::DigestInvalid, format!("invalid digest {raw:?}")))?;
    let filter = query(parts).get("artifactType").cloned();
    let store = reg.store().await?;
    let entries = store
        .list(&layout::referrers_prefix(name, &subject))
        .await
        .map_err(|e| OciError::internal(&e))?;
    let mut manifests = Vec::new();
    for e in entries {
        let bytes = match store.read(&e.path).await {
            Ok(b) => b,
            Err(everlock_host::storage::StorageError::NotFound(_)) => continue,
            Err(err) => return Err(OciError::internal(&err)),
        };
        let Ok(desc) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if let Some(want) = &filter
            && desc.get("artifactType").and_then(Value::as_str) != Some(want.as_str())
        {
            continue;
        }
        manifests.push(desc);
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = json_response(StatusCode::OK, body.to_string());
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, header(OCI_INDEX)?);
    if filter.is_some() {
        h.insert("oci-filters-applied", header("artifactType")?);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_n_and_last() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let p = |n: Option<usize>, last: Option<&str>| Page {
            n,
            last: last.map(str::to_owned),
        };
        assert_eq!(
            paginate(all.clone(), &p(Some(2), None)),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            paginate(all.clone(), &p(Some(2), Some("b"))),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(paginate(all.clone(), &p(Some(0), None)), (vec![], false));
        assert_eq!(
            paginate(all.clone(), &p(None, Some("c"))),
            (vec!["d".into()], false)
        );
        assert_eq!(paginate(all, &p(Some(10), Some("zz"))), (vec![], false));
        assert_eq!(
            link("/v2/x/tags/list", 2, "b"),
            "</v2/x/tags/list?n=2&last=b>; rel=\"next\""
        );
    }
}
