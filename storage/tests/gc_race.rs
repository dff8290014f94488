//! GC race: garbage collection runs in a tight loop (grace period zero) while commits
//! re-reference the very objects it is trying to delete. No committed reference may ever end up
//! pointing at a deleted object.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use everlock_storage::{CommitMeta, GcOptions, ObjectRef, Op, StorageError, Store};

const OBJECTS: usize = 12;
const ROUNDS: usize = 15;
const WRITERS: usize = 4;

fn content(i: usize) -> Vec<u8> {
    (0..40_000u32)
        .map(|k| (k as usize * 31 + i * 7) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_never_deletes_a_referenced_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path().join("s")).await.unwrap();
    let no_grace = GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    };
    let restaged = Arc::new(AtomicU64::new(0));
    let collected = Arc::new(AtomicU64::new(0));
    for round in 0..ROUNDS {
        // Stage every object, then drop all references so that each one is a GC candidate.
        let mut refs: Vec<ObjectRef> = Vec::new();
        for i in 0..OBJECTS {
            refs.push(store.stage(&content(i)[..], None).await.unwrap());
        }
        let live = store.list("obj/").await.unwrap();
        if !live.is_empty() {
            let deletes = live
                .into_iter()
                .map(|e| Op::Delete { path: e.path })
                .collect();
            store
                .commit(deletes, vec![], CommitMeta::new("t", "clear"))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;

        let stop = Arc::new(AtomicBool::new(false));
        let gc = {
            let (store, stop, collected, opts) = (
                store.clone(),
                stop.clone(),
                collected.clone(),
                no_grace.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    collected.fetch_add(
                        store.gc(opts.clone()).await.unwrap().objects_removed,
                        Ordering::Relaxed,
                    );
                }
            })
        };
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (store, refs, restaged) = (store.clone(), refs.clone(), restaged.clone());
            writers.push(tokio::spawn(async move {
                for i in (w..OBJECTS).step_by(WRITERS) {
                    let mut object = refs[i].clone();
                    loop {
                        let op = Op::Put {
                            path: format!("obj/{i}"),
                            object: object.clone(),
                        };
                        match store
                            .commit(
                                vec![op],
                                vec![],
                                CommitMeta::new("t", format!("round {round}")),
                            )
                            .await
                        {
                            Ok(_) => break,
                            // GC won the race for this object: the commit must see that and
                            // refuse, and staging again must bring the object back.
                            Err(StorageError::ObjectMissing(_)) => {
                                restaged.fetch_add(1, Ordering::Relaxed);
                                object = store.stage(&content(i)[..], None).await.unwrap();
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        gc.await.unwrap();
        store.gc(no_grace.clone()).await.unwrap();
        for i in 0..OBJECTS {
            let bytes = store
                .read(&format!("obj/{i}"))
                .await
                .unwrap_or_else(|e| panic!("round {round}, obj/{i}: {e}"));
            assert!(bytes == content(i), "round {round}, obj/{i}");
        }
        let report = store.verify().await.unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
    }
    // The race must actually have happened for the test to mean anything.
    assert!(
        collected.load(Ordering::Relaxed) > 0,
        "GC never collected anything"
    );
    eprintln!(
        "restaged after losing to GC: {}",
        restaged.load(Ordering::Relaxed)
    );
}
