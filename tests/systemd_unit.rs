//! `examples/systemd/everlock.service` is a unit systemd accepts without a single warning
//! (`systemd-analyze verify`, which also works in a container where systemd is not PID 1),
//! and it keeps the hardening the README promises.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::process::Command;

use common::{everlock_bin, have_binary};

const UNIT: &str = include_str!("../examples/systemd/everlock.service");

/// The unit's `Key=value` lines.
fn settings() -> Vec<(&'static str, &'static str)> {
    UNIT.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect()
}

#[test]
fn the_unit_keeps_its_hardening() {
    let settings = settings();
    for (key, value) in [
        ("User", "everlock"),
        ("StateDirectory", "everlock"),
        ("StateDirectoryMode", "0700"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("PrivateTmp", "yes"),
        ("Restart", "on-failure"),
        ("UMask", "0077"),
    ] {
        assert!(
            settings.contains(&(key, value)),
            "{key}={value} is missing from the unit"
        );
    }
    let exec = settings.iter().find(|(k, _)| *k == "ExecStart").unwrap().1;
    assert!(
        exec.contains("--data-dir /var/lib/everlock") && exec.ends_with(" serve"),
        "{exec}"
    );
}

#[test]
fn systemd_analyze_verifies_the_unit_without_warnings() {
    if !have_binary("systemd-analyze") {
        return;
    }
    // verify checks that ExecStart is executable: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("everlock.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/local/bin/everlock", everlock_bin()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys and unparsable values are only warnings, with exit status 0.
    let about_unit: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("everlock.service"))
        .collect();
    assert!(about_unit.is_empty(), "{stderr}");
}
