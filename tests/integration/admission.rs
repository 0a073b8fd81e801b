//! The webhook's behaviour, in process: the router `server::start` serves, driven through
//! `oneshot` ([`TestConfig::app`], no socket, no TLS) with the captured AdmissionReviews of a
//! real kube-apiserver. Namespace policies, dry runs, updates, other kinds, workloads, relabels,
//! deadlines and bad requests; what only a socket shows is `transport`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use axum::http::StatusCode;

#[tokio::test]
async fn v1beta1_is_answered_in_v1beta1() {
    let app = TestConfig::default().app();
    let mut review = fixture_json("pod-create-dry-run.json");
    review["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(r["response"]["uid"], review["request"]["uid"]);
    assert_eq!(r["response"]["allowed"], false);
}

#[tokio::test]
async fn namespace_labels_pick_enforce_warn_and_audit() {
    let app = TestConfig::default().app();
    app.label("warn-only", &[("fipsgate.io/enforce", "off")]);
    app.label(
        "audit-only",
        &[("fipsgate.io/enforce", "off"), ("fipsgate.io/warn", "off")],
    );
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    app.label("bogus", &[("fipsgate.io/enforce", "bogus")]);
    let nginx = [("web", "nginx")];

    let (_, r) = app
        .post("/validate", bytes(&pod_review("u1", "warn-only", &nginx)))
        .await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(
        r["response"]["warnings"],
        serde_json::json!([
            "fipsgate: [strict] container \"web\" (nginx): is not a FIPS-compliant component"
        ])
    );

    let (_, r) = app
        .post("/validate", bytes(&pod_review("u2", "audit-only", &nginx)))
        .await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("warnings").is_none());
    let a = &r["response"]["auditAnnotations"];
    assert_eq!(
        a["violations"],
        "container \"web\" nginx: is not a FIPS-compliant component"
    );
    assert_eq!(a["policy"], "enforce=off,warn=off,audit=strict");

    let (_, r) = app
        .post(
            "/validate",
            bytes(&pod_review("u3", "strict", &[("api", FIPS_API)])),
        )
        .await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["auditAnnotations"]["decision"], "allow");

    let (_, r) = app
        .post("/validate", bytes(&pod_review("u4", "bogus", &nginx)))
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
    let app = TestConfig::default().app();
    let (_, r) = app
        .post("/validate", fixture("pod-create-dry-run.json"))
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
    let mut t = TestConfig::default();
    t.config.dry_run = true;
    let app = t.app();
    let (_, r) = app
        .post("/validate", fixture("pod-create-init-and-containers.json"))
        .await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["auditAnnotations"]["decision"], "would-deny");
    let w = r["response"]["warnings"][0].as_str().unwrap();
    assert!(
        w.starts_with(
            "fipsgate: [dry-run] would deny under enforce=baseline: init container \"init\""
        ),
        "{w}"
    );
    let metrics = app.metrics_text();
    assert!(metrics.contains(r#"fipsgate_admission_requests_total{operation="CREATE",kind="Pod",decision="would_deny",mode="dry_run"} 1"#), "{metrics}");
}

#[tokio::test]
async fn updates_and_ephemeral_containers() {
    let app = TestConfig::default().app();
    // `kubectl set image` to a non-FIPS coredns.
    let (_, r) = app
        .post("/validate", fixture("pod-update-image-changed.json"))
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
    let (_, r) = app.post("/validate", bytes(&same)).await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("auditAnnotations").is_none());
    // `kubectl debug` before 1.22: an EphemeralContainers object.
    app.label("team-a", &[("fipsgate.io/enforce", "strict")]);
    let (_, r) = app
        .post(
            "/validate",
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
    let mut pod = mk_pod("api", &[("api", FIPS_API)]);
    pod["spec"]["ephemeralContainers"] =
        serde_json::json!([{"name": "debugger", "image": "busybox:1.36"}]);
    let mut old = pod.clone();
    old["spec"]["ephemeralContainers"] = serde_json::json!([]);
    v122["request"]["object"] = pod;
    v122["request"]["oldObject"] = old;
    let (_, r) = app.post("/validate", bytes(&v122)).await;
    assert_eq!(r["response"]["allowed"], false);
}

#[tokio::test]
async fn other_kinds_and_subresources_are_allowed_untouched() {
    let app = TestConfig::default().app();
    let (status, r) = app
        .post("/validate", fixture("namespace-create.json"))
        .await;
    assert_eq!(
        (status, &r["response"]["allowed"]),
        (StatusCode::OK, &serde_json::json!(true))
    );
    let mut status_update = fixture_json("pod-update-image-changed.json");
    status_update["request"]["subResource"] = "status".into();
    let (_, r) = app.post("/validate", bytes(&status_update)).await;
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("warnings").is_none());
}

#[tokio::test]
async fn workloads_are_warned_never_denied() {
    let app = TestConfig::default().app();
    app.label("team-a", &[("fipsgate.io/enforce", "strict")]);
    for f in [
        "deployment-create.json",
        "replicaset-create-by-controller.json",
    ] {
        let (_, r) = app.post("/validate", fixture(f)).await;
        assert_eq!(r["response"]["allowed"], true, "{f}");
        assert_eq!(
            r["response"]["warnings"],
            serde_json::json!([
                "fipsgate: [enforce=strict] pods would be denied: container \"nginx\" (nginx:1.25): is not a FIPS-compliant component"
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
    let (_, r) = app
        .post(
            "/validate",
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
        image_ids: Default::default(),
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
    let app = TestConfig {
        pods: Some(Arc::new(fipsgate::app::ports::StaticPods(pods))),
        ..TestConfig::default()
    }
    .app();
    let (_, r) = app
        .post("/validate", fixture("namespace-update-enforce-label.json"))
        .await;
    assert_eq!(r["response"]["allowed"], true);
    let w: Vec<String> = serde_json::from_value(r["response"]["warnings"].clone()).unwrap();
    // One pod per owner first: every owner is named before the second nginx replica.
    assert_eq!(
        w[0],
        "fipsgate: existing pod \"lonely\" would be denied under enforce=strict: c (busybox:1.36)"
    );
    assert_eq!(
        w[1],
        "fipsgate: existing pod \"web-0\" would be denied under enforce=strict: c (nginx)"
    );
    assert!(w[2].contains("\"api-0\""), "{w:?}");
    assert_eq!(w.len(), 11, "{w:?}");
    assert_eq!(w[10], "fipsgate: … and 6 more pods would be denied");
    assert!(!w.iter().any(|l| l.contains("\"fips\"")), "{w:?}");
    // Loosening (or re-applying the same level) says nothing.
    let mut same = fixture_json("namespace-update-enforce-label.json");
    same["request"]["oldObject"] = same["request"]["object"].clone();
    let (_, r) = app.post("/validate", bytes(&same)).await;
    assert!(r["response"].get("warnings").is_none(), "{r}");
    // An invalid value is reported at once.
    let mut bogus = fixture_json("namespace-update-enforce-label.json");
    bogus["request"]["object"]["metadata"]["labels"]["fipsgate.io/enforce"] = "bogus".into();
    let (_, r) = app.post("/validate", bytes(&bogus)).await;
    assert!(
        r["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("invalid value \"bogus\""),
        "{r}"
    );
}

#[tokio::test]
async fn without_client_authentication_a_relabel_names_no_pod() {
    let pods = vec![
        listed("secret-name", None, "registry.example/private/tool:1"),
        listed("other", None, "nginx"),
    ];
    let app = TestConfig {
        pods: Some(Arc::new(fipsgate::app::ports::StaticPods(pods))),
        disclosure: fipsgate::app::relabel::Disclosure::Counts,
        ..TestConfig::default()
    }
    .app();
    let (_, r) = app
        .post("/validate", fixture("namespace-update-enforce-label.json"))
        .await;
    assert_eq!(r["response"]["allowed"], true);
    let w: Vec<String> = serde_json::from_value(r["response"]["warnings"].clone()).unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(
            "fipsgate: 2 of 2 existing pods checked would be denied under enforce=strict"
        ),
        "{w:?}"
    );
    let text = r.to_string();
    for secret in ["secret-name", "registry.example", "nginx", "\"other\""] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn bad_inputs_get_precise_answers() {
    let app = TestConfig {
        max_body_bytes: 64 * 1024,
        ..TestConfig::default()
    }
    .app();
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("application/json", b"not json".to_vec(), StatusCode::BAD_REQUEST, "not valid JSON"),
        ("text/plain", fixture("pod-create-dry-run.json"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/json"),
        ("application/json", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), StatusCode::BAD_REQUEST, "no request"),
        ("application/json", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.to_vec(), StatusCode::BAD_REQUEST, "no uid"),
        ("application/json", vec![b' '; 100 * 1024], StatusCode::PAYLOAD_TOO_LARGE, "length limit"),
        ("application/json", b"{\"a\":".repeat(10_000), StatusCode::BAD_REQUEST, "JSON"),
    ];
    for (ct, body, want_status, want_text) in cases {
        let (status, json) = app.send("/validate", ct, body).await;
        assert_eq!(status, want_status, "{json}");
        let err = json["error"].as_str().unwrap();
        assert!(err.contains(want_text), "{want_text}: {err}");
    }
    // A pod that cannot be read, with a uid: an AdmissionReview that says why.
    let mut broken = fixture_json("pod-create-dry-run.json");
    broken["request"]["object"]["spec"]["containers"] = "nginx".into();
    let (status, json) = app.post("/validate", bytes(&broken)).await;
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
    let (_, json) = app.post("/validate", bytes(&review)).await;
    assert_eq!(json["response"]["allowed"], false);
    assert!(
        json["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid image reference")
    );
    // Bad timeout parameter.
    let (status, _) = app
        .post(
            "/validate?timeout=forever",
            fixture("pod-create-dry-run.json"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let metrics = app.metrics_text();
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
async fn deadline_applies_the_failure_behaviour() {
    let app = TestConfig {
        source: Some(slow(Duration::from_secs(5))),
        ..TestConfig::default()
    }
    .app();
    app.label("enforced", &[("fipsgate.io/enforce", "strict")]);
    app.label("warned", &[("fipsgate.io/enforce", "off")]);
    let started = Instant::now();
    let (_, r) = app
        .post(
            "/validate?timeout=1s",
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

    let (_, r) = app
        .post(
            "/validate?timeout=1s",
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

/// A namespace whose every level is `off` uses no look-up: a pod there cannot make fipsgate
/// contact a registry of its choosing.
#[tokio::test]
async fn no_look_up_when_every_level_is_off() {
    let source = slow(Duration::ZERO);
    let app = TestConfig {
        source: Some(source.clone()),
        ..TestConfig::default()
    }
    .app();
    app.label(
        "off",
        &[
            ("fipsgate.io/enforce", "off"),
            ("fipsgate.io/warn", "off"),
            ("fipsgate.io/audit", "off"),
        ],
    );
    app.label("warned", &[("fipsgate.io/enforce", "off")]);
    let pod = |ns: &str| {
        let image = "attacker.example:31337/x:1";
        bytes(&mk_review(
            ns,
            ns,
            "CREATE",
            mk_pod("p", &[("c", image)]),
            None,
        ))
    };
    let (_, r) = app.post("/validate", pod("off")).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert_eq!(source.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (_, r) = app.post("/validate", pod("warned")).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert_eq!(source.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Every real path of the vendor's FIPS images gets the verdict the document implies under
/// `strict`; their non-FIPS twins and look-alikes are denied.
#[tokio::test]
async fn real_vendor_paths_get_the_documents_verdict() {
    let app = TestConfig::default().app();
    app.label("ns", &[("fipsgate.io/enforce", "strict")]);
    for (i, (image, id, admitted)) in real_paths().into_iter().enumerate() {
        let review = pod_review(&format!("u{i}"), "ns", &[("c", image.as_str())]);
        let (_, r) = app.post("/validate", bytes(&review)).await;
        assert_eq!(r["response"]["allowed"], admitted, "{image} ({id:?}): {r}");
    }
}
