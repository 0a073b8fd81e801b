//! The `fipsgate` binary as a user runs it: `check`, `catalog`, `certs`, `serve`, `version` and
//! `doctor` without a cluster.

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
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    let mut v = Vec::new();
    for r in reports.as_array().unwrap() {
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
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
    let yaml = stdout(&fipsgate(&["catalog", "-o", "yaml"]));
    // The printed YAML is itself a valid user catalogue.
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
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, (image, id, admitted)) in paths.iter().enumerate() {
        let r = (reports.as_array().unwrap().iter())
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
