//! Regressions of attacks on the gate by someone with pod-create rights, each tried against the
//! server's router with the strictest policy: every image a pod can run is judged, and a
//! failure never opens the gate.

use crate::common::*;

const FIPS_DNS: &str = "gcr.io/spectro-images-fips/coredns:v1.12.1";

/// A pod whose containers are all FIPS, and which mounts `image` as an image volume.
fn pod_with_image_volume(image: &str) -> serde_json::Value {
    let mut pod = mk_pod("tools", &[("dns", FIPS_DNS)]);
    pod["spec"]["volumes"] = serde_json::json!([
        {"name": "token", "secret": {"secretName": "t"}},
        {"name": "tools", "image": {"reference": image, "pullPolicy": "IfNotPresent"}},
    ]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        serde_json::json!([{"name": "tools", "mountPath": "/opt/tools"}]);
    pod
}

/// An image volume pulls an image onto the node whose binaries a FIPS container can run: it is
/// judged like a container.
#[tokio::test]
async fn image_volumes_are_judged_like_containers() {
    let app = TestConfig::default().app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let review = mk_review(
        "u1",
        "strict",
        "CREATE",
        pod_with_image_volume("busybox:1.36"),
        None,
    );
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("image volume \"tools\" (busybox:1.36) is not a FIPS-compliant component"),
        "{msg}"
    );
    // A FIPS image volume is admitted; so is a pod whose other volumes are not images.
    let review = mk_review(
        "u2",
        "strict",
        "CREATE",
        pod_with_image_volume(FIPS_DNS),
        None,
    );
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    // An image volume without a reference cannot be judged: denied, never skipped.
    let mut pod = pod_with_image_volume(FIPS_DNS);
    pod["spec"]["volumes"][1]["image"] = serde_json::json!({});
    let (_, r) = app
        .post(
            "/validate",
            bytes(&mk_review("u3", "strict", "CREATE", pod, None)),
        )
        .await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    assert!(
        r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("image volume \"tools\" () has an invalid image reference"),
        "{r}"
    );
}

/// Changing only an image volume's reference is an update that is judged.
#[tokio::test]
async fn changing_an_image_volume_is_judged() {
    let app = TestConfig::default().app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let old = pod_with_image_volume(FIPS_DNS);
    let new = pod_with_image_volume("busybox:1.36");
    let review = mk_review("u1", "strict", "UPDATE", new, Some(old.clone()));
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    let review = mk_review("u2", "strict", "UPDATE", old.clone(), Some(old));
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], true, "unchanged: {r}");
}

/// `check` judges image volumes too, in workloads' pod templates as in pods.
#[test]
fn check_judges_image_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deploy.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  template:\n    spec:\n      containers: [{{name: dns, image: \"{FIPS_DNS}\"}}]\n      volumes:\n      - {{name: tools, image: {{reference: \"busybox:1.36\"}}}}\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(["check", "-f", file.to_str().unwrap(), "--enforce", "strict"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("tools (volume)  busybox:1.36"), "{text}");
    assert!(
        text.contains("image volume \"tools\" (busybox:1.36) is not a FIPS-compliant component"),
        "{text}"
    );
}

/// `busybox:1.*` exempts busybox 1.x by tag; `busybox:1.36@sha256:<anything>` runs whatever the
/// digest names, so the tag exemption does not reach it. A digest exemption matches its digest.
#[tokio::test]
async fn tag_scoped_exemptions_do_not_exempt_a_digest() {
    let mut t = TestConfig::default();
    let pinned = format!("registry.io/tools@sha256:{}", "c".repeat(64));
    t.config.exemptions.images = vec!["busybox:1.*".into(), pinned.as_str().into()];
    let app = t.app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let any_digest = format!("busybox:1.36@sha256:{}", "e".repeat(64));
    let cases = [
        ("busybox:1.36", true),
        (any_digest.as_str(), false),
        (pinned.as_str(), true),
    ];
    for (i, (image, allowed)) in cases.into_iter().enumerate() {
        let pod = mk_pod("p", &[("c", image)]);
        let review = mk_review(&format!("u{i}"), "strict", "CREATE", pod, None);
        let (_, r) = app.post("/validate", bytes(&review)).await;
        assert_eq!(r["response"]["allowed"], allowed, "{image}: {r}");
    }
}

/// References pinned with any registered digest algorithm are read, not refused as invalid.
#[tokio::test]
async fn every_registered_digest_algorithm_is_read() {
    let app = TestConfig::default().app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    for (alg, n) in [
        ("sha256", 64),
        ("sha384", 96),
        ("sha512", 128),
        ("blake3", 64),
    ] {
        let image = format!("gcr.io/spectro-images-fips/coredns@{alg}:{}", "d".repeat(n));
        let pod = mk_pod("p", &[("dns", &image)]);
        let review = mk_review(alg, "strict", "CREATE", pod, None);
        let (_, r) = app.post("/validate", bytes(&review)).await;
        assert_eq!(r["response"]["allowed"], true, "{image}: {r}");
    }
}

/// A namespace the watch has not delivered yet, whose live look-up fails or hangs: with the
/// shipped defaults (`enforce: off`) that used to admit anything. It is evaluated as strict.
#[tokio::test]
async fn an_unreadable_namespace_is_evaluated_as_strict() {
    use fipsgate::domain::policy::{Level, NamespaceFailure};
    let fetch: fipsgate::app::namespaces::Fetch = std::sync::Arc::new(|name: String| {
        Box::pin(async move {
            if name == "hangs" {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
            Err(format!("namespace {name}: apiserver unreachable"))
        })
    });
    let mut t = TestConfig {
        fetch: Some(fetch),
        ..TestConfig::default()
    };
    t.config.defaults.enforce = Level::Off;
    let app = t.app();
    let nginx = |uid: &str, ns: &str| {
        bytes(&mk_review(
            uid,
            ns,
            "CREATE",
            mk_pod("p", &[("web", "nginx")]),
            None,
        ))
    };
    let (_, r) = app.post("/validate?timeout=2s", nginx("u1", "new")).await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    assert!(
        r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("violates the strict FIPS policy of namespace \"new\""),
        "{r}"
    );
    assert_eq!(
        r["response"]["auditAnnotations"]["error"],
        "namespace new: apiserver unreachable"
    );
    let (_, r) = app.post("/validate?timeout=1s", nginx("u2", "hangs")).await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    assert_eq!(
        r["response"]["auditAnnotations"]["error"],
        "namespace lookup timed out"
    );
    assert!(
        app.metrics_text()
            .contains("fipsgate_errors_total{kind=\"namespace_lookup\"} 2"),
        "{}",
        app.metrics_text()
    );
    // A namespace that is known is read as labelled, whatever the look-up would say.
    app.label("known", &[("fipsgate.io/enforce", "off")]);
    let (_, r) = app.post("/validate", nginx("u3", "known")).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    // Choosing the defaults explicitly gives the old behaviour, with a warning.
    t.config.on_namespace_failure = NamespaceFailure::Defaults;
    let app = t.app();
    let (_, r) = app.post("/validate?timeout=2s", nginx("u4", "new")).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert!(
        r["response"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "fipsgate: namespace policy unavailable, defaults applied: namespace new: apiserver unreachable"),
        "{r}"
    );
}

/// A catalogue with one component per certificate status.
fn certificate_catalog() -> fipsgate::catalog::Catalog {
    let module = |cert: &str, status: &str| {
        format!(
            "{{name: M, standard: FIPS 140-3, certificate: \"{cert}\", certificateStatus: {status}}}"
        )
    };
    let text = format!(
        "registries: [r.io/fips]\ncomponents:\n\
         - {{id: revoked, name: R, category: auxiliary, status: full, images: [revoked], modules: [{}]}}\n\
         - {{id: pending, name: P, category: auxiliary, status: full, images: [pending], modules: [{{name: AWS-LC, standard: FIPS 140-3, certificateStatus: in-process}}]}}\n\
         - {{id: active, name: A, category: auxiliary, status: full, images: [active], modules: [{}]}}\n",
        module("4000", "revoked"),
        module("4001", "active"),
    );
    let file = fipsgate::config::yaml::from_str(&text, "certs.yaml").unwrap();
    fipsgate::catalog::Catalog::build(vec![("certs.yaml".into(), file)]).unwrap()
}

/// A revoked certificate passed `strict` with a warning that called it historical; a module
/// still in process was called historical too. Revoked is a violation at every level but
/// `off`; in process has its own name and setting.
#[tokio::test]
async fn revoked_certificates_are_violations_and_in_process_has_its_own_setting() {
    use fipsgate::config::CertificateAction;
    let mut t = TestConfig {
        source: Some(std::sync::Arc::new(certificate_catalog())),
        ..TestConfig::default()
    };
    t.config.certificates.historical = CertificateAction::Warn;
    let app = t.app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    app.label("baseline", &[("fipsgate.io/enforce", "baseline")]);
    app.label(
        "off",
        &[
            ("fipsgate.io/enforce", "off"),
            ("fipsgate.io/warn", "off"),
            ("fipsgate.io/audit", "off"),
        ],
    );
    let review = |ns: &str, image: &str| {
        bytes(&mk_review(
            ns,
            ns,
            "CREATE",
            mk_pod("p", &[("c", image)]),
            None,
        ))
    };
    for ns in ["strict", "baseline"] {
        let (_, r) = app
            .post("/validate", review(ns, "r.io/fips/revoked:1"))
            .await;
        assert_eq!(r["response"]["allowed"], false, "{ns}: {r}");
        assert!(
            r["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("relies on certificate #4000 (fips 140-3) which is revoked"),
            "{r}"
        );
    }
    let (_, r) = app
        .post("/validate", review("off", "r.io/fips/revoked:1"))
        .await;
    assert_eq!(r["response"]["allowed"], true, "off: {r}");

    let (_, r) = app
        .post("/validate", review("strict", "r.io/fips/pending:1"))
        .await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert_eq!(
        r["response"]["warnings"],
        serde_json::json!([
            "fipsgate: AWS-LC (FIPS 140-3, no certificate) is in process: not a validated module yet: pending"
        ])
    );
    t.config.certificates.in_process = CertificateAction::Deny;
    let app = t.app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let (_, r) = app
        .post("/validate", review("strict", "r.io/fips/pending:1"))
        .await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    assert!(
        r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("which is in process (not validated)"),
        "{r}"
    );
    let (_, r) = app
        .post("/validate", review("strict", "r.io/fips/active:1"))
        .await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert!(r["response"].get("warnings").is_none(), "{r}");
}

/// On UPDATE only what the update brings can deny: `kubectl debug` with a FIPS image on a pod
/// admitted earlier with a non-FIPS container is allowed (the old container is warned about);
/// a non-FIPS debug image, or a changed image, is denied and named alone.
#[tokio::test]
async fn updates_are_judged_by_what_they_change() {
    let app = TestConfig::default().app();
    app.label("strict", &[("fipsgate.io/enforce", "strict")]);
    let old = mk_pod("web", &[("web", "nginx:1.27")]);
    let with_debug = |image: &str| {
        let mut p = old.clone();
        p["spec"]["ephemeralContainers"] = serde_json::json!([{"name": "debug", "image": image}]);
        p
    };
    let update = |uid: &str, new: serde_json::Value| {
        bytes(&mk_review(uid, "strict", "UPDATE", new, Some(old.clone())))
    };
    let (_, r) = app
        .post("/validate", update("u1", with_debug(FIPS_DNS)))
        .await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert_eq!(
        r["response"]["warnings"],
        serde_json::json!([
            "fipsgate: [enforce=strict] unchanged by this update, not denied: container \"web\" (nginx:1.27): is not a FIPS-compliant component"
        ])
    );
    let (_, r) = app
        .post("/validate", update("u2", with_debug("busybox:1.36")))
        .await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("(1 of 2 containers): ephemeral container \"debug\" (busybox:1.36)"),
        "{msg}"
    );
    assert!(!msg.contains("nginx"), "{msg}");
    let (_, r) = app
        .post(
            "/validate",
            update("u3", mk_pod("web", &[("web", "nginx:1.28")])),
        )
        .await;
    assert_eq!(
        r["response"]["allowed"], false,
        "a changed image is judged: {r}"
    );
    // A CREATE has nothing before it: every container can deny.
    let create = bytes(&mk_review(
        "u4",
        "strict",
        "CREATE",
        with_debug(FIPS_DNS),
        None,
    ));
    let (_, r) = app.post("/validate", create).await;
    assert_eq!(r["response"]["allowed"], false, "{r}");
}

/// A namespace's labels as its review carries them.
fn namespace(name: &str, labels: &[(&str, &str)]) -> serde_json::Value {
    let labels: serde_json::Map<_, _> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// Lowering a namespace's levels used to be silent. It is warned about and recorded, with the
/// user; creating a namespace below the defaults counts as lowering them.
#[tokio::test]
async fn loosening_a_namespace_is_warned_about_and_recorded() {
    let app = TestConfig::default().app();
    let strict = namespace("team", &[("fipsgate.io/enforce", "strict")]);
    let off = namespace(
        "team",
        &[("fipsgate.io/enforce", "off"), ("fipsgate.io/warn", "off")],
    );
    let review = mk_review("u1", "team", "UPDATE", off.clone(), Some(strict.clone()));
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert_eq!(
        r["response"]["warnings"],
        serde_json::json!([
            "fipsgate: enforce lowered from strict to off in namespace \"team\": recorded",
            "fipsgate: warn lowered from strict to off in namespace \"team\": recorded"
        ])
    );
    assert_eq!(
        r["response"]["auditAnnotations"]["loosened"],
        "enforce strict -> off by admin; warn strict -> off by admin"
    );
    let review = mk_review("u2", "team", "CREATE", off, None);
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(
        r["response"]["auditAnnotations"]["loosened"],
        "enforce baseline -> off by admin; warn strict -> off by admin",
        "{r}"
    );
    // Tightening is not loosening.
    let review = mk_review("u3", "team", "UPDATE", strict, Some(namespace("team", &[])));
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert!(r["response"].get("auditAnnotations").is_none(), "{r}");
}

fn check(text: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["check", "-f", file.to_str().unwrap(), "--enforce", "strict"];
    args.extend_from_slice(extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(&args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace(file.to_str().unwrap(), "m.yaml");
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// `check` gave silent passes: a misspelt `contianers:` judged an empty pod and exited 0, and
/// an object written on its `---` line was dropped. Unknown pod-spec fields are errors (exit 2,
/// file, line and field); every document is judged, or said to be skipped.
#[test]
fn check_gives_no_silent_pass() {
    let typo = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      contianers: [{name: web, image: nginx}]\n";
    let (code, _, err) = check(typo, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "fipsgate: m.yaml:1: Deployment web: unknown field spec.contianers"
    );

    let inline = format!(
        "kind: Pod\nmetadata: {{name: a}}\nspec: {{containers: [{{name: a, image: \"{FIPS_DNS}\"}}]}}\n--- {{kind: Pod, metadata: {{name: b}}, spec: {{containers: [{{name: b, image: nginx}}]}}}}\n"
    );
    let (code, out, _) = check(&inline, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Pod/b") && out.contains("denied"), "{out}");

    let mixed = "kind: Service\nmetadata: {name: web}\n---\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n";
    let (code, _, err) = check(mixed, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        "fipsgate: skipped m.yaml:1: Service/web (no pod spec)\nfipsgate: 1 object judged, 1 skipped: Service ×1"
    );
    let (code, _, err) = check(mixed, &["--fail-on-unsupported"]);
    assert_eq!(code, Some(2), "{err}");
}
