//! The command line: `serve`, `check` and `catalog`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::check::{self, Unsupported};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::domain::policy::{Level, NamespacePolicy};
use crate::engine::{Outcome, Rules};

/// Keeps non-FIPS container images out of Kubernetes clusters.
#[derive(Debug, Parser)]
#[command(name = "fipsgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the validating admission webhook.
    Serve(crate::server::ServeArgs),
    /// Check manifests (Pods and workloads) against the FIPS policy before they ship.
    Check(CheckArgs),
    /// Print the effective component catalogue.
    Catalog(CatalogArgs),
    /// Evaluate what already runs in the cluster (pods, and workloads with --workloads).
    Audit(crate::app::audit::AuditArgs),
    /// Write a CA and a serving certificate for the webhook; prints the base64 caBundle.
    Certs(CertsArgs),
}

/// `fipsgate certs`
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory for ca.crt, ca.key, tls.crt and tls.key (created 0700; keys 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Keep the CA in --out and issue a new serving certificate from it.
    #[arg(long)]
    pub renew: bool,
    /// Validity of the serving certificate in days (the CA gets ten times as long).
    #[arg(long, default_value_t = 365)]
    pub days: i64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckOutput {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CatalogOutput {
    Table,
    Yaml,
    Json,
}

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
    /// Skip objects of kinds without a pod spec (Service, ConfigMap, ...) instead of failing.
    #[arg(long)]
    pub ignore_unsupported: bool,
    #[arg(short, long, value_enum, default_value_t = CheckOutput::Table)]
    pub output: CheckOutput,
}

/// A level on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Strict,
    Baseline,
    Off,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Strict => Level::Strict,
            LevelArg::Baseline => Level::Baseline,
            LevelArg::Off => Level::Off,
        }
    }
}

/// `fipsgate catalog`
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Configuration file naming user catalogue files.
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = CatalogOutput::Table)]
    pub output: CatalogOutput,
}

/// Runs the command line; the process exit code follows.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => crate::server::run(args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => run_check(args),
        Command::Catalog(args) => run_catalog(args).map(|()| ExitCode::SUCCESS),
        Command::Certs(args) => run_certs(args).map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => crate::app::audit::run(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("fipsgate: {e:#}");
        ExitCode::from(2)
    })
}

/// Loads the configuration file, or the defaults when none is given.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

/// Loads the catalogue the configuration asks for.
pub fn load_catalog(config: &Config) -> anyhow::Result<Catalog> {
    Ok(Catalog::load(
        config.catalog.include_default,
        &config.catalog.files,
    )?)
}

fn run_check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_ref())?;
    let rules = Rules::new(&config).context("exemptions.images")?;
    let catalog = load_catalog(&config)?;
    let labels: Vec<(&str, &str)> = args
        .namespace_labels
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .with_context(|| format!("--namespace-labels: {kv:?} is not key=value"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut policy = NamespacePolicy::from_labels(labels, &config.defaults);
    for (mode, level) in [
        (crate::domain::policy::Mode::Enforce, args.enforce),
        (crate::domain::policy::Mode::Warn, args.warn),
        (crate::domain::policy::Mode::Audit, args.audit),
    ] {
        if let Some(l) = level {
            policy.levels.set(mode, l.into());
        }
    }
    let unsupported = if args.ignore_unsupported {
        Unsupported::Skip
    } else {
        Unsupported::Error
    };
    let manifests = check::read_inputs(&args.files, unsupported)?;
    let today = crate::today_utc();
    let reports = check::evaluate(
        &manifests,
        &rules,
        &catalog,
        &policy,
        &args.namespace,
        &args.username,
        today,
    );
    match args.output {
        CheckOutput::Table => print!("{}", check::table(&reports)),
        CheckOutput::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
    }
    let denied = reports.iter().any(|r| r.outcome == Outcome::Deny);
    Ok(if denied {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_catalog(args: CatalogArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    let catalog = load_catalog(&config)?;
    match args.output {
        CatalogOutput::Yaml => print!("{}", serde_saphyr::to_string(catalog.as_file())?),
        CatalogOutput::Json => println!("{}", serde_json::to_string_pretty(catalog.as_file())?),
        CatalogOutput::Table => {
            let mut rows = vec![
                ["ID", "NAME", "CATEGORY", "STATUS", "IMAGES", "CERTIFICATES"].map(String::from),
            ];
            for c in catalog.components() {
                let images = if c.host_only {
                    "(host only)".to_string()
                } else if c.images.is_empty() {
                    "(none published)".to_string()
                } else {
                    c.images.join(" ")
                };
                let certs: Vec<String> = c.modules.iter().map(|m| m.label()).collect();
                rows.push([
                    c.id.clone(),
                    c.name.clone(),
                    serde_json::to_value(c.category)?
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    c.status.to_string(),
                    images,
                    certs.join(", "),
                ]);
            }
            print!("{}", render_table(&rows));
            let f = catalog.as_file();
            println!("\nregistry roots: {}", f.registries.join(", "));
            for m in &f.mirrors {
                println!("mirror: {} -> {}", m.mirror, m.original);
            }
        }
    }
    Ok(())
}

fn run_certs(args: CertsArgs) -> anyhow::Result<()> {
    use crate::infra::certs;
    let mut hosts = vec![
        certs::SERVICE_HOST.to_string(),
        "fipsgate.fipsgate-system.svc.cluster.local".to_string(),
    ];
    hosts.extend(args.hosts);
    let ca = if args.renew {
        let read = |name: &str| {
            let p = args.out.join(name);
            std::fs::read_to_string(&p).with_context(|| format!("--renew needs {}", p.display()))
        };
        Some((read(certs::CA_CERT)?, read(certs::CA_KEY)?))
    } else {
        None
    };
    let bundle = certs::generate(
        &hosts,
        ca.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
        args.days,
    )?;
    certs::write(&args.out, &bundle)?;
    use base64::Engine as _;
    println!(
        "{}",
        base64::engine::general_purpose::STANDARD.encode(bundle.ca_cert.as_bytes())
    );
    eprintln!(
        "wrote {}/{{ca.crt,ca.key,tls.crt,tls.key}} for {}",
        args.out.display(),
        hosts.join(", ")
    );
    Ok(())
}

/// Left-aligned columns separated by two spaces; the first row is the header.
pub fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
