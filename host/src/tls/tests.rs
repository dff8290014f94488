#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::*;

fn state(dir: &Path, certs: &[CertificateConfig]) -> Arc<TlsState> {
    TlsState::new(dir, certs).unwrap()
}

/// Verifies `key`'s chain for `name` against the CA in `dir` the way a rustls client does.
fn verify(dir: &Path, key: &CertifiedKey, name: &str) -> Result<(), rustls::Error> {
    let ca = CertificateDer::from_pem_file(GeneratedCertPaths::new(dir).ca_cert).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let (leaf, rest) = key.cert.split_first().unwrap();
    verifier
        .verify_server_cert(
            leaf,
            rest,
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

fn validity_days(key: &CertifiedKey) -> i64 {
    let (_, cert) = x509_parser::parse_x509_certificate(&key.cert[0]).unwrap();
    let v = cert.validity();
    (v.not_after.timestamp() - v.not_before.timestamp()) / 86_400
}

#[test]
fn every_localhost_name_gets_its_own_verifiable_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), &[]);
    for name in [
        "www.localhost",
        "a.b.localhost",
        "localhost",
        "registry.example",
    ] {
        let key = s.choose(Some(name), false).unwrap();
        verify(dir.path(), &key, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(validity_days(&key) <= 825, "{name}");
        // Cached: the same certificate for the same name.
        assert!(Arc::ptr_eq(&key, &s.choose(Some(name), false).unwrap()));
    }
    // A leaf for one name does not verify for another.
    let key = s.choose(Some("www.localhost"), false).unwrap();
    assert!(verify(dir.path(), &key, "other.localhost").is_err());
    // No SNI: localhost and the loopback addresses.
    let no_sni = s.choose(None, false).unwrap();
    verify(dir.path(), &no_sni, "localhost").unwrap();
    verify(dir.path(), &no_sni, "127.0.0.1").unwrap();
    assert!(validity_days(&no_sni) <= 825);
}

#[test]
fn the_ca_is_created_once_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first_leaf = state(dir.path(), &[])
        .choose(Some("x.localhost"), false)
        .unwrap();
    let paths = GeneratedCertPaths::new(dir.path());
    let ca = fs::read(&paths.ca_cert).unwrap();
    // After a restart the old CA is reused and new leaves still verify against it.
    let again = state(dir.path(), &[]);
    assert_eq!(fs::read(&paths.ca_cert).unwrap(), ca);
    verify(
        dir.path(),
        &again.choose(Some("y.localhost"), false).unwrap(),
        "y.localhost",
    )
    .unwrap();
    verify(dir.path(), &first_leaf, "x.localhost").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&paths.ca_key).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "key must not be readable by others");
    let tls_dir = paths.ca_key.parent().unwrap();
    for d in [tls_dir, tls_dir.parent().unwrap()] {
        let mode = fs::metadata(d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", d.display());
    }
}

#[test]
fn a_ca_from_an_older_version_keeps_working() {
    // The previous release wrote ca.pem/ca-key.pem with the same parameters but no explicit
    // serial, plus cert.pem/key.pem; leaves must chain to that CA.
    let dir = tempfile::tempdir().unwrap();
    let paths = GeneratedCertPaths::new(dir.path());
    fs::create_dir_all(paths.ca_cert.parent().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = local_ca_params_for_test().self_signed(&key).unwrap();
    fs::write(&paths.ca_cert, ca.pem()).unwrap();
    fs::write(&paths.ca_key, key.serialize_pem()).unwrap();
    let s = state(dir.path(), &[]);
    verify(
        dir.path(),
        &s.choose(Some("old.localhost"), false).unwrap(),
        "old.localhost",
    )
    .unwrap();
}

fn local_ca_params_for_test() -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Everlock local CA");
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// Writes a self-signed pair for `name` into `dir` under `stem`.
fn write_pair(dir: &Path, stem: &str, name: &str) -> CertificateConfig {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let c = dir.join(format!("{stem}.pem"));
    let k = dir.join(format!("{stem}-key.pem"));
    fs::write(&c, cert.pem()).unwrap();
    fs::write(&k, key.serialize_pem()).unwrap();
    CertificateConfig {
        names: vec![name.parse().unwrap()],
        cert: c,
        key: k,
    }
}

#[test]
fn configured_certificates_win_and_are_reloaded_when_their_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pair(dir.path(), "site", "site.example");
    let s = state(dir.path(), std::slice::from_ref(&cfg));
    let before = s.choose(Some("site.example"), false).unwrap();
    assert_eq!(
        before.cert[0].as_ref(),
        CertificateDer::from_pem_file(&cfg.cert).unwrap().as_ref()
    );
    assert!(
        s.configured().reloaded(&s.provider).is_none(),
        "nothing changed"
    );

    // Only the certificate replaced: the key no longer matches, the old pair stays.
    let other = write_pair(dir.path(), "other", "site.example");
    fs::copy(&other.cert, &cfg.cert).unwrap();
    assert!(s.configured().reloaded(&s.provider).is_none());
    // Then the key: the new pair is served.
    fs::copy(&other.key, &cfg.key).unwrap();
    let next = s.configured().reloaded(&s.provider).unwrap();
    let after = next.get("site.example").unwrap();
    assert_eq!(
        after.cert[0].as_ref(),
        CertificateDer::from_pem_file(&other.cert).unwrap().as_ref()
    );
}

#[test]
fn configured_certificate_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CertificateConfig {
        names: vec!["example.com".parse().unwrap()],
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing-key.pem"),
    };
    let err = TlsState::new(dir.path(), &[cfg]).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
}

#[test]
fn mismatched_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_pair(dir.path(), "a", "a.example");
    let b = write_pair(dir.path(), "b", "a.example");
    let cfg = CertificateConfig { key: b.key, ..a };
    let err = TlsState::new(dir.path(), &[cfg]).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn acme_validators_get_the_validation_certificate_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), &[]);
    assert!(s.choose(Some("a.example"), true).is_none());
    let key = s.local.leaf("validation.example").unwrap();
    s.set_alpn_challenge("a.example", Some(Arc::clone(&key)));
    assert!(Arc::ptr_eq(
        &s.choose(Some("a.example"), true).unwrap(),
        &key
    ));
    // Ordinary clients never see it.
    assert!(!Arc::ptr_eq(
        &s.choose(Some("a.example"), false).unwrap(),
        &key
    ));
    s.set_alpn_challenge("a.example", None);
    assert!(s.choose(Some("a.example"), true).is_none());
}

#[test]
fn the_leaf_cache_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), &[]);
    for i in 0..50 {
        s.choose(Some(&format!("n{i}.localhost")), false).unwrap();
    }
    assert_eq!(s.local.cached(), 50);
}
