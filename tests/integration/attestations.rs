//! Signed attestations from a real OCI registry (Debian's docker-registry, Distribution 2.8).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::registry::*;
use crate::common::*;
use fipsgate::app::chain::SourceChain;
use fipsgate::app::ports::{AssessmentSource, LookupContext};
use fipsgate::attest::{DHI_PREDICATE, FIPSGATE_PREDICATE};
use fipsgate::catalog::Catalog;
use fipsgate::config::{Config, KeyConfig};
use fipsgate::domain::fips::{Evidence, Status};
use fipsgate::domain::image::ImageRef;
use fipsgate::infra::registry::{Credentials, PullSecrets};
use fipsgate::infra::source_chain;

const NEEDS: &str = "needs docker-registry (Debian package; tests/run.sh installs it)";

struct Setup {
    _dir: tempfile::TempDir,
    config: Config,
}

/// A configuration trusting `keys`, speaking plain HTTP to `registry`, requiring attestations.
fn setup(registry: &TestRegistry, keys: &[&SigningKey]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.evidence.minimum = Evidence::Attestation;
    config.attestations.enabled = true;
    config.attestations.insecure_registries = vec![registry.host.clone()];
    config.attestations.call_timeout = "2s".into();
    for (i, k) in keys.iter().enumerate() {
        let p = dir.path().join(format!("key{i}.pub"));
        std::fs::write(&p, k.public_pem()).unwrap();
        config.attestations.keys.push(KeyConfig::Path(p));
    }
    Setup { _dir: dir, config }
}

fn chain(s: &Setup, pull: Option<Arc<dyn PullSecrets>>) -> SourceChain {
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let mut config = s.config.clone();
    config.attestations.pull_secrets = pull.is_some();
    source_chain(&config, Arc::new(Catalog::embedded()), metrics, pull).unwrap()
}

async fn assess(r: &SourceChain, image: &str) -> fipsgate::domain::assessment::Assessment {
    let img = ImageRef::parse(image).unwrap();
    r.assess(&img, &LookupContext::default()).await
}

#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn signed_attestation_and_every_refusal() {
    let _ = NEEDS;
    let reg = TestRegistry::start(None);
    let key = SigningKey::new();
    let stranger = SigningKey::new();
    let s = setup(&reg, &[&key]);
    let r = chain(&s, None);
    let h = &reg.host;

    // A correctly signed fipsgate attestation, found through a tag.
    let good = reg.push_image("team/dns", "v1").await;
    reg.push_attestation(
        "team/dns",
        &good,
        &[key.envelope(&statement(
            &good,
            FIPSGATE_PREDICATE,
            fips_predicate("coredns"),
        ))],
    )
    .await;
    let res = assess(&r, &format!("{h}/team/dns:v1")).await;
    assert_eq!(
        (res.status(), res.evidence()),
        (Status::Full, Evidence::Attestation),
        "{res:?}"
    );
    assert_eq!(res.component().unwrap().id, "coredns");
    assert_eq!(res.modules()[0].certificate.as_deref(), Some("5247"));
    // And by digest.
    let res = assess(&r, &format!("{h}/team/dns@{good}")).await;
    assert_eq!(res.evidence(), Evidence::Attestation);

    // Each refusal, with its own reason.
    let mut cases: Vec<(String, &str)> = Vec::new();
    let d = reg.push_image("team/wrongkey", "v1").await;
    reg.push_attestation(
        "team/wrongkey",
        &d,
        &[stranger.envelope(&statement(
            &d,
            FIPSGATE_PREDICATE,
            fips_predicate("coredns"),
        ))],
    )
    .await;
    cases.push((format!("{h}/team/wrongkey:v1"), "signature does not verify"));

    let d = reg.push_image("team/tampered", "v1").await;
    let mut env: serde_json::Value = serde_json::from_slice(&key.envelope(&statement(
        &d,
        FIPSGATE_PREDICATE,
        fips_predicate("coredns"),
    )))
    .unwrap();
    use base64::Engine as _;
    env["payload"] = base64::engine::general_purpose::STANDARD
        .encode(statement(&d, FIPSGATE_PREDICATE, fips_predicate("etcd")))
        .into();
    reg.push_attestation("team/tampered", &d, &[serde_json::to_vec(&env).unwrap()])
        .await;
    cases.push((format!("{h}/team/tampered:v1"), "signature does not verify"));

    let d = reg.push_image("team/subject", "v1").await;
    reg.push_attestation(
        "team/subject",
        &d,
        &[key.envelope(&statement(
            &good,
            FIPSGATE_PREDICATE,
            fips_predicate("coredns"),
        ))],
    )
    .await;
    cases.push((
        format!("{h}/team/subject:v1"),
        "subject does not match image digest",
    ));

    let d = reg.push_image("team/predicate", "v1").await;
    reg.push_attestation(
        "team/predicate",
        &d,
        &[key.envelope(&statement(
            &d,
            "https://slsa.dev/provenance/v1",
            serde_json::json!({}),
        ))],
    )
    .await;
    cases.push((
        format!("{h}/team/predicate:v1"),
        "predicate type \"https://slsa.dev/provenance/v1\" is not accepted",
    ));

    let d = reg.push_image("team/outside", "v1").await;
    reg.push_attestation(
        "team/outside",
        &d,
        &[key.envelope(&statement(
            &d,
            FIPSGATE_PREDICATE,
            fips_predicate("in-house-proxy"),
        ))],
    )
    .await;
    cases.push((
        format!("{h}/team/outside:v1"),
        "attested component \"in-house-proxy\" is not in the catalogue",
    ));

    let d = reg.push_image("team/missing", "v1").await;
    cases.push((
        format!("{h}/team/missing:v1"),
        &*Box::leak(format!("no FIPS attestation for {d}").into_boxed_str()),
    ));

    let mut reasons = Vec::new();
    for (image, want) in &cases {
        let res = assess(&r, image).await;
        assert_ne!(res.evidence(), Evidence::Attestation, "{image}");
        let p = res.problem().unwrap_or_default().to_string();
        assert!(p.contains(want), "{image}: {p}");
        reasons.push(p);
    }
    // Wrong key and tampered payload read the same to the verifier; the rest all differ.
    let distinct: std::collections::HashSet<_> = reasons.iter().collect();
    assert_eq!(distinct.len(), reasons.len() - 1, "{reasons:?}");

    // Under minimum evidence `attestation`, the engine denies with the reason.
    let rules = s.config.rules().unwrap();
    let spec: fipsgate::domain::workload::PodSpec =
        serde_json::from_value(serde_json::json!({"containers": [
        {"name": "ok", "image": format!("{h}/team/dns:v1")},
        {"name": "bad", "image": format!("{h}/team/subject:v1")}]}))
        .unwrap();
    let mut res = Vec::new();
    for (_, c) in spec.all() {
        res.push(fipsgate::engine::Classification::Assessed(
            assess(&r, &c.image).await,
        ));
    }
    let policy = fipsgate::domain::policy::NamespacePolicy::from_labels(
        [("fipsgate.io/enforce", "strict")],
        &rules.defaults,
    );
    let subject = fipsgate::engine::Subject {
        kind: "Pod",
        namespace: "ns",
        name: "p",
        username: "u",
        enforceable: true,
        previous: None,
    };
    let d = fipsgate::engine::evaluate(
        &rules,
        &subject,
        &spec,
        &res,
        &policy,
        jiff::civil::date(2026, 11, 26),
    );
    let msg = d.message.unwrap();
    assert!(
        msg.contains("(1 of 2 containers)") && msg.contains("subject does not match"),
        "{msg}"
    );
}

#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn multi_arch_dhi_and_mirrored_names() {
    let reg = TestRegistry::start(None);
    let key = SigningKey::new();
    let mut s = setup(&reg, &[&key]);
    // DHI attestations name no component: the catalogue decides which one the image is.
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat.yaml");
    std::fs::write(&cat, format!("components:\n  - {{id: dhi-nginx, name: DHI nginx, category: auxiliary, images: [\"{}/dhi/**\"], status: full}}\n", reg.host)).unwrap();
    s.config.catalog.files = vec![cat];
    let catalog = Arc::new(fipsgate::config::load::catalog(&s.config.catalog).unwrap());
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let r = source_chain(&s.config, catalog, metrics, None).unwrap();

    // Attested on a platform manifest of an index, referenced by the index's tag.
    let (_index, platforms) = reg.push_index("dhi/nginx", "1.27-fips").await;
    let dhi = serde_json::json!([{"name": "OpenSSL FIPS Provider", "package": "openssl", "version": "3.1.2",
        "standard": "FIPS 140-3", "status": "active", "certification": "CMVP #4985", "sunsetDate": "2030-03-10"}]);
    reg.push_attestation(
        "dhi/nginx",
        &platforms[1],
        &[key.envelope(&statement(&platforms[1], DHI_PREDICATE, dhi.clone()))],
    )
    .await;
    // One platform attested is not the index attested: a node may run the other.
    let res = assess(&r, &format!("{}/dhi/nginx:1.27-fips", reg.host)).await;
    assert_eq!(res.evidence(), Evidence::Repository, "{res:?}");
    let want = format!(
        "platform linux/amd64 ({}) has no FIPS attestation",
        platforms[0]
    );
    assert_eq!(res.problem(), Some(want.as_str()), "{res:?}");
    reg.push_attestation(
        "dhi/nginx",
        &platforms[0],
        &[key.envelope(&statement(&platforms[0], DHI_PREDICATE, dhi.clone()))],
    )
    .await;
    let catalog = Arc::new(fipsgate::config::load::catalog(&s.config.catalog).unwrap());
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let r = source_chain(&s.config, catalog, metrics, None).unwrap();
    let res = assess(&r, &format!("{}/dhi/nginx:1.27-fips", reg.host)).await;
    assert_eq!(
        (res.status(), res.evidence()),
        (Status::Full, Evidence::Attestation),
        "{res:?}"
    );
    assert_eq!(res.component().unwrap().id, "dhi-nginx");
    assert_eq!(res.modules()[0].certificate.as_deref(), Some("4985"));

    // The same attestation on an image no catalogue component matches: not compliant.
    let d = reg.push_image("other/nginx", "1").await;
    reg.push_attestation(
        "other/nginx",
        &d,
        &[key.envelope(&statement(&d, DHI_PREDICATE, dhi))],
    )
    .await;
    let res = assess(&r, &format!("{}/other/nginx:1", reg.host)).await;
    assert_eq!(res.status(), Status::None);
    assert!(
        res.problem()
            .unwrap()
            .contains("no catalogue component matches"),
        "{res:?}"
    );
}

struct StaticSecrets(Credentials);

impl PullSecrets for StaticSecrets {
    fn credentials<'a>(
        &'a self,
        _: &'a str,
        names: &'a [String],
    ) -> fipsgate::app::ports::BoxFuture<'a, Result<Credentials, String>> {
        let c = if names.iter().any(|n| n == "regcred") {
            self.0.clone()
        } else {
            Credentials::default()
        };
        Box::pin(async move { Ok(c) })
    }
}

#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn pull_secret_opens_a_private_repository() {
    let reg = TestRegistry::start(Some(("robot", "s3cret")));
    let key = SigningKey::new();
    let s = setup(&reg, &[&key]);
    let d = reg.push_image("private/api", "v1").await;
    reg.push_attestation(
        "private/api",
        &d,
        &[key.envelope(&statement(
            &d,
            FIPSGATE_PREDICATE,
            fips_predicate("kube-apiserver"),
        ))],
    )
    .await;
    let config_json = format!(
        r#"{{"auths": {{"{}": {{"username": "robot", "password": "s3cret"}}}}}}"#,
        reg.host
    );
    let creds = Credentials::from_docker_config(config_json.as_bytes()).unwrap();
    let r = chain(&s, Some(Arc::new(StaticSecrets(creds))));
    let img = ImageRef::parse(&format!("{}/private/api:v1", reg.host)).unwrap();
    // Without the pod's pull secret the registry refuses: a look-up error, not a verdict.
    let res = r
        .assess(
            &img,
            &LookupContext {
                namespace: "ns".into(),
                pull_secrets: vec![],
            },
        )
        .await;
    assert_eq!(res.status(), Status::Unknown, "{res:?}");
    assert!(
        res.problem().unwrap().contains("attestation lookup failed"),
        "{res:?}"
    );
    // With it, the attestation is read. (Errors are cached only briefly, under another key.)
    let r = chain(
        &s,
        Some(Arc::new(StaticSecrets(
            Credentials::from_docker_config(config_json.as_bytes()).unwrap(),
        ))),
    );
    let res = r
        .assess(
            &img,
            &LookupContext {
                namespace: "ns".into(),
                pull_secrets: vec!["regcred".into()],
            },
        )
        .await;
    assert_eq!(
        (res.status(), res.evidence()),
        (Status::Full, Evidence::Attestation),
        "{res:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn concurrent_lookups_are_coalesced_and_cache_survives_the_registry() {
    let mut reg = TestRegistry::start(None);
    let key = SigningKey::new();
    let s = setup(&reg, &[&key]);
    let d = reg.push_image("team/hot", "v1").await;
    reg.push_attestation(
        "team/hot",
        &d,
        &[key.envelope(&statement(&d, FIPSGATE_PREDICATE, fips_predicate("etcd")))],
    )
    .await;
    let _ = reg.push_image("team/cold", "v1").await;
    let r = Arc::new(chain(&s, None));
    let image = format!("{}/team/hot:v1", reg.host);
    let before_tag = reg.requests("GET", "/v2/team/hot/manifests/v1");
    let before_att = reg.requests("GET", ".att");
    let mut handles = Vec::new();
    for _ in 0..200 {
        let r = r.clone();
        let image = image.clone();
        handles.push(tokio::spawn(async move { assess(&r, &image).await }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().evidence(), Evidence::Attestation);
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // the access log is read asynchronously
    assert_eq!(
        reg.requests("GET", "/v2/team/hot/manifests/v1") - before_tag,
        1,
        "manifest resolutions"
    );
    assert_eq!(
        reg.requests("GET", ".att") - before_att,
        1,
        "attestation fetches"
    );

    // Registry gone: the cached result still serves; an uncached image gets the failure
    // behaviour (status unknown) quickly.
    reg.stop();
    assert_eq!(assess(&r, &image).await.evidence(), Evidence::Attestation);
    let started = Instant::now();
    let cold = assess(&r, &format!("{}/team/cold:v1", reg.host)).await;
    assert_eq!(cold.status(), Status::Unknown, "{cold:?}");
    assert!(
        cold.problem()
            .unwrap()
            .contains("attestation lookup failed"),
        "{cold:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn admission_through_the_server_requires_the_attestation() {
    let reg = TestRegistry::start(None);
    let key = SigningKey::new();
    let s = setup(&reg, &[&key]);
    let d = reg.push_image("team/proxy", "v1").await;
    reg.push_attestation(
        "team/proxy",
        &d,
        &[key.envelope(&statement(
            &d,
            FIPSGATE_PREDICATE,
            fips_predicate("kube-proxy"),
        ))],
    )
    .await;
    let _ = reg.push_image("team/plain", "v1").await;
    let mut config = s.config.clone();
    config.certificates.historical = fipsgate::config::CertificateAction::Ignore;
    let (metrics, registry) = fipsgate::telemetry::metrics::Metrics::new();
    let source = source_chain(
        &config,
        Arc::new(Catalog::embedded()),
        metrics.clone(),
        None,
    )
    .unwrap();
    let server = TestServer::start(Options {
        config,
        source: Some(Arc::new(source)),
        metrics: Some((metrics, Arc::new(registry))),
        ..Options::default()
    })
    .await;
    server.label("secure", &[("fipsgate.io/enforce", "strict")]);
    let c = server.client(HttpVersion::H2);
    let h = &reg.host;
    let review = pod_review("a1", "secure", &[("proxy", &format!("{h}/team/proxy:v1"))]);
    let (_, _, r) = post(&c, &server.url("/validate?timeout=5s"), bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    let review = pod_review("a2", "secure", &[("plain", &format!("{h}/team/plain:v1"))]);
    let (_, _, r) = post(&c, &server.url("/validate?timeout=5s"), bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], false);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("not a FIPS-compliant component (no FIPS attestation for sha256:"),
        "{msg}"
    );
    let metrics = reqwest::get(server.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fipsgate_attestation_lookups_total"),
        "{metrics}"
    );
}

/// A registry answering the OCI 1.1 referrers API (Distribution 2.8 does not): only what the
/// referrers path needs.
struct ReferrersRegistry {
    manifests: std::collections::HashMap<String, (String, Vec<u8>)>,
    blobs: std::collections::HashMap<String, Vec<u8>>,
    referrers: Vec<u8>,
    requests: std::sync::Mutex<Vec<String>>,
}

async fn referrers_handler(
    axum::extract::State(st): axum::extract::State<Arc<ReferrersRegistry>>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path().to_string();
    st.requests.lock().unwrap().push(path.clone());
    let ok = |ct: &str, body: Vec<u8>| {
        let digest = sha256(&body);
        (
            [
                ("content-type", ct.to_string()),
                ("docker-content-digest", digest),
            ],
            body,
        )
            .into_response()
    };
    let Some(rest) = path.strip_prefix("/v2/") else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    if rest.is_empty() {
        return ok("application/json", b"{}".to_vec());
    }
    if rest.contains("/referrers/") {
        return ok(
            "application/vnd.oci.image.index.v1+json",
            st.referrers.clone(),
        );
    }
    if let Some((ct, body)) = rest
        .split_once("/manifests/")
        .and_then(|(_, r)| st.manifests.get(r))
    {
        return ok(ct, body.clone());
    }
    if let Some(body) = rest
        .split_once("/blobs/")
        .and_then(|(_, d)| st.blobs.get(d))
    {
        return ok("application/octet-stream", body.clone());
    }
    (
        axum::http::StatusCode::NOT_FOUND,
        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
    )
        .into_response()
}

#[tokio::test]
async fn referrers_api_is_used_when_the_registry_has_it() {
    let key = SigningKey::new();
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let config = b"{}".to_vec();
    let image = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": oci,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": 2},
        "layers": []})).unwrap();
    let image_digest = sha256(&image);
    let envelope = key.envelope(&statement(
        &image_digest,
        FIPSGATE_PREDICATE,
        fips_predicate("metrics-server"),
    ));
    let att = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": oci,
        "artifactType": "application/vnd.in-toto+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(&config), "size": 2},
        "layers": [{"mediaType": fipsgate::attest::DSSE_MEDIA_TYPE, "digest": sha256(&envelope), "size": envelope.len()}],
        "subject": {"mediaType": oci, "digest": image_digest, "size": image.len()}})).unwrap();
    let att_digest = sha256(&att);
    let referrers = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": oci, "digest": sha256(&att), "size": att.len(), "artifactType": "application/vnd.in-toto+json"}]})).unwrap();
    let state = Arc::new(ReferrersRegistry {
        manifests: [
            ("v1".to_string(), (oci.to_string(), image.clone())),
            (image_digest.clone(), (oci.to_string(), image)),
            (sha256(&att), (oci.to_string(), att.clone())),
        ]
        .into(),
        blobs: [(sha256(&envelope), envelope), (sha256(&config), config)].into(),
        referrers,
        requests: Default::default(),
    });
    let app = axum::Router::new()
        .fallback(referrers_handler)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.evidence.minimum = Evidence::Attestation;
    config.attestations.enabled = true;
    config.attestations.insecure_registries = vec![host.clone()];
    let k = dir.path().join("k.pub");
    std::fs::write(&k, key.public_pem()).unwrap();
    config.attestations.keys = vec![KeyConfig::Path(k)];
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let r = source_chain(&config, Arc::new(Catalog::embedded()), metrics, None).unwrap();
    let res = assess(&r, &format!("{host}/team/metrics:v1")).await;
    assert_eq!(
        (res.status(), res.evidence()),
        (Status::Full, Evidence::Attestation),
        "{res:?}"
    );
    assert_eq!(res.component().unwrap().id, "metrics-server");
    let requests = state.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|p| p.contains("/referrers/")),
        "{requests:?}"
    );
    // The envelope came through the manifest the referrers API listed (this registry has no
    // cosign tag to fall back to).
    assert!(
        requests.iter().any(|p| p.ends_with(&att_digest)),
        "referred manifest not fetched: {requests:?}"
    );
}

/// An attacker copies a vendor's attested single-platform manifest and its attestation (both
/// public and content-addressed) into their repository, and publishes an index whose
/// `linux/s390x` entry is that copy and whose `linux/amd64` entry is their own image. One
/// attested platform used to admit the whole index, by tag and by digest.
#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn one_attested_platform_does_not_admit_an_index() {
    let _ = NEEDS;
    let reg = TestRegistry::start(None);
    let h = &reg.host;
    let key = SigningKey::new();
    let s = setup(&reg, &[&key]);
    let attest_dns =
        |d: &str| key.envelope(&statement(d, FIPSGATE_PREDICATE, fips_predicate("coredns")));
    let vendor = reg.push_image("vendor/dns", "v1").await;
    reg.push_attestation("vendor/dns", &vendor, &[attest_dns(&vendor)])
        .await;

    let att_tag = format!("{}.att", vendor.replace(':', "-"));
    reg.copy("vendor/dns", &vendor, "evil/app", &vendor).await;
    reg.copy("vendor/dns", &att_tag, "evil/app", &att_tag).await;
    let own = reg.push_image("evil/app", "own").await;
    let platforms = [
        (own.as_str(), "linux/amd64"),
        (vendor.as_str(), "linux/s390x"),
    ];
    let index = reg.push_index_of("evil/app", "v1", &platforms).await;
    let missing = format!("platform linux/amd64 ({own}) has no FIPS attestation");
    for image in [format!("{h}/evil/app:v1"), format!("{h}/evil/app@{index}")] {
        let res = assess(&chain(&s, None), &image).await;
        assert_eq!(res.evidence(), Evidence::None, "{image}: {res:?}");
        assert_eq!(res.problem(), Some(missing.as_str()), "{image}: {res:?}");
    }
    // The copy alone, by its digest, is the vendor's image: that is what runs.
    let res = assess(&chain(&s, None), &format!("{h}/evil/app@{vendor}")).await;
    assert_eq!(res.evidence(), Evidence::Attestation, "{res:?}");

    // Admission under minimum evidence `attestation` denies the index and names the platform.
    let app = TestConfig {
        config: s.config.clone(),
        source: Some(Arc::new(chain(&s, None))),
        ..TestConfig::default()
    }
    .app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let pod = mk_pod("p", &[("app", &format!("{h}/evil/app:v1"))]);
    let (_, r) = app
        .post(
            "/validate",
            bytes(&mk_review("u", "strict", "CREATE", pod, None)),
        )
        .await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains(&missing), "{msg}");

    // An index whose every platform is attested as the same component is attested.
    let arm = reg.push_image("vendor/dns", "v1-arm64").await;
    reg.push_attestation("vendor/dns", &arm, &[attest_dns(&arm)])
        .await;
    let both = [
        (vendor.as_str(), "linux/amd64"),
        (arm.as_str(), "linux/arm64"),
    ];
    reg.push_index_of("vendor/dns", "multi", &both).await;
    let res = assess(&chain(&s, None), &format!("{h}/vendor/dns:multi")).await;
    assert_eq!(res.evidence(), Evidence::Attestation, "{res:?}");
    assert_eq!(res.component().map(|c| c.id.as_str()), Some("coredns"));
    // ... and one whose platforms claim different components is not.
    let other = reg.push_image("vendor/dns", "v1-ppc").await;
    let proxy = statement(&other, FIPSGATE_PREDICATE, fips_predicate("kube-proxy"));
    reg.push_attestation("vendor/dns", &other, &[key.envelope(&proxy)])
        .await;
    let mixed = [
        (vendor.as_str(), "linux/amd64"),
        (other.as_str(), "linux/ppc64le"),
    ];
    reg.push_index_of("vendor/dns", "mixed", &mixed).await;
    let res = assess(&chain(&s, None), &format!("{h}/vendor/dns:mixed")).await;
    assert_ne!(res.evidence(), Evidence::Attestation, "{res:?}");
    assert!(
        res.problem()
            .unwrap()
            .contains("platforms are attested as different components"),
        "{res:?}"
    );
}

/// A tag is resolved again by every node that pulls it (and on every restart with
/// `imagePullPolicy: Always`): a registry that serves fipsgate one manifest and the node
/// another, or a re-tag after admission, runs an image that was never verified. Evidence that
/// rests on a digest binds only a reference that carries it: `evidence.binding` warns (the
/// default) or requires it, and the `digests` annotation records what was verified.
#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn tags_are_bound_to_the_verified_digest() {
    use fipsgate::config::Binding;
    let _ = NEEDS;
    let reg = TestRegistry::start(None);
    let h = &reg.host;
    let key = SigningKey::new();
    let s = setup(&reg, &[&key]);
    let d = reg.push_image("team/dns", "v1").await;
    let att = statement(&d, FIPSGATE_PREDICATE, fips_predicate("coredns"));
    reg.push_attestation("team/dns", &d, &[key.envelope(&att)])
        .await;
    let by_tag = format!("{h}/team/dns:v1");
    let pinned = format!("{by_tag}@{d}");
    let app_with = |binding: Binding| {
        let mut config = s.config.clone();
        config.evidence.binding = binding;
        let app = TestConfig {
            config,
            source: Some(Arc::new(chain(&s, None))),
            ..TestConfig::default()
        }
        .app();
        app.label("strict", &[("fipsgate.io/enforce", "strict")]);
        app
    };
    async fn post(app: &InProcess, image: &str) -> serde_json::Value {
        let review = mk_review(
            "u",
            "strict",
            "CREATE",
            mk_pod("p", &[("dns", image)]),
            None,
        );
        app.post("/validate", bytes(&review)).await.1
    }

    let warn = app_with(Binding::Warn);
    let r = post(&warn, &by_tag).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    let pin = format!(
        "fipsgate: container \"dns\" is verified as {d} but referenced by tag, which a node resolves again: pin it as {pinned}"
    );
    assert_eq!(r["response"]["warnings"], serde_json::json!([pin]), "{r}");
    assert_eq!(
        r["response"]["auditAnnotations"]["digests"],
        format!("dns={d}")
    );
    let r = post(&warn, &pinned).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert!(r["response"].get("warnings").is_none(), "{r}");
    assert_eq!(
        r["response"]["auditAnnotations"]["digests"],
        format!("dns={d}")
    );

    let require = app_with(Binding::Require);
    let r = post(&require, &by_tag).await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("use {pinned}")), "{msg}");
    let r = post(&require, &pinned).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");

    // Re-tagged after admission: the pinned reference still names the verified image, and the
    // tag now resolves to an image without evidence.
    reg.push_image("team/dns", "v1").await;
    let fresh = chain(&s, None);
    let res = assess(&fresh, &by_tag).await;
    assert_ne!(res.evidence(), Evidence::Attestation, "{res:?}");
    let res = assess(&fresh, &pinned).await;
    assert_eq!(res.evidence(), Evidence::Attestation, "{res:?}");
}

/// `/mutate` rewrites the references whose evidence rests on a digest to carry it (every list
/// of the pod, image volumes included); `/validate` then judges the pinned pod, so under
/// `binding: require` the pair admits what a tag alone would not.
#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn mutate_pins_references_to_their_verified_digest() {
    use base64::Engine as _;
    use fipsgate::config::Binding;
    let _ = NEEDS;
    let reg = TestRegistry::start(None);
    let h = &reg.host;
    let key = SigningKey::new();
    let mut s = setup(&reg, &[&key]);
    s.config.evidence.binding = Binding::Require;
    let d = reg.push_image("team/dns", "v1").await;
    let att = statement(&d, FIPSGATE_PREDICATE, fips_predicate("coredns"));
    reg.push_attestation("team/dns", &d, &[key.envelope(&att)])
        .await;
    let app = TestConfig {
        config: s.config.clone(),
        source: Some(Arc::new(chain(&s, None))),
        ..TestConfig::default()
    }
    .app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let dns = format!("{h}/team/dns:v1");
    let mut pod = mk_pod("p", &[("a", &dns), ("b", &format!("{dns}@{d}"))]);
    pod["spec"]["initContainers"] = serde_json::json!([{"name": "i", "image": dns}]);
    pod["spec"]["volumes"] = serde_json::json!([
        {"name": "token", "secret": {"secretName": "t"}},
        {"name": "data", "image": {"reference": dns}},
    ]);
    let review = mk_review("u", "strict", "CREATE", pod.clone(), None);
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(
        r["response"]["allowed"], false,
        "tags alone are refused: {r}"
    );

    let (_, r) = app.post("/mutate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert_eq!(r["response"]["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(r["response"]["patch"].as_str().unwrap())
        .unwrap();
    let ops: Vec<serde_json::Value> = serde_json::from_slice(&patch).unwrap();
    let pinned = format!("{dns}@{d}");
    let replaced: Vec<(&str, &str)> = ops
        .iter()
        .filter(|o| o["op"] == "replace")
        .map(|o| (o["path"].as_str().unwrap(), o["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        replaced,
        [
            ("/spec/initContainers/0/image", pinned.as_str()),
            ("/spec/containers/0/image", pinned.as_str()),
            ("/spec/volumes/1/image/reference", pinned.as_str()),
        ]
    );
    // Each replace is guarded by a test of the reference it read.
    for op in ops.iter().filter(|o| o["op"] == "test") {
        assert_eq!(
            pod.pointer(op["path"].as_str().unwrap()).unwrap(),
            &op["value"]
        );
    }
    for (path, value) in replaced {
        *pod.pointer_mut(path).unwrap() = value.into();
    }
    let review = mk_review("u2", "strict", "CREATE", pod, None);
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(
        r["response"]["allowed"], true,
        "the pinned pod is admitted: {r}"
    );

    // Nothing to pin: no patch.
    let other = mk_review(
        "u3",
        "strict",
        "CREATE",
        mk_pod("q", &[("web", "nginx")]),
        None,
    );
    let (_, r) = app.post("/mutate", bytes(&other)).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert!(r["response"].get("patch").is_none(), "{r}");
}

/// A key trusted to sign the operator's own images used to vouch for anything: it could
/// declare an attacker's image to be `kube-apiserver`. Each key now carries a scope (components,
/// repositories, predicate types); an attestation signed outside it is refused with its own
/// reason.
#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn a_key_vouches_only_within_its_scope() {
    use fipsgate::config::ScopedKey;
    let _ = NEEDS;
    let reg = TestRegistry::start(None);
    let h = &reg.host;
    let app_key = SigningKey::new();
    let mut s = setup(&reg, &[]);
    let pem = s._dir.path().join("apps.pub");
    std::fs::write(&pem, app_key.public_pem()).unwrap();
    s.config.attestations.keys = vec![KeyConfig::Scoped(ScopedKey {
        key: pem,
        components: vec!["coredns".into()],
        repositories: vec![format!("{h}/apps/**")],
        predicate_types: vec![FIPSGATE_PREDICATE.into()],
    })];
    let sign = |repo: &'static str,
                tag: &'static str,
                predicate: &'static str,
                body: serde_json::Value| {
        let reg = &reg;
        let key = &app_key;
        async move {
            let d = reg.push_image(repo, tag).await;
            let env = key.envelope(&statement(&d, predicate, body));
            reg.push_attestation(repo, &d, &[env]).await;
        }
    };
    sign(
        "apps/dns",
        "v1",
        FIPSGATE_PREDICATE,
        fips_predicate("coredns"),
    )
    .await;
    sign(
        "apps/x",
        "v1",
        FIPSGATE_PREDICATE,
        fips_predicate("kube-apiserver"),
    )
    .await;
    sign(
        "evil/x",
        "v1",
        FIPSGATE_PREDICATE,
        fips_predicate("coredns"),
    )
    .await;
    let dhi = serde_json::json!([{"name": "OpenSSL FIPS Provider", "standard": "FIPS 140-3", "certification": "CMVP #4985"}]);
    sign("apps/dhi", "v1", DHI_PREDICATE, dhi).await;
    let r = chain(&s, None);
    let res = assess(&r, &format!("{h}/apps/dns:v1")).await;
    assert_eq!(
        res.evidence(),
        Evidence::Attestation,
        "within its scope: {res:?}"
    );
    let refused =
        |what: &str| format!("outside its scope: {what} is not among what it may vouch for");
    let cases = [
        ("apps/x:v1", refused("component \"kube-apiserver\"")),
        ("evil/x:v1", refused(&format!("repository {h}/evil/x"))),
        (
            "apps/dhi:v1",
            refused(&format!("predicate type \"{DHI_PREDICATE}\"")),
        ),
    ];
    for (image, why) in cases {
        let res = assess(&r, &format!("{h}/{image}")).await;
        assert_ne!(res.evidence(), Evidence::Attestation, "{image}: {res:?}");
        assert!(res.problem().unwrap().contains(&why), "{image}: {res:?}");
    }
}

/// The venv interpreter with securesystemslib, from `tests/run.sh`.
const PYTHON_ENV: &str = "FIPSGATE_TEST_PYTHON";

/// Envelopes signed by securesystemslib: its own ECDSA P-256 key and key id, and extension
/// fields at every level of the statement (see `tests/interop/sign.py`).
struct ForeignSigner {
    dir: tempfile::TempDir,
    keyid: String,
}

impl ForeignSigner {
    /// Signs the fipsgate predicate about `fips` and a DHI predicate about `dhi`.
    fn sign(fips: &str, dhi: &str) -> Self {
        let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| {
            panic!("{PYTHON_ENV}: the venv interpreter of tests/run.sh (with securesystemslib)")
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/sign.py");
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(&python)
            .args([script, dir.path().to_str().unwrap(), fips, dhi])
            .output()
            .unwrap_or_else(|e| panic!("{python}: {e}"));
        assert!(
            out.status.success(),
            "sign.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keyid = std::fs::read_to_string(dir.path().join("keyid")).unwrap();
        Self { dir, keyid }
    }

    fn envelope(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(format!("{name}.dsse.json"))).unwrap()
    }
}

/// A third-party DSSE implementation's attestations are admitted through the source chain and
/// the webhook: its key id is not fipsgate's, its predicates carry extension fields, and its
/// DHI module names no standard. A copy whose payload was altered is refused.
#[tokio::test]
#[ignore = "needs docker-registry and the Python venv of tests/run.sh"]
async fn securesystemslib_envelopes_are_admitted_and_tampering_refused() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use fipsgate::config::ScopedKey;
    let reg = TestRegistry::start(None);
    let h = &reg.host;
    let dns = reg.push_image("interop/dns", "v1").await;
    let nginx = reg.push_image("interop/dhi/nginx", "v1").await;
    let signer = ForeignSigner::sign(&dns, &nginx);
    let fips_env = signer.envelope("fips");
    let env: serde_json::Value = serde_json::from_slice(&fips_env).unwrap();
    // securesystemslib's key id (a hash of its own key format) is not fipsgate's.
    let pem = std::fs::read(signer.dir.path().join("key.pub")).unwrap();
    let own_id = fipsgate::attest::PublicKey::from_pem(&pem).unwrap().id;
    assert_eq!(env["signatures"][0]["keyid"], signer.keyid.as_str());
    assert_ne!(signer.keyid, own_id);
    reg.push_attestation("interop/dns", &dns, &[fips_env]).await;
    reg.push_attestation("interop/dhi/nginx", &nginx, &[signer.envelope("dhi")])
        .await;

    // The same envelope on another image, its payload re-pointed there: signature and key id kept.
    let other = reg.push_image("interop/tampered", "v1").await;
    let mut tampered = env.clone();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&B64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    payload["subject"][0]["digest"]["sha256"] = other.trim_start_matches("sha256:").into();
    tampered["payload"] = B64.encode(serde_json::to_vec(&payload).unwrap()).into();
    reg.push_attestation(
        "interop/tampered",
        &other,
        &[serde_json::to_vec(&tampered).unwrap()],
    )
    .await;

    // The key is scoped as an operator would scope a vendor's key.
    let mut s = setup(&reg, &[]);
    let pem = s._dir.path().join("sslib.pub");
    std::fs::copy(signer.dir.path().join("key.pub"), &pem).unwrap();
    s.config.attestations.keys = vec![KeyConfig::Scoped(ScopedKey {
        key: pem,
        components: vec!["coredns".into(), "dhi-nginx".into()],
        repositories: vec![format!("{h}/interop/**")],
        predicate_types: vec![],
    })];
    let cat = s._dir.path().join("cat.yaml");
    std::fs::write(&cat, format!("components:\n  - {{id: dhi-nginx, name: DHI nginx, category: auxiliary, images: [\"{h}/interop/dhi/**\"], status: full}}\n")).unwrap();
    s.config.catalog.files = vec![cat];
    let catalog = Arc::new(fipsgate::config::load::catalog(&s.config.catalog).unwrap());
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let r = Arc::new(source_chain(&s.config, catalog, metrics, None).unwrap());

    let res = assess(&r, &format!("{h}/interop/dns:v1")).await;
    assert_eq!(
        (res.status(), res.evidence()),
        (Status::Full, Evidence::Attestation),
        "{res:?}"
    );
    assert_eq!(res.component().unwrap().id, "coredns");
    assert_eq!(res.modules()[0].certificate.as_deref(), Some("4735"));
    let res = assess(&r, &format!("{h}/interop/dhi/nginx:v1")).await;
    assert_eq!(
        (res.status(), res.evidence()),
        (Status::Full, Evidence::Attestation),
        "{res:?}"
    );
    // The attestation names no standard (read as unknown); the catalogue's certificate
    // table knows #4985 and supplies it.
    let m = &res.modules()[0];
    assert_eq!(
        (m.standard.as_str(), m.certificate.as_deref()),
        ("FIPS 140-3", Some("4985"))
    );
    let res = assess(&r, &format!("{h}/interop/tampered:v1")).await;
    assert_ne!(res.evidence(), Evidence::Attestation, "{res:?}");
    assert!(
        res.problem()
            .unwrap()
            .contains("signature does not verify with any configured key"),
        "{res:?}"
    );

    // Through the webhook, under minimum evidence `attestation`.
    let app = TestConfig {
        config: s.config.clone(),
        source: Some(r.clone() as Arc<dyn AssessmentSource>),
        ..TestConfig::default()
    }
    .app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let post = |image: String| {
        let review = mk_review("u", "strict", "CREATE", mk_pod("p", &[("c", &image)]), None);
        let app = &app;
        async move { app.post("/validate", bytes(&review)).await.1 }
    };
    let r = post(format!("{h}/interop/dns@{dns}")).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    let r = post(format!("{h}/interop/tampered@{other}")).await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
}

/// A tag is resolved again on its own, shorter lifetime and keeps its verdict while it names
/// the same digest; once it moves, the new digest gets its own verdict. A digest reference is
/// never resolved again before its verdict is due.
#[tokio::test]
#[ignore = "needs docker-registry (Debian package; tests/run.sh installs it)"]
async fn a_tag_is_resolved_again_on_its_own_lifetime() {
    let reg = TestRegistry::start(None);
    let key = SigningKey::new();
    let mut s = setup(&reg, &[&key]);
    s.config.attestations.cache.resolution_ttl = "300ms".into();
    s.config.attestations.cache.result_ttl = "1h".into();
    let d = reg.push_image("team/mv", "v1").await;
    let att = statement(&d, FIPSGATE_PREDICATE, fips_predicate("coredns"));
    reg.push_attestation("team/mv", &d, &[key.envelope(&att)])
        .await;
    let r = chain(&s, None);
    let tag = format!("{}/team/mv:v1", reg.host);
    let pinned = format!("{}/team/mv@{d}", reg.host);
    let counts = || async {
        tokio::time::sleep(Duration::from_millis(200)).await; // the access log is read asynchronously
        (
            reg.requests("GET", "/v2/team/mv/manifests/v1"),
            reg.requests("GET", ".att"),
            reg.requests("GET", &format!("/v2/team/mv/manifests/{d}")),
        )
    };
    assert_eq!(assess(&r, &tag).await.evidence(), Evidence::Attestation);
    assert_eq!(assess(&r, &pinned).await.evidence(), Evidence::Attestation);
    let (tags, atts, pins) = counts().await;
    assert_eq!(assess(&r, &tag).await.evidence(), Evidence::Attestation);
    assert_eq!(counts().await, (tags, atts, pins), "a fresh entry is a hit");

    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = assess(&r, &tag).await;
    assert_eq!(res.evidence(), Evidence::Attestation);
    assert_eq!(res.digest(), Some(d.as_str()));
    assert_eq!(assess(&r, &pinned).await.evidence(), Evidence::Attestation);
    assert_eq!(
        counts().await,
        (tags + 1, atts, pins),
        "the tag alone is resolved again; its verdict and the digest reference are kept"
    );

    let moved = reg.push_image("team/mv", "v1").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = assess(&r, &tag).await;
    assert_ne!(res.evidence(), Evidence::Attestation, "{res:?}");
    assert!(
        res.problem().unwrap().contains(&moved),
        "the moved tag is judged by its new digest: {res:?}"
    );
    assert_eq!(assess(&r, &pinned).await.evidence(), Evidence::Attestation);
}
