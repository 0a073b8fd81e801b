//! The fipsgate configuration file (YAML): its shape, its durations, and its compilation into
//! the values the engine, the catalogue and the attestation sources use. Unknown keys and wrong
//! types are start-up errors.

mod duration;
mod exemption;
pub mod load;
mod registries;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attest::KeyScope;
use crate::domain::assessment::SourceKind;
use crate::domain::fips::Evidence;
use crate::domain::pattern::{Pattern, PatternError};
use crate::domain::policy::Levels;
pub use crate::domain::policy::{Binding, CertificateAction, LookupFailure, NamespaceFailure};
use crate::engine::{self, Rules};

pub use duration::parse_duration;
pub use exemption::ExemptionEntry;
pub use load::Loaded;
pub use registries::AllowedRegistries;
use yaml::YamlError;

/// The whole configuration; every key is optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What a namespace whose labels cannot be read is evaluated as (`strict` or `defaults`).
    pub on_namespace_failure: NamespaceFailure,
    pub catalog: CatalogConfig,
    /// Where an image's assessment comes from, in order; the first that knows the image wins.
    pub sources: Vec<SourceKind>,
    pub attestations: AttestationsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            defaults: Levels::default(),
            dry_run: false,
            exemptions: Exemptions::default(),
            evidence: EvidenceConfig::default(),
            certificates: CertificatesConfig::default(),
            on_lookup_failure: LookupFailure::default(),
            on_namespace_failure: NamespaceFailure::default(),
            catalog: CatalogConfig::default(),
            sources: vec![
                SourceKind::Attestations,
                SourceKind::Pins,
                SourceKind::Patterns,
            ],
            attestations: AttestationsConfig::default(),
        }
    }
}

/// Signed attestations from OCI registries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AttestationsConfig {
    /// Off by default: the registry is only asked when this is on and keys are given.
    pub enabled: bool,
    /// PEM public keys (ECDSA P-256 as cosign makes them, or Ed25519), each with what it may
    /// vouch for.
    pub keys: Vec<KeyConfig>,
    pub predicate_types: Vec<String>,
    /// `host[:port]`s spoken to over plain HTTP (tests, air-gapped mirrors; never by default).
    pub insecure_registries: Vec<String>,
    /// The registries fipsgate may contact (`host[:port]`, `*.example.com`); empty: any. An
    /// image on another registry gets no registry evidence, without a call.
    pub registries: Vec<String>,
    /// A mounted Docker `config.json` with registry credentials.
    pub docker_config: Option<PathBuf>,
    /// Read the pod's `imagePullSecrets` through the Kubernetes API (needs `get` on secrets).
    pub pull_secrets: bool,
    /// Bound of each registry call (the admission deadline bounds them all).
    pub call_timeout: String,
    pub cache: AttestationCacheConfig,
}

impl Default for AttestationsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            keys: Vec::new(),
            predicate_types: vec![
                crate::attest::FIPSGATE_PREDICATE.to_string(),
                crate::attest::DHI_PREDICATE.to_string(),
                crate::attest::SCAN_PREDICATE.to_string(),
            ],
            insecure_registries: Vec::new(),
            registries: Vec::new(),
            docker_config: None,
            pull_secrets: false,
            call_timeout: "3s".into(),
            cache: AttestationCacheConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AttestationCacheConfig {
    pub max_entries: u64,
    /// Lifetime of a verified attestation result.
    pub result_ttl: String,
    /// Lifetime of a tag → digest resolution.
    pub resolution_ttl: String,
    /// Lifetime of "no attestation" and rejected results.
    pub negative_ttl: String,
    /// Lifetime of a registry error (never a verdict).
    pub error_ttl: String,
}

impl Default for AttestationCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            result_ttl: "10m".into(),
            resolution_ttl: "1m".into(),
            negative_ttl: "30s".into(),
            error_ttl: "5s".into(),
        }
    }
}

/// A trusted key: a bare path (it may vouch for anything; start-up warns), or the key with its
/// scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyConfig {
    Path(PathBuf),
    Scoped(ScopedKey),
}

/// A key and what it may vouch for; an empty list does not restrict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopedKey {
    pub key: PathBuf,
    /// Catalogue component ids.
    #[serde(default)]
    pub components: Vec<String>,
    /// Repository patterns, with their registry (`registry.example.com/team/**`).
    #[serde(default)]
    pub repositories: Vec<String>,
    #[serde(default)]
    pub predicate_types: Vec<String>,
}

impl KeyConfig {
    /// The key file.
    pub fn path(&self) -> &Path {
        match self {
            KeyConfig::Path(p) => p,
            KeyConfig::Scoped(s) => &s.key,
        }
    }

    /// The scope, compiled; `None` for a bare path.
    pub fn scope(&self) -> Result<Option<KeyScope>, String> {
        let KeyConfig::Scoped(s) = self else {
            return Ok(None);
        };
        let repositories = (s.repositories.iter())
            .map(|r| Pattern::new(r).map_err(|e| format!("{}: repositories: {e}", s.key.display())))
            .collect::<Result<_, _>>()?;
        Ok(Some(KeyScope {
            components: s.components.clone(),
            repositories,
            predicate_types: s.predicate_types.clone(),
        }))
    }
}

/// Cache sizes and lifetimes of registry look-ups, parsed.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    pub max_entries: u64,
    pub result_ttl: Duration,
    pub resolution_ttl: Duration,
    pub negative_ttl: Duration,
    pub error_ttl: Duration,
}

impl Default for CacheSettings {
    /// The configuration's defaults (`attestations.cache`), parsed.
    fn default() -> Self {
        AttestationsConfig::default()
            .durations()
            .expect("the default durations parse (tested)")
            .1
    }
}

impl AttestationsConfig {
    /// `registries`, compiled.
    pub fn allowed_registries(&self) -> Result<AllowedRegistries, String> {
        AllowedRegistries::new(&self.registries)
            .map_err(|e| format!("attestations.registries: {e}"))
    }

    /// The per-call timeout and cache settings, parsed.
    pub fn durations(&self) -> Result<(Duration, CacheSettings), String> {
        let d =
            |key: &str, v: &str| parse_duration(v).map_err(|e| format!("attestations.{key}: {e}"));
        Ok((
            d("callTimeout", &self.call_timeout)?,
            CacheSettings {
                max_entries: self.cache.max_entries,
                result_ttl: d("cache.resultTtl", &self.cache.result_ttl)?,
                resolution_ttl: d("cache.resolutionTtl", &self.cache.resolution_ttl)?,
                negative_ttl: d("cache.negativeTtl", &self.cache.negative_ttl)?,
                error_ttl: d("cache.errorTtl", &self.cache.error_ttl)?,
            },
        ))
    }
}

/// Requests that are allowed without evaluation, and always recorded. Each entry is a name
/// alone (open-ended) or `{name, reason, ticket, expires}`: from the day after `expires` it
/// no longer exempts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Exemptions {
    pub namespaces: Vec<ExemptionEntry>,
    pub usernames: Vec<ExemptionEntry>,
    /// Image reference patterns (`docker.io/library/busybox`, `registry.io/tools/**:v1*`).
    pub images: Vec<ExemptionEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// The weakest evidence accepted: `repository`, `digest`, `attestation` or `scan`.
    pub minimum: Evidence,
    /// A reference without the digest its evidence rests on: `require`, `warn` or `off`.
    pub binding: Binding,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            minimum: Evidence::Repository,
            binding: Binding::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CertificatesConfig {
    /// A historical certificate (past its sunset, or moved to the historical list).
    pub historical: CertificateAction,
    /// A module whose validation is still in process (no certificate yet).
    pub in_process: CertificateAction,
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
    #[error(transparent)]
    Parse(#[from] YamlError),
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("exemptions.images: {0}")]
    Exemptions(#[from] PatternError),
}

fn grants(entries: &[ExemptionEntry]) -> Vec<engine::Grant> {
    entries.iter().map(|e| e.0.clone()).collect()
}

impl Config {
    /// The rules the engine applies, compiled from this configuration.
    pub fn rules(&self) -> Result<Rules, PatternError> {
        let e = &self.exemptions;
        Ok(Rules {
            defaults: self.defaults,
            dry_run: self.dry_run,
            minimum_evidence: self.evidence.minimum,
            binding: self.evidence.binding,
            historical: self.certificates.historical,
            in_process: self.certificates.in_process,
            on_lookup_failure: self.on_lookup_failure,
            on_namespace_failure: self.on_namespace_failure,
            exemptions: engine::Exemptions::from_grants(
                grants(&e.namespaces),
                grants(&e.usernames),
                grants(&e.images),
            )?,
        })
    }

    /// [`Self::load`]s `path`, or the defaults when there is none.
    pub fn from_file(path: Option<&Path>) -> Result<Self, ConfigError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

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
                reason: "evidence.minimum must be repository, digest, attestation or scan".into(),
            });
        }
        let invalid = |reason: String| ConfigError::Invalid {
            origin: origin.into(),
            reason,
        };
        let mut seen = Vec::new();
        for s in &config.sources {
            if seen.contains(s) {
                return Err(invalid(format!("sources: {s:?} is listed twice")));
            }
            seen.push(*s);
        }
        if config.sources.is_empty() {
            return Err(invalid("sources: at least one source is needed".into()));
        }
        config.attestations.durations().map_err(invalid)?;
        config.attestations.allowed_registries().map_err(invalid)?;
        for k in &config.attestations.keys {
            k.scope()
                .map_err(|e| invalid(format!("attestations.keys: {e}")))?;
        }
        if config.attestations.enabled && config.attestations.keys.is_empty() {
            return Err(invalid(
                "attestations.enabled needs at least one public key in attestations.keys".into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Level;

    #[test]
    fn default_cache_settings_are_the_configured_defaults() {
        let c = CacheSettings::default();
        assert_eq!(
            (c.max_entries, c.result_ttl, c.resolution_ttl),
            (10_000, Duration::from_secs(600), Duration::from_secs(60))
        );
        assert_eq!(
            (c.negative_ttl, c.error_ttl),
            (Duration::from_secs(30), Duration::from_secs(5))
        );
    }

    #[test]
    fn full_example_parses() {
        let c = Config::parse(
            r#"
defaults: {enforce: strict, warn: strict, audit: baseline}
dryRun: true
exemptions: {namespaces: [kube-system], usernames: [admin], images: [docker.io/library/busybox]}
evidence: {minimum: digest}
certificates: {historical: deny, inProcess: ignore}
onLookupFailure: allow
onNamespaceFailure: defaults
catalog: {includeDefault: false, files: [/etc/fipsgate/catalog.yaml]}
"#,
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.defaults.audit, Level::Baseline);
        assert!(c.dry_run);
        assert_eq!(c.evidence.minimum, Evidence::Digest);
        let scan = Config::parse("evidence: {minimum: scan}\n", "c.yaml").unwrap();
        assert_eq!(scan.evidence.minimum, Evidence::Scan);
        assert!(
            (Config::default().attestations.predicate_types)
                .contains(&crate::attest::SCAN_PREDICATE.to_string())
        );
        assert_eq!(c.certificates.historical, CertificateAction::Deny);
        assert_eq!(c.certificates.in_process, CertificateAction::Ignore);
        assert_eq!(c.on_lookup_failure, LookupFailure::Allow);
        assert_eq!(c.on_namespace_failure, NamespaceFailure::Defaults);
        assert!(!c.catalog.include_default);
        assert_eq!(
            Config::default().on_namespace_failure,
            NamespaceFailure::Strict
        );
    }

    #[test]
    fn keys_are_bare_paths_or_scoped() {
        let c = Config::parse(
            "attestations:\n  keys:\n  - /k/vendor.pub\n  - {key: /k/apps.pub, components: [my-app], repositories: [\"r.io/apps/**\"]}\n",
            "c.yaml",
        )
        .unwrap();
        let keys = &c.attestations.keys;
        assert_eq!(keys[0], KeyConfig::Path("/k/vendor.pub".into()));
        assert_eq!(keys[0].scope(), Ok(None));
        let scope = keys[1].scope().unwrap().unwrap();
        assert_eq!(keys[1].path(), Path::new("/k/apps.pub"));
        assert_eq!(scope.components, ["my-app"]);
        assert_eq!(scope.refuses("p", "r.io/apps/a", Some("my-app")), None);
        assert!(scope.refuses("p", "r.io/evil/a", Some("my-app")).is_some());
        assert!(
            scope
                .refuses("p", "r.io/apps/a", Some("kube-apiserver"))
                .is_some()
        );
        let bad = "attestations:\n  keys: [{key: /k, repositories: [\"Bad Pattern\"]}]\n";
        let e = Config::parse(bad, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("attestations.keys"), "{e}");
    }

    #[test]
    fn allowed_registries_are_checked_at_load() {
        let c = Config::parse(
            "attestations:\n  registries: [r.example.com, \"*.pkg.dev\", \"mirror:5000\"]\n",
            "c.yaml",
        )
        .unwrap();
        let allowed = c.attestations.allowed_registries().unwrap();
        assert!(allowed.allows("us-docker.pkg.dev") && allowed.allows("mirror:5000"));
        assert!(!allowed.allows("ghcr.io"));
        assert!(Config::default().attestations.registries.is_empty());
        let e = Config::parse(
            "attestations:\n  registries: [\"https://r.example.com\"]\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "c.yaml: attestations.registries: \"https://r.example.com\": a registry is host[:port], without a scheme"
        );
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
