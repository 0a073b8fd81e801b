//! The one cryptographic provider of the process: AWS-LC through aws-lc-rs, its FIPS module
//! when built with the `fips` feature. TLS serving, the Kubernetes and registry clients and
//! attestation signatures all go through it.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// True when this build carries the AWS-LC FIPS module.
pub const FIPS_BUILD: bool = cfg!(feature = "fips");

/// The provider of this build: FIPS-approved algorithms only under the `fips` feature.
pub fn provider() -> CryptoProvider {
    #[cfg(feature = "fips")]
    {
        rustls::crypto::default_fips_provider()
    }
    #[cfg(not(feature = "fips"))]
    {
        rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// Installs [`provider`] as the process default (once; later calls keep the first) and
/// returns the one in force.
pub fn install() -> Arc<CryptoProvider> {
    let _ = provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(provider()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_server_config_reports_the_build_mode() {
        let provider = super::install();
        assert_eq!(provider.fips(), super::FIPS_BUILD);
    }
}
