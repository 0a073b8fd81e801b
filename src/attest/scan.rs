//! fipsgate's scan predicate (`https://fipsgate.io/attestation/fips-scan/v1`): what
//! `fipsgate scan` found in one image, as `fipsgate attest` signs it and admission reads it.
//! Unknown fields are ignored when read, at every level (in-toto: consumers ignore what they do
//! not recognise); what is required is required.

use serde::{Deserialize, Serialize};

use crate::domain::assessment::{ScanFacts, ScanProblem};
use crate::domain::fips::{CryptoModule, Status};

use super::PredicateModule;

/// The predicate type of a scan attestation.
pub const SCAN_PREDICATE: &str = "https://fipsgate.io/attestation/fips-scan/v1";

/// What a scan of one image found. Its subject (the statement's) is the digest scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanPredicate {
    pub scanner: Scanner,
    /// The image as it was named when scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ScannedImage>,
    /// The link-method profile (`any`, `vendor-static-boring`, `redhat-dynamic-openssl`).
    pub profile: String,
    /// `linux/amd64`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The image's verdict: `full`, `partial`, `none` or `unknown`.
    pub status: Status,
    /// The validated modules the image's passing (and accepted) files rest on.
    #[serde(default)]
    pub modules: Vec<PredicateModule>,
    #[serde(default)]
    pub files: FileCounts,
    /// Every file that did not pass (FAIL, WARN, UNKNOWN), accepted by an exception or not.
    #[serde(default)]
    pub findings: Vec<ScanFinding>,
    /// The exceptions that accepted findings.
    #[serde(default)]
    pub exceptions: Vec<AppliedException>,
    /// The day certificate statuses were evaluated on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<jiff::civil::Date>,
    pub scanned_at: jiff::Timestamp,
}

/// The scanner and its rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scanner {
    /// `fipsgate`.
    pub name: String,
    pub version: String,
    /// The rule set's version (`fipsgate::scan::RULES_VERSION`).
    pub rules: String,
}

/// The image scanned, as named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannedImage {
    pub reference: String,
    /// The index the platform was picked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

/// Files by verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FileCounts {
    /// Regular files looked at.
    pub scanned: usize,
    /// Files (and environment variables) judged.
    pub judged: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub not_applicable: usize,
    pub unknown: usize,
    /// Findings an exception accepted.
    pub excepted: usize,
}

/// A file that did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanFinding {
    pub path: String,
    /// `FAIL`, `WARN` or `UNKNOWN`.
    pub verdict: String,
    /// The rule (`G7`).
    pub rule: String,
    /// The error name (`GoBoringNotLinked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub reason: String,
    /// The exception that accepted it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

/// An exception that accepted a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedException {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub reason: String,
}

const VERDICT_ORDER: [&str; 3] = ["FAIL", "UNKNOWN", "WARN"];

impl ScanPredicate {
    /// What admission keeps of it: the facts, the modules and the exceptions (`/bin/x
    /// (NotDynLinked)`), each module as the predicate states it.
    pub fn into_parts(self) -> (ScanFacts, Vec<CryptoModule>, Vec<String>) {
        let mut open: Vec<&ScanFinding> = (self.findings.iter())
            .filter(|f| f.exception.is_none())
            .collect();
        let rank = |v: &str| VERDICT_ORDER.iter().position(|o| *o == v).unwrap_or(3);
        open.sort_by_key(|f| rank(&f.verdict));
        let problems = (open.into_iter())
            .map(|f| ScanProblem {
                path: f.path.clone(),
                verdict: f.verdict.clone(),
                error: f.error.clone(),
            })
            .collect();
        let exceptions = (self.exceptions.iter())
            .map(|e| match &e.error {
                Some(err) => format!("{} ({err})", e.path),
                None => e.path.clone(),
            })
            .collect();
        let s = &self.scanner;
        let facts = ScanFacts {
            status: self.status,
            platform: self.platform,
            profile: self.profile,
            scanner: format!("{} {} (rules {})", s.name, s.version, s.rules),
            scanned_at: self.scanned_at,
            problems,
        };
        let modules = self.modules.into_iter().map(CryptoModule::from).collect();
        (facts, modules, exceptions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::tests::{DIGEST, TestKey, envelope, statement};
    use crate::attest::{Rejection, verify};
    use crate::domain::fips::CertificateStatus;

    pub fn predicate(status: Status) -> ScanPredicate {
        let finding =
            |path: &str, verdict: &str, error: &str, exception: Option<&str>| ScanFinding {
                path: path.into(),
                verdict: verdict.into(),
                rule: "G7".into(),
                error: Some(error.into()),
                reason: "why".into(),
                exception: exception.map(Into::into),
            };
        ScanPredicate {
            scanner: Scanner {
                name: "fipsgate".into(),
                version: "0.1.0".into(),
                rules: "2026.11.1".into(),
            },
            image: Some(ScannedImage {
                reference: "r.io/app:1".into(),
                index: None,
            }),
            profile: "any".into(),
            platform: Some("linux/amd64".into()),
            status,
            modules: vec![PredicateModule {
                name: "BoringCrypto".into(),
                version: None,
                standard: "FIPS 140-3".into(),
                certificate: Some("4735".into()),
                certificate_status: CertificateStatus::Active,
                sunset: None,
                build: None,
            }],
            files: FileCounts {
                scanned: 3,
                judged: 3,
                fail: 1,
                warn: 1,
                excepted: 1,
                ..FileCounts::default()
            },
            findings: vec![
                finding("/usr/bin/w", "WARN", "ProviderNotValidated", None),
                finding("/sbin/t", "FAIL", "NotDynLinked", Some("no crypto")),
                finding("/app/server", "FAIL", "GoBoringNotLinked", None),
            ],
            exceptions: vec![AppliedException {
                path: "/sbin/t".into(),
                error: Some("NotDynLinked".into()),
                reason: "no crypto".into(),
            }],
            date: Some(jiff::civil::date(2026, 11, 28)),
            scanned_at: "2026-11-28T12:00:00Z".parse().unwrap(),
        }
    }

    /// What is signed is what admission reads: the predicate round-trips through a signed
    /// envelope, and its open findings are the problems, failures first.
    #[test]
    fn a_signed_predicate_is_read_back() {
        let key = TestKey::ecdsa();
        let p = predicate(Status::None);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["scannedAt"], "2026-11-28T12:00:00Z");
        assert_eq!(json["files"]["notApplicable"], 0);
        assert_eq!(
            serde_json::from_value::<ScanPredicate>(json.clone()).unwrap(),
            p
        );
        let env = envelope(&key, "", &statement(DIGEST, SCAN_PREDICATE, json));
        let a = verify(&env, DIGEST, &[key.public()], &[SCAN_PREDICATE.into()]).unwrap();
        assert_eq!(
            (a.component.as_deref(), a.predicate_type.as_str()),
            (None, SCAN_PREDICATE)
        );
        assert_eq!(a.modules[0].certificate.as_deref(), Some("4735"));
        assert_eq!(a.exceptions, ["/sbin/t (NotDynLinked)"]);
        let facts = a.scan.unwrap();
        assert_eq!(facts.status, Status::None);
        assert_eq!(facts.scanner, "fipsgate 0.1.0 (rules 2026.11.1)");
        assert_eq!(
            facts.found(),
            "scan found GoBoringNotLinked in /app/server, ProviderNotValidated in /usr/bin/w"
        );
    }

    /// Extensions are ignored; what is required is not.
    #[test]
    fn unknown_fields_are_ignored_and_required_ones_required() {
        let key = TestKey::ed25519();
        let keys = [key.public()];
        let accepted = [SCAN_PREDICATE.to_string()];
        let mut json = serde_json::to_value(predicate(Status::Full)).unwrap();
        json["x-vendor"] = serde_json::json!({"ci": "run 7"});
        json["findings"][0]["x-line"] = 3.into();
        json["modules"][0]["x-fips-mode"] = true.into();
        let env = envelope(&key, "", &statement(DIGEST, SCAN_PREDICATE, json.clone()));
        let a = verify(&env, DIGEST, &keys, &accepted).unwrap();
        assert_eq!(a.scan.unwrap().status, Status::Full);
        for missing in ["status", "scanner", "scannedAt", "profile"] {
            let mut j = json.clone();
            j.as_object_mut().unwrap().remove(missing);
            let env = envelope(&key, "", &statement(DIGEST, SCAN_PREDICATE, j));
            assert!(
                matches!(verify(&env, DIGEST, &keys, &accepted),
                    Err(Rejection::Statement(e)) if e.contains(missing)),
                "{missing}"
            );
        }
    }

    #[test]
    fn found_names_three_problems_and_counts_the_rest() {
        let mut p = predicate(Status::Unknown);
        p.findings.retain(|f| f.exception.is_none());
        for i in 0..4 {
            let mut f = p.findings[0].clone();
            f.path = format!("/lib/{i}");
            p.findings.push(f);
        }
        let (facts, _, _) = p.into_parts();
        assert_eq!(
            facts.found(),
            "scan found GoBoringNotLinked in /app/server, ProviderNotValidated in /usr/bin/w, \
             ProviderNotValidated in /lib/0 and 3 more (scan status unknown)"
        );
    }
}
