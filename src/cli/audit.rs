//! `fipsgate audit`: what already runs in the cluster, judged as admission would judge it;
//! a table, JSON, YAML or PolicyReports; exit 1 when anything would be denied.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::app::audit::{Audit, AuditMeta, ExemptionState, Progress, Report};
use crate::app::scan_audit::{ScannedImage, scan_all};
use crate::app::today_utc;
use crate::config::Loaded;
use crate::domain::fips::Status;
use crate::engine::{Outcome, Verdict};
use crate::infra::kube::{KubeInventory, KubePullSecrets, MountedConfig, mounted_config};
use crate::infra::registry::PullSecrets;
use crate::telemetry::metrics::Metrics;

use super::LevelArg;
use super::audit_scan::{ClusterScanner, ScanSettings};
use super::cluster::kube_config;
use super::output::{Output, document};
use super::table::render_table;

/// `-o`: the shared formats, and PolicyReports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// Columns for the terminal.
    Table,
    /// The table with more columns (component, evidence, digest, certificates).
    Wide,
    /// Pretty-printed JSON, the same document as `yaml`.
    Json,
    /// YAML, the same document as `json`.
    Yaml,
    /// wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace, ready for `kubectl apply`.
    Policyreport,
    /// One self-contained HTML page for assessors (nothing fetched; prints to PDF).
    Html,
    /// OSCAL 1.2.1 Assessment Results (JSON) against NIST SP 800-53 SC-13.
    Oscal,
    /// The report's sections as Markdown tables (a pull request, an issue, a wiki).
    Markdown,
}

/// `fipsgate report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// An audit's JSON, as `fipsgate audit -o json` writes it (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The format: `html` and `oscal` for assessors, or any of `audit`'s.
    #[arg(short, long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
}

/// The largest audit document `report` reads.
pub const MAX_AUDIT_BYTES: u64 = 512 << 20;

impl ReportArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        let what = self.from.display().to_string();
        if what == "-" {
            std::io::stdin()
                .take(MAX_AUDIT_BYTES + 1)
                .read_to_end(&mut bytes)?;
        } else {
            let file =
                std::fs::File::open(&self.from).with_context(|| format!("reading {what}"))?;
            file.take(MAX_AUDIT_BYTES + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {what}"))?;
        }
        anyhow::ensure!(
            bytes.len() as u64 <= MAX_AUDIT_BYTES,
            "{what}: larger than {} MiB",
            MAX_AUDIT_BYTES >> 20
        );
        let report: Report = serde_json::from_slice(&bytes)
            .with_context(|| format!("{what}: not an audit document (fipsgate audit -o json)"))?;
        let now = report
            .meta
            .as_ref()
            .map_or_else(jiff::Timestamp::now, |m| m.generated_at);
        emit(&report, self.output, now)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Writes `report` in `output`; `now` stamps PolicyReports.
fn emit(report: &Report, output: AuditOutput, now: jiff::Timestamp) -> anyhow::Result<()> {
    match output {
        AuditOutput::Table => super::emit(&table(report, false))?,
        AuditOutput::Wide => super::emit(&table(report, true))?,
        AuditOutput::Json => super::emit(&document(report, Output::Json)?)?,
        AuditOutput::Yaml => super::emit(&document(report, Output::Yaml)?)?,
        AuditOutput::Html => super::emit(&crate::report::html::render(report))?,
        AuditOutput::Markdown => super::emit(&crate::report::markdown::render(report))?,
        AuditOutput::Oscal => {
            let doc = crate::report::oscal::render(report);
            super::emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?
        }
        AuditOutput::Policyreport => {
            for r in policy_reports(report, now) {
                super::emit(&format!(
                    "---\n{}\n",
                    serde_saphyr::to_string(&r)?.trim_end()
                ))?;
            }
        }
    }
    Ok(())
}

/// `fipsgate audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
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
    pub level: Option<LevelArg>,
    /// Configuration file (defaults, exemptions, catalogue, attestations). Without it, the
    /// configuration the installed fipsgate runs with (see --install-namespace).
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where fipsgate is installed: without --config, the ConfigMap its Deployment `fipsgate`
    /// mounts there is the configuration; the built-in defaults when it cannot be read.
    #[arg(long, default_value = "fipsgate-system")]
    pub install_namespace: String,
    #[arg(short, long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
    /// Objects per list request.
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,
    #[command(flatten)]
    pub scan: ScanSettings,
}

impl AuditArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        crate::infra::crypto::install();
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(self.audit())
    }

    async fn audit(self) -> anyhow::Result<ExitCode> {
        let Self {
            kubeconfig,
            context,
            namespace,
            workloads,
            level,
            config,
            install_namespace,
            output,
            page_size,
            scan,
        } = self;
        let kube = kube_config(kubeconfig, context.clone()).await?;
        let cluster = match context {
            Some(c) => format!("{c} ({})", kube.cluster_url),
            None => kube.cluster_url.to_string(),
        };
        let client = kube::Client::try_from(kube)?;
        let Loaded {
            config,
            rules,
            catalog,
        } = match config {
            Some(path) => Loaded::from_file(Some(&path))?,
            None => installed_config(&client, &install_namespace).await?,
        };
        let catalog_id = catalog_identity(&catalog);
        let pull_secrets: Arc<dyn PullSecrets> = Arc::new(KubePullSecrets {
            client: client.clone(),
        });
        let today = today_utc();
        let scanner = (scan.scan)
            .then(|| {
                let certificates = catalog.certificates().to_vec();
                ClusterScanner::new(&scan, certificates, today, Some(pull_secrets.clone()))
            })
            .transpose()?;
        let source = crate::infra::source_chain(
            &config,
            Arc::new(catalog),
            Metrics::new().0,
            Some(pull_secrets),
        )
        .map_err(|e| anyhow::anyhow!("attestations: {e}"))?;
        let inventory = KubeInventory::new(client);
        let audit = Audit {
            rules: &rules,
            source: &source,
            inventory: &inventory,
            namespace: namespace.as_deref(),
            workloads,
            level: level.map(Into::into),
            page_size,
            today,
            scan: scan.scan,
        };
        let spinner = Spinner::new();
        let mut report = audit.run(&mut |e| spinner.show(e)).await?;
        let module = crate::infra::crypto::module();
        report.meta = Some(AuditMeta {
            generated_at: jiff::Timestamp::now(),
            day: today,
            cluster,
            fipsgate_version: env!("CARGO_PKG_VERSION").into(),
            catalog: catalog_id,
            crypto_module: module.module.clone(),
            fips_mode: module.fips_mode,
        });
        if let Some(scanner) = &scanner {
            let plan = std::mem::take(&mut report.plan);
            let concurrency = usize::from(scan.scan_concurrency);
            let mut progress = |done, total| spinner.scanned(done, total);
            report.scans = scan_all(plan, scanner, concurrency, &mut progress).await;
        }
        drop(spinner);
        emit(&report, output, jiff::Timestamp::now())?;
        let would_deny = report.namespaces.values().any(|s| s.would_deny > 0);
        let not_full = (report.scans.iter()).any(|s| s.status != Some(Status::Full));
        Ok(if would_deny || not_full {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// The catalogue as a report names it: its counts and a digest of its content.
pub fn catalog_identity(catalog: &crate::catalog::Catalog) -> String {
    let components: Vec<&crate::domain::fips::Component> =
        catalog.components().iter().map(|c| c.as_ref()).collect();
    let content = serde_json::to_vec(&(components, catalog.certificates())).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &content);
    let hex: String = (digest.as_ref()[..6].iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{} components, {} certificates, sha256:{hex}",
        catalog.components().len(),
        catalog.certificates().len()
    )
}

/// The configuration the installed fipsgate runs with, read from the ConfigMap its Deployment
/// mounts (catalogue files it names under the mount are read from the ConfigMap too); the
/// built-in defaults, said on stderr, when there is none to read.
async fn installed_config(client: &kube::Client, namespace: &str) -> anyhow::Result<Loaded> {
    let mounted = match mounted_config(client.clone(), namespace, "fipsgate").await {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "fipsgate: the installed configuration cannot be read ({e}): judging with the \
                 built-in defaults; pass --config to choose"
            );
            return Ok(Loaded::from_file(None)?);
        }
    };
    let MountedConfig {
        config_map,
        mount_path,
        files,
    } = mounted;
    let read = |path: &std::path::Path| {
        path.strip_prefix(&mount_path)
            .ok()
            .and_then(|name| files.get(name.to_str()?))
            .cloned()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("not in ConfigMap {config_map} (mounted at {mount_path})"),
                )
            })
    };
    let origin = format!("ConfigMap {config_map} config.yaml");
    let loaded = Loaded::from_text(&files["config.yaml"], &origin, &read)?;
    eprintln!("fipsgate: configuration of the installed fipsgate: {origin}");
    Ok(loaded)
}

/// A spinner with counts on a terminal, cleared when dropped; kinds the cluster does not
/// serve are said on stderr.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new() -> Self {
        Self(std::io::stderr().is_terminal().then(|| {
            let p = indicatif::ProgressBar::new_spinner();
            p.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}")
                    .expect("static template"),
            );
            p.enable_steady_tick(std::time::Duration::from_millis(120));
            p
        }))
    }

    fn show(&self, event: Progress) {
        match (event, &self.0) {
            (Progress::NotServed(plural), _) => {
                eprintln!("fipsgate: {plural} are not served by this cluster; skipped")
            }
            (
                Progress::Listed {
                    objects,
                    images,
                    plural,
                },
                Some(p),
            ) => p.set_message(format!(
                "{objects} objects, {images} images, listing {plural}"
            )),
            (Progress::Listed { .. }, None) => {}
        }
    }

    fn scanned(&self, done: usize, total: usize) {
        if let Some(p) = &self.0 {
            p.set_message(format!("{done}/{total} images scanned"));
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            p.finish_and_clear();
        }
    }
}

/// The summary and findings as text tables; `wide` adds each finding's component, evidence,
/// digest and certificates.
pub fn table(report: &Report, wide: bool) -> String {
    let mut rows = vec![
        [
            "NAMESPACE",
            "ENFORCE",
            "WARN",
            "AUDIT",
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
            s.levels.enforce.to_string(),
            s.levels.warn.to_string(),
            s.levels.audit.to_string(),
            s.objects.to_string(),
            s.compliant.to_string(),
            s.partial.to_string(),
            s.non_compliant.to_string(),
            s.exempt.to_string(),
            s.would_deny.to_string(),
        ]);
    }
    let mut out = render_table(&rows);
    for (ns, s) in &report.namespaces {
        for e in &s.label_errors {
            out.push_str(&format!("warning: namespace {ns}: {e}\n"));
        }
    }
    if !report.findings.is_empty() {
        out.push('\n');
        out.push_str(&render_table(&findings(report, wide)));
    }
    if !report.scans.is_empty() {
        out.push('\n');
        out.push_str(&render_table(&scans(&report.scans, wide)));
    }
    if !report.exemptions.is_empty() {
        out.push('\n');
        out.push_str(&render_table(&exemptions(&report.exemptions)));
    }
    out
}

/// One row per configured exemption: until when, days left, its ticket and reason.
fn exemptions(states: &[ExemptionState]) -> Vec<Vec<String>> {
    let header = [
        "EXEMPT",
        "NAME",
        "STATE",
        "EXPIRES",
        "DAYS-LEFT",
        "TICKET",
        "REASON",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for e in states {
        rows.push(vec![
            e.kind.as_str().into(),
            e.grant.name.clone(),
            e.state.as_str().into(),
            dash(e.grant.expires.map(|d| d.to_string())),
            dash(e.days_left.map(|d| d.to_string())),
            dash(e.grant.ticket.clone()),
            dash(e.grant.reason.clone()),
        ]);
    }
    rows
}

/// One row per image scanned: its verdict and the first thing that keeps it from `full`;
/// `wide` adds the digest, the modules and whether it came from the cache.
fn scans(scans: &[ScannedImage], wide: bool) -> Vec<Vec<String>> {
    let mut header = vec!["SCANNED IMAGE", "SCAN", "OBJECTS"];
    if wide {
        header.extend(["DIGEST", "MODULES", "FROM"]);
    }
    header.push("DETAIL");
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for s in scans {
        let mut row = vec![
            s.reference.clone(),
            s.status.map_or_else(|| "error".into(), |st| st.to_string()),
            s.objects.to_string(),
        ];
        if wide {
            row.push(s.digest.clone().unwrap_or_else(|| "-".into()));
            row.push(match s.modules.is_empty() {
                true => "-".into(),
                false => s.modules.join(", "),
            });
            row.push(if s.cached { "cache" } else { "registry" }.into());
        }
        row.push(s.detail());
        rows.push(row);
    }
    rows
}

/// The rows of the findings that would be denied or warned about.
fn findings(report: &Report, wide: bool) -> Vec<Vec<String>> {
    let mut header = vec!["NAMESPACE", "OBJECT", "CONTAINER", "IMAGE"];
    if wide {
        header.extend(["COMPONENT", "STATUS", "EVIDENCE", "DIGEST", "CERTIFICATES"]);
    } else {
        header.push("STATUS");
    }
    header.extend(["VERDICT", "REASON"]);
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for f in &report.findings {
        for c in &f.findings {
            if !matches!(c.verdict, Verdict::Denied | Verdict::Warned) {
                continue;
            }
            let mut row = vec![
                f.namespace.clone(),
                format!("{}/{}", f.kind, f.name),
                c.container.clone(),
                c.image.clone(),
            ];
            if wide {
                row.push(or_dash(c.component.clone()));
            }
            row.push(or_dash(c.status.map(|s| s.to_string())));
            if wide {
                row.push(or_dash(c.evidence.map(|e| e.to_string())));
                row.push(or_dash(c.digest.clone()));
                row.push(super::check::certificates(&c.modules));
            }
            row.push(match c.verdict {
                Verdict::Denied => "would-deny".into(),
                _ => "warn".into(),
            });
            row.push(c.reason.clone().unwrap_or_default());
            rows.push(row);
        }
    }
    rows
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
