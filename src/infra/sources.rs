//! The source chain the configuration asks for, with its registry adapter when attestations
//! are enabled. Key and credential files are read now: a bad one stops start-up.

use std::sync::Arc;

use crate::app::chain::SourceChain;
use crate::app::ports::RegistryEvidence;
use crate::attest::PublicKey;
use crate::catalog::Catalog;
use crate::config::{Config, KeyConfig};
use crate::telemetry::metrics::Metrics;

use super::registry::{Credentials, PullSecrets, Registry, RegistryAttestations};

/// Builds the chain of `config.sources` over `catalog`; `pull_secrets` reads pods' image pull
/// secrets when the configuration asks for them.
pub fn source_chain(
    config: &Config,
    catalog: Arc<Catalog>,
    metrics: Metrics,
    pull_secrets: Option<Arc<dyn PullSecrets>>,
) -> Result<SourceChain, String> {
    let a = &config.attestations;
    let registry = if a.enabled {
        let (call_timeout, cache) = a.durations()?;
        let read =
            |p: &std::path::PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let keys = a
            .keys
            .iter()
            .map(|k| key(k, &read))
            .collect::<Result<Vec<_>, _>>()?;
        let mounted = match &a.docker_config {
            Some(p) => Credentials::from_docker_config(&read(p)?)
                .map_err(|e| format!("{}: {e}", p.display()))?,
            None => Credentials::default(),
        };
        let allowed = a.allowed_registries()?;
        let registry = RegistryAttestations::new(
            Registry::new(&a.insecure_registries, allowed, call_timeout)?,
            keys,
            a.predicate_types.clone(),
            mounted,
            pull_secrets.filter(|_| a.pull_secrets),
            &cache,
            metrics,
        );
        Some(Arc::new(registry) as Arc<dyn RegistryEvidence>)
    } else {
        None
    };
    Ok(SourceChain::new(
        catalog,
        config.sources.clone(),
        config.evidence.minimum,
        registry,
    ))
}

/// A trusted key with its scope; a bare path may vouch for anything, which start-up says.
fn key(
    k: &KeyConfig,
    read: &dyn Fn(&std::path::PathBuf) -> Result<Vec<u8>, String>,
) -> Result<PublicKey, String> {
    let path = k.path().to_path_buf();
    let key = PublicKey::from_pem(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(match k.scope()? {
        Some(scope) => key.scoped(scope),
        None => {
            tracing::warn!(
                key = %path.display(),
                "attestations.keys: an unscoped key may vouch for any component of any image; give it components and repositories"
            );
            key
        }
    })
}
