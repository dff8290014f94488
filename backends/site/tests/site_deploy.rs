//! Deploys (tar and tar.gz, atomic replacement), hostile archives, limits, and the console's
//! history and rollback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{TestSite, basic, collect, header, raw_tar, tar, tar_gz};
use everlock_host::CommandError;
use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, Response, StatusCode};

const DEPLOY: &str = "/.well-known/everlock/deploy";

async fn deploy(
    s: &TestSite,
    auth: Option<&str>,
    body: Vec<u8>,
) -> (Response<()>, serde_json::Value) {
    let mut b = Request::put(DEPLOY).header("host", "site.example");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let (r, body) = collect(s.send(b.body(Body::from(body)).unwrap()).await).await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (r, json)
}

fn will() -> String {
    basic("will", "will-pw")
}

#[tokio::test]
async fn a_deploy_replaces_the_whole_site_in_one_commit() {
    let s = TestSite::new("web", "", false).await;
    let (r, json) = deploy(
        &s,
        Some(&will()),
        tar_gz(&[
            ("index.html", b"v1"),
            ("old.html", b"old"),
            ("a/b.css", b"b{}"),
        ]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{json}");
    assert_eq!(json["files"], 3);
    assert_eq!(json["bytes"], 8);
    assert_eq!(json["commit"].as_str().unwrap().len(), 64);
    assert_eq!(s.get("/", &[]).await.1, b"v1");
    assert_eq!(s.get("/old", &[]).await.1, b"old");
    // A plain tar, with ./ prefixes and directory entries, replaces everything.
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o755);
    b.append_data(&mut dir, "./a/", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, "./index.html", &b"v2"[..]).unwrap();
    let (r, json) = deploy(&s, Some(&will()), b.into_inner().unwrap()).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{json}");
    assert_eq!(json["files"], 1);
    assert_eq!(s.get("/", &[]).await.1, b"v2");
    assert_eq!(s.get("/old", &[]).await.0.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        s.get("/a/b.css", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
    let log = s.store.get().await.unwrap().log(10).await.unwrap();
    assert_eq!(log.len(), 2, "one commit per deploy");
    assert_eq!(log[0].principal, "will");
}

#[tokio::test]
async fn deploy_needs_writer_access() {
    let s = TestSite::new("web", "", false).await;
    let body = || tar(&[("index.html", b"x")]);
    let (r, _) = deploy(&s, None, body()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").starts_with("Basic realm=\"site\""));
    let (r, _) = deploy(&s, Some(&basic("rita", "rita-pw")), body()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (r, _) = deploy(&s, Some(&basic("will", "wrong")), body()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (r, _) = s.get(DEPLOY, &[("authorization", &will())]).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&r, "allow"), "PUT, POST");
    assert!(s.store.get().await.unwrap().head().await.unwrap().is_none());
    let (r, _) = deploy(&s, Some(&basic("admin", "admin-pw")), body()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn hostile_archives_are_rejected_and_change_nothing() {
    let s = TestSite::new(
        "web",
        "max-deploy-bytes = 8192\nmax-deploy-files = 3",
        false,
    )
    .await;
    let (r, _) = deploy(&s, Some(&will()), tar(&[("index.html", b"good")])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let head = s
        .store
        .get()
        .await
        .unwrap()
        .head()
        .await
        .unwrap()
        .unwrap()
        .id;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "absolute",
            raw_tar(b"/etc/passwd", tar::EntryType::Regular, b"x", None),
            StatusCode::BAD_REQUEST,
            "absolute",
        ),
        (
            "dotdot",
            raw_tar(b"a/../../x", tar::EntryType::Regular, b"x", None),
            StatusCode::BAD_REQUEST,
            "..",
        ),
        (
            "symlink",
            raw_tar(b"link", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
            StatusCode::BAD_REQUEST,
            "symbolic link",
        ),
        (
            "hardlink",
            raw_tar(b"hard", tar::EntryType::Link, b"", Some("index.html")),
            StatusCode::BAD_REQUEST,
            "hard link",
        ),
        (
            "device",
            raw_tar(b"dev", tar::EntryType::Char, b"", None),
            StatusCode::BAD_REQUEST,
            "device",
        ),
        (
            "fifo",
            raw_tar(b"fifo", tar::EntryType::Fifo, b"", None),
            StatusCode::BAD_REQUEST,
            "FIFO",
        ),
        (
            "garbage",
            b"this is not a tar archive at all, not even close....".repeat(20),
            StatusCode::BAD_REQUEST,
            "archive",
        ),
        (
            "truncated gzip",
            tar_gz(&[("a.html", &[7u8; 3000])])[..40].to_vec(),
            StatusCode::BAD_REQUEST,
            "archive",
        ),
        ("empty", tar(&[]), StatusCode::BAD_REQUEST, "no files"),
        (
            "too big",
            tar(&[("big.bin", &[1u8; 9000])]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
        (
            "too many",
            tar(&[("a", b"1"), ("b", b"2"), ("c", b"3"), ("d", b"4")]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "more than 3 files",
        ),
        (
            "file and dir",
            tar(&[("a", b"1"), ("a/b", b"2")]),
            StatusCode::BAD_REQUEST,
            "both a file and a directory",
        ),
    ];
    for (name, body, status, needle) in cases {
        let (r, json) = deploy(&s, Some(&will()), body).await;
        assert_eq!(r.status(), status, "{name}: {json}");
        let msg = json["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{name}: {msg}");
        assert_eq!(
            s.store
                .get()
                .await
                .unwrap()
                .head()
                .await
                .unwrap()
                .unwrap()
                .id,
            head,
            "{name} changed the site"
        );
    }
    // A gzip bomb stops at the unpacked-size limit even though the request is small.
    let bomb = tar_gz(&[("zeros.bin", &vec![0u8; 200_000])]);
    assert!(bomb.len() < 8192);
    let (r, _) = deploy(&s, Some(&will()), bomb).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.get("/", &[]).await.1, b"good");
}

#[tokio::test]
async fn markdown_deploys_validate_site_toml_and_layouts() {
    let s = TestSite::new("md", "mode = \"markdown\"", false).await;
    let (r, json) = deploy(
        &s,
        Some(&will()),
        tar(&[("index.md", b"# x"), ("site.toml", b"titel = 1")]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e = json["error"].as_str().unwrap();
    assert!(
        e.starts_with("site.toml:1: ") && e.contains("titel"),
        "{json}"
    );
    let (r, json) = deploy(
        &s,
        Some(&will()),
        tar(&[("index.md", b"# x"), ("layouts/single.html", b"{% if %}")]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .starts_with("layouts/single.html:1: "),
        "{json}"
    );
    // A page whose front matter does not parse is refused too, naming its line.
    let (r, json) = deploy(
        &s,
        Some(&will()),
        tar(&[
            ("index.md", b"# x"),
            (
                "guide/a.md",
                b"---
title: A
weight: [
---
# A
",
            ),
        ]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"].as_str().unwrap().starts_with("guide/a.md:"),
        "{json}"
    );
    assert!(s.store.get().await.unwrap().head().await.unwrap().is_none());
    let (r, _) = deploy(
        &s,
        Some(&will()),
        tar(&[("index.md", b"# Fine"), ("site.toml", b"title = \"T\"")]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        String::from_utf8(s.get("/", &[]).await.1)
            .unwrap()
            .contains("Fine")
    );
}

#[tokio::test]
async fn history_and_rollback_through_the_console_hook() {
    let s = TestSite::new("web", "", false).await;
    let (_, first) = deploy(
        &s,
        Some(&will()),
        tar(&[("index.html", b"one"), ("gone.html", b"g")]),
    )
    .await;
    let (_, _second) = deploy(
        &s,
        Some(&will()),
        tar(&[("index.html", b"two"), ("new.html", b"n")]),
    )
    .await;
    assert_eq!(s.get("/", &[]).await.1, b"two");
    let cmds = common::commands(&s);
    assert_eq!(
        cmds.help().iter().map(|h| h.name).collect::<Vec<_>>(),
        ["history", "rollback"]
    );
    let will_p = Principal::test_user("will");
    let out = cmds.run(will_p.clone(), "history", vec![]).await.unwrap();
    let first_id = first["commit"].as_str().unwrap();
    assert!(out.contains(first_id) && out.lines().count() == 2, "{out}");
    assert!(
        out.contains("will") && out.contains("site: deploy 2 files"),
        "{out}"
    );

    let out = cmds
        .run(will_p.clone(), "rollback", vec![first_id.to_owned()])
        .await
        .unwrap();
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(s.get("/", &[]).await.1, b"one");
    assert_eq!(s.get("/gone", &[]).await.1, b"g");
    assert_eq!(s.get("/new", &[]).await.0.status(), StatusCode::NOT_FOUND);
    let log = s.store.get().await.unwrap().log(1).await.unwrap();
    assert_eq!(log[0].principal, "will");
    assert!(log[0].message.contains("rollback"));

    // Errors: readers may see history but not roll back; bad commits are usage errors.
    let rita = Principal::test_user("rita");
    assert!(cmds.run(rita.clone(), "history", vec![]).await.is_ok());
    assert!(matches!(
        cmds.run(rita, "rollback", vec![first_id.to_owned()]).await,
        Err(CommandError::Denied(_))
    ));
    let alice = Principal::test_user("alice");
    s.env
        .auth
        .revoke(&s.admin, "anon", "http/site/web")
        .await
        .unwrap();
    assert!(matches!(
        cmds.run(alice, "history", vec![]).await,
        Err(CommandError::Denied(_))
    ));
    assert!(matches!(
        cmds.run(will_p.clone(), "rollback", vec!["zz".into()])
            .await,
        Err(CommandError::Usage(_))
    ));
    assert!(matches!(
        cmds.run(will_p.clone(), "rollback", vec![]).await,
        Err(CommandError::Usage(_))
    ));
    assert!(matches!(
        cmds.run(will_p.clone(), "rollback", vec!["0".repeat(64)])
            .await,
        Err(CommandError::NotFound(_))
    ));
    assert!(matches!(
        cmds.run(will_p, "frobnicate", vec![]).await,
        Err(CommandError::Usage(_))
    ));
}
