//! The source chain a command judges with: offline (the catalogue: pins and patterns), or with
//! `--registry` the chain `serve` and `audit` build (attestations from OCI registries as the
//! configuration says, anonymous or with its Docker config credentials). Configured
//! attestations that are not consulted are said on stderr, never silently skipped.

use std::sync::Arc;

use crate::app::chain::{AttestationUse, SourceChain};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::domain::assessment::SourceKind;
use crate::telemetry::metrics::Metrics;

/// What stderr says when the configuration asks for attestations and the command runs offline.
pub const NOT_CONSULTED: &str = "fipsgate: attestations are configured but not consulted (offline); pass --registry to use them";

/// True when the configuration asks registries for attestations.
pub fn attestations_configured(config: &Config) -> bool {
    config.attestations.enabled && config.sources.contains(&SourceKind::Attestations)
}

/// The chain over `catalog`, with registries when `registry` is set and the configuration
/// enables attestations; says on stderr what is not consulted.
pub fn source_chain(
    config: &Config,
    catalog: Catalog,
    registry: bool,
) -> anyhow::Result<(SourceChain, AttestationUse)> {
    let configured = attestations_configured(config);
    let used = AttestationUse::of(configured, registry);
    match used {
        AttestationUse::NotConsulted => eprintln!("{NOT_CONSULTED}"),
        AttestationUse::NotConfigured if registry => eprintln!(
            "fipsgate: --registry: attestations are not enabled in the configuration \
             (attestations.enabled); judged with the catalogue alone"
        ),
        _ => {}
    }
    let chain = if used == AttestationUse::Consulted {
        crate::infra::crypto::install();
        crate::infra::source_chain(config, Arc::new(catalog), Metrics::new().0, None)
            .map_err(|e| anyhow::anyhow!("attestations: {e}"))?
    } else {
        SourceChain::new(
            Arc::new(catalog),
            config.sources.clone(),
            config.evidence.minimum,
            None,
        )
    };
    Ok((chain, used))
}

/// Runs `future` to completion on a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(future))
}
