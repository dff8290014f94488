//! `everlock store export` piped into the real `git fast-import`, then inspected with
//! `git log` and `git show`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::Path;
use std::process::{Command, Stdio};

use everlock_storage::{CommitInfo, CommitMeta, Op, StoreManager};

fn git(repo: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo)
        .output()
        .unwrap()
}

fn git_ok(repo: &Path, args: &[&str]) -> String {
    let out = git(repo, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn seed(data: &Path) -> Vec<CommitInfo> {
    let store = StoreManager::new(data).open("repo").await.unwrap();
    let big: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
    let staged = store.stage(&big[..], None).await.unwrap();
    let mut commits = vec![
        store
            .write(
                "README.md",
                b"# Hello\n".to_vec(),
                CommitMeta::new("alice", "add readme"),
            )
            .await
            .unwrap(),
    ];
    commits.push(
        store
            .commit(
                vec![
                    Op::PutBytes {
                        path: "docs/a.txt".into(),
                        bytes: b"a\n".to_vec(),
                    },
                    Op::PutBytes {
                        path: "docs/b.txt".into(),
                        bytes: b"b\n".to_vec(),
                    },
                    Op::PutBytes {
                        path: "dir/with space.txt".into(),
                        bytes: b"spaced\n".to_vec(),
                    },
                    Op::PutBytes {
                        path: "\"quoted\".txt".into(),
                        bytes: b"quoted\n".to_vec(),
                    },
                    Op::Put {
                        path: "blobs/big.bin".into(),
                        object: staged.clone(),
                    },
                ],
                vec![],
                CommitMeta::new("bob", "add docs\n\nwith a body"),
            )
            .await
            .unwrap(),
    );
    commits.push(
        store
            .delete("docs/b.txt", CommitMeta::new("alice", "remove b"))
            .await
            .unwrap(),
    );
    commits.push(
        store
            .write(
                "README.md",
                b"# Hello again\n".to_vec(),
                CommitMeta::new("carol", "edit readme"),
            )
            .await
            .unwrap(),
    );
    commits
}

/// A fresh bare repository whose HEAD names `default_branch` (which has no commits yet).
fn init_bare(repo: &Path, default_branch: &str) {
    let config = format!("init.defaultBranch={default_branch}");
    assert!(
        Command::new("git")
            .args(["-c", &config, "init", "--bare", "-q"])
            .arg(repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .unwrap()
            .success()
    );
}

/// `everlock store export repo <extra>` piped into `git fast-import` in `repo_dir`.
fn export_into(data: &Path, repo_dir: &Path, extra: &[&str]) {
    // A real pipe from everlock's stdout into git's stdin.
    let mut export = Command::new(env!("CARGO_BIN_EXE_everlock"))
        .args(["store", "export", "repo"])
        .args(extra)
        .env("EVERLOCK_DATA_DIR", data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let import = Command::new("git")
        .arg("-C")
        .arg(repo_dir)
        .args(["fast-import", "--quiet"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::from(export.stdout.take().unwrap()))
        .output()
        .unwrap();
    assert!(
        export.wait().unwrap().success(),
        "everlock store export failed"
    );
    assert!(
        import.status.success(),
        "git fast-import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
}

/// The README's `store export | git fast-import` into a fresh `git init --bare`: plain
/// `git log` must show the history, whatever branch the repository's HEAD names.
#[tokio::test]
async fn export_lands_on_the_branch_head_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    seed(&data).await;
    for branch in ["master", "main", "trunk"] {
        let repo = tmp.path().join(format!("{branch}.git"));
        init_bare(&repo, branch);
        export_into(&data, &repo, &[]);
        let log = git_ok(&repo, &["log", "--format=%s"]);
        assert_eq!(
            log, "edit readme\nremove b\nadd docs\nadd readme\n",
            "{branch}"
        );
        assert_eq!(
            git_ok(&repo, &["for-each-ref", "--format=%(refname)"]),
            format!("refs/heads/{branch}\n")
        );
    }
    // An explicit ref is written as given, next to an existing history.
    let repo = tmp.path().join("master.git");
    export_into(&data, &repo, &["--branch", "refs/heads/everlock"]);
    assert_eq!(
        git_ok(&repo, &["rev-parse", "everlock^{tree}"]),
        git_ok(&repo, &["rev-parse", "HEAD^{tree}"])
    );
}

#[tokio::test]
async fn export_into_git_fast_import() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let commits = seed(&data).await;
    let repo = tmp.path().join("export.git");
    init_bare(&repo, "main");
    export_into(&data, &repo, &["--max-blob", "1000"]);

    let log = git_ok(&repo, &["log", "--format=%an|%ae|%ct|%s", "main"]);
    let lines: Vec<_> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    let expected = [
        ("carol", "edit readme", &commits[3]),
        ("alice", "remove b", &commits[2]),
        ("bob", "add docs", &commits[1]),
    ];
    for (line, (who, subject, commit)) in lines.iter().zip(expected) {
        let secs = commit.time_ms / 1000;
        assert_eq!(*line, format!("{who}|{who}@everlock|{secs}|{subject}"));
    }
    // Every git commit names its store commit in a trailer.
    let bodies = git_ok(&repo, &["log", "--format=%b", "main"]);
    for c in &commits {
        assert!(
            bodies.contains(&format!("Everlock-Commit: {}", c.id)),
            "{bodies}"
        );
    }
    assert!(bodies.contains("with a body"));

    assert_eq!(
        git_ok(&repo, &["show", "main:README.md"]),
        "# Hello again\n"
    );
    assert_eq!(git_ok(&repo, &["show", "main~3:README.md"]), "# Hello\n");
    assert_eq!(git_ok(&repo, &["show", "main:docs/a.txt"]), "a\n");
    assert_eq!(
        git_ok(&repo, &["show", "main:dir/with space.txt"]),
        "spaced\n"
    );
    assert_eq!(git_ok(&repo, &["show", "main:\"quoted\".txt"]), "quoted\n");
    assert!(
        !git(&repo, &["show", "main:docs/b.txt"]).status.success(),
        "b was deleted"
    );
    assert_eq!(git_ok(&repo, &["show", "main~2:docs/b.txt"]), "b\n");
    assert_eq!(
        git_ok(&repo, &["log", "--format=%s", "main", "--", "docs/b.txt"]),
        "remove b\nadd docs\n"
    );
    // Content above --max-blob becomes an LFS-style pointer.
    let pointer = git_ok(&repo, &["show", "main:blobs/big.bin"]);
    assert!(
        pointer.contains("oid sha256:") && pointer.contains("size 5000"),
        "{pointer}"
    );
    let tree = git_ok(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(
        tree,
        "\"\\\"quoted\\\".txt\"\nREADME.md\nblobs/big.bin\ndir/with space.txt\ndocs/a.txt\n"
    );
}
