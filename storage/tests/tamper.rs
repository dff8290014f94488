//! Tamper evidence: a flipped byte in an object file, an inline object, a commit row or a
//! version row makes `verify` fail and name the culprit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use everlock_storage::{CommitMeta, INLINE_MAX, Problem, Store};

async fn build(dir: &Path) -> (Store, everlock_storage::Entry) {
    let store = Store::open_dir(dir).await.unwrap();
    let big: Vec<u8> = (0..(INLINE_MAX * 4) as u32)
        .map(|i| (i % 251) as u8)
        .collect();
    store
        .write("big", big, CommitMeta::new("a", "one"))
        .await
        .unwrap();
    store
        .write("small", b"hello".to_vec(), CommitMeta::new("b", "two"))
        .await
        .unwrap();
    store
        .write("small", b"again".to_vec(), CommitMeta::new("c", "three"))
        .await
        .unwrap();
    assert!(store.verify().await.unwrap().is_ok());
    let big = store.stat("big").await.unwrap().unwrap();
    (store, big)
}

fn object_file(dir: &Path, id: &everlock_storage::ObjectId) -> PathBuf {
    let hex = id.to_hex();
    dir.join("objects").join(&hex[..2]).join(hex)
}

fn sql(dir: &Path, statement: &str) {
    let conn = rusqlite::Connection::open(dir.join("meta.sqlite")).unwrap();
    assert_eq!(conn.execute(statement, []).unwrap(), 1, "{statement}");
}

#[tokio::test]
async fn flipped_byte_in_an_object_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (store, big) = build(&dir).await;
    let file = object_file(&dir, &big.object);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let report = store.verify().await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(matches!(&report.problems[0], Problem::Object { id, .. } if *id == big.object));
    assert!(
        report.problems[0]
            .to_string()
            .contains(&big.object.to_hex())
    );
}

#[tokio::test]
async fn flipped_byte_in_an_inline_object() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (store, _) = build(&dir).await;
    let small = store.stat("small").await.unwrap().unwrap();
    drop(store);
    sql(
        &dir,
        &format!(
            "UPDATE objects SET inline = X'616761696F' WHERE blake3 = X'{}'",
            small.object.to_hex()
        ),
    );
    let store = Store::open_dir(&dir).await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(
        matches!(&report.problems[..], [Problem::Object { id, .. }] if *id == small.object),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn changed_commit_rows_break_the_chain() {
    let cases = [
        // A rewritten message column no longer matches the hashed record.
        ("UPDATE commits SET message = 'innocent' WHERE seq = 2", 2),
        // A flipped byte in the record changes its hash, so the stored id no longer matches.
        (
            "UPDATE commits SET record = CAST(replace(CAST(record AS TEXT), 'two', 'twp') AS BLOB) WHERE seq = 2",
            2,
        ),
        // A principal column that disagrees with the record.
        ("UPDATE commits SET principal = 'mallory' WHERE seq = 1", 1),
        // A version row pointing elsewhere disagrees with its commit's record.
        (
            "UPDATE versions SET size = 6 WHERE path = 'small' AND seq = 2",
            2,
        ),
        // A deleted commit leaves a gap.
        ("DELETE FROM commits WHERE seq = 2", 3),
    ];
    for (statement, bad_seq) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let (store, _) = build(&dir).await;
        drop(store);
        sql(&dir, statement);
        let store = Store::open_dir(&dir).await.unwrap();
        let report = store.verify().await.unwrap();
        let first = report
            .problems
            .first()
            .unwrap_or_else(|| panic!("{statement}: verify passed"));
        assert!(
            matches!(first, Problem::Commit { seq, .. } if *seq == bad_seq),
            "{statement}: {first}"
        );
        assert!(
            first
                .to_string()
                .starts_with(&format!("bad commit {bad_seq} (")),
            "{first}"
        );
    }
}

#[tokio::test]
async fn a_consistently_rewritten_commit_breaks_its_child() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (store, _) = build(&dir).await;
    drop(store);
    // Rewrite commit 1 completely: record, id and columns agree, so only the chain link from
    // commit 2 (whose record names the old id as parent) can reveal it.
    let conn = rusqlite::Connection::open(dir.join("meta.sqlite")).unwrap();
    let record: Vec<u8> = conn
        .query_row("SELECT record FROM commits WHERE seq = 1", [], |r| r.get(0))
        .unwrap();
    let forged = String::from_utf8(record)
        .unwrap()
        .replace("principal 1 a", "principal 1 m")
        .into_bytes();
    let id = blake3::hash(&forged).as_bytes().to_vec();
    conn.execute(
        "UPDATE commits SET record = ?1, id = ?2, principal = 'm' WHERE seq = 1",
        rusqlite::params![forged, id],
    )
    .unwrap();
    drop(conn);
    let store = Store::open_dir(&dir).await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(
        matches!(&report.problems[..], [Problem::Commit { seq: 2, .. }, ..]),
        "{:?}",
        report.problems
    );
}
