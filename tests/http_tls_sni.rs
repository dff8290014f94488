//! End to end: configured PEM certificates are chosen by SNI (exact and wildcard names), and
//! every other name falls back to the generated certificate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{Server, get, https, tls_connector};

/// Writes a CA and a leaf for `names` signed by it; returns (ca pem, cert path, key path).
fn issue(
    dir: &std::path::Path,
    names: &[&str],
) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (ca.pem().into_bytes(), cert, key)
}

async fn handshake(
    addr: std::net::SocketAddr,
    name: &str,
    ca: &[u8],
) -> Result<(), std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    tls_connector(ca, &[b"h2"])
        .connect(name, tcp)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn sni_selects_configured_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = issue(certs.path(), &["sni.example", "*.wild.example"]);
    let config = format!(
        "[[frontend-http.certificates]]\nnames = [\"sni.example\", \"*.wild.example\"]\ncert = {:?}\nkey = {:?}\n\
         [backends.site-http]\nenabled = false\n\
         [backends.hello-http.instances.main]\nvhosts = [\"sni.example\", \"a.wild.example\", \"localhost\"]\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let server = Server::start(&config);

    let reply = https(
        server.https,
        "sni.example",
        &ca,
        &[b"h2"],
        get("sni.example", "/"),
    )
    .await;
    assert_eq!(reply.status, 200);
    handshake(server.https, "a.wild.example", &ca)
        .await
        .unwrap();

    // Names without a configured certificate get the generated one, signed by another CA.
    assert!(handshake(server.https, "localhost", &ca).await.is_err());
    handshake(server.https, "localhost", &server.ca_pem())
        .await
        .unwrap();
    assert!(
        handshake(server.https, "sni.example", &server.ca_pem())
            .await
            .is_err()
    );
}

#[test]
fn a_bad_certificate_path_stops_startup_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[frontend-http]\nlisten-http = \"off\"\nlisten-https = \"127.0.0.1:0\"\n[[frontend-http.certificates]]\nnames = [\"x.example\"]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::everlock_bin())
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "off")
        .env("EVERLOCK_METRICS_LISTEN", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot load /nonexistent/cert.pem"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
