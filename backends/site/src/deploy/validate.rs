//! Deploy-time validation (issue #16 items 2 and 4): a site whose `_redirects`, `_headers`,
//! `site.toml`, layouts or page front matter would not load is refused with 422 and
//! `file:line: message`, so nothing half-valid goes live.

use std::collections::BTreeMap;

use super::DeployError;
use super::links::Link;
use crate::markdown::config::{ConfigError, SiteConfig};
use crate::markdown::front::{self, FrontMatterError};
use crate::markdown::layout::Layouts;
use crate::rules::{self, Rules};

/// Whether the deploy keeps a file's bytes to validate them: the rule files always, a
/// Markdown site's `site.toml` and layouts too.
pub(super) fn kept_for_validation(path: &str, markdown: bool) -> bool {
    path == rules::REDIRECTS
        || path == rules::HEADERS
        || markdown
            && (path == "site.toml" || path.starts_with("layouts/") && path.ends_with(".html"))
}

fn invalid(file: &str, line: usize, message: impl std::fmt::Display) -> DeployError {
    DeployError::Invalid(format!("{file}:{line}: {message}"))
}

fn utf8<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, DeployError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes.get(..e.valid_up_to()).map_or(1, line_count);
        invalid(file, line, "not UTF-8")
    })
}

/// The 1-based line of byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes().get(..offset).map_or(1, line_count)
}

fn line_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count() + 1
}

/// Rejects `_redirects` and `_headers` files that do not parse, naming the file and line.
pub(super) fn validate_rules(files: &BTreeMap<String, Vec<u8>>) -> Result<(), DeployError> {
    let text = |name: &str| files.get(name).map(|b| utf8(name, b)).transpose();
    let redirects = text(rules::REDIRECTS)?;
    let headers = text(rules::HEADERS)?;
    Rules::parse(redirects, headers)
        .map(|_| ())
        .map_err(|e| DeployError::Invalid(e.to_string()))
}

/// Rejects a Markdown site whose `site.toml`, layouts or page front matter would not load.
pub(super) fn validate_markdown(
    files: &BTreeMap<String, Vec<u8>>,
    heads: &BTreeMap<String, Vec<u8>>,
) -> Result<(), DeployError> {
    if let Some(bytes) = files.get("site.toml") {
        let text = utf8("site.toml", bytes)?;
        if let Err(e) = SiteConfig::parse(text) {
            let line = match &e {
                ConfigError::Toml(t) => t.span().map_or(1, |s| line_at(text, s.start)),
                _ => 1,
            };
            let message = match &e {
                ConfigError::Toml(t) => t.message().to_owned(),
                other => other.to_string(),
            };
            return Err(invalid("site.toml", line, message));
        }
    }
    let mut layouts = BTreeMap::new();
    for (path, bytes) in files {
        if let Some(name) = path.strip_prefix("layouts/") {
            layouts.insert(name.to_owned(), utf8(path, bytes)?.to_owned());
        }
    }
    // Only compiling is checked here, so the fuel does not matter.
    if let Err(e) = Layouts::compile(&layouts, 0) {
        let file = e
            .name()
            .map_or_else(|| "layouts".to_owned(), |n| format!("layouts/{n}"));
        return Err(invalid(
            &file,
            e.line().unwrap_or(1),
            e.detail().unwrap_or("does not compile"),
        ));
    }
    for (path, head) in heads {
        front_matter(path, head)?;
    }
    Ok(())
}

/// Checks the front matter at the start of a page (`head` may be cut short: a block that is
/// not closed within it is not judged).
fn front_matter(path: &str, head: &[u8]) -> Result<(), DeployError> {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A head cut inside a multi-byte character: judge the complete part.
        Err(e) => {
            std::str::from_utf8(head.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or_default()
        }
    };
    let cut = head.len() as u64 >= super::archive::PAGE_HEAD;
    match front::split(text) {
        Ok(_) => Ok(()),
        Err(FrontMatterError::Unclosed(_)) if cut => Ok(()),
        Err(FrontMatterError::Unclosed(fence)) => Err(invalid(
            path,
            1,
            format!("front matter opened with {fence} is never closed"),
        )),
        // The block starts on line 2, after the opening fence.
        Err(FrontMatterError::Toml(e)) => {
            let line = e.span().map_or(1, |s| line_at(block(text), s.start) + 1);
            Err(invalid(
                path,
                line,
                format!("TOML front matter: {}", e.message()),
            ))
        }
        Err(FrontMatterError::Yaml(e)) => {
            let line = e.location().map_or(1, |l| l.line() + 1);
            Err(invalid(path, line, format!("YAML front matter: {e}")))
        }
    }
}

/// Rejects Markdown pages that link to a path of the site that the deploy does not hold
/// (relative links, and site-absolute ones under the site's `prefix`), naming the page and the
/// line. External links (a scheme, `//host`), links outside the site's prefix, pure fragments,
/// generated paths (taxonomies, `sitemap.xml`, `_everlock/`) and paths a `_redirects` rule
/// answers are never judged. `links` holds each page's link targets, extracted from the whole
/// page (see [`super::links`]).
pub(super) fn validate_links<V>(
    files: &BTreeMap<String, V>,
    validate: &BTreeMap<String, Vec<u8>>,
    links: &BTreeMap<String, Vec<Link>>,
    prefix: &str,
) -> Result<(), DeployError> {
    let config = validate
        .get("site.toml")
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|t| SiteConfig::parse(t).ok())
        .unwrap_or_default();
    let text = |name: &str| validate.get(name).and_then(|b| std::str::from_utf8(b).ok());
    let rules = Rules::parse(text(rules::REDIRECTS), None).unwrap_or_default();
    let site = LinkSite {
        files,
        config: &config,
        rules: &rules,
        prefix: prefix.trim_end_matches('/'),
    };
    for (path, targets) in links {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        for (line, dest) in targets {
            if let Some(target) = broken(dest, dir, &site) {
                return Err(invalid(
                    path,
                    *line,
                    format!("broken link to {target:?}: the deploy has no such page or file"),
                ));
            }
        }
    }
    Ok(())
}

/// What a link is checked against.
struct LinkSite<'a, V> {
    files: &'a BTreeMap<String, V>,
    config: &'a SiteConfig,
    rules: &'a Rules,
    /// The instance prefix without its trailing `/` (empty at the host's root).
    prefix: &'a str,
}

/// The site path `dest` names when nothing in the deploy answers it; `None` when it is fine
/// or not ours to judge.
fn broken<V>(dest: &str, dir: &str, site: &LinkSite<'_, V>) -> Option<String> {
    let has_scheme = dest
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.contains('/') && !scheme.is_empty());
    if has_scheme || dest.starts_with("//") {
        return None;
    }
    let path = dest.split(['#', '?']).next().unwrap_or("");
    if path.is_empty() {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?
        .into_owned();
    let joined = if let Some(absolute) = decoded.strip_prefix('/') {
        // Under a prefix, a site-absolute link is ours only when it is below the prefix.
        let rest = if site.prefix.is_empty() {
            absolute
        } else {
            absolute
                .strip_prefix(site.prefix.trim_start_matches('/'))?
                .strip_prefix('/')
                .unwrap_or("")
        };
        rest.to_owned()
    } else if dir.is_empty() {
        decoded.clone()
    } else {
        format!("{dir}/{decoded}")
    };
    // Climbing above the site root leaves the site: nothing of the deploy answers it.
    let Some(segments) = normalise(&joined) else {
        return Some(decoded);
    };
    let is_dir = joined.ends_with('/') || joined.ends_with("/.") || joined.ends_with("/..");
    if exists(&segments, is_dir, site) {
        None
    } else {
        Some(decoded)
    }
}

/// `a/./b/../c` → `[a, c]`; `None` when `..` climbs above the site root.
fn normalise(path: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s.to_owned()),
        }
    }
    Some(out)
}

/// Whether the site would answer `segments` (a directory when `is_dir`).
fn exists<V>(segments: &[String], is_dir: bool, site: &LinkSite<'_, V>) -> bool {
    let Some(first) = segments.first() else {
        return true;
    };
    if first == crate::markdown::theme::ASSETS_DIR
        || segments == ["sitemap.xml"]
        || site.config.taxonomies.contains(first)
        || site.rules.redirect(segments).is_some()
    {
        return true;
    }
    let key = segments.join("/");
    let has = |k: &str| site.files.contains_key(k);
    let as_dir = has(&format!("{key}/index.md"))
        || has(&format!("{key}/_index.md"))
        || has(&format!("{key}/index.html"));
    if is_dir {
        return as_dir;
    }
    has(&key) || has(&format!("{key}.md")) || has(&format!("{key}.html")) || as_dir
}

/// The front matter block of `text` without its opening fence line.
fn block(text: &str) -> &str {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.split_once('\n').map_or("", |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::super::links;
    use super::*;

    fn markdown(files: &[(&str, &str)], heads: &[(&str, &str)]) -> Result<(), DeployError> {
        let map = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(p, t)| ((*p).to_owned(), t.as_bytes().to_vec()))
                .collect::<BTreeMap<_, _>>()
        };
        validate_markdown(&map(files), &map(heads))
    }

    fn message(r: Result<(), DeployError>) -> String {
        match r {
            Err(DeployError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    fn links(files: &[&str], pages: &[(&str, &str)], prefix: &str) -> Result<(), DeployError> {
        let mut all: BTreeMap<String, ()> = files.iter().map(|f| ((*f).to_owned(), ())).collect();
        let found: BTreeMap<String, Vec<Link>> = pages
            .iter()
            .map(|(p, t)| {
                let (targets, _) = links::scan(t.as_bytes(), links::DEPLOY_LINK_BYTES);
                ((*p).to_owned(), targets)
            })
            .collect();
        for p in found.keys() {
            all.insert(p.clone(), ());
        }
        let validate = BTreeMap::from([
            (
                "site.toml".to_owned(),
                b"taxonomies = [\"tags\"]\n".to_vec(),
            ),
            ("_redirects".to_owned(), b"/old/* /new/:splat\n".to_vec()),
        ]);
        validate_links(&all, &validate, &found, prefix)
    }

    #[test]
    fn broken_internal_links_are_refused_with_file_and_line() {
        let files = [
            "img/logo.png",
            "docs/_index.md",
            "docs/intro.md",
            "about.html",
        ];
        let page = "---\ntitle: x\n---\n# Guide\n\n[intro](intro.md) [intro](intro)                     [up](../about.html) [abs](/docs/intro#x) [dir](./) [root](/)\n\n\
                    ![logo](../img/logo.png) [ext](https://example.com/missing) \
                    [mail](mailto:a@b.c) [frag](#top) [tag](/tags/rust/) [old](/old/page) \
                    [map](/sitemap.xml) [about](/about)\n";
        assert!(links(&files, &[("docs/guide.md", page)], "/").is_ok());
        let bad = "# Guide\n\nFine: [intro](intro.md).\n\nSee [the setup](setup.md#x).\n";
        let m = message(links(&files, &[("docs/guide.md", bad)], "/"));
        assert!(
            m.starts_with("docs/guide.md:5: broken link to \"setup.md\""),
            "{m}"
        );
        let m = message(links(&files, &[("a.md", "[x](/nowhere/)\n")], "/"));
        assert!(m.starts_with("a.md:1: broken link"), "{m}");
        let m = message(links(&files, &[("a.md", "[x](../../etc/passwd)\n")], "/"));
        assert!(m.starts_with("a.md:1: broken link"), "{m}");
        let m = message(links(&files, &[("a.md", "![x](img/missing.png)\n")], "/"));
        assert!(m.starts_with("a.md:1: broken link"), "{m}");
        // Under a prefix, site-absolute links are checked below it and not judged elsewhere.
        assert!(
            links(
                &files,
                &[("a.md", "[x](/wiki/docs/intro) [y](/other-app/)\n")],
                "/wiki"
            )
            .is_ok()
        );
        let m = message(links(
            &files,
            &[("a.md", "[x](/wiki/docs/gone)\n")],
            "/wiki",
        ));
        assert!(m.starts_with("a.md:1: broken link"), "{m}");
    }

    #[test]
    fn a_broken_link_far_into_a_page_is_refused_with_its_line() {
        // Well past the 8 KiB head the deploy keeps for front matter.
        let mut page = "---\ntitle: long\n---\n[see][x]\n\n".to_owned();
        while page.len() < 20 * 1024 {
            page.push_str("A paragraph of ordinary words.\n\n");
        }
        page.push_str("[x]: /docs/intro\n\nFinally [gone](gone.md).\n");
        let line = page.lines().count();
        let m = message(links(&["docs/intro.md"], &[("a.md", &page)], "/"));
        assert!(
            m.starts_with(&format!("a.md:{line}: broken link to \"gone.md\"")),
            "{m}"
        );
        // The reference definition past the head is judged too.
        page.push_str("\n[gone]: /x\n");
        let m = message(links(&["gone.md"], &[("a.md", &page)], "/"));
        assert!(
            m.starts_with("a.md:4: broken link to \"/docs/intro\""),
            "{m}"
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let m = message(markdown(
            &[("site.toml", "title = \"x\"\n\nbogus = 1\n")],
            &[],
        ));
        assert!(m.starts_with("site.toml:3: "), "{m}");
        let m = message(markdown(
            &[("layouts/page.html", "<p>\n{% if %}\n</p>")],
            &[],
        ));
        assert!(m.starts_with("layouts/page.html:2: "), "{m}");
        let m = message(markdown(
            &[],
            &[("guide/a.md", "+++\ntitle = \"a\"\nweight = \"x\"\n+++\n")],
        ));
        assert!(m.starts_with("guide/a.md:3: TOML front matter"), "{m}");
        let m = message(markdown(&[], &[("b.md", "---\ntitle: b\ntitle: [\n---\n")]));
        assert!(m.starts_with("b.md:"), "{m}");
        assert!(m.contains("YAML front matter"), "{m}");
        let m = message(markdown(&[], &[("c.md", "---\ntitle: c\n")]));
        assert!(
            m.starts_with("c.md:1: front matter opened with --- is never closed"),
            "{m}"
        );
        assert!(
            markdown(
                &[("site.toml", "title = \"x\"\n")],
                &[("d.md", "---\ntitle: d\n---\n# D\n")]
            )
            .is_ok()
        );
    }
}
