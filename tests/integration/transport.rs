//! The real server on 127.0.0.1:0, spoken to over HTTPS (HTTP/2 and HTTP/1.1) with the captured
//! AdmissionReviews of a real kube-apiserver.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use fipsgate::app::ports::{AssessmentSource, BoxFuture, LookupContext};
use fipsgate::catalog::Catalog;
use fipsgate::config::{Config, HistoricalAction};
use fipsgate::domain::assessment::Assessment;
use fipsgate::domain::image::ImageRef;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UID: &str = "beda5770-d7a3-4fc3-8492-1b2de81a3b26";
const FIPS_API: &str = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";

fn quiet_config() -> Config {
    let mut c = Config::default();
    c.certificates.historical = HistoricalAction::Ignore;
    c
}

async fn quiet_server() -> TestServer {
    TestServer::start(Options {
        config: quiet_config(),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn captured_pod_create_is_denied_over_both_http_versions() {
    let s = quiet_server().await;
    for (version, want) in [
        (HttpVersion::H2, reqwest::Version::HTTP_2),
        (HttpVersion::H1, reqwest::Version::HTTP_11),
    ] {
        let c = s.client(version);
        let (status, got_version, r) = post(
            &c,
            &s.url("/validate?timeout=5s"),
            fixture("pod-create-init-and-containers.json"),
        )
        .await;
        assert_eq!((status, got_version), (StatusCode::OK, want));
        assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(r["kind"], "AdmissionReview");
        assert_eq!(r["response"]["uid"], UID);
        assert_eq!(r["response"]["allowed"], false);
        assert_eq!(r["response"]["status"]["code"], 403);
        assert_eq!(r["response"]["status"]["reason"], "Forbidden");
        let msg = r["response"]["status"]["message"].as_str().unwrap();
        assert!(
            msg.contains(
                "init container \"init\" (busybox:1.36) is not a FIPS-compliant component"
            ),
            "{msg}"
        );
        assert!(msg.contains("(1 of 3 containers)"), "{msg}");
        assert_eq!(r["response"]["auditAnnotations"]["decision"], "deny");
    }
}

#[tokio::test]
async fn v1beta1_is_answered_in_v1beta1() {
    let s = quiet_server().await;
    let mut review = fixture_json("pod-create-dry-run.json");
    review["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let (_, _, r) = post(
        &s.client(HttpVersion::H2),
        &s.url("/validate"),
        bytes(&review),
    )
    .await;
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(r["response"]["uid"], review["request"]["uid"]);
    assert_eq!(r["response"]["allowed"], false);
}

#[tokio::test]
async fn namespace_labels_pick_enforce_warn_and_audit() {
    let s = quiet_server().await;
    let c = s.client(HttpVersion::H2);
    s.label("warn-only", &[("fipsgate.io/enforce", "off")]);
    s.label(
        "audit-only",
        &[("fipsgate.io/enforce", "off"), ("fipsgate.io/warn", "off")],
    );
    s.label("strict", &[("fipsgate.io/enforce", "strict")]);
    s.label("bogus", &[("fipsgate.io/enforce", "bogus")]);
    let nginx = [("web", "nginx")];

    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        bytes(&pod_review("u1", "warn-only", &nginx)),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(
        r["response"]["warnings"],
        serde_json::json!([
            "[strict] container \"web\" (nginx): is not a FIPS-compliant component"
        ])
    );

    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        bytes(&pod_review("u2", "audit-only", &nginx)),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("warnings").is_none());
    let a = &r["response"]["auditAnnotations"];
    assert_eq!(
        a["violations"],
        "container \"web\" nginx: is not a FIPS-compliant component"
    );
    assert_eq!(a["policy"], "enforce=off,warn=off,audit=strict");

    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        bytes(&pod_review("u3", "strict", &[("api", FIPS_API)])),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["auditAnnotations"]["decision"], "allow");

    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        bytes(&pod_review("u4", "bogus", &nginx)),
    )
    .await;
    assert_eq!(r["response"]["allowed"], false);
    assert!(
        r["response"]["auditAnnotations"]["error"]
            .as_str()
            .unwrap()
            .contains("fipsgate.io/enforce")
    );
}

#[tokio::test]
async fn request_dry_run_decides_the_same() {
    let s = quiet_server().await;
    let (_, _, r) = post(
        &s.client(HttpVersion::H1),
        &s.url("/validate"),
        fixture("pod-create-dry-run.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], false);
    assert!(
        r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("(nginx)")
    );
}

#[tokio::test]
async fn global_dry_run_never_denies() {
    let mut config = quiet_config();
    config.dry_run = true;
    let s = TestServer::start(Options {
        config,
        ..Options::default()
    })
    .await;
    let (_, _, r) = post(
        &s.client(HttpVersion::H2),
        &s.url("/validate"),
        fixture("pod-create-init-and-containers.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["auditAnnotations"]["decision"], "would-deny");
    let w = r["response"]["warnings"][0].as_str().unwrap();
    assert!(
        w.starts_with("[dry-run] would deny under enforce=baseline: init container \"init\""),
        "{w}"
    );
    let metrics = reqwest::get(s.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"fipsgate_admission_requests_total{operation="CREATE",decision="would_deny",mode="dry_run"} 1"#), "{metrics}");
}

#[tokio::test]
async fn updates_and_ephemeral_containers() {
    let s = quiet_server().await;
    let c = s.client(HttpVersion::H2);
    // `kubectl set image` to a non-FIPS coredns.
    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        fixture("pod-update-image-changed.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], false);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("container \"dns\" (registry.k8s.io/coredns/coredns:v1.11.1)"),
        "{msg}"
    );
    // The same update without an image change is allowed untouched.
    let mut same = fixture_json("pod-update-image-changed.json");
    same["request"]["object"] = same["request"]["oldObject"].clone();
    same["request"]["object"]["metadata"]["labels"]["changed"] = "yes".into();
    let (_, _, r) = post(&c, &s.url("/validate"), bytes(&same)).await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("auditAnnotations").is_none());
    // `kubectl debug` before 1.22: an EphemeralContainers object.
    s.label("team-a", &[("fipsgate.io/enforce", "strict")]);
    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        fixture("pod-ephemeralcontainers-v1.20-shape.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], false);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("ephemeral container \"debugger\" (busybox:1.36)"),
        "{msg}"
    );
    // From 1.22 on: the whole Pod through the subresource.
    let mut v122 = fixture_json("pod-ephemeralcontainers-v1.20-shape.json");
    v122["request"]["kind"]["kind"] = "Pod".into();
    let pod = serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "api"},
        "spec": {"containers": [{"name": "api", "image": FIPS_API}],
                 "ephemeralContainers": [{"name": "debugger", "image": "busybox:1.36"}]}});
    let mut old = pod.clone();
    old["spec"]["ephemeralContainers"] = serde_json::json!([]);
    v122["request"]["object"] = pod;
    v122["request"]["oldObject"] = old;
    let (_, _, r) = post(&c, &s.url("/validate"), bytes(&v122)).await;
    assert_eq!(r["response"]["allowed"], false);
}

#[tokio::test]
async fn other_kinds_and_subresources_are_allowed_untouched() {
    let s = quiet_server().await;
    let c = s.client(HttpVersion::H2);
    let (status, _, r) = post(&c, &s.url("/validate"), fixture("namespace-create.json")).await;
    assert_eq!(
        (status, &r["response"]["allowed"]),
        (StatusCode::OK, &serde_json::json!(true))
    );
    let mut status_update = fixture_json("pod-update-image-changed.json");
    status_update["request"]["subResource"] = "status".into();
    let (_, _, r) = post(&c, &s.url("/validate"), bytes(&status_update)).await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("warnings").is_none());
}

#[tokio::test]
async fn workloads_are_warned_never_denied() {
    let s = quiet_server().await;
    s.label("team-a", &[("fipsgate.io/enforce", "strict")]);
    let c = s.client(HttpVersion::H2);
    for f in [
        "deployment-create.json",
        "replicaset-create-by-controller.json",
    ] {
        let (_, _, r) = post(&c, &s.url("/validate"), fixture(f)).await;
        assert_eq!(r["response"]["allowed"], true, "{f}");
        assert_eq!(
            r["response"]["warnings"],
            serde_json::json!([
                "[enforce=strict] pods would be denied: container \"nginx\" (nginx:1.25): is not a FIPS-compliant component"
            ]),
            "{f}"
        );
        assert!(
            r["response"]["auditAnnotations"]["violations"]
                .as_str()
                .unwrap()
                .contains("nginx:1.25")
        );
    }
    // A DaemonSet of FIPS images: nothing to say.
    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        fixture("daemonset-create-init-and-containers.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("warnings").is_none(), "{r}");
}

fn listed(name: &str, owner: Option<&str>, image: &str) -> fipsgate::app::ports::Listed {
    fipsgate::app::ports::Listed {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: "team-a".into(),
        name: name.into(),
        owner: owner.map(|o| ("ReplicaSet".into(), o.into())),
        spec: serde_json::from_value(
            serde_json::json!({"containers": [{"name": "c", "image": image}]}),
        )
        .unwrap(),
    }
}

#[tokio::test]
async fn tightening_a_namespace_warns_about_existing_pods() {
    let mut pods = vec![
        listed("fips", None, FIPS_API),
        listed("lonely", None, "busybox:1.36"),
    ];
    for i in 0..14 {
        pods.push(listed(&format!("web-{i}"), Some("rs-web"), "nginx"));
    }
    pods.push(listed(
        "api-0",
        Some("rs-api"),
        "registry.k8s.io/coredns/coredns:v1.11.1",
    ));
    let s = TestServer::start(Options {
        config: quiet_config(),
        pods: Some(Arc::new(fipsgate::app::ports::StaticPods(pods))),
        ..Options::default()
    })
    .await;
    let c = s.client(HttpVersion::H2);
    let (_, _, r) = post(
        &c,
        &s.url("/validate"),
        fixture("namespace-update-enforce-label.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    let w: Vec<String> = serde_json::from_value(r["response"]["warnings"].clone()).unwrap();
    // One pod per owner first: every owner is named before the second nginx replica.
    assert_eq!(
        w[0],
        "existing pod \"lonely\" would be denied under enforce=strict: c (busybox:1.36)"
    );
    assert_eq!(
        w[1],
        "existing pod \"web-0\" would be denied under enforce=strict: c (nginx)"
    );
    assert!(w[2].contains("\"api-0\""), "{w:?}");
    assert_eq!(w.len(), 11, "{w:?}");
    assert_eq!(w[10], "… and 6 more pods would be denied");
    assert!(!w.iter().any(|l| l.contains("\"fips\"")), "{w:?}");
    // Loosening (or re-applying the same level) says nothing.
    let mut same = fixture_json("namespace-update-enforce-label.json");
    same["request"]["oldObject"] = same["request"]["object"].clone();
    let (_, _, r) = post(&c, &s.url("/validate"), bytes(&same)).await;
    assert!(r["response"].get("warnings").is_none(), "{r}");
    // An invalid value is reported at once.
    let mut bogus = fixture_json("namespace-update-enforce-label.json");
    bogus["request"]["object"]["metadata"]["labels"]["fipsgate.io/enforce"] = "bogus".into();
    let (_, _, r) = post(&c, &s.url("/validate"), bytes(&bogus)).await;
    assert!(
        r["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("invalid value \"bogus\""),
        "{r}"
    );
}

#[tokio::test]
async fn bad_inputs_get_precise_answers() {
    let s = TestServer::start(Options {
        config: quiet_config(),
        max_body_bytes: 64 * 1024,
        ..Options::default()
    })
    .await;
    let c = s.client(HttpVersion::H2);
    let url = s.url("/validate");
    let send = |ct: &'static str, body: Vec<u8>| {
        let req = c.post(&url).header("content-type", ct).body(body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("application/json", b"not json".to_vec(), StatusCode::BAD_REQUEST, "not valid JSON"),
        ("text/plain", fixture("pod-create-dry-run.json"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/json"),
        ("application/json", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), StatusCode::BAD_REQUEST, "no request"),
        ("application/json", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.to_vec(), StatusCode::BAD_REQUEST, "no uid"),
        ("application/json", vec![b' '; 100 * 1024], StatusCode::PAYLOAD_TOO_LARGE, "length limit"),
        ("application/json", b"{\"a\":".repeat(10_000), StatusCode::BAD_REQUEST, "JSON"),
    ];
    for (ct, body, want_status, want_text) in cases {
        let (status, json) = send(ct, body).await;
        assert_eq!(status, want_status, "{json}");
        let err = json["error"].as_str().unwrap();
        assert!(err.contains(want_text), "{want_text}: {err}");
    }
    // A pod that cannot be read, with a uid: an AdmissionReview that says why.
    let mut broken = fixture_json("pod-create-dry-run.json");
    broken["request"]["object"]["spec"]["containers"] = "nginx".into();
    let (status, json) = send("application/json", bytes(&broken)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["response"]["uid"], broken["request"]["uid"]);
    assert_eq!(json["response"]["allowed"], false);
    assert_eq!(json["response"]["status"]["code"], 400);
    assert!(
        json["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid pod")
    );
    // An image reference nobody can parse is a violation, never a crash.
    let review = pod_review("bad-ref", "ns", &[("x", "UPPER/Case::bad")]);
    let (_, json) = send("application/json", bytes(&review)).await;
    assert_eq!(json["response"]["allowed"], false);
    assert!(
        json["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid image reference")
    );
    // Bad timeout parameter.
    let r = c
        .post(format!("{url}?timeout=forever"))
        .header("content-type", "application/json")
        .body(fixture("pod-create-dry-run.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let metrics = reqwest::get(s.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="bad_request"} 7"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="invalid_object"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let s = TestServer::start(Options {
        header_read_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    // TLS handshake done, then headers that never finish.
    let connector = tls_connector(&s.certs.ca_pem(), &[b"http/1.1"]);
    let tcp = tokio::net::TcpStream::connect(s.running.addr)
        .await
        .unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A bare TCP connection that never starts TLS is closed too.
    let mut raw = tokio::net::TcpStream::connect(s.running.addr)
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "silent TCP connection still open after 5 s");
}

/// An attestation source that takes its time, to exercise deadlines and draining.
struct Slow {
    delay: Duration,
    calls: AtomicUsize,
    inner: Catalog,
}

impl AssessmentSource for Slow {
    fn assess<'a>(
        &'a self,
        image: &'a ImageRef,
        _: &'a LookupContext,
    ) -> BoxFuture<'a, Assessment> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.inner.lookup(image)
        })
    }
}

fn slow(delay: Duration) -> Arc<Slow> {
    Arc::new(Slow {
        delay,
        calls: AtomicUsize::new(0),
        inner: Catalog::embedded(),
    })
}

#[tokio::test]
async fn deadline_applies_the_failure_behaviour() {
    let s = TestServer::start(Options {
        config: quiet_config(),
        source: Some(slow(Duration::from_secs(5))),
        ..Options::default()
    })
    .await;
    s.label("enforced", &[("fipsgate.io/enforce", "strict")]);
    s.label("warned", &[("fipsgate.io/enforce", "off")]);
    let c = s.client(HttpVersion::H2);
    let started = Instant::now();
    let (_, _, r) = post(
        &c,
        &s.url("/validate?timeout=1s"),
        bytes(&pod_review("t1", "enforced", &[("api", FIPS_API)])),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1000),
        "answered after {took:?}, past the 1 s timeout"
    );
    assert!(
        took >= Duration::from_millis(700),
        "answered after {took:?}, before the budget"
    );
    assert_eq!(r["response"]["allowed"], false);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("attestation lookup timed out"), "{msg}");
    assert!(
        r["response"]["auditAnnotations"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );

    let (_, _, r) = post(
        &c,
        &s.url("/validate?timeout=1s"),
        bytes(&pod_review("t2", "warned", &[("api", FIPS_API)])),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(
        r["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("attestation lookup timed out")
    );
    assert!(
        r["response"]["auditAnnotations"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
}

#[tokio::test]
async fn certificate_rotation_while_requests_flow() {
    let s = quiet_server().await;
    let ca = s.certs.ca_pem();
    let before = served_cert(&s).await;
    // A fresh connection (and handshake) per request, so every request sees the current pair.
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = s.url("/validate");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(fixture("pod-create-dry-run.json"))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::OK => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.certs.rotate();
    let deadline = Instant::now() + Duration::from_secs(5);
    while served_cert(&s).await == before {
        assert!(
            Instant::now() < deadline,
            "new certificate not served within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A broken pair keeps the good one in place.
    std::fs::write(
        s.certs.path("tls.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rotated = served_cert(&s).await;
    assert_ne!(rotated, before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = load.await.unwrap();
    assert_eq!(
        failed, 0,
        "{failed} requests failed during rotation ({ok} succeeded)"
    );
    assert!(ok > 10, "only {ok} requests went through");
    let metrics = reqwest::get(s.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="tls_reload"} 1"#),
        "{metrics}"
    );
}

/// The leaf certificate the server presents now (DER).
async fn served_cert(s: &TestServer) -> Vec<u8> {
    let connector = tls_connector(&s.certs.ca_pem(), &[]);
    let tcp = tokio::net::TcpStream::connect(s.running.addr)
        .await
        .unwrap();
    let tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn readiness_and_drain_on_shutdown() {
    let source = slow(Duration::from_millis(800));
    let s = TestServer::start(Options {
        config: quiet_config(),
        source: Some(source.clone()),
        shutdown_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let ready = reqwest::get(s.admin_url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        reqwest::get(s.admin_url("/healthz"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let c = s.client(HttpVersion::H2);
    let mut inflight = Vec::new();
    for i in 0..8 {
        let c = c.clone();
        let url = s.url("/validate");
        let body = bytes(&pod_review(&format!("d{i}"), "ns", &[("api", FIPS_API)]));
        inflight.push(tokio::spawn(async move { post(&c, &url, body).await }));
    }
    while source.calls.load(Ordering::SeqCst) < 8 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let admin = s.admin_url("/readyz");
    s.running.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::get(&admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["shuttingDown"], true);
    for h in inflight {
        let (status, _, r) = h.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(r["response"]["allowed"], true);
    }
    let started = Instant::now();
    s.running.wait().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_leaves_room_for_a_well_behaved_request() {
    let s = TestServer::start(Options {
        config: quiet_config(),
        source: Some(slow(Duration::from_millis(300))),
        max_concurrent_requests: 8,
        max_connections: 64,
        body_read_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let addr = s.running.addr;
    let ca = s.certs.ca_pem();
    let started = Instant::now();
    // 1. Slow bodies: headers promise 4 KiB, one byte comes. They must not hold decision slots.
    let connector = tls_connector(&ca, &[b"http/1.1"]);
    let mut slow_bodies = Vec::new();
    for _ in 0..20 {
        let connector = connector.clone();
        slow_bodies.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut tls = connector.connect("localhost".try_into().unwrap(), tcp).await.unwrap();
            tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n{").await.unwrap();
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
            String::from_utf8_lossy(&buf).into_owned()
        }));
    }
    // 2. A burst of 200 real reviews over 10 HTTP/2 connections, 8 decided at a time.
    let clients: Vec<_> = (0..10).map(|_| client(&ca, HttpVersion::H2)).collect();
    let mut burst = Vec::new();
    for i in 0..200 {
        let c = clients[i % clients.len()].clone();
        let url = s.url("/validate?timeout=5s");
        let body = bytes(&pod_review(&format!("f{i}"), "ns", &[("api", FIPS_API)]));
        burst.push(tokio::spawn(async move {
            c.post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    // 3. The well-behaved request, retried as the API server's client would on 503.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = s.client(HttpVersion::H2);
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let (status, _, r) = post(
            &c,
            &s.url("/validate?timeout=5s"),
            fixture("pod-create-dry-run.json"),
        )
        .await;
        if status == StatusCode::OK {
            break r;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "no answer within the 5 s deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer["response"]["allowed"], false);
    let (mut ok, mut refused) = (0, 0);
    for b in burst {
        match b.await.unwrap() {
            Ok(StatusCode::OK) => ok += 1,
            Ok(StatusCode::SERVICE_UNAVAILABLE) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(ok >= 8 && ok + refused == 200, "ok {ok}, refused {refused}");
    for sb in slow_bodies {
        let text = sb.await.unwrap();
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let metrics = reqwest::get(s.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="overload"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    let s = TestServer::start(Options {
        max_connections: 2,
        ..Options::default()
    })
    .await;
    let ca = s.certs.ca_pem();
    let (a, b) = (client(&ca, HttpVersion::H2), client(&ca, HttpVersion::H2));
    let url = s.url("/validate");
    // Two clients hold the two connections (HTTP/2 keeps them open).
    assert_eq!(
        post(&a, &url, fixture("pod-create-dry-run.json")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&b, &url, fixture("pod-create-dry-run.json")).await.0,
        StatusCode::OK
    );
    let third = client(&ca, HttpVersion::H2);
    let started = Instant::now();
    let r = third
        .post(&url)
        .header("content-type", "application/json")
        .body(fixture("pod-create-dry-run.json"))
        .send()
        .await;
    assert!(r.is_err(), "a third connection was served");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop((a, b));
    let metrics = reqwest::get(s.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="connection_limit"}"#),
        "{metrics}"
    );
}
