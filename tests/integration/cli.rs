//! The `fipsgate` binary as a user runs it: `check`, `catalog`, `explain`, `certs`, `serve`,
//! `version` and `doctor` without a cluster.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn fipsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `check --output json` of one manifest: (exit code, verdict per container image).
fn verdicts(path: &str, extra: &[&str]) -> (i32, Vec<(String, String, String)>) {
    let p = manifest(path);
    let mut args = vec!["check", "-f", p.to_str().unwrap(), "-o", "json"];
    args.extend(extra);
    let out = fipsgate(&args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    let mut v = Vec::new();
    for r in doc["reports"].as_array().unwrap() {
        for f in r["findings"].as_array().unwrap() {
            v.push((
                f["image"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap_or("-").to_string(),
                f["evidence"].as_str().unwrap_or("-").to_string(),
            ));
        }
    }
    (out.status.code().unwrap(), v)
}

#[test]
fn captured_objects_get_the_verdicts_of_the_source_document() {
    let strict = ["--enforce", "strict"];
    let (code, v) = verdicts("pod-create-init-and-containers.json", &strict);
    assert_eq!(code, 1);
    assert_eq!(
        v,
        [
            ("busybox:1.36", "none", "none"),
            ("us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4", "full", "repository"),
            ("gcr.io/spectro-images-fips/coredns@sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3", "full", "repository"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let (code, v) = verdicts("pod-update-image-changed.json", &strict);
    assert_eq!(code, 1);
    assert_eq!(
        v[2],
        (
            "registry.k8s.io/coredns/coredns:v1.11.1".into(),
            "none".into(),
            "none".into()
        )
    );
    for f in [
        "deployment-create.json",
        "pod-create-by-replicaset-controller.json",
        "pod-create-dry-run.json",
        "replicaset-create-by-controller.json",
    ] {
        let (code, v) = verdicts(f, &strict);
        assert_eq!(code, 1, "{f}");
        assert!(
            v.iter()
                .all(|(img, s, _)| img.starts_with("nginx") && s == "none"),
            "{f}: {v:?}"
        );
    }
    let (code, v) = verdicts("daemonset-create-init-and-containers.json", &strict);
    assert_eq!(code, 0);
    assert!(
        v.iter().all(|(_, s, e)| s == "full" && e == "repository"),
        "{v:?}"
    );
}

#[test]
fn look_alikes_are_not_compliant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookalikes.yaml");
    let images = [
        "docker.io/palette-images-fips/kube-apiserver:v1",
        "evil.example.com/us-docker.pkg.dev/palette-images-fips/kube-apiserver:v1",
        "us-docker.pkg.dev/palette-images-fips-evil/kube-apiserver:v1",
        "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver-proxy:v1",
        "gcr.io/spectro-images-fips/corednsx:v1",
        "gcr.io/spectro-images/coredns:v1",
    ];
    let containers: String = images
        .iter()
        .enumerate()
        .map(|(i, img)| format!("  - {{name: c{i}, image: \"{img}\"}}\n"))
        .collect();
    std::fs::write(
        &path,
        format!("kind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}"),
    )
    .unwrap();
    let (code, v) = verdicts(path.to_str().unwrap(), &["--enforce", "strict"]);
    assert_eq!(code, 1);
    assert_eq!(v.len(), images.len());
    assert!(v.iter().all(|(_, s, _)| s == "none"), "{v:?}");
}

#[test]
fn table_output_levels_labels_and_stdin() {
    let p = manifest("pod-create-init-and-containers.json");
    let out = fipsgate(&[
        "check",
        "-f",
        p.to_str().unwrap(),
        "--namespace-labels",
        "fipsgate.io/enforce=off,fipsgate.io/warn=strict",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "NAMESPACE",
            "OBJECT",
            "CONTAINER",
            "IMAGE",
            "COMPONENT",
            "STATUS",
            "EVIDENCE",
            "VERDICT"
        ]
    );
    assert!(text.contains("Pod/mixed  init (init)"), "{text}");
    assert!(text.contains("warned"), "{text}");
    assert!(
        text.contains("warning: Pod/mixed: [strict] init container \"init\" (busybox:1.36)"),
        "{text}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(["check", "-f", "-", "--enforce", "strict"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"apiVersion: v1\nkind: List\nitems:\n- kind: CronJob\n  metadata: {name: nightly}\n  spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: j, image: busybox}]}}}}}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("CronJob/nightly"));
    assert!(
        stdout(&out)
            .contains("denied: <stdin>:1: CronJob \"nightly\" violates the strict FIPS policy"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn directories_and_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "kind: Pod\nmetadata: {name: a, namespace: tools}\nspec: {containers: [{name: c, image: nginx}]}\n").unwrap();
    std::fs::write(dir.path().join("b.json"), r#"{"kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}"#).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let config = conf_dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "exemptions: {namespaces: [tools]}\ndefaults: {enforce: strict}\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let out = fipsgate(&[
        "check",
        "-f",
        d,
        "--config",
        config.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["attestations"], "not configured");
    let reports = &doc["reports"];
    assert_eq!(reports[0]["findings"][0]["verdict"], "exempt");
    assert_eq!(reports[1]["outcome"], "deny");
    std::fs::write(
        &config,
        "exemptions: {namespaces: [tools], namespace: [x]}\n",
    )
    .unwrap();
    let out = fipsgate(&["check", "-f", d, "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("config.yaml:1:")
            && err.contains("exemptions.namespace")
            && err.contains("unknown field"),
        "{err}"
    );
}

#[test]
fn bad_input_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let big = vec![b'#'; 17 * 1024 * 1024];
    let cases = [
        (
            write("bad.yaml", b"kind: Pod\nspec:\n  containers: [\n"),
            "bad.yaml:3: invalid YAML",
        ),
        (
            write("svc.yaml", b"kind: Pod\nspec: {}\n---\nkind: Service\n"),
            "svc.yaml:4: unsupported kind \"Service\"",
        ),
        (
            write("empty.yaml", b""),
            "empty.yaml: no Kubernetes objects found",
        ),
        (
            write("big.yaml", &big),
            "big.yaml: input is larger than 16 MiB",
        ),
        (write("bin.yaml", b"\xff\xfe\x00"), "bin.yaml: not UTF-8"),
        (
            dir.path()
                .join("missing.yaml")
                .to_str()
                .unwrap()
                .to_string(),
            "missing.yaml: No such file",
        ),
    ];
    for (path, want) in cases {
        let out = fipsgate(&["check", "-f", &path, "--fail-on-unsupported"]);
        assert_eq!(out.status.code(), Some(2), "{path}");
        let err = stderr(&out);
        assert!(err.contains(want), "{want}: {err}");
    }
    let out = fipsgate(&[
        "check",
        "-f",
        &write(
            "mixed.yaml",
            b"kind: Service\n---\nkind: Pod\nspec: {containers: [{name: a, image: nginx}]}\n",
        ),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

/// `check` on a chart-like directory: build inputs and non-workload kinds are skipped with a
/// summary, a bare `enforce=` label is an error, and `--fail-on warn` fails on warnings.
#[test]
fn check_skips_what_is_not_a_workload_and_fails_on_what_ci_asks() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    w("kustomization.yaml", "resources: [app.yaml]\n");
    w("values.yaml", "image: nginx\n");
    w(
        "app.yaml",
        &format!(
            "kind: Service\nmetadata: {{name: web}}\n---\nkind: ConfigMap\nmetadata: {{name: cfg}}\n---\nkind: Deployment\nmetadata: {{name: web}}\nspec: {{template: {{spec: {{containers: [{{name: web, image: \"{FIPS_API}\"}}]}}}}}}\n---\nkind: Pod\nmetadata: {{name: tool}}\nspec: {{containers: [{{name: t, image: nginx}}]}}\n"
        ),
    );
    let d = dir.path().to_str().unwrap();
    let out = fipsgate(&[
        "check",
        "-f",
        d,
        "--namespace-labels",
        "fipsgate.io/enforce=off",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("kustomization.yaml (not a manifest)"), "{err}");
    assert!(err.contains("values.yaml (not a manifest)"), "{err}");
    assert!(
        err.contains("fipsgate: 2 objects judged, 2 skipped: Service ×1, ConfigMap ×1"),
        "{err}"
    );
    let out = fipsgate(&[
        "check",
        "-f",
        d,
        "--namespace-labels",
        "fipsgate.io/enforce=off",
        "--fail-on",
        "warn",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = fipsgate(&["check", "-f", d, "--namespace-labels", "enforce=strict"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the label is fipsgate.io/enforce=strict"),
        "{}",
        stderr(&out)
    );
}

/// A Namespace in the stream brings its labels to the objects in it; with `dryRun: true` a
/// would-be denial still fails the check, as it fails `audit`.
/// An exemption past its last day exempts nothing in `check` either, and the denial says so;
/// one still in force exempts.
#[test]
fn check_applies_exemptions_until_their_last_day() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.yaml");
    std::fs::write(
        &app,
        "kind: Pod\nmetadata: {name: old, namespace: legacy}\nspec: {containers: [{name: web, image: nginx}]}\n---\nkind: Pod\nmetadata: {name: tool, namespace: shop}\nspec: {containers: [{name: t, image: registry.example/tool:1}]}\n",
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "exemptions:\n  namespaces: [{name: legacy, ticket: POAM-9, expires: 2020-01-31}]\n  images: [{image: registry.example/tool, reason: review, expires: 2099-12-31}]\n",
    )
    .unwrap();
    let (app, config) = (app.to_str().unwrap(), config.to_str().unwrap());
    let out = fipsgate(&[
        "check",
        "-f",
        app,
        "--config",
        config,
        "--enforce",
        "strict",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = doc["reports"].as_array().unwrap();
    assert_eq!(reports[0]["outcome"], "deny");
    let message = reports[0]["message"].as_str().unwrap();
    assert!(
        message.ends_with("(the exemption of namespace \"legacy\" (POAM-9) expired on 2020-01-31)"),
        "{message}"
    );
    assert_eq!(reports[1]["outcome"], "allow");
    assert_eq!(reports[1]["findings"][0]["verdict"], "exempt");
}

#[test]
fn check_uses_the_labels_of_namespaces_in_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.yaml");
    std::fs::write(
        &app,
        "kind: Namespace\napiVersion: v1\nmetadata: {name: team, labels: {fipsgate.io/enforce: strict}}\n---\nkind: Pod\nmetadata: {name: web, namespace: team}\nspec: {containers: [{name: web, image: nginx}]}\n---\nkind: Pod\nmetadata: {name: tool, namespace: other}\nspec: {containers: [{name: t, image: nginx}]}\n",
    )
    .unwrap();
    let app = app.to_str().unwrap();
    let out = fipsgate(&[
        "check",
        "-f",
        app,
        "--namespace-labels",
        "fipsgate.io/enforce=off",
        "-o",
        "json",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("namespace team: labels from its Namespace object (enforce=strict,"),
        "{err}"
    );
    assert!(err.contains("Namespace ×1 (labels used)"), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let outcome = |ns: &str| {
        doc["reports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["namespace"] == ns)
            .map(|r| r["outcome"].clone())
            .unwrap()
    };
    assert_eq!(outcome("team"), "deny");
    assert_eq!(outcome("other"), "allow");
    // --enforce wins over the Namespace's label.
    let out = fipsgate(&["check", "-f", app, "--enforce", "off"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // dryRun: the webhook would admit it, the check still fails on it.
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "dryRun: true\n").unwrap();
    let out = fipsgate(&["check", "-f", app, "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("would deny: "), "{}", stdout(&out));
}

#[test]
fn catalog_prints_every_format() {
    let out = fipsgate(&["catalog"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("longhorn-manager")
            && text.contains("partial")
            && text.contains("(host only)"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&fipsgate(&["catalog", "-o", "json"]).stdout).unwrap();
    assert_eq!(
        json["registries"][0],
        "us-docker.pkg.dev/palette-images-fips"
    );
    assert!(json["components"].as_array().unwrap().len() >= 40);
    // `-o yaml` is the same document as `-o json`.
    let yaml: serde_json::Value =
        serde_saphyr::from_str(&stdout(&fipsgate(&["catalog", "-o", "yaml"]))).unwrap();
    assert_eq!(yaml, json);
    let yaml = stdout(&fipsgate(&["catalog", "-o", "file"]));
    // `-o file` prints a valid user catalogue.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cat.yaml"), &yaml).unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "catalog: {{includeDefault: false, files: [{}]}}\n",
            dir.path().join("cat.yaml").display()
        ),
    )
    .unwrap();
    let again = fipsgate(&[
        "catalog",
        "-o",
        "json",
        "--config",
        dir.path().join("config.yaml").to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap(),
        json
    );
    // A broken user catalogue stops with file, line and reason.
    std::fs::write(
        dir.path().join("cat.yaml"),
        "components:\n  - id: x\n    name: X\n    category: kernel\n    status: full\n",
    )
    .unwrap();
    let bad = fipsgate(&[
        "catalog",
        "--config",
        dir.path().join("config.yaml").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("cat.yaml:4:"), "{}", stderr(&bad));
}

#[test]
fn certs_writes_a_usable_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("c");
    let out = fipsgate(&[
        "certs",
        "--out",
        out_dir.to_str().unwrap(),
        "--host",
        "127.0.0.1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(stdout(&out).trim())
        .unwrap();
    assert_eq!(ca, std::fs::read(out_dir.join("ca.crt")).unwrap());
    let renewed = fipsgate(&["certs", "--out", out_dir.to_str().unwrap(), "--renew"]);
    assert!(renewed.status.success());
    assert_eq!(stdout(&renewed), stdout(&out));
    // Run again by mistake: the CA is kept, not silently replaced.
    let again = fipsgate(&["certs", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already holds a CA"),
        "{}",
        stderr(&again)
    );
    assert_eq!(ca, std::fs::read(out_dir.join("ca.crt")).unwrap());
    let replaced = fipsgate(&["certs", "--out", out_dir.to_str().unwrap(), "--renew-ca"]);
    assert!(replaced.status.success());
    assert_ne!(stdout(&replaced), stdout(&out));
}

/// Starts `fipsgate serve` and returns it with its webhook and admin addresses.
#[allow(clippy::zombie_processes)] // the caller waits for it; a failed start fails the test
fn serve(extra: &[&str], certs: &Certs) -> (std::process::Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--dev",
        ])
        .args([
            "--tls-cert",
            certs.path("tls.crt").to_str().unwrap(),
            "--tls-key",
            certs.path("tls.key").to_str().unwrap(),
        ])
        .args(extra)
        .current_dir(certs.dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "server did not start: {seen:?}");
        let Some(Ok(line)) = lines.next() else {
            panic!("server exited before serving: {seen:?}");
        };
        seen.push(line.clone());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["message"] == "fipsgate serving" {
            // The start-up line names the cryptographic module and its CMVP standing.
            let module = fipsgate::infra::crypto::module();
            assert_eq!(v["crypto"], module.module.as_str(), "{line}");
            assert_eq!(v["crypto_crates"], module.crates.as_str(), "{line}");
            assert_eq!(v["cmvp"], module.cmvp().as_str(), "{line}");
            let (l, a) = (
                v["listen"].as_str().unwrap().to_string(),
                v["admin"].as_str().unwrap().to_string(),
            );
            std::thread::spawn(move || for _ in lines {});
            return (child, l, a);
        }
    }
}

#[tokio::test]
async fn serve_stops_gracefully_on_sigterm() {
    let certs = Certs::new();
    let (mut child, listen, admin) = serve(&["--shutdown-delay", "1s"], &certs);
    let port = listen.rsplit(':').next().unwrap();
    let c = client(&certs.ca_pem(), HttpVersion::H2);
    let url = format!("https://localhost:{port}/validate?timeout=5s");
    let (status, _, r) = post(&c, &url, fixture("pod-create-dry-run.json")).await;
    assert_eq!(
        (status.as_u16(), &r["response"]["allowed"]),
        (200, &serde_json::json!(false))
    );
    assert_eq!(
        reqwest::get(format!("http://{admin}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Not ready any more, but still answering during the shutdown delay.
    assert_eq!(
        reqwest::get(format!("http://{admin}/readyz"))
            .await
            .unwrap()
            .status(),
        503
    );
    let (status, _, _) = post(&c, &url, fixture("pod-create-dry-run.json")).await;
    assert_eq!(status.as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, Some(0));
}

#[test]
fn serve_fails_fast_on_a_bad_certificate_pair() {
    let certs = Certs::new();
    let other = Certs::new();
    let out = fipsgate(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--dev",
        "--tls-cert",
        certs.path("tls.crt").to_str().unwrap(),
        "--tls-key",
        other.path("tls.key").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("do not form a usable pair"),
        "{}",
        stderr(&out)
    );
    let out = fipsgate(&[
        "serve",
        "--tls-cert",
        "/nonexistent.crt",
        "--tls-key",
        "/nonexistent.key",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent.crt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn with_json_logs_a_fatal_error_is_one_json_line_and_causes_are_lines_of_their_own() {
    let certs = Certs::new();
    let other = Certs::new();
    let args = |format: &'static str| {
        fipsgate(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--dev",
            "--log-format",
            format,
            "--tls-cert",
            certs.path("tls.crt").to_str().unwrap(),
            "--tls-key",
            other.path("tls.key").to_str().unwrap(),
        ])
    };
    let out = args("json");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let last: serde_json::Value = serde_json::from_str(err.lines().last().unwrap())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {err}"));
    assert_eq!(last["level"], "ERROR", "{err}");
    assert_eq!(last["message"], "fipsgate stopped", "{err}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("do not form a usable pair"),
        "{err}"
    );
    assert!(
        err.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "every line is JSON: {err}"
    );
    // Text: the first line names fipsgate, each cause below it once.
    let out = fipsgate(&["check", "-f", "/nonexistent/dir/x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("fipsgate: "), "{err}");
    for (i, l) in lines.iter().enumerate() {
        for later in &lines[i + 1..] {
            let cause = later.trim_start_matches("  caused by: ");
            assert!(!l.contains(cause), "a cause said twice: {err}");
        }
    }
}

#[test]
#[cfg(not(feature = "fips"))]
fn require_fips_refuses_a_build_without_the_fips_module() {
    let certs = Certs::new();
    let out = fipsgate(&[
        "serve",
        "--dev",
        "--require-fips",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--tls-cert",
        certs.path("tls.crt").to_str().unwrap(),
        "--tls-key",
        certs.path("tls.key").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--require-fips: the TLS configuration is not in FIPS mode"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_names_the_crypto_module_and_its_cmvp_standing() {
    let module = fipsgate::infra::crypto::module();
    let out = fipsgate(&["version"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mode = if module.fips_mode { "on" } else { "off" };
    let want = format!(
        "fipsgate {}\ncrypto module: {} ({})\nFIPS mode: {mode}\nCMVP: {}\n",
        env!("CARGO_PKG_VERSION"),
        module.module,
        module.crates,
        module.cmvp()
    );
    assert_eq!(stdout(&out), want);
    if fipsgate::infra::crypto::FIPS_BUILD {
        assert!(
            stdout(&out).contains("crypto module: AWS-LC FIPS 4."),
            "{want}"
        );
        assert!(
            stdout(&out).contains("CMVP: in process (FIPS 140-3)"),
            "{want}"
        );
    } else {
        assert!(
            stdout(&out).contains("crypto module: AWS-LC (non-FIPS) "),
            "{want}"
        );
        assert!(
            stdout(&out).contains("CMVP: none: not a FIPS module"),
            "{want}"
        );
    }
    let out = fipsgate(&["version", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["crypto"], serde_json::to_value(&module).unwrap());
    // `--json` is `-o json`; `-o yaml` the same document; `-o wide` the lines and more.
    assert_eq!(stdout(&fipsgate(&["version", "-o", "json"])), stdout(&out));
    let yaml: serde_json::Value =
        serde_saphyr::from_str(&stdout(&fipsgate(&["version", "-o", "yaml"]))).unwrap();
    assert_eq!(yaml, v);
    let wide = stdout(&fipsgate(&["version", "-o", "wide"]));
    assert!(
        wide.starts_with(&want) && wide.contains("\nplatform: "),
        "{wide}"
    );
}

#[tokio::test]
async fn fips_mode_is_visible_at_readiness_and_in_metrics() {
    let certs = Certs::new();
    let extra: &[&str] = if fipsgate::infra::crypto::FIPS_BUILD {
        &["--require-fips"]
    } else {
        &[]
    };
    let (mut child, _, admin) = serve(extra, &certs);
    let ready: serde_json::Value = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["fips"], fipsgate::infra::crypto::FIPS_BUILD);
    let module = fipsgate::infra::crypto::module();
    assert_eq!(ready["crypto"], serde_json::to_value(&module).unwrap());
    assert_eq!(
        ready["crypto"]["fipsMode"],
        fipsgate::infra::crypto::FIPS_BUILD
    );
    let name = ready["crypto"]["module"].as_str().unwrap();
    assert!(name.starts_with("AWS-LC "), "{ready}");
    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want = format!(
        "fipsgate_fips_mode {}",
        i64::from(fipsgate::infra::crypto::FIPS_BUILD)
    );
    assert!(metrics.contains(&want), "{metrics}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A reader that goes away early (`fipsgate catalog -o json | head`) ends the output quietly:
/// exit 0, no panic.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::Read as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(["catalog", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `check` judges the vendor's real paths as admission does.
#[test]
fn check_judges_real_vendor_paths_as_admission_does() {
    let dir = tempfile::tempdir().unwrap();
    let paths = real_paths();
    let docs: Vec<String> = (paths.iter().enumerate())
        .map(|(i, (image, _, _))| {
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers: [{{name: c, image: \"{image}\"}}]\n")
        })
        .collect();
    let file = dir.path().join("pods.yaml");
    std::fs::write(&file, docs.join("---\n")).unwrap();
    let out = fipsgate(&[
        "check",
        "-f",
        file.to_str().unwrap(),
        "--enforce",
        "strict",
        "-o",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, (image, id, admitted)) in paths.iter().enumerate() {
        let r = (doc["reports"].as_array().unwrap().iter())
            .find(|r| r["name"] == format!("p{i}"))
            .unwrap();
        let allowed = r["outcome"] == "allow";
        assert_eq!(allowed, *admitted, "{image} ({id:?}): {r}");
    }
}

/// `catalog diff` says what a newer catalogue admits or denies, and exits 1 when it differs.
#[test]
fn catalog_diff_shows_what_a_change_admits_and_denies() {
    let same = fipsgate(&["catalog", "diff", "embedded", "embedded"]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&same.stdout), "no differences\n");
    let dir = tempfile::tempdir().unwrap();
    let next = dir.path().join("next.yaml");
    std::fs::write(
        &next,
        "registries: [registry.example.com/fips]\ncomponents:\n  - {id: etcd, name: Etcd, category: auxiliary, images: [\"**/etcd-fips\"], status: full}\n",
    )
    .unwrap();
    let out = fipsgate(&[
        "catalog",
        "diff",
        "embedded",
        next.to_str().unwrap(),
        "--onto-embedded",
        "--image",
        "gcr.io/spectro-images-fips/etcd:v3.5",
        "--image",
        "registry.example.com/fips/etcd-fips:v3.5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "registry root added: registry.example.com/fips",
        "component etcd changed",
        "  admits now: registry.example.com/fips/**/etcd-fips",
        "  no longer admits: gcr.io/spectro-images-fips/**/etcd",
        "image gcr.io/spectro-images-fips/etcd:v3.5: etcd (full) -> not listed",
        "image registry.example.com/fips/etcd-fips:v3.5: not listed -> etcd (full)",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in:\n{text}"
        );
    }
    let bad = fipsgate(&["catalog", "diff", "embedded", "/nonexistent.yaml"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `fipsgate completions SHELL` prints a script that knows the commands and their flags.
#[test]
fn completions_know_every_command() {
    for (shell, marker) in [
        ("bash", "_fipsgate()"),
        ("zsh", "#compdef fipsgate"),
        ("fish", "complete -c fipsgate"),
    ] {
        let out = fipsgate(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}");
        for word in [
            "check",
            "catalog",
            "audit",
            "doctor",
            "admin-url",
            "certs",
            "serve",
            "client-ca",
            "fail-on",
        ] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    // bash accepts the bash script.
    let out = fipsgate(&["completions", "bash"]);
    let checked = Command::new("bash")
        .args(["-n", "-c", &stdout(&out)])
        .status()
        .unwrap();
    assert!(checked.success());
}

/// `explain -o json` of `images`: (exit code, the explanations, stderr).
fn explain(images: &[&str], extra: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let mut args = vec!["explain", "-o", "json", "--date", "2026-11-28"];
    args.extend(extra);
    args.extend(images);
    let out = fipsgate(&args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    let all = match doc {
        serde_json::Value::Array(all) => all,
        one => vec![one],
    };
    (out.status.code().unwrap(), all, stderr(&out))
}

/// The verdict of `level` in an explanation.
fn at<'a>(x: &'a serde_json::Value, level: &str) -> &'a serde_json::Value {
    (x["levels"].as_array().unwrap().iter())
        .find(|v| v["level"] == level)
        .unwrap_or_else(|| panic!("no {level} in {x}"))
}

/// `explain` gives every real vendor path, twin and look-alike the component and verdicts the
/// fixture states: strict admits the full components, baseline every component.
#[test]
fn explain_gives_every_real_path_its_verdict() {
    let paths = real_paths();
    let images: Vec<&str> = paths.iter().map(|(i, _, _)| i.as_str()).collect();
    let (code, all, err) = explain(&images, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(all.len(), paths.len());
    for (x, (image, id, admitted)) in all.iter().zip(&paths) {
        assert_eq!(x["image"], image.as_str());
        let got = x["component"]["id"].as_str();
        assert_eq!(got, id.as_deref(), "{image}");
        let strict = at(x, "strict")["verdict"] == "admit";
        assert_eq!(strict, *admitted, "{image}: {x}");
        let baseline = at(x, "baseline")["verdict"] == "admit";
        assert_eq!(baseline, id.is_some(), "{image}: {x}");
        assert_eq!(at(x, "off")["verdict"], "admit", "{image}");
        if id.is_none() {
            let reason = &at(x, "strict")["reason"];
            assert_eq!(reason, "is not a FIPS-compliant component", "{image}");
        } else {
            let pattern = x["component"]["pattern"].as_str().unwrap();
            assert!(pattern.contains('/'), "{image}: {pattern}");
        }
    }
}

/// `explain` exits 0 when it explained, 1 when `--require LEVEL` denies an image, 2 on a
/// malformed reference (one line, nothing on stdout); `json` and `yaml` are one document.
#[test]
fn explain_exit_codes_and_formats() {
    let out = fipsgate(&["explain", "nginx"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("normalized: docker.io/library/nginx:latest"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "  strict    deny   is not a FIPS-compliant component"),
        "{text}"
    );
    let out = fipsgate(&["explain", "--require", "strict", FIPS_API, "nginx"]);
    assert_eq!(out.status.code(), Some(1));
    let out = fipsgate(&["explain", "--require", "off", "nginx"]);
    assert_eq!(out.status.code(), Some(0));
    let out = fipsgate(&["explain", "--require", "strict", FIPS_API]);
    assert_eq!(out.status.code(), Some(0));
    let out = fipsgate(&["explain", FIPS_API, "Not/Valid"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "fipsgate: image \"Not/Valid\": repository name must be lowercase\n"
    );
    assert!(out.stdout.is_empty());
    let json: serde_json::Value =
        serde_json::from_slice(&fipsgate(&["explain", "-o", "json", FIPS_API]).stdout).unwrap();
    let yaml: serde_json::Value =
        serde_saphyr::from_str(&stdout(&fipsgate(&["explain", "-o", "yaml", FIPS_API]))).unwrap();
    assert_eq!(json, yaml);
    assert_eq!(json["component"]["id"], "kube-apiserver");
    let wide = stdout(&fipsgate(&["explain", "-o", "wide", FIPS_API]));
    assert!(
        wide.contains("\nsource:") && wide.contains("\ndescription:"),
        "{wide}"
    );
}

/// A pinned digest from a user catalogue, and a certificate judged on the day asked: the
/// FIPS 140-2 #4349 is historical from its sunset, and `certificates.historical: deny` then
/// denies what relies on it.
#[test]
fn explain_pins_and_certificate_dates() {
    let dir = tempfile::tempdir().unwrap();
    let pinned = format!("sha256:{}", "c".repeat(64));
    std::fs::write(
        dir.path().join("catalog.yaml"),
        format!(
            "components:\n  - {{id: proxy, name: Proxy, category: auxiliary, status: full, digests: [\"{pinned}\"]}}\n  - id: gateway\n    name: Gateway\n    category: management-plane\n    images: [registry.example.com/gw/gateway]\n    status: full\n    modules: [{{name: Spectro Cloud Cryptographic Module, standard: FIPS 140-2, certificate: \"4349\", certificateStatus: active}}]\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    let write_config = |historical: &str| {
        let catalog = dir.path().join("catalog.yaml");
        let text = format!(
            "catalog: {{files: [{}]}}\ncertificates: {{historical: {historical}}}\n",
            catalog.display()
        );
        std::fs::write(&config, text).unwrap();
    };
    write_config("warn");
    let c = ["--config", config.to_str().unwrap()];
    let (code, x, err) = explain(&[&format!("registry.example.com/edge/proxy@{pinned}")], &c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (&x[0]["component"]["id"], &x[0]["evidence"]),
        (&"proxy".into(), &"digest".into())
    );
    let pins = (x[0]["chain"].as_array().unwrap().iter())
        .find(|s| s["source"] == "pins")
        .unwrap();
    assert_eq!(pins["outcome"], "answered");
    let gateway = "registry.example.com/gw/gateway:v1";
    let on = |date: &str| {
        let out = fipsgate(&["explain", "-o", "json", "--date", date, c[0], c[1], gateway]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = on("2026-09-20");
    assert_eq!(before["modules"][0]["status"], "active");
    assert_eq!(before["modules"][0]["sunset"], "2026-09-21");
    let after = on("2026-09-21");
    assert_eq!(after["modules"][0]["status"], "historical");
    let warnings = at(&after, "strict")["warnings"].to_string();
    assert!(
        warnings.contains("#4349 (FIPS 140-2) is historical"),
        "{warnings}"
    );
    write_config("deny");
    let denied = on("2026-09-21");
    assert_eq!(at(&denied, "baseline")["verdict"], "deny");
    assert_eq!(
        at(&denied, "baseline")["reason"],
        "relies on certificate #4349 (fips 140-2) which is historical"
    );
}

/// A configuration that enables attestations, with a key at `key`.
fn attestation_config(dir: &std::path::Path, key: &std::path::Path, registry: &str) -> String {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "attestations:\n  enabled: true\n  keys: [{}]\n  insecureRegistries: [\"{registry}\"]\n  callTimeout: 2s\n",
            key.display()
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_string()
}

/// Offline, configured attestations are said not to be consulted: one line on stderr and
/// `attestations: not consulted` in the document, for `check` and `explain` alike.
#[test]
fn configured_attestations_are_said_not_consulted_offline() {
    let dir = tempfile::tempdir().unwrap();
    let config = attestation_config(dir.path(), &dir.path().join("absent.pub"), "127.0.0.1:1");
    let p = manifest("pod-create-init-and-containers.json");
    let out = fipsgate(&[
        "check",
        "-f",
        p.to_str().unwrap(),
        "--config",
        &config,
        "-o",
        "json",
    ]);
    let line = "fipsgate: attestations are configured but not consulted (offline); pass --registry to use them";
    let err = stderr(&out);
    assert_eq!(err.lines().filter(|l| *l == line).count(), 1, "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["attestations"], "not consulted");
    let (_, x, err) = explain(&[FIPS_API], &["--config", &config]);
    assert!(err.lines().any(|l| l == line), "{err}");
    assert_eq!(x[0]["attestations"], "not consulted");
    assert_eq!(x[0]["chain"][0]["source"], "attestations");
    assert_eq!(x[0]["chain"][0]["outcome"], "not-asked");
    // Without attestations in the configuration there is nothing to say.
    let out = fipsgate(&["check", "-f", p.to_str().unwrap(), "-o", "json"]);
    assert!(!stderr(&out).contains("attestations"), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["attestations"], "not configured");
    // --registry with a key that cannot be read stops with the file named.
    let out = fipsgate(&[
        "check",
        "-f",
        p.to_str().unwrap(),
        "--config",
        &config,
        "--registry",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("absent.pub"), "{}", stderr(&out));
}

/// With `--registry`, `check` and `explain` ask the registry as `serve` and `audit` do: an image
/// the catalogue does not know is the component its signed attestation says.
#[tokio::test]
#[ignore = "needs a registry"]
async fn check_with_registry_uses_signed_attestations() {
    use crate::common::registry::*;
    let reg = TestRegistry::start(None);
    let key = SigningKey::new();
    let digest = reg.push_image("team/dns", "v1").await;
    let statement = statement(
        &digest,
        fipsgate::attest::FIPSGATE_PREDICATE,
        fips_predicate("coredns"),
    );
    reg.push_attestation("team/dns", &digest, &[key.envelope(&statement)])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.pub");
    std::fs::write(&key_path, key.public_pem()).unwrap();
    let config = attestation_config(dir.path(), &key_path, &reg.host);
    let image = format!("{}/team/dns:v1", reg.host);
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        format!("kind: Pod\nmetadata: {{name: dns}}\nspec: {{containers: [{{name: dns, image: \"{image}\"}}]}}\n"),
    )
    .unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "-f",
            pod.to_str().unwrap(),
            "--config",
            &config,
            "-o",
            "json",
        ];
        args.extend(extra);
        let out = fipsgate(&args);
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
        (out.status.code().unwrap(), doc, stderr(&out))
    };
    let (code, doc, _) = check(&[]);
    assert_eq!((code, &doc["attestations"]), (1, &"not consulted".into()));
    assert_eq!(doc["reports"][0]["findings"][0]["status"], "none");
    let (code, doc, err) = check(&["--registry"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("not consulted"), "{err}");
    assert_eq!(doc["attestations"], "consulted");
    let f = &doc["reports"][0]["findings"][0];
    assert_eq!(
        (&f["component"], &f["evidence"]),
        (&"coredns".into(), &"attestation".into())
    );
    assert_eq!(f["digest"], digest.as_str());
    assert_eq!(f["modules"][0]["certificate"], "5247");
    let (code, x, err) = explain(&[&image], &["--config", &config, "--registry"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(x[0]["attestations"], "consulted");
    assert_eq!(x[0]["chain"][0]["outcome"], "answered");
    assert_eq!(x[0]["evidence"], "attestation");
    assert_eq!(at(&x[0], "strict")["verdict"], "admit");
}

/// `fipsgate doctor` against an API server that is not there: exit 2, one line saying so.
#[test]
fn doctor_without_a_reachable_cluster_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: \
             https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  \
             user:\n    token: t\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    for output in ["table", "json"] {
        let out = fipsgate(&[
            "doctor",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-o",
            output,
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "fipsgate: cannot reach the Kubernetes API at https://127.0.0.1:{port}: "
            )) && err.contains("onnection refused"),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
    let missing = fipsgate(&["doctor", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).starts_with("fipsgate: --kubeconfig /nonexistent/kubeconfig"),
        "{}",
        stderr(&missing)
    );
}
