//! Memory under sustained load: `SOAK_IMAGES` distinct images (default 100 000), each with a
//! signed attestation in a real registry, admitted round-robin through `fipsgate serve` (its
//! own process, so the RSS is the server's alone). A first pass looks every image up in the
//! registry; then the run goes on over the cached images until both `SOAK_REQUESTS` requests
//! (default 1 000 000) and `SOAK_MINUTES` minutes (default 10) have passed. Cache lifetimes are
//! set to an hour so every image stays cached: this measures memory, not the registry. Prints
//! the server's RSS every 30 s and a summary: the RSS at each point, and the memory per
//! cached image as the RSS's growth from a tenth of the images to all of them. Needs Debian's `docker-registry`.
//!
//! `cargo bench --bench soak`

#[path = "../tests/integration/common/registry.rs"]
mod registry;
#[path = "common/review.rs"]
mod review;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use registry::{SigningKey, TestRegistry, fips_predicate, statement};

const REPO: &str = "soak/app";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const WORKERS: usize = 64;
const CONNECTIONS: usize = 4;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Pushes `n` images that share their blobs but not their manifests, each with a cosign-style
/// attestation naming a catalogue component.
async fn populate(reg: &TestRegistry, key: &SigningKey, n: u64) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"shared layer".as_slice();
    let cd = reg.push_blob(REPO, config).await;
    let ld = reg.push_blob(REPO, layer).await;
    let att_config = reg.push_blob(REPO, b"{}").await;
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let (cd, ld, att_config) = (&cd, &ld, &att_config);
            async move {
                let manifest = serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
                    "annotations": {"soak.fipsgate.io/n": i.to_string()},
                }))
                .unwrap();
                let digest = reg
                    .push_manifest(REPO, &format!("v{i}"), OCI_MANIFEST, &manifest)
                    .await;
                let env = key.envelope(&statement(
                    &digest,
                    fipsgate::attest::FIPSGATE_PREDICATE,
                    fips_predicate("coredns"),
                ));
                let ed = reg.push_blob(REPO, &env).await;
                let att = serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": att_config, "size": 2},
                    "layers": [{"mediaType": fipsgate::attest::DSSE_MEDIA_TYPE, "digest": ed, "size": env.len()}],
                }))
                .unwrap();
                let tag = format!("{}.att", digest.replace(':', "-"));
                reg.push_manifest(REPO, &tag, OCI_MANIFEST, &att).await;
                if (i + 1).is_multiple_of(10_000) {
                    eprintln!(
                        "  pushed {} images in {:.0} s",
                        i + 1,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .await;
}

#[tokio::main]
async fn main() {
    if !std::path::Path::new(registry::REGISTRY_BIN).exists() {
        eprintln!(
            "soak: skipped, {} is not installed (apt-get install docker-registry)",
            registry::REGISTRY_BIN
        );
        return;
    }
    let images = env_num("SOAK_IMAGES", 100_000);
    let min_requests = env_num("SOAK_REQUESTS", 1_000_000);
    let minutes = env_num("SOAK_MINUTES", 10);
    fipsgate::infra::crypto::install();

    let reg = TestRegistry::start_with(None, false);
    let key = SigningKey::new();
    eprintln!(
        "soak: pushing {images} images with attestations to {}",
        reg.host
    );
    populate(&reg, &key, images).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pub"), key.public_pem()).unwrap();
    std::fs::write(
        dir.path().join("fipsgate.yaml"),
        format!(
            "attestations:\n  enabled: true\n  keys: [key.pub]\n  insecureRegistries: [\"{}\"]\n  \
             cache:\n    maxEntries: {}\n    resultTtl: 1h\n    resolutionTtl: 1h\n",
            reg.host,
            images + images / 4
        ),
    )
    .unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listen.local_addr().unwrap().port();
    drop(listen);
    let log = std::fs::File::create(dir.path().join("fipsgate.log")).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .current_dir(dir.path())
        .args(["serve", "--dev", "--config", "fipsgate.yaml"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = server.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "fipsgate did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca = std::fs::read(dir.path().join("certs/dev/ca.crt")).unwrap();
    let clients: Vec<reqwest::Client> = (0..CONNECTIONS)
        .map(|_| {
            reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
                .http2_prior_knowledge()
                .build()
                .unwrap()
        })
        .collect();
    let url = format!("https://localhost:{port}/validate?timeout=10s");
    let (before, after) = review::one_container_parts();
    let image_of = |i: u64| format!("{}/{REPO}:v{i}", reg.host);
    let rss_start = rss_mib(pid);

    let sent = Arc::new(AtomicU64::new(0));
    let allowed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (client, url) = (clients[w % CONNECTIONS].clone(), url.clone());
        let (before, after, host) = (before.clone(), after.clone(), reg.host.clone());
        let (sent, allowed, stop) = (sent.clone(), allowed.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                let body = format!("{before}{host}/{REPO}:v{}{after}", n % images);
                let Ok(r) = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                else {
                    continue;
                };
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                if v["response"]["allowed"] == true {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    println!(
        "soak: {images} distinct images ({} ... {}), {WORKERS} concurrent requests over {CONNECTIONS} HTTP/2 connections",
        image_of(0),
        image_of(images - 1)
    );
    println!(
        "  {:>6}  {:>10}  {:>8}  {:>8}",
        "time s", "requests", "req/s", "RSS MiB"
    );
    println!("  {:>6}  {:>10}  {:>8}  {:>8.1}", 0, 0, "-", rss_start);
    let mut samples: Vec<(f64, u64, f64)> = Vec::new();
    let mut at_min_requests = None;
    let mut after_first_pass = None;
    let mut last = (0.0, 0u64);
    let mut tenth = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = started.elapsed().as_secs_f64();
        let n = sent.load(Ordering::Relaxed);
        let rss = rss_mib(pid);
        samples.push((t, n, rss));
        if tenth.is_none() && n >= images / 10 {
            tenth = Some((n, rss));
        }
        if after_first_pass.is_none() && n >= images {
            after_first_pass = Some((t, n, rss));
        }
        let Some((fill_t, fill_n, _)) = after_first_pass else {
            if samples.len().is_multiple_of(30) {
                println!("  {t:>6.0}  {n:>10}  {:>8}  {rss:>8.1}  (first pass)", "-");
            }
            continue;
        };
        if at_min_requests.is_none() && n - fill_n >= min_requests {
            at_min_requests = Some((n - fill_n, rss));
        }
        if samples.len().is_multiple_of(30) {
            let rate = (n - last.1) as f64 / (t - last.0);
            println!("  {t:>6.0}  {n:>10}  {rate:>8.0}  {rss:>8.1}");
            last = (t, n);
        }
        if t - fill_t >= (minutes * 60) as f64 && n - fill_n >= min_requests {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let total = sent.load(Ordering::Relaxed);
    let ok = allowed.load(Ordering::Relaxed);
    let _ = server.kill();
    let _ = server.wait();

    let (fill_t, fill_n, fill_rss) = after_first_pass.unwrap();
    let peak = samples.iter().map(|s| s.2).fold(0.0, f64::max);
    let warm = samples.iter().filter(|s| s.0 > fill_t).map(|s| s.2);
    let (lo, hi) = warm.fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    println!(
        "soak: {total} requests in {:.0} s, {ok} allowed",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  first pass (every image looked up in the registry once): {fill_n} requests in {fill_t:.0} s, RSS {fill_rss:.1} MiB"
    );
    if let Some((n10, rss10)) = tenth {
        let per_image = (fill_rss - rss10) * 1024.0 * 1024.0 / (fill_n - n10) as f64;
        println!(
            "  memory per cached image: {per_image:.0} bytes (RSS from {rss10:.1} MiB at {n10} \
             requests to {fill_rss:.1} MiB at {fill_n})"
        );
    }
    if let Some((n, rss)) = at_min_requests {
        println!("  RSS after {n} requests over the cached images: {rss:.1} MiB");
    }
    println!(
        "  after the first pass, for {:.0} s: RSS between {lo:.1} and {hi:.1} MiB; peak {peak:.1} MiB",
        started.elapsed().as_secs_f64() - fill_t
    );
}
