//! `fipsgate check`: manifests from files, directories or stdin, judged as admission would
//! judge the pods they make; exit 1 when anything would be denied.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::app::chain::AttestationUse;
use crate::app::check::{
    self, InputError, Policies, Report, Stream, Unsupported, input_error, parse_manifests,
};
use crate::app::today_utc;
use crate::config::Loaded;
use crate::domain::policy::{Mode, NamespacePolicy};
use crate::domain::workload::ContainerKind;
use crate::engine::{ModuleStatus, Outcome};

use super::LevelArg;
use super::chain::{block_on, source_chain};
use super::output::{Output, document};
use super::table::render_table;

/// Inputs larger than this are refused.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// `fipsgate check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest files or directories (YAML or JSON, multi-document); `-` reads stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Configuration file (defaults, exemptions, catalogue files).
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Namespace labels to evaluate under, e.g. `fipsgate.io/enforce=strict,fipsgate.io/warn=strict`.
    #[arg(long, value_delimiter = ',')]
    pub namespace_labels: Vec<String>,
    /// Enforce level (overrides labels and defaults).
    #[arg(long)]
    pub enforce: Option<LevelArg>,
    /// Warn level (overrides labels and defaults).
    #[arg(long)]
    pub warn: Option<LevelArg>,
    /// Audit level (overrides labels and defaults).
    #[arg(long)]
    pub audit: Option<LevelArg>,
    /// Namespace for objects that name none (exemptions are matched against it).
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// User name the objects are checked as (for user exemptions).
    #[arg(long, default_value = "")]
    pub username: String,
    /// Fail (exit 2) on objects of kinds without a pod spec (Service, ConfigMap, ...) instead
    /// of skipping them with a summary.
    #[arg(long)]
    pub fail_on_unsupported: bool,
    /// Kinds without a pod spec are skipped by default; kept for older scripts.
    #[arg(long, hide = true)]
    pub ignore_unsupported: bool,
    /// Exit 1 on denials (`deny`, the default), or on any warning too (`warn`, for CI).
    #[arg(long, value_enum, default_value_t = FailOn::Deny)]
    pub fail_on: FailOn,
    /// Ask registries for attestations as the configuration says (`attestations`), as
    /// `serve` and `audit` do; without it, `check` judges with the catalogue alone.
    #[arg(long)]
    pub registry: bool,
    #[arg(short, long, value_enum, default_value_t = CheckOutput::Table)]
    pub output: CheckOutput,
}

/// `check -o json|yaml`: whether registries were asked, and the report of each object.
#[derive(Serialize)]
struct Document<'a> {
    attestations: AttestationUse,
    reports: &'a [Report],
}

/// What makes `check` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Deny,
    Warn,
}

/// fipsgate's namespace label keys; a bare `enforce=` is a mistake, not a label.
const LABEL_KEYS: [&str; 3] = ["enforce", "warn", "audit"];

impl CheckArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Self {
            files,
            config,
            namespace_labels,
            enforce,
            warn,
            audit,
            namespace,
            username,
            fail_on_unsupported,
            ignore_unsupported: _,
            fail_on,
            registry,
            output,
        } = self;
        let Loaded {
            config,
            rules,
            catalog,
        } = Loaded::from_file(config.as_deref())?;
        let labels = label_pairs(&namespace_labels)?;
        // --enforce, --warn and --audit win over every label, in the stream or not.
        let overridden = |mut policy: NamespacePolicy| {
            for (mode, level) in [
                (Mode::Enforce, enforce),
                (Mode::Warn, warn),
                (Mode::Audit, audit),
            ] {
                if let Some(l) = level {
                    policy.levels.set(mode, l.into());
                }
            }
            policy
        };
        let default_policy = overridden(NamespacePolicy::from_labels(labels, &config.defaults));
        let unsupported = if fail_on_unsupported {
            Unsupported::Error
        } else {
            Unsupported::Skip
        };
        let Stream {
            manifests,
            skipped,
            namespaces,
        } = read_inputs(&files, unsupported)?;
        let policies = Policies {
            default: default_policy,
            by_namespace: namespaces
                .iter()
                .map(|(name, labels)| {
                    let policy = NamespacePolicy::from_label_map(labels, &config.defaults);
                    (name.clone(), overridden(policy))
                })
                .collect(),
        };
        for (name, policy) in &policies.by_namespace {
            eprintln!(
                "fipsgate: namespace {name}: labels from its Namespace object ({})",
                policy.levels.summary()
            );
        }
        // Every document is judged or said to be skipped: nothing passes silently.
        for s in &skipped {
            eprintln!("fipsgate: skipped {s}");
        }
        eprintln!("fipsgate: {}", check::summary(manifests.len(), &skipped));
        let (chain, attestations) = source_chain(&config, catalog, registry)?;
        let reports = block_on(check::evaluate(
            &manifests,
            &rules,
            &chain,
            &policies,
            &namespace,
            &username,
            today_utc(),
        ))?;
        super::emit(&render(&reports, attestations, output)?)?;
        let failed = reports.iter().any(|r| match fail_on {
            // In dry-run the webhook admits what it would deny; `check`, like `audit`, still
            // fails on it, so the pipeline shows what enforcing will refuse.
            FailOn::Deny => r.outcome != Outcome::Allow,
            FailOn::Warn => r.outcome != Outcome::Allow || !r.warnings.is_empty(),
        });
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// The reports in the format asked for.
fn render(
    reports: &[check::Report],
    attestations: AttestationUse,
    output: CheckOutput,
) -> anyhow::Result<String> {
    let doc = |format| {
        let d = Document {
            attestations,
            reports,
        };
        document(&d, format)
    };
    Ok(match output {
        CheckOutput::Table => table(reports, false),
        CheckOutput::Wide => table(reports, true),
        CheckOutput::Json => doc(Output::Json)?,
        CheckOutput::Yaml => doc(Output::Yaml)?,
        CheckOutput::Sarif => {
            let log = crate::report::ci::sarif(reports);
            format!("{}\n", serde_json::to_string_pretty(&log)?)
        }
        CheckOutput::Junit => crate::report::ci::junit(reports),
    })
}

/// `-o` of `check`: the shared formats, and two for CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckOutput {
    Table,
    Wide,
    Json,
    Yaml,
    /// SARIF 2.1.0 for code scanning: a result per violating container, at its file and line.
    Sarif,
    /// JUnit XML: a test case per object, failed when it would be denied.
    Junit,
}

/// `--namespace-labels` as key/value pairs; a bare `enforce=` is an error, not a label.
fn label_pairs(namespace_labels: &[String]) -> anyhow::Result<Vec<(&str, &str)>> {
    namespace_labels
        .iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--namespace-labels: {kv:?} is not key=value"))?;
            if LABEL_KEYS.contains(&k) {
                anyhow::bail!("--namespace-labels: {kv:?}: the label is fipsgate.io/{k}={v}");
            }
            Ok((k, v))
        })
        .collect()
}

/// Reads every object from the given paths (`-` is stdin; directories are walked for
/// `.yaml`, `.yml` and `.json` files, in name order).
fn read_inputs(paths: &[PathBuf], unsupported: Unsupported) -> Result<Stream, InputError> {
    let mut out = Stream::default();
    let mut add = |s: Stream| out.extend(s);
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            let read = std::io::stdin()
                .take(MAX_INPUT_BYTES + 1)
                .read_to_string(&mut text)
                .map_err(|e| input_error("<stdin>", None, e.to_string()))?;
            if read as u64 > MAX_INPUT_BYTES {
                return Err(too_large("<stdin>"));
            }
            add(parse_manifests(&text, "<stdin>", unsupported)?);
        } else if path.is_dir() {
            for file in walk(path)? {
                add(read_file(&file, unsupported)?);
            }
        } else {
            add(read_file(path, unsupported)?);
        }
    }
    Ok(out)
}

fn too_large(origin: &str) -> InputError {
    input_error(
        origin,
        None,
        format!(
            "input is larger than {} MiB",
            MAX_INPUT_BYTES / (1024 * 1024)
        ),
    )
}

/// Files in a directory that configure a build rather than hold objects.
const NOT_MANIFESTS: &[&str] = &[
    "kustomization.yaml",
    "kustomization.yml",
    "values.yaml",
    "values.yml",
    "values.schema.json",
    "Chart.yaml",
];

fn walk(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let origin = dir.display().to_string();
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| input_error(&origin, None, e.to_string()))?;
        for entry in entries {
            let p = entry
                .map_err(|e| input_error(&origin, None, e.to_string()))?
                .path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if p.is_dir() {
                stack.push(p);
            } else if NOT_MANIFESTS.contains(&name) {
                // Build inputs, not objects: found in chart and kustomize directories.
                eprintln!("fipsgate: skipped {} (not a manifest)", p.display());
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(input_error(
            &origin,
            None,
            "no .yaml, .yml or .json files in directory",
        ));
    }
    Ok(files)
}

fn read_file(path: &Path, unsupported: Unsupported) -> Result<Stream, InputError> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| input_error(&origin, None, e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| input_error(&origin, None, e.to_string()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large(&origin));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| input_error(&origin, None, format!("not UTF-8 text: {e}")))?;
    parse_manifests(&text, &origin, unsupported)
}

/// A plain-text table with one row per container; `wide` adds the digest the evidence rests
/// on, the modules' certificates and the reason.
fn table(reports: &[Report], wide: bool) -> String {
    let mut header = vec![
        "NAMESPACE",
        "OBJECT",
        "CONTAINER",
        "IMAGE",
        "COMPONENT",
        "STATUS",
        "EVIDENCE",
    ];
    if wide {
        header.extend(["DIGEST", "CERTIFICATES"]);
    }
    header.push("VERDICT");
    if wide {
        header.push("REASON");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in reports {
        for f in &r.findings {
            let mut row = vec![
                r.namespace.clone(),
                format!("{}/{}", r.kind, r.name),
                format!("{}{}", f.container, kind_suffix(f.kind)),
                f.image.clone(),
                f.component.clone().unwrap_or_else(|| "-".into()),
                f.status.map_or("-".into(), |s| s.to_string()),
                f.evidence.map_or("-".into(), |e| e.to_string()),
            ];
            if wide {
                row.push(f.digest.clone().unwrap_or_else(|| "-".into()));
                row.push(certificates(&f.modules));
            }
            row.push(f.verdict.as_str().into());
            if wide {
                row.push(f.reason.clone().unwrap_or_else(|| "-".into()));
            }
            rows.push(row);
        }
    }
    let mut out = render_table(&rows);
    for r in reports {
        if let Some(m) = &r.message {
            let prefix = if r.outcome == Outcome::Deny {
                "denied"
            } else {
                "would deny"
            };
            out.push_str(&format!("\n{prefix}: {}:{}: {m}", r.origin, r.line));
        }
        for w in &r.warnings {
            out.push_str(&format!("\nwarning: {}/{}: {w}", r.kind, r.name));
        }
    }
    out.push('\n');
    out
}

/// `#5061 active, #4735 historical`, or `-`.
pub(crate) fn certificates(modules: &[ModuleStatus]) -> String {
    if modules.is_empty() {
        return "-".into();
    }
    let all: Vec<String> = modules.iter().map(ModuleStatus::short).collect();
    all.join(", ")
}

fn kind_suffix(kind: ContainerKind) -> &'static str {
    match kind {
        ContainerKind::Init => " (init)",
        ContainerKind::Regular => "",
        ContainerKind::Ephemeral => " (ephemeral)",
        ContainerKind::Volume => " (volume)",
    }
}
