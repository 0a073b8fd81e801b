//! The FIPS vocabulary: how compliant an image is, how strongly that is shown, and the
//! components and cryptographic modules the catalogue and attestations speak of.

use std::fmt;

use serde::{Deserialize, Serialize};

/// FIPS compliance of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every part uses validated cryptography.
    Full,
    /// Compliant except for the listed exceptions.
    Partial,
    /// Not a FIPS-compliant component.
    None,
    /// Could not be determined (look-up failed or timed out).
    Unknown,
}

/// How strongly an image was tied to its component, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// Nothing ties the image to a component.
    None,
    /// The repository name matches a catalogue pattern.
    Repository,
    /// The image digest is pinned in the catalogue.
    Digest,
    /// A signed attestation bound to the image digest.
    Attestation,
    /// A signed scan attestation bound to the image digest (`fipsgate attest`): what the
    /// image's binaries were found to be, not what the image is said to be.
    Scan,
}

impl Status {
    /// The one spelling, as in catalogues, reports and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Full => "full",
            Status::Partial => "partial",
            Status::None => "none",
            Status::Unknown => "unknown",
        }
    }
}

impl Evidence {
    /// The one spelling, as in configuration, reports and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::None => "none",
            Evidence::Repository => "repository",
            Evidence::Digest => "digest",
            Evidence::Attestation => "attestation",
            Evidence::Scan => "scan",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a component sits in the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// The nodes' operating system (host only).
    Os,
    Core,
    Auxiliary,
    Runtime,
    Cni,
    Csi,
    ManagementPlane,
    /// An application known by a scan of its own image, not by the catalogue.
    Application,
}

/// CMVP status of a module's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateStatus {
    Active,
    Historical,
    Revoked,
    InProcess,
}

impl CertificateStatus {
    /// The one spelling, as in catalogues and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "active",
            CertificateStatus::Historical => "historical",
            CertificateStatus::Revoked => "revoked",
            CertificateStatus::InProcess => "in-process",
        }
    }
}

/// The standard of a module whose attestation does not say which.
pub const UNKNOWN_STANDARD: &str = "unknown";

/// A cryptographic module a component is built with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CryptoModule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `FIPS 140-2`, `FIPS 140-3`, or [`UNKNOWN_STANDARD`] when an attestation does not say.
    pub standard: String,
    /// CMVP certificate number; none while in process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    pub certificate_status: CertificateStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<jiff::civil::Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Earlier certificates of the same module (informational: the current one is judged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_certificates: Vec<String>,
}

/// A CMVP certificate as the catalogue knows it: the table that module statuses are taken
/// from, whatever a catalogue entry or an attestation carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// The CMVP number, without `#`.
    pub number: String,
    pub module: String,
    /// `FIPS 140-2` or `FIPS 140-3`.
    pub standard: String,
    /// The status as recorded; past `sunset` it is historical whatever is recorded.
    pub status: CertificateStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<jiff::civil::Date>,
    /// Where these facts come from.
    pub source: String,
}

impl Certificate {
    /// The status on `today`: past its sunset an active certificate is historical.
    pub fn status_on(&self, today: jiff::civil::Date) -> CertificateStatus {
        dated(self.status, self.sunset, today)
    }
}

fn dated(
    status: CertificateStatus,
    sunset: Option<jiff::civil::Date>,
    today: jiff::civil::Date,
) -> CertificateStatus {
    match (status, sunset) {
        (CertificateStatus::Active, Some(sunset)) if today >= sunset => {
            CertificateStatus::Historical
        }
        (s, _) => s,
    }
}

impl CryptoModule {
    /// The status on `today`: a module past its sunset date is historical.
    pub fn status_on(&self, today: jiff::civil::Date) -> CertificateStatus {
        dated(self.certificate_status, self.sunset, today)
    }

    /// The module with its certificate's facts from `table` (standard, status, sunset), when
    /// the table knows the certificate.
    pub fn certified_by(mut self, table: &[Certificate]) -> Self {
        let known = (self.certificate.as_deref())
            .and_then(|n| table.iter().find(|c| c.number == n.trim_start_matches('#')));
        if let Some(c) = known {
            self.standard = c.standard.clone();
            self.certificate_status = c.status;
            self.sunset = c.sunset;
        }
        self
    }

    /// `#4349 (FIPS 140-2)` or the module name when it has no certificate.
    pub fn label(&self) -> String {
        let standard = match self.standard.as_str() {
            UNKNOWN_STANDARD => "standard unknown",
            s => s,
        };
        match &self.certificate {
            Some(c) => format!("#{c} ({standard})"),
            None => format!("{} ({standard}, no certificate)", self.name),
        }
    }
}

/// The cryptographic module fipsgate itself runs on, with its CMVP standing as known when the
/// build was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnModule {
    /// `AWS-LC FIPS 4.2.0` or `AWS-LC (non-FIPS) 5.12.0`.
    pub module: String,
    /// The crates that build it: `aws-lc-rs 1.19.0, aws-lc-fips-sys 0.14.4`.
    pub crates: String,
    /// The module reports FIPS mode.
    pub fips_mode: bool,
    /// `FIPS 140-3`; none for a module that is not a FIPS module.
    pub standard: Option<String>,
    /// CMVP certificate number; none while in process.
    pub certificate: Option<String>,
    /// None for a module that is not a FIPS module, or a FIPS line this build does not know.
    pub certificate_status: Option<CertificateStatus>,
}

impl OwnModule {
    /// `certificate #5314 (FIPS 140-3, active)`, `in process (FIPS 140-3), no certificate yet`,
    /// or `none: not a FIPS module`.
    pub fn cmvp(&self) -> String {
        let standard = self.standard.as_deref().unwrap_or("FIPS 140-3");
        match (&self.certificate, self.certificate_status) {
            _ if self.standard.is_none() => "none: not a FIPS module".to_string(),
            (Some(c), Some(s)) => format!("certificate #{c} ({standard}, {})", s.as_str()),
            (None, Some(CertificateStatus::InProcess)) => {
                format!("in process ({standard}), no certificate yet")
            }
            (Some(c), None) => format!("certificate #{c} ({standard})"),
            (None, _) => format!("unknown ({standard}): a line this build does not know"),
        }
    }
}

/// One FIPS-compliant component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub category: Category,
    #[serde(default)]
    pub description: String,
    /// The umbrella component this one belongs to (e.g. a CSI sidecar of `longhorn-csi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_of: Option<String>,
    /// Host binaries (containerd, kubelet, ...) are listed but never matched against images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_only: bool,
    /// Repository patterns, relative to every registry root unless they name a registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    pub status: Status,
    /// Parts that are not FIPS-compliant (for `partial` components).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<CryptoModule>,
    /// Image digests known to be this component, whatever repository they are pulled from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<String>,
    /// What the source says of its cryptography when it names no module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto: Option<String>,
    /// Where the component, its status and its patterns come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serde, `Display` and `as_str` spell every value the same way.
    #[test]
    fn one_spelling_per_value() {
        use Evidence as E;
        use Status as S;
        for s in [S::Full, S::Partial, S::None, S::Unknown] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.to_string(), s.as_str());
        }
        for e in [E::None, E::Repository, E::Digest, E::Attestation, E::Scan] {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
            assert_eq!(e.to_string(), e.as_str());
        }
        use CertificateStatus as C;
        for c in [C::Active, C::Historical, C::Revoked, C::InProcess] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    /// The evidence ladder: each rung is stronger than the one before.
    #[test]
    fn evidence_is_ordered_weakest_first() {
        use Evidence as E;
        let ladder = [E::None, E::Repository, E::Digest, E::Attestation, E::Scan];
        assert!(ladder.windows(2).all(|w| w[0] < w[1]), "{ladder:?}");
    }

    #[test]
    fn own_module_cmvp_reads_as_its_standing() {
        let m = |certificate: Option<&str>, status, standard: Option<&str>| OwnModule {
            module: "AWS-LC FIPS 4.2.0".into(),
            crates: "aws-lc-rs 1.19.0, aws-lc-fips-sys 0.14.4".into(),
            fips_mode: true,
            standard: standard.map(Into::into),
            certificate: certificate.map(Into::into),
            certificate_status: status,
        };
        let fips = Some("FIPS 140-3");
        let cases = [
            (
                m(None, Some(CertificateStatus::InProcess), fips),
                "in process (FIPS 140-3), no certificate yet",
            ),
            (
                m(Some("5314"), Some(CertificateStatus::Active), fips),
                "certificate #5314 (FIPS 140-3, active)",
            ),
            (
                m(None, None, fips),
                "unknown (FIPS 140-3): a line this build does not know",
            ),
            (m(None, None, None), "none: not a FIPS module"),
        ];
        for (module, want) in cases {
            assert_eq!(module.cmvp(), want);
        }
    }
}
