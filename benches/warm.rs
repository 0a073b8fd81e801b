//! Warm after a restart: `WARM_IMAGES` distinct attested images (default 1 000) behind a
//! registry proxy that delays every request by 50 ms, admitted as a steady mix (`WARM_RATE`
//! reviews a second, default 20, images drawn with Zipf's law: a few are used often, most
//! rarely) for `WARM_SECS` seconds (default 60) after each of two starts of `fipsgate serve`
//! (its own process): the first with empty caches and no warm state, the second after the
//! first stopped and wrote its warm state. A review whose answer took longer than one registry
//! round trip paid the cold path. Prints the cold-path share, latency and time to readiness
//! of each start. Needs Debian's `docker-registry`.
//!
//! `cargo bench --bench warm`

#[path = "common/delay_proxy.rs"]
mod delay_proxy;
#[path = "../tests/integration/common/registry.rs"]
mod registry;
#[path = "common/review.rs"]
mod review;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use registry::{SigningKey, TestRegistry, fips_predicate, statement};

const DELAY: Duration = Duration::from_millis(50);
const REPO: &str = "warm/app";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Pushes `n` tagged images (`v0` ... ), each with a cosign-style attestation (blobs shared
/// where they can be: concurrent uploads of one blob race in the registry).
async fn populate(reg: &TestRegistry, key: &SigningKey, n: u64) {
    let config = &reg.push_blob(REPO, b"{}").await;
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| async move {
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config, "size": 2},
                "layers": [],
                "annotations": {"warm.fipsgate.io/n": i.to_string()},
            }))
            .unwrap();
            let digest = reg
                .push_manifest(REPO, &format!("v{i}"), OCI_MANIFEST, &manifest)
                .await;
            let predicate = fips_predicate("coredns");
            let env = key.envelope(&statement(
                &digest,
                fipsgate::attest::FIPSGATE_PREDICATE,
                predicate,
            ));
            let ed = reg.push_blob(REPO, &env).await;
            let att = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config, "size": 2},
                "layers": [{"mediaType": fipsgate::attest::DSSE_MEDIA_TYPE, "digest": ed,
                            "size": env.len()}],
            }))
            .unwrap();
            let tag = format!("{}.att", digest.replace(':', "-"));
            reg.push_manifest(REPO, &tag, OCI_MANIFEST, &att).await;
        })
        .await;
}

/// Image indexes drawn with Zipf's law (s = 1) from a fixed seed: the same mix each start.
fn zipf_mix(n: u64, draws: usize) -> Vec<u64> {
    let weights: Vec<f64> = (1..=n).map(|k| 1.0 / k as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..draws)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            cdf.partition_point(|&c| c < u).min(cdf.len() - 1) as u64
        })
        .collect()
}

struct Server {
    child: Child,
    port: u16,
    admin: u16,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `fipsgate serve` in `dir`; returns once it is ready, with how long that took.
fn start(dir: &Path, log: &str) -> (Server, Duration) {
    let (port, admin) = (free_port(), free_port());
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .current_dir(dir)
        .args(["serve", "--dev", "--config", "fipsgate.yaml"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .args(["--warm-state", "warm.json", "--shutdown-delay", "0s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok_and(|mut s| {
            use std::io::{Read as _, Write as _};
            let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
        });
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "fipsgate did not become ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = started.elapsed();
    (Server { child, port, admin }, took)
}

impl Server {
    /// SIGTERM, and the wait for the process to write its warm state and exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

struct Phase {
    ready: Duration,
    sent: usize,
    allowed: usize,
    cold: usize,
    latencies: Vec<Duration>,
}

/// The steady mix against `server` for `secs` seconds.
async fn drive(server: &Server, ca: &[u8], host: &str, mix: &[u64], rate: u64) -> Phase {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca).unwrap()])
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/validate?timeout=10s", server.port);
    let (before, after) = review::one_container_parts();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = Vec::with_capacity(mix.len());
    for &i in mix {
        tick.tick().await;
        let (client, url) = (client.clone(), url.clone());
        let body = format!("{before}{host}/{REPO}:v{i}{after}");
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let v: serde_json::Value = match r {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            };
            (t.elapsed(), v["response"]["allowed"] == true)
        }));
    }
    let mut phase = Phase {
        ready: Duration::ZERO,
        sent: tasks.len(),
        allowed: 0,
        cold: 0,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (d, ok) = t.await.unwrap();
        phase.allowed += usize::from(ok);
        phase.cold += usize::from(d >= DELAY);
        phase.latencies.push(d);
    }
    phase.latencies.sort();
    phase
}

fn report(name: &str, p: &Phase) {
    let pct = |q: f64| {
        let i = ((p.latencies.len() as f64 * q) as usize).min(p.latencies.len() - 1);
        p.latencies[i].as_secs_f64() * 1e3
    };
    println!(
        "  {name:<28} ready in {:>4.0} ms; {:>5} reviews, {:>5} allowed; cold path {:>4} ({:>4.1}%); p50 {:>6.1} ms, p90 {:>6.1} ms, p99 {:>6.1} ms",
        p.ready.as_secs_f64() * 1e3,
        p.sent,
        p.allowed,
        p.cold,
        100.0 * p.cold as f64 / p.sent as f64,
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}

#[tokio::main]
async fn main() {
    if !Path::new(registry::REGISTRY_BIN).exists() {
        eprintln!(
            "warm: skipped, {} is not installed (apt-get install docker-registry)",
            registry::REGISTRY_BIN
        );
        return;
    }
    let images = env_num("WARM_IMAGES", 1000);
    let rate = env_num("WARM_RATE", 20).max(1);
    let secs = env_num("WARM_SECS", 60);
    fipsgate::infra::crypto::install();
    let reg = TestRegistry::start(None);
    let key = SigningKey::new();
    eprintln!("warm: pushing {images} attested images to {}", reg.host);
    populate(&reg, &key, images).await;
    let proxy = delay_proxy::start(reg.host.clone(), DELAY).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pub"), key.public_pem()).unwrap();
    std::fs::write(
        dir.path().join("fipsgate.yaml"),
        format!(
            "evidence: {{minimum: attestation}}\nattestations:\n  enabled: true\n  keys: [key.pub]\n  \
             insecureRegistries: [\"{proxy}\"]\n"
        ),
    )
    .unwrap();
    let mix = Arc::new(zipf_mix(images, (rate * secs) as usize));
    let distinct = mix.iter().collect::<std::collections::HashSet<_>>().len();
    println!(
        "warm: {images} attested images behind a registry delayed {} ms per request; {rate} reviews/s for {secs} s after each start, Zipf mix ({distinct} distinct images in the {} reviews)",
        DELAY.as_millis(),
        mix.len()
    );
    let (first, ready) = start(dir.path(), "first.log");
    let ca = std::fs::read(dir.path().join("certs/dev/ca.crt")).unwrap();
    let mut cold = drive(&first, &ca, &proxy, &mix, rate).await;
    cold.ready = ready;
    let _ = first.admin;
    first.stop();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("warm.json")).unwrap()).unwrap();
    let kept = state["images"].as_array().map_or(0, Vec::len);

    let (second, ready) = start(dir.path(), "second.log");
    let mut warmed = drive(&second, &ca, &proxy, &mix, rate).await;
    warmed.ready = ready;
    second.stop();
    report("first start (empty caches)", &cold);
    report("restart with warm state", &warmed);
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("registry cache warmed"))
        .unwrap_or("(warming had not finished when the run ended)");
    println!("  warm state: {kept} references; {}", line.trim());
    println!(
        "  cold-path share: {:.1}% before, {:.1}% after",
        100.0 * cold.cold as f64 / cold.sent as f64,
        100.0 * warmed.cold as f64 / warmed.sent as f64
    );
}
