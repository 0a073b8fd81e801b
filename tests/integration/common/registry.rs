//! A real OCI registry (Debian's `docker-registry`, CNCF Distribution 2.8) for tests, and
//! helpers that push images and signed attestations through its HTTP API.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fipsgate::attest::{DSSE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, pae};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry on 127.0.0.1 with its access log collected.
pub struct TestRegistry {
    pub host: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
    auth: Option<(String, String)>,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    /// Starts a registry; with `auth`, it requires HTTP basic auth (htpasswd, bcrypt).
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        Self::start_with(auth, true)
    }

    /// As [`Self::start`]; without `keep_log` the access log is dropped (long benchmarks).
    pub fn start_with(auth: Option<(&str, &str)>, keep_log: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = auth {
            let hash = bcrypt::hash(pass, 4).unwrap();
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = Command::new(REGISTRY_BIN)
            .args(["serve", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if keep_log {
                    sink.lock().unwrap().push(line);
                }
            }
        });
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            host,
            child: Some(child),
            dir,
            log,
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            http: reqwest::Client::new(),
        }
    }

    /// Stops the registry process (its data stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Where the registry stores a blob's bytes (its filesystem driver), to tamper with them.
    pub fn blob_file(&self, digest: &str) -> std::path::PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        (self.dir.path().join("data/docker/registry/v2/blobs/sha256"))
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Requests the registry served whose URI contains `needle`, by method.
    pub fn requests(&self, method: &str, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["http.request.method"] == method
                    && v["http.request.uri"]
                        .as_str()
                        .is_some_and(|u| u.contains(needle))
                    && v["msg"]
                        .as_str()
                        .is_some_and(|m| m.contains("response completed"))
            })
            .count()
    }

    /// Every request the registry answered, as `METHOD URI`.
    pub fn uris(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("response completed"))
            })
            .map(|v| {
                format!(
                    "{} {} {}",
                    v["http.request.method"].as_str().unwrap_or("?"),
                    v["http.request.uri"].as_str().unwrap_or("?"),
                    v["http.response.status"]
                )
            })
            .collect()
    }

    fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    fn with_auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    /// Uploads a blob; returns its descriptor digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let c = self.client();
        let r = self
            .with_auth(c.post(format!("http://{}/v2/{repo}/blobs/uploads/", self.host)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "start upload: {}", r.text().await.unwrap());
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = if location.starts_with("http") {
            location
        } else {
            format!("http://{}{location}", self.host)
        };
        let r = self
            .with_auth(c.put(format!("{url}{sep}digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "finish upload: {}",
            r.text().await.unwrap()
        );
        digest
    }

    /// Puts a manifest under `reference` (tag or digest); returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let r = self
            .with_auth(self.client().put(format!(
                "http://{}/v2/{repo}/manifests/{reference}",
                self.host
            )))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "manifest: {}", r.text().await.unwrap());
        sha256(body)
    }

    /// Pushes a small single-layer OCI image under `repo:tag`; returns the manifest digest.
    pub async fn push_image(&self, repo: &str, tag: &str) -> String {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = format!("layer of {repo}:{tag} {:?}", Instant::now()).into_bytes();
        let cd = self.push_blob(repo, config).await;
        let ld = self.push_blob(repo, &layer).await;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
        }))
        .unwrap();
        self.push_manifest(
            repo,
            tag,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await
    }

    /// Pushes a multi-arch index over two fresh images; returns (index, [platform digests]).
    pub async fn push_index(&self, repo: &str, tag: &str) -> (String, Vec<String>) {
        let a = self.push_image(repo, &format!("{tag}-amd64")).await;
        let b = self.push_image(repo, &format!("{tag}-arm64")).await;
        let desc = |d: &str, arch: &str| serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 1, "platform": {"architecture": arch, "os": "linux"}});
        // Sizes must be right: fetch them.
        let mut manifests = Vec::new();
        for (d, arch) in [(&a, "amd64"), (&b, "arm64")] {
            let r = self
                .with_auth(
                    self.client()
                        .get(format!("http://{}/v2/{repo}/manifests/{d}", self.host)),
                )
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .unwrap();
            let len = r.bytes().await.unwrap().len();
            let mut v = desc(d, arch);
            v["size"] = len.into();
            manifests.push(v);
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .unwrap();
        let d = self
            .push_manifest(repo, tag, "application/vnd.oci.image.index.v1+json", &index)
            .await;
        (d, vec![a, b])
    }

    /// Copies a manifest (`from:reference`) and its blobs into `to`, under `to_reference`: the
    /// content-addressed copying anyone can do with a public image and its attestation.
    pub async fn copy(&self, from: &str, reference: &str, to: &str, to_reference: &str) -> String {
        let url = |repo: &str, what: &str| format!("http://{}/v2/{repo}/{what}", self.host);
        let r = self
            .with_auth(self.client().get(url(from, &format!("manifests/{reference}"))))
            .header(
                "accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{from}:{reference}");
        let media_type = r.headers()["content-type"].to_str().unwrap().to_string();
        let body = r.bytes().await.unwrap().to_vec();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let blobs = doc["config"]["digest"].as_str().into_iter().chain(
            doc["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["digest"].as_str()),
        );
        for digest in blobs {
            let blob = self
                .with_auth(self.client().get(url(from, &format!("blobs/{digest}"))))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(self.push_blob(to, &blob).await, digest);
        }
        self.push_manifest(to, to_reference, &media_type, &body)
            .await
    }

    /// Pushes an index of these `(digest, os/arch)` manifests under `repo:tag`; returns its digest.
    pub async fn push_index_of(&self, repo: &str, tag: &str, platforms: &[(&str, &str)]) -> String {
        let mut manifests = Vec::new();
        for (digest, platform) in platforms {
            let r = self
                .with_auth(
                    self.client()
                        .get(format!("http://{}/v2/{repo}/manifests/{digest}", self.host)),
                )
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .unwrap();
            let size = r.bytes().await.unwrap().len();
            let (os, arch) = platform.split_once('/').unwrap();
            manifests.push(
                serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": size, "platform": {"os": os, "architecture": arch}}),
            );
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .unwrap();
        self.push_manifest(repo, tag, "application/vnd.oci.image.index.v1+json", &index)
            .await
    }

    /// Attaches DSSE envelopes to `digest` the way cosign does (`sha256-<hex>.att`).
    pub async fn push_attestation(&self, repo: &str, digest: &str, envelopes: &[Vec<u8>]) {
        let config = b"{}";
        let cd = self.push_blob(repo, config).await;
        let mut layers = Vec::new();
        for env in envelopes {
            let d = self.push_blob(repo, env).await;
            layers.push(
                serde_json::json!({"mediaType": DSSE_MEDIA_TYPE, "digest": d, "size": env.len()}),
            );
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        let tag = format!("{}.att", digest.replace(':', "-"));
        self.push_manifest(
            repo,
            &tag,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn sha256(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    format!(
        "sha256:{}",
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// An ECDSA P-256 signing key, as `cosign generate-key-pair` makes.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

impl SigningKey {
    pub fn new() -> Self {
        let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
        Self {
            pair: EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap(),
        }
    }

    /// The public key as a PEM `PUBLIC KEY`.
    pub fn public_pem(&self) -> String {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let der = AsDer::<PublicKeyX509Der>::as_der(self.pair.public_key()).unwrap();
        let b64 = B64.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// A DSSE envelope over `payload`.
    pub fn envelope(&self, payload: &[u8]) -> Vec<u8> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), &pae(INTOTO_PAYLOAD_TYPE, payload))
            .unwrap();
        serde_json::to_vec(&serde_json::json!({
            "payload": B64.encode(payload),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"keyid": "", "sig": B64.encode(sig.as_ref())}],
        }))
        .unwrap()
    }
}

/// An in-toto Statement v1 about `digest`.
pub fn statement(digest: &str, predicate_type: &str, predicate: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "image", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
    .unwrap()
}

/// fipsgate's predicate for a catalogue component.
pub fn fips_predicate(component: &str) -> serde_json::Value {
    serde_json::json!({
        "component": component,
        "build": {"method": "go-boringcrypto", "go": "go1.22.5 X:boringcrypto"},
        "modules": [{"name": "Go Cryptographic Module", "version": "v1.0.0", "standard": "FIPS 140-3",
                     "certificate": "5247", "certificateStatus": "active"}],
        "exceptions": [],
    })
}
