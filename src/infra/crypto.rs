//! The one cryptographic provider of the process: AWS-LC through aws-lc-rs, its FIPS module
//! when built with the `fips` feature. TLS serving, the Kubernetes and registry clients and
//! attestation signatures all go through it.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use crate::domain::fips::{CertificateStatus, OwnModule};

/// True when this build carries the AWS-LC FIPS module.
pub const FIPS_BUILD: bool = cfg!(feature = "fips");

/// A crate and the version Cargo.lock holds (a test keeps the two equal).
#[derive(Clone, Copy, Debug)]
pub struct Locked {
    pub name: &'static str,
    pub version: &'static str,
}

/// aws-lc-rs, pinned exactly in Cargo.toml.
pub const AWS_LC_RS: Locked = Locked {
    name: "aws-lc-rs",
    version: "1.19.0",
};
/// The crate that builds AWS-LC's FIPS module under the `fips` feature.
pub const FIPS_SYS: Locked = Locked {
    name: "aws-lc-fips-sys",
    version: "0.14.4",
};
/// The crate that builds AWS-LC without the `fips` feature.
pub const NON_FIPS_SYS: Locked = Locked {
    name: "aws-lc-sys",
    version: "0.47.0",
};

/// One line of AWS-LC's FIPS module: the aws-lc-fips-sys versions that build it and its CMVP
/// standing as known when this build was made (aws/aws-lc `crypto/fipsmodule/FIPS.md`; the
/// static library's certificate, which is what aws-lc-fips-sys links).
#[derive(Clone, Copy, Debug)]
pub struct FipsLine {
    /// aws-lc-fips-sys versions starting with this build the line.
    pub crate_series: &'static str,
    /// The module's major version.
    pub major: &'static str,
    pub certificate: Option<&'static str>,
    pub status: CertificateStatus,
}

/// The FIPS lines aws-lc-rs has shipped since its first certificate.
pub const FIPS_LINES: &[FipsLine] = &[
    // AWS-LC-FIPS 2.0, aws-lc-rs < 1.12: #4816 static (#5429 dynamic).
    FipsLine {
        crate_series: "0.12.",
        major: "2",
        certificate: Some("4816"),
        status: CertificateStatus::Active,
    },
    // AWS-LC-FIPS 3.x, aws-lc-rs 1.12 to 1.17 (validated version 3.1.0): #5314 static (#5298 dynamic).
    FipsLine {
        crate_series: "0.13.",
        major: "3",
        certificate: Some("5314"),
        status: CertificateStatus::Active,
    },
    // AWS-LC-FIPS 4.x, aws-lc-rs 1.18 on: tested by a lab, on CMVP's Modules In Process list.
    FipsLine {
        crate_series: "0.14.",
        major: "4",
        certificate: None,
        status: CertificateStatus::InProcess,
    },
];

/// The line aws-lc-fips-sys `version` builds, if known.
pub fn fips_line(version: &str) -> Option<&'static FipsLine> {
    FIPS_LINES
        .iter()
        .find(|l| version.starts_with(l.crate_series))
}

/// The module this process runs on: the linked library's own version, its FIPS mode, and the
/// CMVP standing of its line.
pub fn module() -> OwnModule {
    let library = aws_lc_rs::awslc_version();
    let fips_mode = aws_lc_rs::try_fips_mode().is_ok();
    let sys = if FIPS_BUILD { FIPS_SYS } else { NON_FIPS_SYS };
    let crates = format!(
        "{} {}, {} {}",
        AWS_LC_RS.name, AWS_LC_RS.version, sys.name, sys.version
    );
    if !FIPS_BUILD {
        return OwnModule {
            module: format!("AWS-LC (non-FIPS) {library}"),
            crates,
            fips_mode,
            standard: None,
            certificate: None,
            certificate_status: None,
        };
    }
    let line = fips_line(FIPS_SYS.version);
    OwnModule {
        module: format!("AWS-LC FIPS {library}"),
        crates,
        fips_mode,
        standard: Some("FIPS 140-3".to_string()),
        certificate: line.and_then(|l| l.certificate).map(str::to_string),
        certificate_status: line.map(|l| l.status),
    }
}

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
    use super::*;

    #[test]
    fn the_server_config_reports_the_build_mode() {
        let provider = super::install();
        assert_eq!(provider.fips(), super::FIPS_BUILD);
    }

    #[test]
    fn the_module_report_matches_the_linked_library() {
        let m = module();
        assert_eq!(m.fips_mode, FIPS_BUILD);
        let library = aws_lc_rs::awslc_version();
        let major = library.split('.').next().unwrap();
        if FIPS_BUILD {
            assert_eq!(m.module, format!("AWS-LC FIPS {library}"));
            let line = fips_line(FIPS_SYS.version).expect("the built line is in the table");
            assert_eq!(major, line.major, "aws-lc-fips-sys builds another line");
            assert_eq!(m.certificate_status, Some(line.status));
        } else {
            assert_eq!(m.module, format!("AWS-LC (non-FIPS) {library}"));
            assert_eq!(m.cmvp(), "none: not a FIPS module");
        }
    }

    /// Every `(name, version)` package of Cargo.lock.
    fn locked() -> Vec<(String, String)> {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
            .expect("Cargo.lock");
        let field = |block: &str, key: &str| {
            block.lines().find_map(|l| {
                let v = l.strip_prefix(key)?.strip_prefix(" = ")?;
                Some(v.trim_matches('"').to_string())
            })
        };
        lock.split("[[package]]")
            .filter_map(|b| Some((field(b, "name")?, field(b, "version")?)))
            .collect()
    }

    #[test]
    fn the_table_names_the_versions_cargo_lock_holds() {
        let locked = locked();
        for c in [AWS_LC_RS, FIPS_SYS, NON_FIPS_SYS] {
            let versions: Vec<&str> = locked
                .iter()
                .filter(|(n, _)| n == c.name)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(versions, [c.version], "{} in Cargo.lock", c.name);
        }
    }

    #[test]
    fn the_pinned_fips_crate_builds_a_known_line() {
        let line = fips_line(FIPS_SYS.version).expect("aws-lc-fips-sys line in the table");
        assert_eq!(line.major, "4");
        assert_eq!(
            fips_line("0.13.17").and_then(|l| l.certificate),
            Some("5314")
        );
        assert_eq!(fips_line("0.11.0").map(|l| l.major), None);
    }
}
