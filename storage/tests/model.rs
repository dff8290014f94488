//! Property test: random operation sequences against an in-memory model; afterwards read,
//! list, history, read_at and list_at must agree with the model at HEAD and at every commit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};

use everlock_storage::{CommitId, CommitMeta, INLINE_MAX, Op, StorageError, Store};
use proptest::prelude::*;

const PATHS: &[&str] = &["a", "a/b", "a/c", "ab", "b", "b/a/x", "c d", "é/ü"];
const PREFIXES: &[&str] = &["", "a", "a/", "b/", "c", "é", "zz"];

#[derive(Clone, Debug)]
enum MOp {
    Write(usize, Vec<u8>),
    Stage(usize, Vec<u8>),
    Delete(usize),
    Batch(Vec<(usize, Option<Vec<u8>>)>),
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(0u8..4, 0..6),
        1 => (0u8..3).prop_map(|b| vec![b; INLINE_MAX + 10]),
    ]
}

fn op() -> impl Strategy<Value = MOp> {
    let path = 0..PATHS.len();
    prop_oneof![
        4 => (path.clone(), content()).prop_map(|(p, c)| MOp::Write(p, c)),
        1 => (path.clone(), content()).prop_map(|(p, c)| MOp::Stage(p, c)),
        2 => path.clone().prop_map(MOp::Delete),
        2 => proptest::collection::vec((path, proptest::option::of(content())), 1..4).prop_map(MOp::Batch),
    ]
}

/// One change of a path: the commit and the new content (`None` for a delete).
type Change = (CommitId, Option<Vec<u8>>);

/// HEAD content per path, plus a snapshot after every commit.
#[derive(Default)]
struct Model {
    head: BTreeMap<String, Vec<u8>>,
    commits: Vec<(CommitId, BTreeMap<String, Vec<u8>>)>,
    history: BTreeMap<String, Vec<Change>>,
}

impl Model {
    /// Applies a batch if it is valid and returns whether it was.
    fn apply(&mut self, changes: &[(String, Option<Vec<u8>>)]) -> bool {
        let distinct: BTreeSet<_> = changes.iter().map(|c| &c.0).collect();
        let deletes_ok = changes
            .iter()
            .all(|(p, c)| c.is_some() || self.head.contains_key(p));
        !changes.is_empty() && distinct.len() == changes.len() && deletes_ok
    }

    fn record(&mut self, id: CommitId, changes: Vec<(String, Option<Vec<u8>>)>) {
        for (path, c) in changes {
            match &c {
                Some(bytes) => self.head.insert(path.clone(), bytes.clone()),
                None => self.head.remove(&path),
            };
            self.history.entry(path).or_default().push((id, c));
        }
        self.commits.push((id, self.head.clone()));
    }
}

async fn run(ops: Vec<MOp>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path().join("s")).await.unwrap();
    let mut model = Model::default();
    for op in ops {
        let changes: Vec<(String, Option<Vec<u8>>)> = match &op {
            MOp::Write(p, c) | MOp::Stage(p, c) => vec![(PATHS[*p].to_owned(), Some(c.clone()))],
            MOp::Delete(p) => vec![(PATHS[*p].to_owned(), None)],
            MOp::Batch(b) => b
                .iter()
                .map(|(p, c)| (PATHS[*p].to_owned(), c.clone()))
                .collect(),
        };
        let valid = model.apply(&changes);
        let result = match &op {
            MOp::Stage(p, c) => {
                let obj = store.stage(&c[..], None).await.unwrap();
                store
                    .commit(
                        vec![Op::Put {
                            path: PATHS[*p].to_owned(),
                            object: obj,
                        }],
                        vec![],
                        CommitMeta::new("p", "stage"),
                    )
                    .await
            }
            _ => {
                let ops = changes
                    .iter()
                    .map(|(path, c)| match c {
                        Some(bytes) => Op::PutBytes {
                            path: path.clone(),
                            bytes: bytes.clone(),
                        },
                        None => Op::Delete { path: path.clone() },
                    })
                    .collect();
                store
                    .commit(
                        ops,
                        vec![],
                        CommitMeta::new(
                            "p",
                            format!("{op:?}").chars().take(40).collect::<String>(),
                        ),
                    )
                    .await
            }
        };
        match (valid, result) {
            (true, Ok(info)) => {
                assert_eq!(info.seq as usize, model.commits.len() + 1);
                model.record(info.id, changes);
            }
            (false, Err(StorageError::NotFound(_) | StorageError::Invalid { .. })) => {}
            (v, r) => panic!("model says valid={v}, store says {r:?} for {op:?}"),
        }
    }
    check(&store, &model).await;
    // The same checks must hold after a reopen, and the chain must verify.
    drop(store);
    let store = Store::open_dir(dir.path().join("s")).await.unwrap();
    check(&store, &model).await;
    assert!(store.verify().await.unwrap().is_ok());
}

async fn check(store: &Store, model: &Model) {
    for path in PATHS {
        match (store.read(path).await, model.head.get(*path)) {
            (Ok(bytes), Some(expected)) => assert_eq!(&bytes, expected, "{path}"),
            (Err(StorageError::NotFound(_)), None) => {}
            (r, m) => panic!("{path}: store {r:?}, model {m:?}"),
        }
        let history: Vec<_> = store
            .history(path)
            .await
            .unwrap()
            .into_iter()
            .map(|h| (h.commit.id, h.content.map(|c| c.object)))
            .collect();
        let expected: Vec<_> = model
            .history
            .get(*path)
            .map(|h| {
                h.iter()
                    .map(|(id, c)| {
                        (
                            *id,
                            c.as_ref().map(|b| {
                                everlock_storage::ObjectId::from_bytes(*blake3::hash(b).as_bytes())
                            }),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(history, expected, "history of {path}");
    }
    for prefix in PREFIXES {
        let listed: Vec<_> = store
            .list(prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        let expected: Vec<_> = model
            .head
            .keys()
            .filter(|p| p.starts_with(prefix))
            .cloned()
            .collect();
        assert_eq!(listed, expected, "list {prefix:?}");
    }
    for (id, snapshot) in &model.commits {
        for path in PATHS {
            match (store.read_at(path, *id).await, snapshot.get(*path)) {
                (Ok(bytes), Some(expected)) => assert_eq!(&bytes, expected),
                (Err(StorageError::NotFound(_)), None) => {}
                (r, m) => panic!("{path} at {id}: store {r:?}, model {m:?}"),
            }
        }
        let listed: Vec<_> = store
            .list_at("a", *id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        let expected: Vec<_> = snapshot
            .keys()
            .filter(|p| p.starts_with('a'))
            .cloned()
            .collect();
        assert_eq!(listed, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_model(ops in proptest::collection::vec(op(), 1..30)) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(ops));
    }
}
