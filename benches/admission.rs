//! Micro-benchmarks of the hot path: reference parsing, the decision with cached results, and
//! AdmissionReview JSON in → JSON out through the real router (no socket).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fipsgate::app::admit::Admission;
use fipsgate::app::assess::classify_offline;
use fipsgate::app::namespaces::NamespaceStore;
use fipsgate::catalog::Catalog;
use fipsgate::config::Config;
use fipsgate::domain::image::ImageRef;
use fipsgate::domain::policy::NamespacePolicy;
use fipsgate::domain::workload::PodSpec;
use fipsgate::engine::{self, Classification, Subject};
use fipsgate::server::{AppState, Limits, router};
use tower::ServiceExt as _;

const IMAGES: &[&str] = &[
    "nginx",
    "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4",
    "gcr.io/spectro-images-fips/coredns@sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3",
    "registry.k8s.io/coredns/coredns:v1.11.1",
];

fn pod(n: usize) -> PodSpec {
    let containers: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": IMAGES[1 + i % 2]}))
        .collect();
    serde_json::from_value(serde_json::json!({ "containers": containers })).unwrap()
}

fn references(c: &mut Criterion) {
    let mut g = c.benchmark_group("reference_parse");
    for image in IMAGES {
        g.bench_with_input(BenchmarkId::from_parameter(image.len()), image, |b, i| {
            b.iter(|| ImageRef::parse(black_box(i)).unwrap())
        });
    }
    g.finish();
}

fn decisions(c: &mut Criterion) {
    let mut config = Config::default();
    config.certificates.historical = fipsgate::config::CertificateAction::Ignore;
    let rules = config.rules().unwrap();
    let catalog = Catalog::embedded();
    let policy = NamespacePolicy::from_labels([("fipsgate.io/enforce", "strict")], &rules.defaults);
    let today = jiff::civil::date(2026, 11, 26);
    let mut g = c.benchmark_group("decision_cached");
    for n in [1, 10, 50] {
        let spec = pod(n);
        // Results as the cache holds them: resolved once, reused.
        let res: Vec<Classification> = spec
            .all()
            .map(|(_, c)| classify_offline(&rules, &catalog, &c.image, today))
            .collect();
        let subject = Subject {
            kind: "Pod",
            namespace: "ns",
            name: "p",
            username: "u",
            enforceable: true,
            previous: None,
        };
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| engine::evaluate(&rules, &subject, &spec, black_box(&res), &policy, today))
        });
    }
    g.finish();
}

fn reviews(c: &mut Criterion) {
    let mut config = Config::default();
    config.certificates.historical = fipsgate::config::CertificateAction::Ignore;
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let state = Arc::new(AppState {
        admission: Admission {
            rules: config.rules().unwrap(),
            source: Arc::new(Catalog::embedded()),
            namespaces: Arc::new(NamespaceStore::standalone(config.defaults)),
            pods: None,
        },
        metrics,
        limits: Limits::new(8 << 20, std::time::Duration::from_secs(10), 1024, 64 << 20),
        disclosure: fipsgate::app::relabel::Disclosure::Counts,
    });
    let app = router(state);
    let captured = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission-reviews/pod-create-init-and-containers.json"
    ))
    .unwrap();
    let mut big: serde_json::Value = serde_json::from_slice(&captured).unwrap();
    let containers: Vec<_> = (0..50)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": IMAGES[i % IMAGES.len()]}))
        .collect();
    big["request"]["object"]["spec"]["containers"] = containers.into();
    let big = serde_json::to_vec(&big).unwrap();
    let mut g = c.benchmark_group("review_parse");
    for (name, body) in [
        ("captured-pod-create", &captured),
        ("pod-50-containers", &big),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| fipsgate::admission::parse(black_box(body)).unwrap())
        });
    }
    g.finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("review_in_process");
    for (name, body) in [
        ("captured-pod-create", captured),
        ("pod-50-containers", big),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let req = axum::http::Request::post("/validate?timeout=5s")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.clone()))
                    .unwrap();
                let app = app.clone();
                async move {
                    let resp = app.oneshot(req).await.unwrap();
                    axum::body::to_bytes(resp.into_body(), usize::MAX)
                        .await
                        .unwrap()
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, references, decisions, reviews);
criterion_main!(benches);
