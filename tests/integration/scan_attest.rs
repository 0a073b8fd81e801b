//! `fipsgate attest` against a real OCI registry (Debian's docker-registry, Distribution 2.8):
//! real scan fixtures scanned, attested by the binary, stored with the image, then admitted
//! (or denied) under `evidence.minimum: scan` by the webhook in process; the envelope verified
//! by a second DSSE implementation (securesystemslib). Images built in Rust are scanned by
//! `attest` itself (pulled from the registry), and `scan --oci-layout`'s document is attested
//! platform by platform.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::common::oci::{self, Image, LAYER_GZIP, Layer, Layout};
use crate::common::registry::*;
use crate::common::*;
use fipsgate::app::ports::{AssessmentSource, LookupContext};
use fipsgate::attest::{FIPSGATE_PREDICATE, SCAN_PREDICATE};
use fipsgate::catalog::Catalog;
use fipsgate::config::{Config, KeyConfig, ScopedKey};
use fipsgate::domain::fips::{Evidence, Status};
use fipsgate::domain::image::ImageRef;
use fipsgate::infra::source_chain;

/// The scan fixtures of `tests/fixtures/scan/build.sh` (`FIPSGATE_SCAN_FIXTURES`, as
/// `tests/run.sh` exports it).
fn fixtures() -> PathBuf {
    let dir = std::env::var_os("FIPSGATE_SCAN_FIXTURES")
        .expect("FIPSGATE_SCAN_FIXTURES: the scan fixtures of tests/run.sh");
    PathBuf::from(dir)
}

fn fipsgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `fipsgate` and returns its stdout, failing with its stderr when it exits with another
/// code than `code`.
fn run(args: &[&str], code: i32) -> String {
    let out = fipsgate(args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "fipsgate {args:?}: {stdout}{stderr}"
    );
    stdout
}

/// An unencrypted PKCS#8 P-256 key as `openssl genpkey` writes it, and its public key.
fn signing_key(dir: &Path) -> (PathBuf, PathBuf) {
    use aws_lc_rs::encoding::{AsDer as _, PublicKeyX509Der};
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    use base64::Engine as _;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
    let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().unwrap();
    let pem = |label: &str, der: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = (b64.as_bytes().chunks(64))
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let (key, public) = (dir.join("key.pem"), dir.join("key.pub"));
    std::fs::write(&key, pem("PRIVATE KEY", doc.as_ref())).unwrap();
    std::fs::write(&public, pem("PUBLIC KEY", spki.as_ref())).unwrap();
    (key, public)
}

/// `fipsgate scan -o json` of a fixture's root filesystem on a day before the FIPS 140-2
/// sunset (BoringCrypto #3678 is active then), written to `dir/<name>.json`.
fn scan(dir: &Path, name: &str) -> PathBuf {
    let root = fixtures().join("rootfs").join(name);
    let args = [
        "scan",
        "--rootfs",
        root.to_str().unwrap(),
        "-o",
        "json",
        "--date",
        "2026-06-01",
    ];
    let out = fipsgate(&args);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Admission's configuration: scan evidence required, the key scoped to `team/**` and the scan
/// predicate, plain HTTP to the test registry.
fn config(reg: &TestRegistry, public: &Path) -> Config {
    let mut c = quiet_config();
    c.evidence.minimum = Evidence::Scan;
    c.attestations.enabled = true;
    c.attestations.insecure_registries = vec![reg.host.clone()];
    c.attestations.call_timeout = "2s".into();
    c.attestations.keys = vec![KeyConfig::Scoped(ScopedKey {
        key: public.to_path_buf(),
        components: Vec::new(),
        repositories: vec![format!("{}/team/**", reg.host)],
        predicate_types: vec![SCAN_PREDICATE.into(), FIPSGATE_PREDICATE.into()],
    })];
    c
}

/// Scanned and attested by the binary: the GoBoringCrypto image is admitted under `strict`,
/// the trap (built with boringcrypto, links Go's standard crypto) is denied with what the scan
/// found, an image without an attestation and an image with a component attestation only are
/// below the minimum. The envelope `--out` writes verifies under securesystemslib.
#[tokio::test]
#[ignore = "needs docker-registry, the scan fixtures and the Python venv of tests/run.sh"]
async fn attested_scans_decide_admission() {
    let reg = TestRegistry::start(None);
    let h = reg.host.clone();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = signing_key(dir.path());
    let app = reg.push_image("team/app", "v1").await;
    let trap = reg.push_image("team/trap", "v1").await;
    let plain = reg.push_image("team/plain", "v1").await;
    let claimed = reg.push_image("team/proxy", "v1").await;
    let (k, insecure) = (key.to_str().unwrap(), ["--insecure-registry", h.as_str()]);
    let attest = |image: String, report: &Path, digest: &str| {
        let mut args = vec!["attest", image.as_str(), "--key", k, "--scan-result"];
        args.extend([report.to_str().unwrap(), "--digest", digest, "-o", "json"]);
        args.extend(insecure);
        serde_json::from_str::<serde_json::Value>(&run(&args, 0)).unwrap()
    };
    let good = attest(
        format!("{h}/team/app:v1"),
        &scan(dir.path(), "go-boring-static"),
        &app,
    );
    let stored = &good["signed"][0]["stored"][0];
    assert_eq!(good["signed"][0]["status"], "full", "{good}");
    assert_eq!(stored["subject"], app.as_str());
    assert_eq!(
        stored["cosignTag"],
        format!("{}.att", app.replace(':', "-"))
    );
    // Distribution 2.8 has no referrers API: the referrer is listed by the tag schema's index.
    assert_eq!(stored["referrersVia"], "tag-schema", "{good}");
    let bad = attest(
        format!("{h}/team/trap:v1"),
        &scan(dir.path(), "go-boring-nocgo"),
        &trap,
    );
    assert_eq!(bad["signed"][0]["status"], "none", "{bad}");
    assert_both_paths_are_stored(&reg, "team/app", &app).await;

    // A component attestation (not a scan) on another image.
    let s = statement(&claimed, FIPSGATE_PREDICATE, fips_predicate("kube-proxy"));
    let env = sign_with(&key, &s);
    reg.push_attestation("team/proxy", &claimed, &[env]).await;

    let config = config(&reg, &public);
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let source = source_chain(&config, Arc::new(Catalog::embedded()), metrics, None).unwrap();
    let source = Arc::new(source);
    let r = source
        .assess(
            &ImageRef::parse(&format!("{h}/team/app:v1")).unwrap(),
            &LookupContext::default(),
        )
        .await;
    assert_eq!(
        (r.status(), r.evidence()),
        (Status::Full, Evidence::Scan),
        "{r:?}"
    );
    assert_eq!(r.component().unwrap().id, format!("{h}/team/app"));
    assert_eq!(r.modules()[0].certificate.as_deref(), Some("3678"));

    let webhook = TestConfig {
        config,
        source: Some(source as Arc<dyn AssessmentSource>),
        ..TestConfig::default()
    }
    .app();
    webhook.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let post = |image: String| {
        let review = mk_review("u", "strict", "CREATE", mk_pod("p", &[("c", &image)]), None);
        let webhook = &webhook;
        async move { webhook.post("/validate", bytes(&review)).await.1 }
    };
    let r = post(format!("{h}/team/app@{app}")).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    let denied = |r: &serde_json::Value| {
        assert_eq!(r["response"]["allowed"], false, "{r}");
        r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let msg = denied(&post(format!("{h}/team/trap@{trap}")).await);
    assert!(
        msg.contains(
            "is not FIPS-compliant: scan found GoBoringNotLinked in /usr/local/bin/go-boring-nocgo"
        ),
        "{msg}"
    );
    let msg = denied(&post(format!("{h}/team/plain@{plain}")).await);
    assert!(
        msg.contains(&format!("no FIPS attestation for {plain}")),
        "{msg}"
    );
    let msg = denied(&post(format!("{h}/team/proxy@{claimed}")).await);
    assert!(
        msg.contains("is matched by attestation only; scan evidence is required"),
        "{msg}"
    );

    // --out: the same envelope, written and not pushed, verifies under securesystemslib.
    let out = dir.path().join("envelope.json");
    let report = scan(dir.path(), "go-boring-static");
    let image = format!("{h}/team/app@{app}");
    let args = [
        "attest",
        image.as_str(),
        "--key",
        k,
        "--scan-result",
        report.to_str().unwrap(),
    ];
    run(&[&args[..], &["--out", out.to_str().unwrap()]].concat(), 0);
    let verified = securesystemslib_verify(&out, &public);
    assert_eq!(verified["predicateType"], SCAN_PREDICATE);
    assert_eq!(
        verified["subjects"],
        serde_json::json!([app.trim_start_matches("sha256:")])
    );
    assert_eq!(verified["status"], "full");
}

/// Both stores hold the envelope: cosign's tag, and the referrers tag schema's index.
async fn assert_both_paths_are_stored(reg: &TestRegistry, repo: &str, digest: &str) {
    let get = |reference: String| {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", reg.host);
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .header("accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{reference}");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let att = get(format!("{}.att", digest.replace(':', "-"))).await;
    let layer = &att["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
    assert_eq!(layer["annotations"]["predicateType"], SCAN_PREDICATE);
    assert_eq!(
        layer["annotations"]["dev.cosignproject.cosign/signature"],
        ""
    );
    let index = get(digest.replace(':', "-")).await;
    let referrer = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = get(referrer).await;
    assert_eq!(manifest["subject"]["digest"], digest);
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    assert_eq!(manifest["layers"][0]["digest"], layer["digest"]);
}

/// A DSSE envelope of `statement` signed with the PKCS#8 key at `key`.
fn sign_with(key: &Path, statement: &[u8]) -> Vec<u8> {
    let k = fipsgate::attest::SigningKey::from_pem(&std::fs::read(key).unwrap()).unwrap();
    k.envelope_of(statement).unwrap()
}

/// `tests/interop/verify.py` on an envelope: what it verified.
fn securesystemslib_verify(envelope: &Path, public: &Path) -> serde_json::Value {
    let python = std::env::var("FIPSGATE_TEST_PYTHON").expect(
        "FIPSGATE_TEST_PYTHON: the venv interpreter of tests/run.sh (with securesystemslib)",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/verify.py");
    let out = Command::new(&python)
        .args([script, envelope.to_str().unwrap(), public.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every platform of an index scanned `full`: the index itself is a subject too, and the index
/// tag is admitted through its own attestation. One platform alone is not the index.
#[tokio::test]
#[ignore = "needs docker-registry and the scan fixtures of tests/run.sh"]
async fn a_wholly_scanned_index_is_attested_as_an_index() {
    let reg = TestRegistry::start(None);
    let h = reg.host.clone();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = signing_key(dir.path());
    let (index, platforms) = reg.push_index("team/multi", "v1").await;
    let (partial_index, partial_platforms) = reg.push_index("team/half", "v1").await;
    // What `scan IMAGE` says of each platform it scanned: the report's image subject.
    let report = |digest: &str, index: &str, platform: &str| {
        let path = scan(dir.path(), "go-boring-static");
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        doc["image"] = serde_json::json!({"reference": format!("{h}/team/multi:v1"),
            "digest": digest, "platform": platform, "index": index});
        let out = dir
            .path()
            .join(format!("{}.json", digest.replace(':', "-")));
        std::fs::write(&out, serde_json::to_vec(&doc).unwrap()).unwrap();
        out
    };
    let a = report(&platforms[0], &index, "linux/amd64");
    let b = report(&platforms[1], &index, "linux/arm64");
    let k = key.to_str().unwrap();
    let image = format!("{h}/team/multi:v1");
    let args = [
        "attest",
        image.as_str(),
        "--key",
        k,
        "--insecure-registry",
        h.as_str(),
        "-o",
        "json",
    ];
    let files = [
        "--scan-result",
        a.to_str().unwrap(),
        "--scan-result",
        b.to_str().unwrap(),
    ];
    let out: serde_json::Value =
        serde_json::from_str(&run(&[&args[..], &files[..]].concat(), 0)).unwrap();
    for (i, s) in out["signed"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            s["subjects"],
            serde_json::json!([platforms[i], index]),
            "{out}"
        );
    }
    let half = report(&partial_platforms[0], &partial_index, "linux/amd64");
    let image = format!("{h}/team/half:v1");
    let args = [
        "attest",
        image.as_str(),
        "--key",
        k,
        "--insecure-registry",
        h.as_str(),
        "-o",
        "json",
    ];
    let out: serde_json::Value = serde_json::from_str(&run(
        &[&args[..], &["--scan-result", half.to_str().unwrap()]].concat(),
        0,
    ))
    .unwrap();
    let note = out["signed"][0]["indexNote"].as_str().unwrap();
    assert!(note.contains("not every platform"), "{out}");

    let config = config(&reg, &public);
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let source = source_chain(&config, Arc::new(Catalog::embedded()), metrics, None).unwrap();
    let assess = |image: String| {
        let source = &source;
        async move {
            let r = ImageRef::parse(&image).unwrap();
            source.assess(&r, &LookupContext::default()).await
        }
    };
    let r = assess(format!("{h}/team/multi@{index}")).await;
    assert_eq!(
        (r.status(), r.evidence()),
        (Status::Full, Evidence::Scan),
        "{r:?}"
    );
    assert_eq!(r.digest(), Some(index.as_str()));
    let r = assess(format!("{h}/team/half:v1")).await;
    assert_ne!(r.evidence(), Evidence::Scan, "{r:?}");
    let p = r.problem().unwrap();
    assert!(p.contains("has no FIPS attestation"), "{p}");
}

/// Offline (`--out`): the binary scans a directory, signs the result for the digest given and
/// writes an envelope that fipsgate's verifier accepts for that digest only; what the user
/// must say is asked for.
#[test]
fn attest_out_writes_a_verifiable_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = signing_key(dir.path());
    let rootfs = dir.path().join("rootfs/usr/bin");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello"), "#!/bin/sh\necho hello\n").unwrap();
    let root = dir.path().join("rootfs");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let out = dir.path().join("envelope.json");
    let (k, o, r) = (
        key.to_str().unwrap(),
        out.to_str().unwrap(),
        root.to_str().unwrap(),
    );
    let image = "registry.example.com/team/app:1.4";
    let json = run(
        &[
            "attest", image, "--key", k, "--rootfs", r, "--digest", &digest, "--out", o, "-o",
            "json",
        ],
        0,
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["out"], o);
    assert_eq!(doc["signed"][0]["subjects"], serde_json::json!([digest]));
    assert_eq!(doc["signed"][0]["stored"], serde_json::json!([]));
    let envelope = std::fs::read(&out).unwrap();
    let keys = [fipsgate::attest::PublicKey::from_pem(&std::fs::read(&public).unwrap()).unwrap()];
    let accepted = [SCAN_PREDICATE.to_string()];
    let a = fipsgate::attest::verify(envelope.trim_ascii_end(), &digest, &keys, &accepted).unwrap();
    let scan = a.scan.unwrap();
    assert_eq!((scan.status, scan.profile.as_str()), (Status::Full, "any"));
    assert_eq!(doc["signed"][0]["keyId"], keys[0].id.as_str());
    let other = format!("sha256:{}", "cd".repeat(32));
    assert!(fipsgate::attest::verify(envelope.trim_ascii_end(), &other, &keys, &accepted).is_err());
    let table = run(
        &[
            "attest", image, "--key", k, "--rootfs", r, "--digest", &digest, "--out", o,
        ],
        0,
    );
    assert!(table.contains("envelopes written to"), "{table}");

    // A report of a directory does not say which image it is: the digest is asked for.
    let report = dir.path().join("report.json");
    let scanned = fipsgate(&["scan", "--rootfs", r, "-o", "json"]);
    std::fs::write(&report, &scanned.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&scanned.stdout).unwrap();
    assert!(
        doc["scannedAt"].is_string() && doc["image"].is_null(),
        "{doc}"
    );
    let p = report.to_str().unwrap();
    let e = fipsgate(&["attest", image, "--key", k, "--scan-result", p, "--out", o]);
    assert_eq!(e.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(
        stderr.contains("give the digest of the manifest scanned (--digest"),
        "{stderr}"
    );
    // A reference naming one digest and --digest another.
    let pinned = format!("{image}@{other}");
    let e = fipsgate(&[
        "attest",
        &pinned,
        "--key",
        k,
        "--scan-result",
        p,
        "--digest",
        &digest,
        "--out",
        o,
    ]);
    assert_eq!(e.status.code(), Some(2));
    // cosign's encrypted key file is refused with what to do.
    let cosign = dir.path().join("cosign.key");
    std::fs::write(&cosign, "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n").unwrap();
    let c = cosign.to_str().unwrap();
    let e = fipsgate(&[
        "attest",
        image,
        "--key",
        c,
        "--scan-result",
        p,
        "--digest",
        &digest,
        "--out",
        o,
    ]);
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(
        stderr.contains("an encrypted cosign key") && stderr.contains("cosign import-key-pair"),
        "{stderr}"
    );
}

/// An OCI 1.1 registry in process: blobs, manifests by tag and digest, and the referrers API
/// (a manifest pushed with a `subject` is answered with `OCI-Subject` and listed).
#[derive(Default)]
struct Oci11 {
    blobs: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// reference (tag or digest) -> (media type, body)
    manifests: std::sync::Mutex<std::collections::HashMap<String, (String, Vec<u8>)>>,
    /// subject digest -> referrer descriptors
    referrers: std::sync::Mutex<std::collections::HashMap<String, Vec<serde_json::Value>>>,
}

async fn oci11(
    axum::extract::State(st): axum::extract::State<Arc<Oci11>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let path = uri.path().trim_start_matches("/v2/").to_string();
    let found = |ct: String, body: Vec<u8>| {
        let headers = [
            ("content-type", ct),
            ("docker-content-digest", sha256(&body)),
        ];
        (headers, body).into_response()
    };
    let unknown = || {
        (
            StatusCode::NOT_FOUND,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
        )
            .into_response()
    };
    if let Some((_, rest)) = path.split_once("/blobs/uploads/") {
        if method == axum::http::Method::POST {
            let location = format!(
                "/v2/{}/blobs/uploads/u1",
                path.split("/blobs/").next().unwrap()
            );
            return (StatusCode::ACCEPTED, [("location", location)]).into_response();
        }
        let _ = rest;
        let digest = uri
            .query()
            .and_then(|q| q.strip_prefix("digest="))
            .unwrap()
            .replace("%3A", ":");
        assert_eq!(sha256(&body), digest, "the blob is what its digest says");
        st.blobs.lock().unwrap().insert(digest, body.to_vec());
        return StatusCode::CREATED.into_response();
    }
    if let Some((_, digest)) = path.split_once("/blobs/") {
        return match st.blobs.lock().unwrap().get(digest) {
            Some(b) => found("application/octet-stream".into(), b.clone()),
            None => unknown(),
        };
    }
    if let Some((_, digest)) = path.split_once("/referrers/") {
        let listed = st
            .referrers
            .lock()
            .unwrap()
            .get(digest)
            .cloned()
            .unwrap_or_default();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": listed});
        return found(
            "application/vnd.oci.image.index.v1+json".into(),
            serde_json::to_vec(&index).unwrap(),
        );
    }
    let Some((_, reference)) = path.split_once("/manifests/") else {
        return unknown();
    };
    if method == axum::http::Method::PUT {
        let ct = headers["content-type"].to_str().unwrap().to_string();
        let digest = sha256(&body);
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut m = st.manifests.lock().unwrap();
        m.insert(reference.to_string(), (ct.clone(), body.to_vec()));
        m.insert(digest.clone(), (ct.clone(), body.to_vec()));
        let Some(subject) = doc["subject"]["digest"].as_str() else {
            return StatusCode::CREATED.into_response();
        };
        st.referrers.lock().unwrap().entry(subject.to_string()).or_default().push(serde_json::json!({
            "mediaType": ct, "digest": digest, "size": body.len(), "artifactType": doc["artifactType"]}));
        return (StatusCode::CREATED, [("oci-subject", subject.to_string())]).into_response();
    }
    match st.manifests.lock().unwrap().get(reference) {
        Some((ct, b)) => found(ct.clone(), b.clone()),
        None => unknown(),
    }
}

/// A registry with the referrers API gets a referrer it lists (no tag-schema index is
/// written), and admission finds the scan through that API alone.
#[tokio::test]
async fn a_registry_with_the_referrers_api_lists_the_referrer() {
    let st = Arc::new(Oci11::default());
    let app = axum::Router::new().fallback(oci11).with_state(st.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = b"{}".to_vec();
    let image = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": 2},
        "layers": []}))
    .unwrap();
    let digest = sha256(&image);
    st.blobs.lock().unwrap().insert(sha256(&config), config);
    st.manifests.lock().unwrap().insert(
        digest.clone(),
        ("application/vnd.oci.image.manifest.v1+json".into(), image),
    );

    let dir = tempfile::tempdir().unwrap();
    let (key, public) = signing_key(dir.path());
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("README"), "no binaries").unwrap();
    let reference = format!("{host}/team/app@{digest}");
    let (k, r) = (key.to_str().unwrap(), rootfs.to_str().unwrap());
    let args: Vec<String> = [
        "attest",
        &reference,
        "--key",
        k,
        "--rootfs",
        r,
        "--insecure-registry",
        &host,
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The binary blocks; the registry it talks to runs on this runtime.
    let out = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, 0)
    })
    .await
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["signed"][0]["stored"][0]["referrersVia"], "referrers-api",
        "{doc}"
    );
    let tag_schema = digest.replace(':', "-");
    assert!(
        !st.manifests.lock().unwrap().contains_key(&tag_schema),
        "no tag-schema index"
    );
    assert_eq!(st.referrers.lock().unwrap()[&digest].len(), 1);

    // Without cosign's tag, the referrers API alone brings the scan to admission.
    st.manifests
        .lock()
        .unwrap()
        .remove(&format!("{tag_schema}.att"));
    let mut c = quiet_config();
    c.evidence.minimum = Evidence::Scan;
    c.attestations.enabled = true;
    c.attestations.insecure_registries = vec![host.clone()];
    c.attestations.keys = vec![KeyConfig::Path(public)];
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let source = source_chain(&c, Arc::new(Catalog::embedded()), metrics, None).unwrap();
    let r = source
        .assess(
            &ImageRef::parse(&reference).unwrap(),
            &LookupContext::default(),
        )
        .await;
    assert_eq!(
        (r.status(), r.evidence()),
        (Status::Full, Evidence::Scan),
        "{r:?}"
    );
}

/// A one-layer image of host files (`/bin/true`: no cryptography, so `full` on any day; with
/// `/usr/bin/openssl` and no FIPS provider: `none`).
fn host_image(platform: &str, files: &[&str]) -> Image {
    let mut layer = Layer::new();
    for f in files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        layer = layer.file(f.trim_start_matches('/'), 0o755, &bytes);
    }
    oci::image(platform, &[(oci::gzip(&layer.tar()), LAYER_GZIP)], &[])
}

/// What `scan --oci-layout` writes (`{status, images: [{..., reports}]}`) is attested report by
/// report, each for its platform's digest; a digest in IMAGE may name the index they came
/// from; `--digest` cannot name several reports' image.
#[test]
fn the_document_of_scan_images_is_attested_per_platform() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = signing_key(dir.path());
    let (amd64, arm64) = (
        host_image("linux/amd64", &["/bin/true"]),
        host_image("linux/arm64", &["/bin/true"]),
    );
    let root = dir.path().join("layout");
    let mut layout = Layout::new(&root);
    let index = layout.index("multi", &[&amd64, &arm64]);
    let arg = format!("{}:multi", root.display());
    let scanned = fipsgate(&["scan", "--oci-layout", &arg, "-o", "json"]);
    assert_eq!(scanned.status.code(), Some(0), "{scanned:?}");
    let doc: serde_json::Value = serde_json::from_slice(&scanned.stdout).unwrap();
    for r in doc["images"][0]["reports"].as_array().unwrap() {
        assert!(r["scannedAt"].is_string(), "{r}");
    }
    let result = dir.path().join("scan.json");
    std::fs::write(&result, &scanned.stdout).unwrap();
    let out = dir.path().join("envelopes.json");
    let (k, p, o) = (
        key.to_str().unwrap(),
        result.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let attest = |image: &str, extra: &[&str]| {
        let mut args = vec!["attest", image, "--key", k, "--scan-result", p, "--out", o];
        args.extend(extra);
        fipsgate(&args)
    };
    let image = "registry.example.com/team/app:1.4";
    let signed = attest(image, &["-o", "json"]);
    assert_eq!(signed.status.code(), Some(0), "{signed:?}");
    let signed: serde_json::Value = serde_json::from_slice(&signed.stdout).unwrap();
    let platforms: Vec<_> = (signed["signed"].as_array().unwrap().iter())
        .map(|s| (s["platform"].clone(), s["subjects"].clone()))
        .collect();
    assert_eq!(
        platforms,
        [
            ("linux/amd64".into(), serde_json::json!([amd64.digest])),
            ("linux/arm64".into(), serde_json::json!([arm64.digest])),
        ]
    );
    let keys = [fipsgate::attest::PublicKey::from_pem(&std::fs::read(&public).unwrap()).unwrap()];
    let accepted = [SCAN_PREDICATE.to_string()];
    let envelopes = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = envelopes.lines().collect();
    assert_eq!(lines.len(), 2);
    for (line, digest) in lines.iter().zip([&amd64.digest, &arm64.digest]) {
        let a = fipsgate::attest::verify(line.as_bytes(), digest, &keys, &accepted).unwrap();
        assert_eq!(a.scan.unwrap().status, Status::Full);
    }
    // IMAGE pinned to the index the platforms came from, to another digest, and --digest.
    let pinned = format!("registry.example.com/team/app@{index}");
    assert_eq!(attest(&pinned, &[]).status.code(), Some(0));
    let other = format!("registry.example.com/team/app@sha256:{}", "cd".repeat(32));
    let e = attest(&other, &[]);
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("the report is of"));
    let e = attest(image, &["--digest", &amd64.digest]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("--digest names one image"));
}

/// `attest IMAGE` without a scan result scans the image itself, pulled from the registry:
/// every platform of the index, each attested for its digest and, all `full`, the index too;
/// admission under `evidence.minimum: scan` then reads what was stored.
#[tokio::test]
#[ignore = "needs a registry (Debian's docker-registry): run tests/run.sh"]
async fn attest_scans_the_image_itself() {
    let reg = TestRegistry::start(None);
    let h = reg.host.clone();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = signing_key(dir.path());
    let push = |repo: &'static str, image: Image| {
        let reg = &reg;
        async move {
            for b in &image.blobs {
                reg.push_blob(repo, b).await;
            }
            reg.push_manifest(repo, &image.digest, oci::MANIFEST, &image.manifest)
                .await;
            image
        }
    };
    let amd64 = push("team/multi", host_image("linux/amd64", &["/bin/true"])).await;
    let arm64 = push("team/multi", host_image("linux/arm64", &["/bin/true"])).await;
    let (bytes, index) = oci::index(&[&amd64, &arm64]);
    reg.push_manifest("team/multi", "v1", oci::INDEX, &bytes)
        .await;
    let trap = host_image("linux/amd64", &["/usr/bin/openssl"]);
    let trap = push("team/trap", trap).await;
    reg.push_manifest("team/trap", "v1", oci::MANIFEST, &trap.manifest)
        .await;
    let k = key.to_str().unwrap();
    let attest = |image: String| {
        let args = ["attest", &image, "--key", k, "--insecure-registry", &h];
        serde_json::from_str::<serde_json::Value>(&run(&[&args[..], &["-o", "json"]].concat(), 0))
            .unwrap()
    };
    let multi = attest(format!("{h}/team/multi:v1"));
    let signed = multi["signed"].as_array().unwrap();
    assert_eq!(signed.len(), 2, "{multi}");
    for (s, platform) in signed.iter().zip([&amd64.digest, &arm64.digest]) {
        assert_eq!(s["status"], "full", "{multi}");
        assert_eq!(
            s["subjects"],
            serde_json::json!([platform, index]),
            "{multi}"
        );
        assert_eq!(s["stored"].as_array().unwrap().len(), 2, "{multi}");
    }
    let bad = attest(format!("{h}/team/trap:v1"));
    assert_eq!(bad["signed"][0]["status"], "none", "{bad}");
    assert_eq!(
        bad["signed"][0]["subjects"],
        serde_json::json!([trap.digest])
    );
    assert_both_paths_are_stored(&reg, "team/trap", &trap.digest).await;
    // A scan here knows its digest: --digest is refused.
    let image = format!("{h}/team/multi:v1");
    let e = fipsgate(&["attest", &image, "--key", k, "--digest", &amd64.digest]);
    assert_eq!(e.status.code(), Some(2));

    let config = config(&reg, &public);
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let source = source_chain(&config, Arc::new(Catalog::embedded()), metrics, None).unwrap();
    let assess = |image: String| {
        let source = &source;
        async move {
            let r = ImageRef::parse(&image).unwrap();
            source.assess(&r, &LookupContext::default()).await
        }
    };
    let r = assess(format!("{h}/team/multi@{index}")).await;
    assert_eq!(
        (r.status(), r.evidence()),
        (Status::Full, Evidence::Scan),
        "{r:?}"
    );
    let r = assess(format!("{h}/team/trap:v1")).await;
    assert_eq!(
        (r.status(), r.evidence()),
        (Status::None, Evidence::Scan),
        "{r:?}"
    );
}
