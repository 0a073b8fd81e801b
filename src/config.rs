//! The fipsgate configuration file (YAML). Unknown keys and wrong types are start-up errors.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attestation::Evidence;
use crate::policy::Levels;
use crate::yaml::{self, YamlError};

/// The whole configuration; every key is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Levels for namespaces without fipsgate labels.
    pub defaults: Levels,
    /// Global dry-run: nothing is denied; denials become `[dry-run]` warnings.
    pub dry_run: bool,
    pub exemptions: Exemptions,
    pub evidence: EvidenceConfig,
    pub certificates: CertificatesConfig,
    /// What an image whose look-up failed or timed out meets.
    pub on_lookup_failure: LookupFailure,
    pub catalog: CatalogConfig,
}

/// Requests that are allowed without evaluation, and always recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Exemptions {
    pub namespaces: Vec<String>,
    pub usernames: Vec<String>,
    /// Image reference patterns (`docker.io/library/busybox`, `registry.io/tools/**:v1*`).
    pub images: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// The weakest evidence accepted: `repository`, `digest` or `attestation`.
    pub minimum: Evidence,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            minimum: Evidence::Repository,
        }
    }
}

/// What a historical (or revoked) CMVP certificate does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoricalAction {
    #[default]
    Warn,
    Deny,
    Ignore,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CertificatesConfig {
    pub historical: HistoricalAction,
}

/// Behaviour when an image's status cannot be determined in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LookupFailure {
    /// A violation like any other: denied under enforce, warned under warn.
    #[default]
    Deny,
    /// Never denied: a warning and an audit annotation only.
    Allow,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Start from the embedded default catalogue.
    pub include_default: bool,
    /// User catalogue files, applied in order.
    pub files: Vec<PathBuf>,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            include_default: true,
            files: Vec::new(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(#[from] YamlError),
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses configuration text; `origin` names it in errors. An empty text is the default.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Config = yaml::from_str(text, origin)?;
        if config.evidence.minimum == Evidence::None {
            return Err(ConfigError::Invalid {
                origin: origin.into(),
                reason: "evidence.minimum must be repository, digest or attestation".into(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Level;

    #[test]
    fn full_example_parses() {
        let c = Config::parse(
            r#"
defaults: {enforce: strict, warn: strict, audit: baseline}
dryRun: true
exemptions: {namespaces: [kube-system], usernames: [admin], images: [docker.io/library/busybox]}
evidence: {minimum: digest}
certificates: {historical: deny}
onLookupFailure: allow
catalog: {includeDefault: false, files: [/etc/fipsgate/catalog.yaml]}
"#,
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.defaults.audit, Level::Baseline);
        assert!(c.dry_run);
        assert_eq!(c.evidence.minimum, Evidence::Digest);
        assert_eq!(c.certificates.historical, HistoricalAction::Deny);
        assert_eq!(c.on_lookup_failure, LookupFailure::Allow);
        assert!(!c.catalog.include_default);
    }

    #[test]
    fn partial_sections_keep_defaults() {
        let c = Config::parse("defaults: {enforce: strict}\n", "c.yaml").unwrap();
        assert_eq!(c.defaults.enforce, Level::Strict);
        assert_eq!(c.defaults.warn, Level::Strict);
        assert_eq!(c.defaults.audit, Level::Strict);
        assert_eq!(Config::parse("", "c.yaml").unwrap(), Config::default());
    }

    #[test]
    fn errors_name_key_path_and_line() {
        let cases = [
            ("dryrun: true\n", "dryrun", Some(1)),
            (
                "exemptions:\n  namespace: [a]\n",
                "exemptions.namespace",
                Some(2),
            ),
            ("defaults: {enforce: hard}\n", "defaults.enforce", Some(1)),
            ("dryRun: maybe\n", "dryRun", Some(1)),
            ("evidence: {minimum: none}\n", "evidence.minimum", None),
            (
                "certificates:\n  historical: [warn]\n",
                "certificates.historical",
                Some(2),
            ),
        ];
        for (text, key, line) in cases {
            let e = Config::parse(text, "c.yaml").unwrap_err().to_string();
            assert!(e.starts_with("c.yaml"), "{e}");
            assert!(e.contains(key), "{text:?}: {e}");
            if let Some(l) = line {
                assert!(e.starts_with(&format!("c.yaml:{l}:")), "{text:?}: {e}");
            }
        }
    }
}
