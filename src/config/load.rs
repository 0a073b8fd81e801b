//! Start-up loading, the one path every command takes: the configuration file (or the
//! defaults), the rules compiled from it and the effective catalogue. Any error stops the whole
//! load, with the file, line and key it is about.

use std::path::Path;

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

impl Loaded {
    /// Loads a configuration held in memory (an installed ConfigMap, say): `read` gives the
    /// text of each catalogue file it names, as the running fipsgate would read it.
    pub fn from_text(text: &str, origin: &str, read: &FileReader<'_>) -> Result<Self, ConfigError> {
        let config = Config::parse(text, origin)?;
        let rules = config.rules()?;
        let catalog = catalog_with(&config.catalog, read)?;
        Ok(Self {
            config,
            rules,
            catalog,
        })
    }
}

/// Reads a file a configuration names.
pub type FileReader<'a> = dyn Fn(&Path) -> std::io::Result<String> + 'a;

/// The effective catalogue: the embedded default (unless excluded), then each file in order.
pub fn catalog(c: &CatalogConfig) -> Result<Catalog, ConfigError> {
    catalog_with(c, &|p| std::fs::read_to_string(p))
}

fn catalog_with(c: &CatalogConfig, read: &FileReader<'_>) -> Result<Catalog, ConfigError> {
    let mut parts = Vec::new();
    if c.include_default {
        parts.push(("embedded default".to_string(), Catalog::default_file()));
    }
    for path in &c.files {
        parts.push((path.display().to_string(), catalog_file(path, read)?));
    }
    Ok(Catalog::build(parts)?)
}

fn catalog_file(path: &Path, read: &FileReader<'_>) -> Result<CatalogFile, ConfigError> {
    let text = read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(yaml::from_str(&text, &path.display().to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_in_memory_reads_its_catalogue_through_the_reader() {
        let config = "defaults: {enforce: off}\ncatalog: {files: [/etc/fipsgate/catalog.yaml]}\n";
        let read = |p: &Path| match p.to_str() {
            Some("/etc/fipsgate/catalog.yaml") => Ok("components: []\n".to_string()),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "absent")),
        };
        let loaded = Loaded::from_text(config, "ConfigMap x", &read).unwrap();
        assert_eq!(
            loaded.rules.defaults.enforce,
            crate::domain::policy::Level::Off
        );
        let missing = "catalog: {files: [/elsewhere.yaml]}\n";
        let e = Loaded::from_text(missing, "ConfigMap x", &read).unwrap_err();
        assert!(e.to_string().contains("/elsewhere.yaml"), "{e}");
    }
}
