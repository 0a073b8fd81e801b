//! Cold path: 500 concurrent admissions of one uncached image, with the registry behind a proxy
//! that delays every request by 50 ms. Prints the registry requests made and admission
//! latency. Needs Debian's `docker-registry`.
//!
//! `cargo bench --bench cold_path`

#[path = "common/delay_proxy.rs"]
mod delay_proxy;
#[path = "../tests/integration/common/registry.rs"]
mod registry;
#[path = "common/review.rs"]
mod review;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fipsgate::app::namespaces::NamespaceStore;
use fipsgate::catalog::Catalog;
use fipsgate::config::Config;
use registry::{SigningKey, TestRegistry, fips_predicate, statement};

const DELAY: Duration = Duration::from_millis(50);
const ADMISSIONS: usize = 500;

#[tokio::main]
async fn main() {
    if !std::path::Path::new(registry::REGISTRY_BIN).exists() {
        eprintln!(
            "cold_path: skipped, {} is not installed (apt-get install docker-registry)",
            registry::REGISTRY_BIN
        );
        return;
    }
    fipsgate::infra::crypto::install();
    let reg = TestRegistry::start(None);
    let key = SigningKey::new();
    // `team/solo` is admitted alone first: the latency of one uncached look-up, against which
    // the burst on `team/app` is compared.
    for repo in ["team/solo", "team/app"] {
        let digest = reg.push_image(repo, "v1").await;
        reg.push_attestation(
            repo,
            &digest,
            &[key.envelope(&statement(
                &digest,
                fipsgate::attest::FIPSGATE_PREDICATE,
                fips_predicate("coredns"),
            ))],
        )
        .await;
    }
    let proxy = delay_proxy::start(reg.host.clone(), DELAY).await;

    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("key.pub");
    std::fs::write(&keyfile, key.public_pem()).unwrap();
    let mut config = Config::default();
    config.evidence.minimum = fipsgate::domain::fips::Evidence::Attestation;
    config.certificates.historical = fipsgate::config::CertificateAction::Ignore;
    config.attestations.enabled = true;
    config.attestations.keys = vec![fipsgate::config::KeyConfig::Path(keyfile)];
    config.attestations.insecure_registries = vec![proxy.clone()];
    let (metrics, prom) = fipsgate::telemetry::metrics::Metrics::new();
    let source = fipsgate::infra::source_chain(
        &config,
        Arc::new(Catalog::embedded()),
        metrics.clone(),
        None,
    )
    .unwrap();
    let bundle = fipsgate::infra::certs::generate(&["localhost".into()], None, 1).unwrap();
    fipsgate::infra::certs::write(dir.path(), &bundle).unwrap();
    let running = fipsgate::server::start(fipsgate::server::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        tls: fipsgate::server::CertPaths {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        },
        client_auth: None,
        provider: fipsgate::infra::crypto::install(),
        cert_reload_interval: Duration::from_secs(60),
        admission: fipsgate::app::admit::Admission {
            rules: config.rules().unwrap(),
            source: Arc::new(source),
            namespaces: Arc::new(NamespaceStore::standalone(config.defaults)),
            pods: None,
        },
        // All 500 come from one address, which may have a quarter of the requests in flight:
        // --max-concurrent-requests 4096, as for an API server sending bursts this large.
        limits: fipsgate::server::Limits::new(8 << 20, Duration::from_secs(10), 4096, 64 << 20),
        header_read_timeout: Duration::from_secs(10),
        max_connection_age: Duration::from_secs(600),
        max_connections: 4096,
        max_connections_per_source: 4096,
        shutdown_delay: Duration::ZERO,
        drain_timeout: Duration::from_secs(5),
        require_fips: false,
        module: fipsgate::infra::crypto::module(),
        metrics: (metrics, Arc::new(prom)),
    })
    .await
    .unwrap();

    let mut review = review::captured();
    review["request"]["object"]["spec"]["initContainers"] = serde_json::json!([]);
    let body_for = |repo: &str| {
        let mut review = review.clone();
        review["request"]["object"]["spec"]["containers"] =
            serde_json::json!([{"name": "app", "image": format!("{proxy}/{repo}:v1")}]);
        serde_json::to_vec(&review).unwrap()
    };
    let body = body_for("team/app");
    let url = format!(
        "https://localhost:{}/validate?timeout=5s",
        running.addr.port()
    );
    // Ten HTTP/2 connections, 50 streams each.
    let clients: Vec<reqwest::Client> = (0..10)
        .map(|_| {
            reqwest::Client::builder()
                .tls_certs_only(
                    [reqwest::Certificate::from_pem(bundle.ca_cert.as_bytes()).unwrap()],
                )
                .http2_prior_knowledge()
                .build()
                .unwrap()
        })
        .collect();
    let solo_started = Instant::now();
    let solo: serde_json::Value = clients[0]
        .post(&url)
        .header("content-type", "application/json")
        .body(body_for("team/solo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let solo_ms = solo_started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(solo["response"]["allowed"], true, "{solo}");
    let solo_gets = reg.requests("GET", "/v2/");

    let before = reg.requests("GET", "/v2/");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..ADMISSIONS {
        let c = clients[i % clients.len()].clone();
        let (url, body) = (url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let resp = c
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let r: serde_json::Value = resp.json().await.unwrap();
            if status != 200 {
                eprintln!("  answered {status}: {r}");
            }
            (t.elapsed(), r["response"]["allowed"] == true)
        }));
    }
    let mut lat = Vec::new();
    let mut allowed = 0;
    for t in tasks {
        let (d, ok) = t.await.unwrap();
        lat.push(d);
        allowed += usize::from(ok);
    }
    let total = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let manifests = reg.requests("GET", "/v2/team/app/manifests/v1");
    let atts = reg.requests("GET", "team/app/manifests/sha256-");
    let all = reg.requests("GET", "/v2/") - before;
    println!(
        "cold path: {ADMISSIONS} concurrent admissions of one uncached image, registry delayed {} ms per request",
        DELAY.as_millis()
    );
    println!(
        "  allowed {allowed}/{ADMISSIONS} in {:.0} ms",
        total.as_secs_f64() * 1e3
    );
    println!(
        "  registry GETs: {all} in all; tag resolutions {manifests}; attestation manifests (cosign tag, referrers fallback tag) {atts}"
    );
    println!(
        "  admission latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  one uncached admission alone: {solo_ms:.1} ms ({solo_gets} registry GETs); \
         burst p99 minus that: {:+.1} ms",
        pct(0.99) - solo_ms
    );
    if std::env::var_os("COLD_PATH_VERBOSE").is_some() {
        for uri in reg.uris() {
            println!("    {uri}");
        }
    }
    running.shutdown();
    running.wait().await;
}
