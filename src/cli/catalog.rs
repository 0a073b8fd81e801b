//! `fipsgate catalog`: the effective component catalogue.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::catalog::Catalog;
use crate::config::Loaded;

use super::table::render_table;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CatalogOutput {
    Table,
    Yaml,
    Json,
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

impl CatalogArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let Self { config, output } = self;
        let catalog = Loaded::from_file(config.as_deref())?.catalog;
        match output {
            CatalogOutput::Yaml => print!("{}", serde_saphyr::to_string(catalog.as_file())?),
            CatalogOutput::Json => {
                println!("{}", serde_json::to_string_pretty(catalog.as_file())?)
            }
            CatalogOutput::Table => print!("{}", table(&catalog)?),
        }
        Ok(())
    }
}

/// One row per component, then the registry roots and mirrors.
fn table(catalog: &Catalog) -> anyhow::Result<String> {
    let mut rows =
        vec![["ID", "NAME", "CATEGORY", "STATUS", "IMAGES", "CERTIFICATES"].map(String::from)];
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
    let mut out = render_table(&rows);
    let f = catalog.as_file();
    out.push_str(&format!("\nregistry roots: {}\n", f.registries.join(", ")));
    for m in &f.mirrors {
        out.push_str(&format!("mirror: {} -> {}\n", m.mirror, m.original));
    }
    Ok(out)
}
