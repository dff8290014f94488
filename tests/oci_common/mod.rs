//! Helpers shared by the OCI end-to-end tests: users seeded into a data directory before the
//! server starts, an OCI image layout built on disk, and a trusted-CA directory for clients.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use everlock_host::auth::{AdminPassword, Auth, AuthOptions, Principal};
use everlock_host::storage::StoreManager;
use sha2::Digest as _;

pub const ADMIN: (&str, &str) = ("admin", "admin-pw");
/// May push (writer on the whole registry).
pub const ALICE: (&str, &str) = ("alice", "alice-pw");
/// May only pull.
pub const PULLER: (&str, &str) = ("puller", "puller-pw");

/// Creates the administrator, `alice` (writer) and `puller` (reader) on registry `default`;
/// with `anon_reader`, anonymous pulls are allowed too. Runs while no server owns the data.
pub async fn seed_users(data_dir: &Path, anon_reader: bool) {
    let stores = StoreManager::new(data_dir);
    let auth = Auth::open(
        &stores,
        AuthOptions {
            bcrypt_cost: 4,
            ..AuthOptions::default()
        },
    )
    .await
    .unwrap();
    auth.bootstrap(ADMIN.0, AdminPassword::Given(ADMIN.1.into()))
        .await
        .unwrap();
    let admin = Principal::test_user(ADMIN.0);
    for (login, pw) in [ALICE, PULLER] {
        if auth.add_user(&admin, login, pw).await.is_err() {
            // Already there from an earlier start of the same data directory.
        }
    }
    auth.grant(&admin, ALICE.0, "http/oci/default", "writer")
        .await
        .unwrap();
    auth.grant(&admin, PULLER.0, "http/oci/default", "reader")
        .await
        .unwrap();
    if anon_reader {
        auth.grant(&admin, "anon", "http/oci/default", "reader")
            .await
            .unwrap();
    }
}

/// A directory with the server's CA as `ca.crt`, for `--cert-dir` style options.
pub fn cert_dir(ca_pem: &[u8], parent: &Path) -> PathBuf {
    let dir = parent.join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_pem).unwrap();
    dir
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A one-file ustar archive, so layers are real tar streams.
pub fn tar_with(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// `data` as a gzip stream of stored (uncompressed) deflate blocks: a valid `tar+gzip`
/// layer, so clients copy it as is instead of compressing it on the way.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = u16::try_from(chunk.len()).unwrap();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&u32::try_from(data.len() % (1 << 32)).unwrap().to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An OCI image layout under construction.
pub struct Layout {
    pub dir: PathBuf,
    index: Vec<serde_json::Value>,
}

/// What one image of a layout consists of.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub blobs: Vec<String>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_owned(),
            index: Vec::new(),
        }
    }

    pub fn blob(&self, bytes: &[u8]) -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    }

    /// Adds an image for `arch` with one layer holding `content`; `tag` makes it reachable.
    pub fn image(&mut self, arch: &str, content: &[u8], tag: Option<&str>) -> Image {
        let tar = tar_with("hello.txt", content);
        let diff_id = format!("sha256:{}", sha256_hex(&tar));
        let layer = gzip_stored(&tar);
        let layer_digest = self.blob(&layer);
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        })
        .to_string()
        .into_bytes();
        let config_digest = self.blob(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        let manifest_digest = self.blob(&manifest);
        if let Some(tag) = tag {
            self.index.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }));
            self.write_index();
        }
        Image {
            manifest_digest,
            manifest,
            blobs: vec![config_digest, layer_digest],
        }
    }

    /// Adds a multi-arch index over `images`, tagged `tag`.
    pub fn multi_arch(&mut self, images: &[(&str, Image)], tag: &str) -> String {
        let manifests: Vec<_> = images
            .iter()
            .map(|(arch, img)| {
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": img.manifest_digest,
                    "size": img.manifest.len(),
                    "platform": {"architecture": arch, "os": "linux"},
                })
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        })
        .to_string()
        .into_bytes();
        let digest = self.blob(&index);
        self.index.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
        digest
    }

    fn write_index(&self) {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": self.index});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }

    /// The bytes of a blob in the layout.
    pub fn read_blob(dir: &Path, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()
    }
}

/// Runs skopeo with a private policy and auth file under `work`.
pub fn skopeo(work: &Path, args: &[&str]) -> Output {
    let policy = work.join("policy.json");
    if !policy.exists() {
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
    }
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .env("REGISTRY_AUTH_FILE", work.join("auth.json"))
        .env("HOME", work)
        .output()
        .unwrap();
    eprintln!(
        "skopeo {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A response of [`send`].
pub struct Sent {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

/// Sends one request over plain HTTP/1.1 to the `localhost` vhost, with Basic credentials.
pub async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    user: (&str, &str),
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Sent {
    try_send(addr, method, path, user, headers, body)
        .await
        .unwrap()
}

/// [`send`], with transport failures (a killed server) as errors.
pub async fn try_send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    user: (&str, &str),
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Sent, Box<dyn std::error::Error + Send + Sync>> {
    use base64::Engine as _;
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.0, user.1));
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", format!("Basic {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Sent {
        status,
        headers,
        body,
    })
}
