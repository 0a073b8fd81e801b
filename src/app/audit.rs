//! `fipsgate audit`: what already runs, evaluated with the same engine as admission. Listing
//! is paged; results are summarised per namespace as they arrive.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::app::inventory::{KubeInventory, Listed, POD, WORKLOADS};
use crate::domain::assessment::{AttestationSource, LookupContext, Status};
use crate::domain::image::ImageRef;
use crate::domain::policy::{Level, Levels, NamespacePolicy};
use crate::engine::{self, Outcome, Resolution, Rules, Subject, Verdict};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuditOutput {
    Table,
    Json,
    /// wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace, ready for `kubectl apply`.
    Policyreport,
}

/// `fipsgate audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Only this namespace (default: all namespaces).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Also Deployments, StatefulSets, DaemonSets, ReplicaSets (not owned by a Deployment),
    /// Jobs (not owned by a CronJob) and CronJobs.
    #[arg(long)]
    pub workloads: bool,
    /// Evaluate every namespace at this level instead of its labels.
    #[arg(long)]
    pub level: Option<crate::cli::LevelArg>,
    /// Configuration file (defaults, exemptions, catalogue, attestations).
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
    /// Objects per list request.
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,
}

/// Counts for one namespace.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub objects: usize,
    pub compliant: usize,
    pub partial: usize,
    #[serde(rename = "nonCompliant")]
    pub non_compliant: usize,
    pub exempt: usize,
    /// Objects whose pods the namespace's enforce level would deny.
    #[serde(rename = "wouldDeny")]
    pub would_deny: usize,
}

/// One object with a violation.
#[derive(Debug, Clone, Serialize)]
pub struct AuditFinding {
    pub namespace: String,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub outcome: Outcome,
    pub message: Option<String>,
    pub findings: Vec<engine::Finding>,
}

/// The whole audit.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub namespaces: BTreeMap<String, Summary>,
    pub findings: Vec<AuditFinding>,
}

/// Adds one evaluated object to the report.
pub fn record(report: &mut Report, obj: &Listed, d: engine::Decision) {
    let s = report.namespaces.entry(obj.namespace.clone()).or_default();
    s.objects += 1;
    let statuses: Vec<Option<Status>> = d.findings.iter().map(|f| f.status).collect();
    let all_exempt =
        !d.findings.is_empty() && d.findings.iter().all(|f| f.verdict == Verdict::Exempt);
    if d.exemption.is_some_and(|e| e != engine::Exemption::Image) || all_exempt {
        s.exempt += 1;
        return;
    }
    let non_compliant = d.findings.iter().any(|f| {
        f.verdict != Verdict::Exempt && !matches!(f.status, Some(Status::Full | Status::Partial))
    });
    if non_compliant {
        s.non_compliant += 1;
    } else if statuses.contains(&Some(Status::Partial)) {
        s.partial += 1;
    } else {
        s.compliant += 1;
    }
    if d.outcome != Outcome::Allow {
        s.would_deny += 1;
    }
    let violating = d
        .findings
        .iter()
        .any(|f| matches!(f.verdict, Verdict::Denied | Verdict::Warned));
    if violating {
        report.findings.push(AuditFinding {
            namespace: obj.namespace.clone(),
            api_version: obj.api_version.clone(),
            kind: obj.kind.clone(),
            name: obj.name.clone(),
            outcome: d.outcome,
            message: d.message,
            findings: d.findings,
        });
    }
}

/// True for workloads another listed workload already stands for (their controller). Pods
/// are always checked: they are what actually runs.
fn covered(obj: &Listed) -> bool {
    match (obj.kind.as_str(), &obj.owner) {
        ("ReplicaSet", Some((k, _))) => k == "Deployment",
        ("Job", Some((k, _))) => k == "CronJob",
        _ => false,
    }
}

/// The summary and findings as text tables.
pub fn table(report: &Report) -> String {
    let mut rows = vec![
        [
            "NAMESPACE",
            "OBJECTS",
            "COMPLIANT",
            "PARTIAL",
            "NON-COMPLIANT",
            "EXEMPT",
            "WOULD-DENY",
        ]
        .map(String::from),
    ];
    for (ns, s) in &report.namespaces {
        rows.push([
            ns.clone(),
            s.objects.to_string(),
            s.compliant.to_string(),
            s.partial.to_string(),
            s.non_compliant.to_string(),
            s.exempt.to_string(),
            s.would_deny.to_string(),
        ]);
    }
    let mut out = crate::cli::render_table(&rows);
    if !report.findings.is_empty() {
        let mut rows = vec![
            [
                "NAMESPACE",
                "OBJECT",
                "CONTAINER",
                "IMAGE",
                "STATUS",
                "VERDICT",
                "REASON",
            ]
            .map(String::from),
        ];
        for f in &report.findings {
            for c in &f.findings {
                if !matches!(c.verdict, Verdict::Denied | Verdict::Warned) {
                    continue;
                }
                rows.push([
                    f.namespace.clone(),
                    format!("{}/{}", f.kind, f.name),
                    c.container.clone(),
                    c.image.clone(),
                    c.status.map_or("-".into(), |s| s.to_string()),
                    match c.verdict {
                        Verdict::Denied => "would-deny".into(),
                        _ => "warn".into(),
                    },
                    c.reason.clone().unwrap_or_default(),
                ]);
            }
        }
        out.push('\n');
        out.push_str(&crate::cli::render_table(&rows));
    }
    out
}

/// One `wgpolicyk8s.io/v1alpha2` PolicyReport per namespace (failures and warnings as
/// results, passes counted only, so reports stay small).
pub fn policy_reports(report: &Report, now: jiff::Timestamp) -> Vec<serde_json::Value> {
    report
        .namespaces
        .iter()
        .map(|(ns, s)| {
            let results: Vec<serde_json::Value> = report
                .findings
                .iter()
                .filter(|f| &f.namespace == ns)
                .map(|f| {
                    let denied = f.outcome != Outcome::Allow;
                    let reasons: Vec<String> = f
                        .findings
                        .iter()
                        .filter_map(|c| c.reason.as_ref().map(|r| format!("{} ({}): {r}", c.container, c.image)))
                        .collect();
                    serde_json::json!({
                        "policy": "fipsgate-fips",
                        "rule": if denied { "enforce" } else { "warn-audit" },
                        "result": if denied { "fail" } else { "warn" },
                        "severity": if denied { "high" } else { "medium" },
                        "message": reasons.join("; "),
                        "source": "fipsgate",
                        "scored": true,
                        "timestamp": {"seconds": now.as_second(), "nanos": 0},
                        "resources": [{"apiVersion": f.api_version, "kind": f.kind, "name": f.name, "namespace": ns}],
                    })
                })
                .collect();
            let fail = results.iter().filter(|r| r["result"] == "fail").count();
            let warn = results.len() - fail;
            serde_json::json!({
                "apiVersion": "wgpolicyk8s.io/v1alpha2",
                "kind": "PolicyReport",
                "metadata": {"name": "fipsgate", "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "fipsgate"}},
                "scope": {"kind": "Namespace", "name": ns},
                "summary": {"pass": s.objects - fail - warn - s.exempt, "fail": fail, "warn": warn, "error": 0, "skip": s.exempt},
                "results": results,
            })
        })
        .collect()
}

/// Runs `fipsgate audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    crate::infra::crypto::install();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(audit(args))
}

async fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let config = crate::cli::load_config(args.config.as_ref())?;
    let rules = Rules::new(&config).context("exemptions.images")?;
    let catalog = Arc::new(crate::cli::load_catalog(&config)?);
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let kube_config = match kube::Config::from_kubeconfig(&options).await {
        Ok(c) => c,
        Err(e) if args.context.is_none() => kube::Config::infer()
            .await
            .with_context(|| format!("no kubeconfig ({e}) and not in a cluster"))?,
        Err(e) => return Err(e).context("kubeconfig"),
    };
    let client = kube::Client::try_from(kube_config)?;
    let (metrics, _) = crate::telemetry::metrics::Metrics::new();
    let source =
        crate::app::chain::Resolver::from_config(&config, catalog, metrics, Some(client.clone()))
            .map_err(|e| anyhow::anyhow!("attestations: {e}"))?;
    let inventory = KubeInventory {
        client: client.clone(),
    };

    // Namespace policies, from labels or the override.
    let mut policies: HashMap<String, NamespacePolicy> = HashMap::new();
    let override_levels = args.level.map(|l| {
        let l: Level = l.into();
        Levels {
            enforce: l,
            warn: l,
            audit: l,
        }
    });
    if override_levels.is_none() {
        let api: kube::Api<kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>> =
            kube::Api::all(client.clone());
        let list = api
            .list_metadata(&kube::api::ListParams::default())
            .await
            .context("listing namespaces")?;
        for ns in list.items {
            let labels = ns.metadata.labels.unwrap_or_default();
            let name = ns.metadata.name.unwrap_or_default();
            policies.insert(
                name,
                NamespacePolicy::from_labels(
                    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    &rules.defaults,
                ),
            );
        }
    }
    let policy_for = |ns: &str| -> NamespacePolicy {
        match override_levels {
            Some(levels) => NamespacePolicy {
                levels,
                errors: Vec::new(),
            },
            None => policies
                .get(ns)
                .cloned()
                .unwrap_or_else(|| NamespacePolicy::defaults(&rules.defaults)),
        }
    };

    let progress = std::io::stderr().is_terminal().then(|| {
        let p = indicatif::ProgressBar::new_spinner();
        p.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("static template"),
        );
        p.enable_steady_tick(std::time::Duration::from_millis(120));
        p
    });
    let mut kinds = vec![POD];
    if args.workloads {
        kinds.extend_from_slice(WORKLOADS);
    }
    let today = crate::today_utc();
    let mut memo: HashMap<String, Resolution> = HashMap::new();
    let mut report = Report::default();
    let mut count = 0usize;
    for mut gvk in kinds {
        let mut pages = Vec::new();
        // Each page is evaluated before the next is fetched: memory stays bounded by a page.
        let mut cont: Option<String> = None;
        loop {
            let first = cont.is_none();
            let listed = inventory
                .page(gvk, args.namespace.as_deref(), args.page_size, cont.take())
                .await;
            let (items, next) = match listed {
                Ok(v) => v,
                // Older clusters serve CronJobs as batch/v1beta1 only (before 1.21).
                Err(kube::Error::Api(e))
                    if first && e.code == 404 && gvk.1 == "v1" && gvk.2 == "CronJob" =>
                {
                    gvk = ("batch", "v1beta1", "CronJob", "cronjobs");
                    continue;
                }
                Err(kube::Error::Api(e)) if first && e.code == 404 => {
                    eprintln!(
                        "fipsgate: {} are not served by this cluster; skipped",
                        gvk.3
                    );
                    break;
                }
                Err(e) => return Err(e).with_context(|| format!("listing {}", gvk.3)),
            };
            pages.clear();
            pages.extend(items.into_iter().filter(|o| !covered(o)));
            for obj in &pages {
                let ctx = LookupContext {
                    namespace: obj.namespace.clone(),
                    pull_secrets: obj
                        .spec
                        .image_pull_secrets
                        .iter()
                        .map(|s| s.name.clone())
                        .collect(),
                };
                let mut res = Vec::with_capacity(obj.spec.len());
                for (_, c) in obj.spec.all() {
                    let r = match memo.get(&c.image) {
                        Some(r) => r.clone(),
                        None => {
                            let r = match ImageRef::parse(&c.image) {
                                Err(e) => Resolution::Invalid(e),
                                Ok(i) if rules.image_exempt(&i) => Resolution::Exempt,
                                Ok(i) => Resolution::Result(source.attest(&i, &ctx).await),
                            };
                            memo.insert(c.image.clone(), r.clone());
                            r
                        }
                    };
                    res.push(r);
                }
                let policy = policy_for(&obj.namespace);
                let subject = Subject {
                    kind: &obj.kind,
                    namespace: &obj.namespace,
                    name: &obj.name,
                    username: "",
                    enforceable: true,
                };
                let d = engine::evaluate(&rules, &subject, &obj.spec, &res, &policy, today);
                record(&mut report, obj, d);
                count += 1;
            }
            if let Some(p) = &progress {
                p.set_message(format!(
                    "{count} objects, {} images, listing {}",
                    memo.len(),
                    gvk.3
                ));
            }
            match next {
                Some(c) => cont = Some(c),
                None => break,
            }
        }
    }
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    match args.output {
        AuditOutput::Table => print!("{}", table(&report)),
        AuditOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        AuditOutput::Policyreport => {
            for r in policy_reports(&report, jiff::Timestamp::now()) {
                println!("---\n{}", serde_saphyr::to_string(&r)?.trim_end());
            }
        }
    }
    let would_deny = report.namespaces.values().any(|s| s.would_deny > 0);
    Ok(if would_deny {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::Config;

    fn obj(ns: &str, kind: &str, name: &str, images: &[&str]) -> Listed {
        let containers: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, img)| serde_json::json!({"name": format!("c{i}"), "image": img}))
            .collect();
        Listed {
            api_version: if kind == "Pod" {
                "v1".into()
            } else {
                "apps/v1".into()
            },
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            owner: None,
            spec: serde_json::from_value(serde_json::json!({"containers": containers})).unwrap(),
        }
    }

    fn evaluate(config: &Config, o: &Listed, enforce: Level) -> engine::Decision {
        let rules = Rules::new(config).unwrap();
        let cat = Catalog::embedded();
        let res: Vec<_> = o
            .spec
            .all()
            .map(|(_, c)| rules.resolve(&c.image, |r| cat.lookup(r)))
            .collect();
        let policy = NamespacePolicy {
            levels: Levels {
                enforce,
                warn: Level::Strict,
                audit: Level::Strict,
            },
            errors: vec![],
        };
        let subject = Subject {
            kind: &o.kind,
            namespace: &o.namespace,
            name: &o.name,
            username: "",
            enforceable: true,
        };
        engine::evaluate(
            &rules,
            &subject,
            &o.spec,
            &res,
            &policy,
            jiff::civil::date(2026, 11, 26),
        )
    }

    #[test]
    fn summaries_and_reports() {
        let mut config = Config::default();
        config.exemptions.namespaces = vec!["kube-system".into()];
        let fips = "gcr.io/spectro-images-fips/coredns:v1";
        let lh = "gcr.io/spectro-images-fips/longhornio/longhorn-manager:v1";
        let objects = [
            (obj("a", "Pod", "ok", &[fips]), Level::Strict),
            (obj("a", "Pod", "bad", &["nginx", fips]), Level::Strict),
            (obj("a", "Deployment", "half", &[lh]), Level::Baseline),
            (obj("b", "Pod", "warned", &["busybox"]), Level::Off),
            (obj("kube-system", "Pod", "dns", &["nginx"]), Level::Strict),
        ];
        let mut report = Report::default();
        for (o, level) in &objects {
            record(&mut report, o, evaluate(&config, o, *level));
        }
        assert_eq!(
            report.namespaces["a"],
            Summary {
                objects: 3,
                compliant: 1,
                partial: 1,
                non_compliant: 1,
                exempt: 0,
                would_deny: 1
            }
        );
        assert_eq!(
            report.namespaces["b"],
            Summary {
                objects: 1,
                non_compliant: 1,
                ..Summary::default()
            }
        );
        assert_eq!(report.namespaces["kube-system"].exempt, 1);
        let names: Vec<_> = report.findings.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["bad", "half", "warned"]);
        let text = table(&report);
        assert!(
            text.contains("Pod/bad") && text.contains("would-deny"),
            "{text}"
        );
        let reports = policy_reports(&report, jiff::Timestamp::UNIX_EPOCH);
        let a = reports
            .iter()
            .find(|r| r["metadata"]["namespace"] == "a")
            .unwrap();
        assert_eq!(
            a["summary"],
            serde_json::json!({"pass": 1, "fail": 1, "warn": 1, "error": 0, "skip": 0})
        );
        assert_eq!(a["results"][0]["resources"][0]["name"], "bad");
        assert_eq!(a["results"][1]["resources"][0]["apiVersion"], "apps/v1");
    }

    #[test]
    fn owned_workloads_are_not_counted_twice() {
        let mut rs = obj("a", "ReplicaSet", "web-1", &["nginx"]);
        rs.owner = Some(("Deployment".into(), "u".into()));
        assert!(covered(&rs));
        let mut job = obj("a", "Job", "nightly-1", &["nginx"]);
        job.owner = Some(("CronJob".into(), "u".into()));
        assert!(covered(&job));
        let mut pod = obj("a", "Pod", "web-1-x", &["nginx"]);
        pod.owner = Some(("ReplicaSet".into(), "u".into()));
        assert!(!covered(&pod));
    }
}
