//! `fipsgate scan` of images built in Rust: OCI layout directories (host binaries, plain
//! `cargo test`), and the real fixtures pushed to a real registry (Debian's docker-registry,
//! `#[ignore]`d): gzip and zstd layers, a whiteout layer, an image's environment, a
//! two-platform index, credentials, and blobs that are not what their digest says.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::common::oci::{self, Image, LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Layer, Layout};
use crate::common::registry::TestRegistry;

fn fipsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(args)
        .env_remove("DOCKER_CONFIG")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `scan ARGS -o json --date 2026-06-01`: (exit code, document, stderr).
fn scan_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["scan"];
    all.extend(args);
    all.extend(["-o", "json", "--date", "2026-06-01"]);
    let out = fipsgate(&all);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), doc, text(&out.stderr))
}

/// The finding of `path` in a report: (verdict, error).
fn finding(report: &Value, path: &str) -> (String, String) {
    let f = (report["findings"].as_array().unwrap().iter())
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no finding for {path}: {report:#}"));
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    (s(&f["verdict"]), s(&f["error"]))
}

fn host_file(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Scans of a refused image: exit 2, and stderr says why.
fn refused(args: &[&str], why: &str) {
    let (code, _, stderr) = scan_json(args);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    println!("{stderr}");
    assert!(stderr.contains(why), "{args:?}: want {why:?}: {stderr}");
}

#[test]
fn oci_layouts_of_host_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let mut layout = Layout::new(&root);
    let base = Layer::new()
        .file("usr/bin/openssl", 0o755, &host_file("/usr/bin/openssl"))
        .file("bin/true", 0o755, &host_file("/bin/true"))
        .tar();
    let base = (oci::gzip(&base), LAYER_GZIP);
    let gone = (
        oci::zstd(&Layer::new().whiteout("usr/bin/openssl").tar()),
        LAYER_ZSTD,
    );
    let v1 = oci::image("linux/amd64", std::slice::from_ref(&base), &["PATH=/bin"]);
    let v2 = oci::image("linux/amd64", &[base.clone(), gone], &[]);
    layout.image("v1", &v1);
    layout.image("v2", &v2);
    let r = root.to_str().unwrap();

    let (code, doc, stderr) = scan_json(&["--oci-layout", &format!("{r}:v1")]);
    assert_eq!(
        (code, doc["status"].as_str()),
        (1, Some("none")),
        "{stderr}"
    );
    let report = &doc["images"][0]["reports"][0];
    assert_eq!(
        finding(report, "/usr/bin/openssl"),
        ("FAIL".into(), "NoFIPSProvider".into())
    );
    assert_eq!(
        report["image"],
        json!({"reference": format!("oci:{r}:v1"), "digest": v1.digest, "platform": "linux/amd64"})
    );
    assert_eq!(doc["images"][0]["index"], false);
    // The whiteout layer (zstd) deletes the one failure.
    let (code, doc, _) = scan_json(&["--oci-layout", &format!("{r}:v2")]);
    assert_eq!((code, doc["status"].as_str()), (0, Some("full")));
    assert_eq!(doc["images"][0]["reports"][0]["filesScanned"], 1);
    // The table names the image, its platform and digest.
    let out = fipsgate(&["scan", "--oci-layout", &format!("{r}:v1")]);
    let table = text(&out.stdout);
    assert!(
        table.contains(&format!(
            "image oci:{r}:v1 linux/amd64 ({}): none",
            v1.digest
        )),
        "{table}"
    );
    // Several images and no tag: which one is said.
    refused(&["--oci-layout", r], "holds 2 images: name one as");
    refused(
        &["--oci-layout", &format!("{r}:v3")],
        "has no image tagged \"v3\" (tags: v1, v2)",
    );
    refused(
        &[
            "--oci-layout",
            &format!("{r}:v1"),
            "--platform",
            "linux/arm64",
        ],
        "is linux/amd64, not linux/arm64",
    );
}

/// A layout whose only image has `layer` (blob, media type) as its one layer.
fn one_layer(dir: &Path, layer: (Vec<u8>, &str), size: Option<u64>) -> String {
    let mut layout = Layout::new(dir);
    let mut img = oci::image("linux/amd64", std::slice::from_ref(&layer), &[]);
    if let Some(n) = size {
        // The descriptor declares another size than the blob has.
        let mut m: Value = serde_json::from_slice(&img.manifest).unwrap();
        m["layers"][0]["size"] = n.into();
        img.manifest = serde_json::to_vec(&m).unwrap();
        img.digest = oci::sha256(&img.manifest);
        img.descriptor["digest"] = img.digest.clone().into();
        img.descriptor["size"] = img.manifest.len().into();
    }
    layout.image("t", &img);
    format!("{}:t", dir.display())
}

#[test]
fn broken_layers_in_layouts_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = Layer::new()
        .file("bin/true", 0o755, &host_file("/bin/true"))
        .tar();
    let gz = oci::gzip(&good);
    // Other bytes than the digest names (same length).
    let at = dir.path().join("tampered");
    let arg = one_layer(&at, (gz.clone(), LAYER_GZIP), None);
    let path = Layout::new(&at).blob_path(&oci::sha256(&gz));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    refused(
        &["--oci-layout", &arg],
        &format!("blob {} does not match its digest", oci::sha256(&gz)),
    );
    // A truncated gzip stream (its digest is its own).
    let arg = one_layer(
        &dir.path().join("truncated"),
        (gz[..gz.len() / 2].to_vec(), LAYER_GZIP),
        None,
    );
    refused(&["--oci-layout", &arg], "gzip: ");
    // A tar entry with `..`.
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..12].copy_from_slice(b"../etc/shado");
    h.set_size(0);
    h.set_cksum();
    let mut evil = h.as_bytes().to_vec();
    evil.extend([0u8; 1024]);
    let arg = one_layer(&dir.path().join("dotdot"), (evil, LAYER_TAR), None);
    refused(
        &["--oci-layout", &arg],
        "a path with a \"..\" component: refused",
    );
    // A descriptor that declares 10 GB for a small blob.
    let arg = one_layer(
        &dir.path().join("huge"),
        (gz.clone(), LAYER_GZIP),
        Some(10 << 30),
    );
    refused(
        &["--oci-layout", &arg],
        "its descriptor declares 10737418240",
    );
    // Not a layout at all.
    refused(
        &["--oci-layout", dir.path().to_str().unwrap()],
        "not an OCI image layout",
    );
}

/// The real fixtures as a two-platform index: linux/amd64 is the OpenSSL provider fixture
/// (gzip) plus a Go BoringCrypto binary (zstd); linux/arm64 has an arm64 Go binary built with
/// the Go FIPS module, a layer deleting `fips.so` and an environment that turns Go's FIPS mode
/// off.
fn fixture_images() -> (Image, Image) {
    let fixtures = crate::scan::fixtures();
    let provider = Layer::new()
        .dir(&fixtures.join("rootfs/openssl-provider"))
        .tar();
    let base = (oci::gzip(&provider), LAYER_GZIP);
    let boring = Layer::new()
        .file(
            "usr/local/bin/go-boring-static",
            0o755,
            &std::fs::read(fixtures.join("bin/go-boring-static")).unwrap(),
        )
        .tar();
    let boring = (oci::zstd(&boring), LAYER_ZSTD);
    let native = Layer::new()
        .file(
            "usr/local/bin/app",
            0o755,
            &std::fs::read(fixtures.join("bin/go126-fips-v1.0.0-arm64")).unwrap(),
        )
        .tar();
    let native = (oci::zstd(&native), LAYER_ZSTD);
    let no_provider = Layer::new()
        .whiteout("usr/lib/x86_64-linux-gnu/ossl-modules/fips.so")
        .tar();
    let amd64 = oci::image("linux/amd64", &[base.clone(), boring], &["PATH=/usr/bin"]);
    let arm64 = oci::image(
        "linux/arm64",
        &[base, native, (oci::gzip(&no_provider), LAYER_GZIP)],
        &["GODEBUG=fips140=off"],
    );
    (amd64, arm64)
}

async fn push(reg: &TestRegistry, repo: &str, image: &Image) {
    for b in &image.blobs {
        reg.push_blob(repo, b).await;
    }
    reg.push_manifest(repo, &image.digest, oci::MANIFEST, &image.manifest)
        .await;
}

/// Checks the two platforms' reports and the index's verdict.
fn check_index(doc: &Value, reference: &str, index: &str, images: (&Image, &Image)) {
    assert_eq!(doc["status"], "none", "{doc:#}");
    let image = &doc["images"][0];
    assert_eq!(
        (
            image["reference"].as_str(),
            image["digest"].as_str(),
            image["index"].as_bool()
        ),
        (Some(reference), Some(index), Some(true))
    );
    assert_eq!(image["status"], "none");
    let (amd, arm) = (&image["reports"][0], &image["reports"][1]);
    assert_eq!(
        amd["image"],
        json!({"reference": reference, "digest": images.0.digest, "platform": "linux/amd64", "index": index})
    );
    assert_eq!(
        arm["image"]["digest"].as_str(),
        Some(images.1.digest.as_str())
    );
    assert_eq!(
        (amd["status"].as_str(), arm["status"].as_str()),
        (Some("unknown"), Some("none"))
    );
    let libcrypto = "/usr/bin/c-libcrypto";
    assert_eq!(
        finding(amd, libcrypto),
        ("WARN".into(), "ProviderNotValidated".into())
    );
    assert_eq!(finding(amd, "/usr/local/bin/go-boring-static").0, "PASS");
    assert_eq!(
        finding(arm, libcrypto),
        ("FAIL".into(), "NoFIPSProvider".into())
    );
    assert_eq!(
        finding(arm, "/usr/local/bin/app"),
        ("PASS".into(), "-".into())
    );
    // The config's Env reached the scan (R1) and turns the arm64 binary's module off.
    assert_eq!(
        finding(arm, "env:GODEBUG"),
        ("FAIL".into(), "RuntimeFIPSOff".into())
    );
}

#[test]
#[ignore = "needs built scan fixtures: run tests/run.sh"]
fn fixture_index_from_an_oci_layout() {
    let (amd64, arm64) = fixture_images();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(dir.path());
    let index = layout.index("multi", &[&amd64, &arm64]);
    let arg = format!("{}:multi", dir.path().display());
    let (code, doc, stderr) = scan_json(&["--oci-layout", &arg]);
    assert_eq!(code, 1, "{stderr}");
    check_index(&doc, &format!("oci:{arg}"), &index, (&amd64, &arm64));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a registry (Debian's docker-registry) and built scan fixtures: run tests/run.sh"]
async fn fixture_index_from_a_registry() {
    let reg = TestRegistry::start(None);
    let h = reg.host.clone();
    let (amd64, arm64) = fixture_images();
    push(&reg, "team/app", &amd64).await;
    push(&reg, "team/app", &arm64).await;
    let (bytes, index) = oci::index(&[&amd64, &arm64]);
    reg.push_manifest("team/app", "v1", oci::INDEX, &bytes)
        .await;
    let reference = format!("{h}/team/app:v1");
    let run = |extra: &'static [&'static str]| {
        let mut args = vec![reference.as_str(), "--insecure-registry", h.as_str()];
        args.extend(extra);
        scan_json(&args)
    };
    let (code, doc, stderr) = tokio::task::block_in_place(|| run(&[]));
    assert_eq!(code, 1, "{stderr}");
    check_index(&doc, &reference, &index, (&amd64, &arm64));
    // One platform of the index.
    let (code, doc, _) = tokio::task::block_in_place(|| run(&["--platform", "linux/amd64"]));
    assert_eq!((code, doc["status"].as_str()), (1, Some("unknown")));
    assert_eq!(doc["images"][0]["reports"].as_array().unwrap().len(), 1);
    // The table ends each index with its verdict.
    let out = tokio::task::block_in_place(|| {
        fipsgate(&[
            "scan",
            &reference,
            "--insecure-registry",
            &h,
            "--date",
            "2026-06-01",
        ])
    });
    let table = text(&out.stdout);
    assert!(
        table.contains(&format!(
            "index {reference} ({index}): none (linux/amd64 unknown, linux/arm64 none)"
        )),
        "{table}"
    );
    // By digest, a platform manifest alone.
    let by_digest = format!("{h}/team/app@{}", arm64.digest);
    let (code, doc, _) =
        tokio::task::block_in_place(|| scan_json(&[&by_digest, "--insecure-registry", &h]));
    assert_eq!(
        (
            code,
            doc["images"][0]["reports"][0]["image"]["index"].clone()
        ),
        (1, Value::Null)
    );
    assert_eq!(
        doc["images"][0]["reports"][0]["image"]["platform"],
        "linux/arm64"
    );

    // A layer whose stored bytes are not its digest's: refused, exit 2.
    push(&reg, "team/tampered", &amd64).await;
    reg.push_manifest("team/tampered", "v1", oci::MANIFEST, &amd64.manifest)
        .await;
    let layer = oci::sha256(&amd64.blobs[2]);
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let tampered = format!("{h}/team/tampered:v1");
    tokio::task::block_in_place(|| {
        refused(
            &[&tampered, "--insecure-registry", &h],
            &format!("blob {layer} does not match its digest"),
        )
    });
    // Plain HTTPS is the default: a registry that speaks HTTP is not reached without the flag.
    tokio::task::block_in_place(|| refused(&[&reference], "scanning"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a registry (Debian's docker-registry): run tests/run.sh"]
async fn credentials_come_from_the_docker_config() {
    let reg = TestRegistry::start(Some(("scanner", "s3cret")));
    let h = reg.host.clone();
    let layer = (
        oci::gzip(
            &Layer::new()
                .file("bin/true", 0o755, &host_file("/bin/true"))
                .tar(),
        ),
        LAYER_GZIP,
    );
    let img = oci::image("linux/amd64", &[layer], &[]);
    push(&reg, "private/app", &img).await;
    reg.push_manifest("private/app", "v1", oci::MANIFEST, &img.manifest)
        .await;
    let reference = format!("{h}/private/app:v1");
    tokio::task::block_in_place(|| refused(&[&reference, "--insecure-registry", &h], "401"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({"auths": {&h: {"username": "scanner", "password": "s3cret"}}}).to_string(),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (code, doc, stderr) = tokio::task::block_in_place(|| {
        scan_json(&[&reference, "--insecure-registry", &h, "--docker-config", c])
    });
    assert_eq!(
        (code, doc["status"].as_str()),
        (0, Some("full")),
        "{stderr}"
    );
    // And from $DOCKER_CONFIG.
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_fipsgate"))
            .args(["scan", &reference, "--insecure-registry", &h])
            .env("DOCKER_CONFIG", dir.path())
            .output()
            .unwrap()
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
