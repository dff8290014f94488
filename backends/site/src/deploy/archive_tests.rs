//! Tests of the archive walk: metadata entries, limits, and property tests feeding random and
//! mutated archives (the walk must return a value or a typed error, never panic).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

use std::io::Write;

use proptest::prelude::*;

use super::*;

/// A sink that keeps every file in memory.
#[derive(Default)]
struct Collect {
    files: Vec<(String, Vec<u8>)>,
}

impl Sink for Collect {
    fn start(&mut self, path: &str) -> Result<(), DeployError> {
        self.files.push((path.to_owned(), Vec::new()));
        Ok(())
    }

    fn chunk(&mut self, chunk: Bytes) -> Result<(), DeployError> {
        self.files.last_mut().unwrap().1.extend_from_slice(&chunk);
        Ok(())
    }

    fn abort(&mut self, _: &io::Error) {}
}

const LIMITS: Limits = Limits {
    max_bytes: 16 * 1024 * 1024,
    max_files: 100,
    validate: true,
};

fn run(bytes: &[u8], limits: Limits) -> Result<Vec<(String, Vec<u8>)>, DeployError> {
    let mut sink = Collect::default();
    walk(bytes, limits, &mut sink).map(|_| sink.files)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A header block of `kind` declaring `size` bytes (the data is not appended).
fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

/// Appends `data` as an entry of `kind` (padded to a block).
fn append(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, data: &[u8]) {
    out.extend_from_slice(header(name, kind, data.len() as u64).as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    // The length prefix counts its own digits, so find the fixed point.
    let body = format!(" {key}={value}\n");
    let mut len = body.len();
    while body.len() + len.to_string().len() != len {
        len = body.len() + len.to_string().len();
    }
    format!("{len}{body}").into_bytes()
}

/// A valid archive using every feature the walk understands.
fn sample() -> Vec<u8> {
    let long = format!("{}/page.html", "d".repeat(150));
    let mut out = Vec::new();
    append(
        &mut out,
        "pax_global_header",
        tar::EntryType::XGlobalHeader,
        &pax_record("comment", "abc"),
    );
    append(&mut out, "dir/", tar::EntryType::Directory, b"");
    append(&mut out, "dir/a.html", tar::EntryType::Regular, b"<p>a</p>");
    append(
        &mut out,
        "././@LongLink",
        tar::EntryType::GNULongName,
        format!("{long}\0").as_bytes(),
    );
    append(&mut out, "short", tar::EntryType::Regular, b"long");
    append(
        &mut out,
        "PaxHeaders/x",
        tar::EntryType::XHeader,
        &pax_record("path", "pax/named.txt"),
    );
    append(&mut out, "ignored", tar::EntryType::Regular, b"pax");
    finish(out)
}

#[test]
fn long_names_pax_paths_and_global_headers_are_understood() {
    let files = run(&sample(), LIMITS).unwrap();
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let long = format!("{}/page.html", "d".repeat(150));
    assert_eq!(names, ["dir/a.html", long.as_str(), "pax/named.txt"]);
    assert_eq!(files[1].1, b"long");
    assert_eq!(run(&gz(&sample()), LIMITS).unwrap(), files);
}

#[test]
fn oversized_metadata_is_refused_before_it_is_read() {
    for kind in [
        tar::EntryType::GNULongName,
        tar::EntryType::GNULongLink,
        tar::EntryType::XHeader,
        tar::EntryType::XGlobalHeader,
    ] {
        // The header declares 2 GiB but no data follows: the walk must refuse on the header
        // alone (reading would fail with a truncation error instead).
        let mut out = header("././@LongLink", kind, 2 << 30).as_bytes().to_vec();
        out.extend_from_slice(&[b'a'; 4096]);
        let err = run(
            &out,
            Limits {
                max_bytes: u64::MAX,
                ..LIMITS
            },
        )
        .unwrap_err();
        assert!(matches!(err, DeployError::TooLarge(_)), "{kind:?}: {err}");
        assert!(err.to_string().contains("limited to 65536 bytes"), "{err}");
    }
    // Exactly at the limit is fine.
    let mut out = Vec::new();
    let name = "n".repeat(MAX_PATH);
    let mut data = name.clone().into_bytes();
    data.resize(MAX_META as usize, 0);
    append(
        &mut out,
        "././@LongLink",
        tar::EntryType::GNULongName,
        &data,
    );
    append(&mut out, "x", tar::EntryType::Regular, b"1");
    assert_eq!(run(&finish(out), LIMITS).unwrap()[0].0, name);
}

#[test]
fn decompressed_bytes_count_even_outside_files() {
    // A directory entry carrying 32 MiB of data: no file counts it, the stream counter does.
    let mut out = Vec::new();
    append(
        &mut out,
        "d/",
        tar::EntryType::Directory,
        &vec![0u8; 32 << 20],
    );
    append(&mut out, "a", tar::EntryType::Regular, b"1");
    let body = gz(&finish(out));
    assert!(body.len() < 256 * 1024);
    let err = run(&body, LIMITS).unwrap_err();
    assert!(matches!(err, DeployError::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("unpacks to more than"), "{err}");
}

#[test]
fn directories_count_against_the_entry_limit_and_pax_oddities_are_refused() {
    let mut out = Vec::new();
    for i in 0..5 {
        append(&mut out, &format!("d{i}/"), tar::EntryType::Directory, b"");
    }
    let limits = Limits {
        max_bytes: 1 << 20,
        max_files: 4,
        validate: true,
    };
    let err = run(&finish(out), limits).unwrap_err();
    assert!(err.to_string().contains("more than 4 files"), "{err}");

    let mut out = Vec::new();
    append(
        &mut out,
        "h",
        tar::EntryType::XHeader,
        &pax_record("size", "99"),
    );
    append(&mut out, "a", tar::EntryType::Regular, b"1");
    let err = run(&finish(out), LIMITS).unwrap_err();
    assert!(err.to_string().contains("PAX size"), "{err}");

    let mut out = Vec::new();
    append(
        &mut out,
        "h",
        tar::EntryType::XHeader,
        &pax_record("GNU.sparse.major", "1"),
    );
    append(&mut out, "a", tar::EntryType::Regular, b"1");
    assert!(
        run(&finish(out), LIMITS)
            .unwrap_err()
            .to_string()
            .contains("sparse")
    );

    let mut out = Vec::new();
    append(
        &mut out,
        "././@LongLink",
        tar::EntryType::GNULongName,
        b"a\0",
    );
    let err = run(&finish(out), LIMITS).unwrap_err();
    assert!(err.to_string().contains("describes no entry"), "{err}");
}

#[test]
fn files_kept_for_validation_have_a_total_budget() {
    let layout = vec![b' '; 1024 * 1024];
    let mut out = Vec::new();
    for i in 0..5 {
        append(
            &mut out,
            &format!("layouts/l{i}.html"),
            tar::EntryType::Regular,
            &layout,
        );
    }
    let body = gz(&finish(out));
    let err = run(&body, LIMITS).unwrap_err();
    assert!(matches!(err, DeployError::TooLarge(_)), "{err}");
    assert!(
        err.to_string().contains("layouts/l4.html is too large"),
        "{err}"
    );
    // An HTML site keeps nothing, so the same files are ordinary content there.
    let html = Limits {
        validate: false,
        ..LIMITS
    };
    assert_eq!(run(&body, html).unwrap().len(), 5);
}

fn check(bytes: &[u8]) {
    // Any outcome is fine; a panic fails the property.
    let _ = run(bytes, LIMITS);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check(&bytes);
        let mut gzip = vec![0x1f, 0x8b];
        gzip.extend_from_slice(&bytes);
        check(&gzip);
    }

    #[test]
    fn mutated_archives_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
        compress in any::<bool>(),
    ) {
        let mut bytes = sample();
        if compress {
            bytes = gz(&bytes);
        }
        for (at, value) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        check(&bytes);
        check(&bytes[..cut.index(bytes.len() + 1)]);
    }

    #[test]
    fn mutated_headers_keep_valid_checksums_and_never_panic(
        offset in 0usize..512,
        value in any::<u8>(),
        entry in 0usize..7,
    ) {
        // Mutating a header and fixing its checksum reaches the parser behind the checksum.
        let mut bytes = sample();
        let headers: Vec<usize> = header_offsets(&bytes);
        let start = headers[entry % headers.len()];
        bytes[start + offset] = value;
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&bytes[start..start + 512]);
        h.set_cksum();
        bytes[start..start + 512].copy_from_slice(h.as_bytes());
        check(&bytes);
    }
}

/// Where each header of the sample archive starts.
fn header_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|b| *b != 0) {
        out.push(at);
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&bytes[at..at + 512]);
        let size = h.entry_size().unwrap() as usize;
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}
