//! `deploy/monitoring/`: the rules and the dashboard ask only for what fipsgate exports, the
//! PrometheusRule is the rule file, promtool accepts and unit-tests the rules, and a real
//! Prometheus scraping a running fipsgate gets data from the recording rules.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/monitoring");

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(MONITORING).join(name)).unwrap()
}

/// The metric names a `/metrics` exposition offers: gauges as named, counters with `_total`,
/// histograms with `_bucket`, `_sum` and `_count`.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or_default());
        match kind {
            "counter" => names.extend([format!("{name}_total")]),
            "histogram" => {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")))
            }
            _ => names.extend([name.to_string()]),
        }
    }
    names
}

/// The fipsgate and process metric names an expression reads (recording rules aside).
fn asked(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        if (word.starts_with("fipsgate_") || word.starts_with("process_")) && !word.contains(':') {
            out.push(std::mem::take(&mut word));
        }
        word.clear();
    }
    out
}

fn rule_exprs(rules: &Value) -> Vec<String> {
    (rules["groups"].as_array().unwrap().iter())
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect()
}

/// Every family fipsgate registers, each with one sample (a family without samples is not
/// exposed at all), as `/metrics` would show them.
fn every_family() -> String {
    use fipsgate::telemetry::metrics::*;
    let (m, registry) = Metrics::new();
    let kind = KindLabel { kind: "timeout" };
    m.requests
        .get_or_create(&RequestLabels {
            operation: Operation::CREATE,
            kind: ObjectKind::Pod,
            decision: DecisionLabel::deny,
            mode: RunMode::enforce,
        })
        .inc();
    m.violations
        .get_or_create(&ViolationLabels {
            mode: ModeLabel::enforce,
            level: LevelLabel::strict,
        })
        .inc();
    m.exemptions.get_or_create(&kind).inc();
    let exemption = ExemptionLabels {
        kind: "namespace",
        name: "legacy".into(),
    };
    m.exemption_expiry.get_or_create(&exemption).set(1);
    m.errors.get_or_create(&kind).inc();
    let cache = CacheLabels {
        cache: "result",
        result: "hit",
    };
    m.cache_requests.get_or_create(&cache).inc();
    let lookup = LookupLabels {
        source: "attestations",
        outcome: "error",
    };
    m.lookups.get_or_create(&lookup).inc();
    use fipsgate::telemetry::process::{BuildLabels, CertificateLabels};
    let build = BuildLabels {
        version: "0",
        fips: "false",
    };
    m.ops.build_info.get_or_create(&build).set(1);
    let cert = CertificateLabels {
        certificate: "serving",
    };
    m.ops.certificate_expiry.get_or_create(&cert).set(1);
    m.ops.refresh();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

#[tokio::test]
async fn rules_and_dashboard_ask_only_for_what_fipsgate_exports() {
    // What a running server exposes is what the registry holds.
    let s = TestServer::start(Options::default()).await;
    let served = exported(&s.metrics().await);
    let names = exported(&every_family());
    assert!(served.is_subset(&names), "{served:?} vs {names:?}");
    let rules: Value = serde_saphyr::from_str(&read("rules.yaml")).unwrap();
    let dashboard: Value = serde_json::from_str(&read("grafana-dashboard.json")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let dash_exprs = (panels.iter())
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string());
    let mut checked = 0;
    for expr in rule_exprs(&rules).into_iter().chain(dash_exprs) {
        for name in asked(&expr) {
            assert!(
                names.contains(&name),
                "{name} (in {expr}) is not exported: {names:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} names checked");
    // The operator's PrometheusRule carries exactly the rule file's groups.
    let crd: Value = serde_saphyr::from_str(&read("prometheusrule.yaml")).unwrap();
    assert_eq!(crd["kind"], "PrometheusRule");
    assert_eq!(crd["spec"]["groups"], rules["groups"]);
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(MONITORING)
        .output()
        .expect("promtool (Debian's prometheus package; tests/run.sh installs it)")
}

#[test]
#[ignore = "needs promtool (Debian package prometheus; tests/run.sh installs it)"]
fn promtool_checks_and_unit_tests_the_rules() {
    let check = promtool(&["check", "rules", "rules.yaml"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let test = promtool(&["test", "rules", "rules.test.yaml"]);
    let out = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success() && out.contains("SUCCESS"),
        "{out}{}",
        String::from_utf8_lossy(&test.stderr)
    );
}

/// Kills the child when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[ignore = "needs prometheus (Debian package; tests/run.sh installs it)"]
async fn a_real_prometheus_scrapes_fipsgate_and_records() {
    let s = TestServer::start(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}/rules.yaml]\nscrape_configs:\n  - job_name: fipsgate\n    static_configs: [{{targets: [\"{}\"]}}]\n",
        MONITORING, s.running.admin_addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _prometheus = Child(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let client = s.client(HttpVersion::H2);
    let query = |q: &str| {
        let url = format!(
            "http://127.0.0.1:{port}/api/v1/query?query={}",
            urlencode(q)
        );
        async move {
            let r = reqwest::get(url).await.ok()?;
            let v: Value = r.json().await.ok()?;
            let result = v["data"]["result"].as_array()?.clone();
            (!result.is_empty()).then_some(result)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        // Reviews keep coming, so the rate over the window is not zero.
        post(
            &client,
            &s.url("/validate"),
            fixture("pod-create-dry-run.json"),
        )
        .await;
        if let Some(r) = query("fipsgate:admission_requests:rate5m > 0").await {
            break r;
        }
        assert!(Instant::now() < deadline, "no recorded rate within 60 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        result.iter().any(|r| r["metric"]["decision"] == "deny"),
        "{result:?}"
    );
    let up = query("up{job=\"fipsgate\"} == 1").await;
    assert!(up.is_some(), "the target is not up");
    let expiry = query("fipsgate_certificate_expiry_timestamp_seconds - time() > 0").await;
    assert!(expiry.is_some(), "no certificate expiry in Prometheus");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
