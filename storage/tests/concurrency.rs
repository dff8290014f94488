//! Concurrency: 32 tasks staging and committing at once, with shared and distinct content,
//! and compare-and-swap increments that must lose no update.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use everlock_storage::{CommitMeta, Expected, Op, Precondition, StorageError, Store};

const TASKS: usize = 32;
const INCREMENTS: u64 = 5;

fn content(task: usize) -> Vec<u8> {
    // Even tasks share one content (exercising dedupe under contention), odd ones are unique.
    let seed = if task.is_multiple_of(2) {
        0
    } else {
        task as u64
    };
    (0..200_000u64)
        .map(|i| ((i * 2_654_435_761 + seed * 97) >> 7) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path().join("s")).await.unwrap();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let data = content(task);
            let obj = store.stage(&data[..], None).await.unwrap();
            let meta = CommitMeta::new(format!("task{task}"), "stage");
            store
                .commit(
                    vec![Op::Put {
                        path: format!("files/{task}"),
                        object: obj,
                    }],
                    vec![],
                    meta,
                )
                .await
                .unwrap();
            let mut conflicts = 0u64;
            for _ in 0..INCREMENTS {
                loop {
                    let current = store.stat("counter").await.unwrap();
                    let (value, expected) = match &current {
                        Some(e) => {
                            // The value is read at the version the precondition names: reading
                            // HEAD separately could see a newer value and hide a lost update.
                            let at = store.history("counter").await.unwrap();
                            let commit = at
                                .iter()
                                .find(|h| h.commit.seq == e.version)
                                .unwrap()
                                .commit
                                .id;
                            let v: u64 =
                                String::from_utf8(store.read_at("counter", commit).await.unwrap())
                                    .unwrap()
                                    .parse()
                                    .unwrap();
                            (v, Expected::Version(e.version))
                        }
                        None => (0, Expected::Absent),
                    };
                    let op = Op::PutBytes {
                        path: "counter".into(),
                        bytes: (value + 1).to_string().into_bytes(),
                    };
                    let pre = Precondition {
                        path: "counter".into(),
                        expected,
                    };
                    match store
                        .commit(
                            vec![op],
                            vec![pre],
                            CommitMeta::new(format!("task{task}"), "inc"),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StorageError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for h in handles {
        conflicts += h.await.unwrap();
    }
    for task in 0..TASKS {
        assert!(
            store.read(&format!("files/{task}")).await.unwrap() == content(task),
            "files/{task}"
        );
    }
    let counter: u64 = String::from_utf8(store.read("counter").await.unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        counter,
        TASKS as u64 * INCREMENTS,
        "compare-and-swap lost an update ({conflicts} conflicts)"
    );
    let head = store.head().await.unwrap().unwrap();
    assert_eq!(
        head.seq,
        TASKS as u64 + TASKS as u64 * INCREMENTS,
        "every commit is in the log"
    );
    assert_eq!(
        store.history("counter").await.unwrap().len() as u64,
        counter
    );
    assert!(store.verify().await.unwrap().is_ok());
}
