//! Tests of the deploy's render check: one per class of layout that compiles and then fails
//! at render time, pages kept from the previous commit, and the check's budget.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

use everlock_host::storage::CommitMeta;

use super::*;

const FUEL: u64 = crate::settings::DEFAULT_RENDER_FUEL;
const MAX: u64 = 1024 * 1024;
const BUDGET: Duration = Duration::from_secs(120);

/// A store with `files` staged (nothing committed), and the ones a deploy keeps in memory.
struct Staged {
    _env: everlock_host::test_util::TestEnv,
    store: Store,
    files: BTreeMap<String, ObjectRef>,
    kept: BTreeMap<String, Vec<u8>>,
}

async fn stage(files: &[(&str, &[u8])]) -> Staged {
    let env = everlock_host::test_util::TestEnv::new().await;
    let store = env.stores.open("site").await.unwrap();
    let mut staged = Staged {
        _env: env,
        store,
        files: BTreeMap::new(),
        kept: BTreeMap::new(),
    };
    for (path, bytes) in files {
        add(&mut staged, path, bytes).await;
    }
    staged
}

async fn add(s: &mut Staged, path: &str, bytes: &[u8]) {
    let object = s.store.stage(bytes, None).await.unwrap();
    s.files.insert(path.to_owned(), object);
    if super::super::validate::kept_for_validation(path, true) {
        s.kept.insert(path.to_owned(), bytes.to_vec());
    }
}

async fn run(s: &Staged) -> Result<Checked, DeployError> {
    check_within(&s.store, &s.files, &s.kept, "/", FUEL, MAX, BUDGET).await
}

/// The 422 message of a refused check.
async fn refused(files: &[(&str, &[u8])]) -> String {
    match run(&stage(files).await).await {
        Err(DeployError::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A layout extending the built-in base whose content block holds `body` on its third line.
fn single(body: &str) -> Vec<u8> {
    format!(
        "{{% extends \"base.html\" %}}\n{{% block content %}}\n{body}\n{{% endblock content %}}\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_site_whose_layouts_render_is_accepted_and_every_page_is_rendered() {
    let layout = single("<h1>{{ page.title | upper }}</h1>{{ page.content | safe }}");
    let s = stage(&[
        (
            "site.toml",
            b"title = \"T\"\ntaxonomies = [\"tags\"]\npaginate_by = 1\n",
        ),
        ("layouts/single.html", &layout),
        ("index.md", b"# Home\n"),
        ("docs/_index.md", b"---\ntitle: Docs\n---\n"),
        ("docs/a.md", b"---\ntitle: A\ntags: [x, y]\n---\nText.\n"),
        ("docs/b.md", b"# B\n"),
        ("draft.md", b"---\ndraft: true\n---\n{{ broken\n"),
        ("img/logo.png", b"\x89PNG not a page"),
    ])
    .await;
    let checked = run(&s).await.unwrap();
    // index, a, b, the docs listing's two pages, and /tags/, /tags/x/, /tags/y/.
    assert_eq!(checked.renders, 8, "{checked:?}");
}

#[tokio::test]
async fn a_filter_on_the_wrong_type_names_the_layout_line_and_the_page() {
    let m = refused(&[
        ("layouts/single.html", &single("{{ page.title | round }}")),
        ("guide/a.md", b"# A\n"),
        ("guide/b.md", b"# B\n"),
    ])
    .await;
    assert!(m.starts_with("layouts/single.html:3: "), "{m}");
    assert!(m.contains("round"), "{m}");
    assert!(m.ends_with("(rendering guide/a.md)"), "{m}");
    assert!(!m.contains("(in single.html"), "{m}");
}

#[tokio::test]
async fn an_undefined_value_printed_names_the_first_page_without_it() {
    let m = refused(&[
        ("layouts/single.html", &single("v{{ page.extra.version }}")),
        ("a.md", b"+++\n[extra]\nversion = \"1.0\"\n+++\n# A\n"),
        ("b.md", b"# B has no version\n"),
    ])
    .await;
    assert!(m.starts_with("layouts/single.html:3: "), "{m}");
    assert!(m.contains("undefined"), "{m}");
    assert!(m.ends_with("(rendering b.md)"), "{m}");
}

#[tokio::test]
async fn an_include_of_a_missing_template_is_refused() {
    let m = refused(&[
        (
            "layouts/single.html",
            &single("{% include \"partials/nav.html\" %}"),
        ),
        ("a.md", b"# A\n"),
    ])
    .await;
    assert!(m.starts_with("layouts/single.html:3: "), "{m}");
    assert!(m.contains("partials/nav.html"), "{m}");
}

#[tokio::test]
async fn a_loop_over_a_non_iterable_is_refused() {
    let m = refused(&[
        (
            "layouts/single.html",
            &single("{% for x in page.show_title %}{{ x }}{% endfor %}"),
        ),
        ("a.md", b"# A\n"),
    ])
    .await;
    assert!(m.starts_with("layouts/single.html:3: "), "{m}");
    assert!(m.contains("iterable") || m.contains("iterate"), "{m}");
}

#[tokio::test]
async fn a_failing_layout_chosen_in_front_matter_is_named() {
    let m = refused(&[
        (
            "layouts/wide.html",
            b"<main>\n{{ page.content | safe }}\n{{ 1 / 0 }}\n</main>\n",
        ),
        ("a.md", b"# A\n"),
        ("z.md", b"+++\nlayout = \"wide\"\n+++\n# Z\n"),
    ])
    .await;
    assert!(m.starts_with("layouts/wide.html:3: "), "{m}");
    assert!(m.ends_with("(rendering z.md)"), "{m}");
}

#[tokio::test]
async fn failing_listing_and_taxonomy_layouts_are_refused() {
    let m = refused(&[
        (
            "layouts/list.html",
            b"{% for p in section.pages %}\n{{ p.title.nope }}\n{% endfor %}",
        ),
        ("docs/_index.md", b"# Docs\n"),
        ("docs/a.md", b"# A\n"),
    ])
    .await;
    assert!(m.starts_with("layouts/list.html:2: "), "{m}");
    assert!(m.ends_with("(rendering docs/_index.md)"), "{m}");
    let m = refused(&[
        ("site.toml", b"taxonomies = [\"tags\"]\n"),
        ("layouts/taxonomy.html", b"{{ taxonomy.term | length }}"),
        ("a.md", b"---\ntags: [rust]\n---\n# A\n"),
    ])
    .await;
    assert!(m.starts_with("layouts/taxonomy.html:1: "), "{m}");
    assert!(m.ends_with("(rendering /tags/)"), "{m}");
}

#[tokio::test]
async fn a_runaway_layout_is_refused_with_the_page_that_ran_it() {
    let runaway =
        single("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}");
    let m = refused(&[("layouts/single.html", &runaway), ("a.md", b"# A\n")]).await;
    assert!(m.starts_with("a.md: layout single.html ran past"), "{m}");
    assert!(m.contains("budget"), "{m}");
}

#[tokio::test]
async fn pages_that_are_not_utf8_or_too_large_are_refused() {
    let m = refused(&[("a.md", b"# A \xff\xfe\n")]).await;
    assert!(m.starts_with("a.md: not UTF-8"), "{m}");
    let big = vec![b'x'; (MAX + 1) as usize];
    let m = refused(&[("big.md", &big)]).await;
    assert!(m.starts_with("big.md: larger than"), "{m}");
}

/// An incremental deploy keeps pages that never travel: they render from the objects the
/// previous commit holds, so a new layout that fails on one of them is refused.
#[tokio::test]
async fn pages_kept_from_the_previous_commit_render_with_the_new_layouts() {
    let mut s = stage(&[]).await;
    s.store
        .write(
            "old.md",
            b"+++\n[extra]\nn = \"x\"\n+++\n# Old\n".to_vec(),
            CommitMeta::new("t", "v1"),
        )
        .await
        .unwrap();
    let entry = s.store.stat("old.md").await.unwrap().unwrap();
    s.files.insert(
        "old.md".to_owned(),
        ObjectRef {
            id: entry.object,
            sha256: entry.sha256,
            sha512: None,
            size: entry.size,
        },
    );
    add(
        &mut s,
        "layouts/single.html",
        &single("{{ page.extra.n | round }}"),
    )
    .await;
    add(&mut s, "new.md", b"+++\n[extra]\nn = 1.5\n+++\n# New\n").await;
    match run(&s).await {
        Err(DeployError::Invalid(m)) => {
            assert!(m.starts_with("layouts/single.html:3: "), "{m}");
            assert!(m.ends_with("(rendering old.md)"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_whole_check_has_a_budget() {
    let mut s = stage(&[]).await;
    for i in 0..200 {
        add(
            &mut s,
            &format!("p{i}.md"),
            format!("# Page {i}\n").as_bytes(),
        )
        .await;
    }
    let e = check_within(
        &s.store,
        &s.files,
        &s.kept,
        "/",
        FUEL,
        MAX,
        Duration::from_millis(1),
    )
    .await
    .unwrap_err();
    match e {
        DeployError::Invalid(m) => assert!(m.contains("budget"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(run(&s).await.unwrap().renders, 200);
}

/// The figure for the report: what the check adds to a deploy of a 2,000-page site (20
/// sections of 100 pages with code, lists and tables). Run with
/// `cargo test -p everlock-backend-site-http two_thousand -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn two_thousand_pages_measured() {
    let mut s = stage(&[("site.toml", b"title = \"Docs\"\ntaxonomies = [\"tags\"]\n")]).await;
    let started = Instant::now();
    for section in 0..20 {
        add(
            &mut s,
            &format!("s{section}/_index.md"),
            format!("# Section {section}\n").as_bytes(),
        )
        .await;
        for page in 0..100 {
            let text = format!(
                "---\ntitle: Page {section}.{page}\ntags: [t{}]\nweight: {page}\n---\n\
                 ## Overview\n\nSome *text* with a [link](../s0/p1.md) and `code`.\n\n\
                 ```rust\nfn main() {{ println!(\"{page}\"); }}\n```\n\n\
                 - one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n### Details\n\n{}\n",
                page % 10,
                "A longer paragraph of ordinary words for the page body. ".repeat(20)
            );
            add(&mut s, &format!("s{section}/p{page}.md"), text.as_bytes()).await;
        }
    }
    let staged = started.elapsed();
    let started = Instant::now();
    let checked = run(&s).await.unwrap();
    let rendered = started.elapsed();
    println!(
        "2,000 pages: staged in {staged:?}; the render check made {} renders in {rendered:?}",
        checked.renders
    );
}
