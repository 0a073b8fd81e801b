//! `fipsgate catalog`: the effective component catalogue.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::catalog::{Catalog, Certificate, CertificateStatus, Component, CryptoModule, Mirror};
use crate::config::Loaded;
use crate::domain::image::ImageRef;

use super::output::{Output, document};
use super::table::render_table;

/// `catalog -o`: the shared formats, and the catalogue file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatalogOutput {
    /// Columns for the terminal.
    Table,
    /// The table with more columns (pinned digests, certificates with their sunsets, sources),
    /// and the certificate table.
    Wide,
    /// Pretty-printed JSON, the same document as `yaml`: the catalogue as evaluated on `--date`.
    Json,
    /// YAML, the same document as `json`.
    Yaml,
    /// The effective catalogue as a catalogue file (YAML), to edit and load as a user catalogue.
    File,
}

/// `fipsgate catalog`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub action: Option<CatalogAction>,
    /// Configuration file naming user catalogue files.
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = CatalogOutput::Table)]
    pub output: CatalogOutput,
    /// The day certificate statuses are evaluated on (YYYY-MM-DD; default today, UTC).
    #[arg(long)]
    pub date: Option<jiff::civil::Date>,
}

/// What `fipsgate catalog` does besides printing.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogAction {
    /// What a catalogue change admits or denies: roots, components (with the patterns they now
    /// admit or no longer admit), certificates, and the verdict of each given image. Exit 1
    /// when the catalogues differ.
    Diff(DiffArgs),
}

/// `fipsgate catalog diff OLD NEW`
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The catalogue in use: a file, or `embedded` for the built-in one.
    pub old: String,
    /// The catalogue to take: a file, or `embedded`.
    pub new: String,
    /// Apply each file onto the embedded default, as `catalog.files` does.
    #[arg(long)]
    pub onto_embedded: bool,
    /// An image to judge under both (repeatable).
    #[arg(long = "image")]
    pub images: Vec<String>,
    /// A file of images to judge under both, one per line (`#` comments).
    #[arg(long)]
    pub images_from: Option<PathBuf>,
    /// `table` and `wide` print the same lines; `json` and `yaml` the same document.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl CatalogArgs {
    /// Prints the catalogue, or runs the diff; the exit code follows.
    pub fn run(self) -> anyhow::Result<std::process::ExitCode> {
        let Self {
            action,
            config,
            output,
            date,
        } = self;
        if let Some(CatalogAction::Diff(d)) = action {
            return d.run();
        }
        let catalog = Loaded::from_file(config.as_deref())?.catalog;
        let today = date.unwrap_or_else(crate::app::today_utc);
        super::emit(&match output {
            CatalogOutput::File => serde_saphyr::to_string(catalog.as_file())?,
            CatalogOutput::Json => document(&View::of(&catalog, today), Output::Json)?,
            CatalogOutput::Yaml => document(&View::of(&catalog, today), Output::Yaml)?,
            CatalogOutput::Table => table(&catalog, today, false)?,
            CatalogOutput::Wide => table(&catalog, today, true)?,
        })?;
        Ok(std::process::ExitCode::SUCCESS)
    }
}

impl DiffArgs {
    fn run(self) -> anyhow::Result<std::process::ExitCode> {
        let load = |which: &str| -> anyhow::Result<Catalog> {
            let mut parts = Vec::new();
            if which == "embedded" || self.onto_embedded {
                parts.push(("embedded default".to_string(), Catalog::default_file()));
            }
            if which != "embedded" {
                let text =
                    std::fs::read_to_string(which).map_err(|e| anyhow::anyhow!("{which}: {e}"))?;
                parts.push((
                    which.to_string(),
                    crate::config::yaml::from_str(&text, which)?,
                ));
            }
            Ok(Catalog::build(parts)?)
        };
        let (old, new) = (load(&self.old)?, load(&self.new)?);
        let mut names = self.images.clone();
        if let Some(f) = &self.images_from {
            let text =
                std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            let lines = text
                .lines()
                .map(|l| l.split('\t').next().unwrap_or(l).trim());
            names.extend(
                lines
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        let images = (names.iter())
            .map(|n| ImageRef::parse(n).map_err(|e| anyhow::anyhow!("image {n:?}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let d = crate::catalog::diff(&old, &new, &images);
        super::emit(&match self.output {
            Output::Table | Output::Wide => diff_text(&d),
            structured => document(&d, structured)?,
        })?;
        Ok(if d.is_empty() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(1)
        })
    }
}

/// The diff as lines a reviewer reads.
fn diff_text(d: &crate::catalog::CatalogDiff) -> String {
    let mut out = String::new();
    for r in &d.registries_added {
        out.push_str(&format!("registry root added: {r}\n"));
    }
    for r in &d.registries_removed {
        out.push_str(&format!("registry root removed: {r}\n"));
    }
    for c in &d.components {
        out.push_str(&format!("component {} {}\n", c.id, c.change));
        for p in &c.admits {
            out.push_str(&format!("  admits now: {p}\n"));
        }
        for p in &c.no_longer_admits {
            out.push_str(&format!("  no longer admits: {p}\n"));
        }
        for f in &c.fields {
            out.push_str(&format!("  {f}\n"));
        }
    }
    for c in &d.certificates {
        out.push_str(&format!("certificate #{} {}\n", c.number, c.change));
        for f in &c.fields {
            out.push_str(&format!("  {f}\n"));
        }
    }
    for i in &d.images {
        out.push_str(&format!("image {}: {} -> {}\n", i.image, i.old, i.new));
    }
    if out.is_empty() {
        out.push_str("no differences\n");
    }
    out
}

/// The catalogue as `-o json` shows it: per component its full patterns, its modules with their
/// certificates (status recorded and on the evaluation day, sunset, source) and its source.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct View<'a> {
    evaluated_on: jiff::civil::Date,
    registries: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mirrors: &'a [Mirror],
    certificates: Vec<CertificateView>,
    components: Vec<ComponentView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateView {
    number: String,
    module: String,
    standard: String,
    status: CertificateStatus,
    status_today: CertificateStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    sunset: Option<jiff::civil::Date>,
    source: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ComponentView<'a> {
    #[serde(flatten)]
    component: &'a Component,
    /// The patterns as matched: relative ones under every registry root.
    patterns: Vec<String>,
    #[serde(rename = "moduleCertificates", skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<ModuleView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModuleView {
    module: String,
    certificate: Option<CertificateView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    previous: Vec<CertificateView>,
}

impl<'a> View<'a> {
    fn of(catalog: &'a Catalog, today: jiff::civil::Date) -> Self {
        let cert = |c: &Certificate| CertificateView {
            number: c.number.clone(),
            module: c.module.clone(),
            standard: c.standard.clone(),
            status: c.status,
            status_today: c.status_on(today),
            sunset: c.sunset,
            source: c.source.clone(),
        };
        // A certificate the table does not know is shown as the entry states it.
        let of_number = |m: &CryptoModule, n: &str| match catalog.certificate(n) {
            Some(c) => cert(c),
            None => CertificateView {
                number: n.to_string(),
                module: m.name.clone(),
                standard: m.standard.clone(),
                status: m.certificate_status,
                status_today: m.status_on(today),
                sunset: m.sunset,
                source: "the catalogue entry (not in the certificate table)".into(),
            },
        };
        let module = |m: &CryptoModule| ModuleView {
            module: m.name.clone(),
            certificate: m.certificate.as_deref().map(|n| of_number(m, n)),
            previous: (m.previous_certificates.iter())
                .map(|n| of_number(m, n))
                .collect(),
        };
        Self {
            evaluated_on: today,
            registries: &catalog.as_file().registries,
            mirrors: &catalog.as_file().mirrors,
            certificates: catalog.certificates().iter().map(cert).collect(),
            components: (catalog.components().iter())
                .map(|c| ComponentView {
                    component: c,
                    patterns: catalog.patterns_of(c),
                    certificates: c.modules.iter().map(module).collect(),
                })
                .collect(),
        }
    }
}

/// One row per component, then the registry roots and mirrors; `wide` adds pinned digests,
/// certificate details and sources, and the certificate table.
fn table(catalog: &Catalog, today: jiff::civil::Date, wide: bool) -> anyhow::Result<String> {
    let mut header = vec!["ID", "NAME", "CATEGORY", "STATUS", "IMAGES", "CERTIFICATES"];
    if wide {
        header.extend(["DIGESTS", "SOURCE"]);
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for c in catalog.components() {
        let images = if c.host_only {
            "(host only)".to_string()
        } else if c.images.is_empty() {
            "(none published)".to_string()
        } else {
            c.images.join(" ")
        };
        let certs: Vec<String> = (c.modules.iter())
            .map(|m| module_cell(catalog, m, today, wide))
            .collect();
        let mut row = vec![
            c.id.clone(),
            c.name.clone(),
            serde_json::to_value(c.category)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            c.status.to_string(),
            images,
            certs.join(", "),
        ];
        if wide {
            row.push(c.digests.len().to_string());
            row.push(c.source.clone().unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    let mut out = render_table(&rows);
    let f = catalog.as_file();
    out.push_str(&format!("\nregistry roots: {}\n", f.registries.join(", ")));
    for m in &f.mirrors {
        out.push_str(&format!("mirror: {} -> {}\n", m.mirror, m.original));
    }
    if wide {
        out.push('\n');
        out.push_str(&certificate_table(catalog, today));
    }
    Ok(out)
}

/// `#5061 (FIPS 140-3) active`; wide: with its sunset and earlier certificates.
fn module_cell(
    catalog: &Catalog,
    m: &CryptoModule,
    today: jiff::civil::Date,
    wide: bool,
) -> String {
    let mut cell = format!("{} {}", m.label(), m.status_on(today).as_str());
    if !wide {
        return cell;
    }
    if let Some(s) = m.sunset {
        cell.push_str(&format!(" (sunset {s})"));
    }
    for n in &m.previous_certificates {
        let status = catalog
            .certificate(n)
            .map_or("unknown", |c| c.status_on(today).as_str());
        cell.push_str(&format!(
            ", previously #{} {status}",
            n.trim_start_matches('#')
        ));
    }
    cell
}

/// The CMVP certificates the catalogue knows, with their status on `today`.
fn certificate_table(catalog: &Catalog, today: jiff::civil::Date) -> String {
    let mut rows = vec![
        [
            "CERTIFICATE",
            "MODULE",
            "STANDARD",
            "RECORDED",
            "STATUS",
            "SUNSET",
        ]
        .map(String::from),
    ];
    for c in catalog.certificates() {
        rows.push([
            format!("#{}", c.number),
            c.module.clone(),
            c.standard.clone(),
            c.status.as_str().to_string(),
            c.status_on(today).as_str().to_string(),
            c.sunset.map_or("-".into(), |s| s.to_string()),
        ]);
    }
    render_table(&rows)
}
