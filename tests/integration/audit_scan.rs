//! `audit --scan`'s scanner against a registry in process (plain HTTP on 127.0.0.1): an image
//! scanned once is read back from the cache by digest, with no request at all (an interrupted
//! audit resumes without the network); a registry that trickles a layer within each read's
//! timeout is given up on at the image's deadline; an image nobody serves fails alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::common::oci::{self, Image, LAYER_TAR, Layer};
use fipsgate::app::ports::{ImageScanner, LookupContext, ScanTarget};
use fipsgate::cli::audit_scan::{ClusterScanner, ScanSettings};
use fipsgate::cli::scan::ProfileArg;
use fipsgate::domain::fips::Status;

struct Registry {
    host: String,
    good: Image,
    trickle: Image,
    requests: AtomicUsize,
    paths: Mutex<Vec<String>>,
}

async fn start() -> Arc<Registry> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let file = Layer::new().file("etc/motd", 0o644, b"hello\n").tar();
    let reg = Arc::new(Registry {
        host: listener.local_addr().unwrap().to_string(),
        good: oci::image("linux/amd64", &[(file.clone(), LAYER_TAR)], &[]),
        // The same image but for its environment: another config, another digest.
        trickle: oci::image("linux/amd64", &[(file, LAYER_TAR)], &["A=1"]),
        requests: AtomicUsize::new(0),
        paths: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .fallback(handler)
        .with_state(reg.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    reg
}

async fn handler(
    axum::extract::State(reg): axum::extract::State<Arc<Registry>>,
    uri: Uri,
) -> Response {
    reg.requests.fetch_add(1, Ordering::SeqCst);
    let path = uri.path().to_string();
    reg.paths.lock().unwrap().push(path.clone());
    let manifest = |image: &Image| {
        (
            [(header::CONTENT_TYPE, oci::MANIFEST)],
            image.manifest.clone(),
        )
            .into_response()
    };
    let blob = |image: &Image, digest: &str| {
        let found = image
            .blobs
            .iter()
            .find(|b| oci::sha256(b) == digest)
            .cloned();
        match found {
            Some(b) => b.into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    };
    let digest = path.rsplit('/').next().unwrap_or_default().to_string();
    match path.as_str() {
        "/v2/" => StatusCode::OK.into_response(),
        p if p.starts_with("/v2/good/manifests/") => manifest(&reg.good),
        p if p.starts_with("/v2/good/blobs/") => blob(&reg.good, &digest),
        p if p.starts_with("/v2/trickle/manifests/") => manifest(&reg.trickle),
        p if p.starts_with("/v2/trickle/blobs/") && digest == config_digest(&reg.trickle) => {
            blob(&reg.trickle, &digest)
        }
        // The layer, a byte every 200 ms: each read is quick, the whole never ends.
        p if p.starts_with("/v2/trickle/blobs/") => {
            let body = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(b"x")),
                    (),
                ))
            });
            Body::from_stream(body).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
        )
            .into_response(),
    }
}

fn config_digest(image: &Image) -> String {
    let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_string()
}

fn settings(reg: &Registry, cache: &std::path::Path, docker: &std::path::Path) -> ScanSettings {
    ScanSettings {
        scan: true,
        scan_concurrency: 2,
        scan_cache: Some(cache.to_path_buf()),
        rescan: false,
        profile: ProfileArg::Any,
        exceptions: None,
        insecure_registry: vec![reg.host.clone()],
        docker_config: Some(docker.to_path_buf()),
        registry_timeout: 2,
        scan_timeout: 2,
        max_scratch_mib: 64,
    }
}

fn target(reference: String) -> ScanTarget {
    ScanTarget {
        reference,
        context: LookupContext::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scans_are_cached_by_digest_and_a_trickle_ends_at_the_deadline() {
    let reg = start().await;
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("config.json");
    std::fs::write(&docker, "{}").unwrap();
    let cache = dir.path().join("cache");
    let today = jiff::civil::date(2026, 11, 29);
    let scanner =
        ClusterScanner::new(&settings(&reg, &cache, &docker), Vec::new(), today, None).unwrap();

    let pinned = format!("{}/good:v1@{}", reg.host, reg.good.digest);
    let first = scanner.scan(&target(pinned.clone())).await.unwrap();
    assert_eq!((first.scan.status, first.cached), (Status::Full, false));
    assert_eq!(first.scan.digest, reg.good.digest);
    // Again: from the cache, without a request (the registry could be gone).
    let before = reg.requests.load(Ordering::SeqCst);
    let again = scanner.scan(&target(pinned.clone())).await.unwrap();
    assert_eq!((again.scan.status, again.cached), (Status::Full, true));
    assert_eq!(again.scan.reference, pinned);
    assert_eq!(reg.requests.load(Ordering::SeqCst), before);
    // By tag: one request for the digest, then the cache.
    let tagged = scanner
        .scan(&target(format!("{}/good:v1", reg.host)))
        .await
        .unwrap();
    assert!(tagged.cached);
    assert_eq!(reg.requests.load(Ordering::SeqCst), before + 1);
    // Other settings (a profile) scan again.
    let mut other = settings(&reg, &cache, &docker);
    other.profile = ProfileArg::VendorStaticBoring;
    let other = ClusterScanner::new(&other, Vec::new(), today, None).unwrap();
    assert!(!other.scan(&target(pinned)).await.unwrap().cached);

    let t0 = Instant::now();
    let err = scanner
        .scan(&target(format!("{}/trickle:v1", reg.host)))
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        err.contains("not read within the time given to the whole image"),
        "{err}"
    );
    assert!(took < Duration::from_secs(8), "gave up after {took:?}");
    let err = scanner
        .scan(&target(format!("{}/missing:v1", reg.host)))
        .await
        .unwrap_err();
    assert!(err.contains("missing:v1 is not in the registry"), "{err}");
}
