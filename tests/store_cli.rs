//! `everlock store list`, `log`, `cat`, `verify` and `gc` through the real binary (with the
//! store owned by another process in `store_cli_online.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use everlock_storage::{CommitMeta, StoreManager};

fn everlock(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_everlock"))
        .arg("store")
        .args(args)
        .env("EVERLOCK_DATA_DIR", data)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[tokio::test]
async fn list_log_cat_verify_gc_and_tamper() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let manager = StoreManager::new(data);
    let store = manager.open("site").await.unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    let c1 = store
        .write("big.bin", big.clone(), CommitMeta::new("alice", "upload"))
        .await
        .unwrap();
    let id = store
        .stat("big.bin")
        .await
        .unwrap()
        .unwrap()
        .object
        .to_hex();
    store
        .write(
            "big.bin",
            b"small now".to_vec(),
            CommitMeta::new("bob", "shrink"),
        )
        .await
        .unwrap();
    manager.open("everlock-users").await.unwrap();
    std::fs::create_dir_all(data.join("_host")).unwrap();

    // While this process owns the store (as a server does), reading works without its lock
    // and writing is refused with a message naming the cause and the way out.
    assert!(stdout(&everlock(data, &["verify", "site"])).starts_with("ok: site: 2 commits"));
    let busy = everlock(data, &["gc", "site"]);
    assert!(!busy.status.success());
    assert_eq!(
        String::from_utf8_lossy(&busy.stderr),
        "error: store \"site\" is in use by a running server; stop it or use the console's \
         /store gc site\n"
    );
    drop(store);

    assert_eq!(stdout(&everlock(data, &["list"])), "everlock-users\nsite\n");
    let log = stdout(&everlock(data, &["log", "site"]));
    assert!(
        log.lines().next().unwrap().ends_with("bob: shrink"),
        "{log}"
    );
    assert!(stdout(&everlock(data, &["log", "site", "big.bin"])).contains("put 100000 bytes"));
    assert_eq!(
        stdout(&everlock(data, &["cat", "site", "big.bin"])),
        "small now"
    );
    let old = everlock(data, &["cat", "site", "big.bin", "--at", &c1.id.to_hex()]);
    assert!(old.status.success() && old.stdout == big);
    assert!(stdout(&everlock(data, &["verify", "site"])).starts_with("ok: site: 2 commits"));
    let missing = everlock(data, &["cat", "nope", "x"]);
    assert!(
        !missing.status.success()
            && String::from_utf8_lossy(&missing.stderr).contains("no such store")
    );

    // Flip one byte of the big object's file: verify must fail and name it.
    let file = data.join("site/objects").join(&id[..2]).join(&id);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[4242] ^= 0x80;
    std::fs::write(&file, &bytes).unwrap();
    let bad = everlock(data, &["verify", "site"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(&format!("first: bad object {id}")), "{err}");
    bytes[4242] ^= 0x80;
    std::fs::write(&file, &bytes).unwrap();

    // Retention then GC frees the superseded big object; its history row stays.
    let dry = stdout(&everlock(
        data,
        &[
            "gc",
            "site",
            "--dry-run",
            "--grace-secs",
            "0",
            "--set-retention-days",
            "0",
        ],
    ));
    assert!(dry.contains("dry run: purged 1 versions"), "{dry}");
    assert!(file.exists());
    let gc = stdout(&everlock(data, &["gc", "site", "--grace-secs", "0"]));
    assert!(
        gc.contains("gc: purged 1 versions; removed 1 objects (100000 bytes)"),
        "{gc}"
    );
    assert!(!file.exists());
    let purged = everlock(data, &["cat", "site", "big.bin", "--at", &c1.id.to_hex()]);
    assert!(
        String::from_utf8_lossy(&purged.stderr).contains("content purged"),
        "{purged:?}"
    );
    assert!(stdout(&everlock(data, &["log", "site", "big.bin"])).contains("(content purged)"));
    assert!(stdout(&everlock(data, &["verify", "site"])).starts_with("ok: site: 3 commits"));
}
