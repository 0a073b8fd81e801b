//! Start-up loading, the one path every command takes: the configuration file (or the
//! defaults), the rules compiled from it and the effective catalogue. Any error stops the whole
//! load, with the file, line and key it is about.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogFile};
use crate::engine::Rules;

use super::{CatalogConfig, Config, ConfigError, yaml};

/// What a command starts from.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub rules: Rules,
    pub catalog: Catalog,
}

impl Loaded {
    /// Loads `path`, or the defaults when there is none.
    pub fn from_file(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::new(Config::from_file(path)?)
    }

    /// Compiles the rules and loads the catalogue `config` asks for.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let rules = config.rules()?;
        let catalog = catalog(&config.catalog)?;
        Ok(Self {
            config,
            rules,
            catalog,
        })
    }
}

/// The effective catalogue: the embedded default (unless excluded), then each file in order.
pub fn catalog(c: &CatalogConfig) -> Result<Catalog, ConfigError> {
    let mut parts = Vec::new();
    if c.include_default {
        parts.push(("embedded default".to_string(), Catalog::default_file()));
    }
    for path in &c.files {
        parts.push((path.display().to_string(), catalog_file(path)?));
    }
    Ok(Catalog::build(parts)?)
}

fn catalog_file(path: &PathBuf) -> Result<CatalogFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(yaml::from_str(&text, &path.display().to_string())?)
}
