//! `attest`: a scan report made into fipsgate's scan predicate, and the in-toto statement about
//! the exact digest scanned. Pure: reading reports, signing and the registry are the caller's.

use crate::app::ports::Platform;
use crate::attest::{
    AppliedException, FileCounts, InTotoStatement, SCAN_PREDICATE, ScanFinding, ScanPredicate,
    ScannedImage, Scanner, StatementSubject,
};
use crate::domain::fips::{CryptoModule, Status};
use crate::domain::image::Digest;
use crate::scan::{ImageSubject, RULES_VERSION, Report, Verdict};

/// Why a report cannot be attested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    #[error(
        "the report does not say which image it is: give the digest of the manifest scanned (--digest sha256:...)"
    )]
    NoDigest,
    #[error("{0:?} is not a digest (sha256:<64 hex>)")]
    BadDigest(String),
    #[error("the report is of {report}, but {given} was given")]
    DigestMismatch { report: String, given: String },
    #[error("the report does not say when it was scanned (scannedAt): scan again")]
    NoScanTime,
}

/// The image a report is attested for: the report's subject, completed and checked against
/// what the command line says (`--digest`, `--platform`, a digest in the reference).
pub fn subject_of(
    report: &Report,
    reference: &str,
    digest: Option<&str>,
    platform: Option<&str>,
) -> Result<ImageSubject, AttestError> {
    let mut subject = report.image.clone().unwrap_or_else(|| ImageSubject {
        reference: reference.to_string(),
        digest: String::new(),
        platform: None,
        index: None,
    });
    match (subject.digest.is_empty(), digest) {
        (true, None) => return Err(AttestError::NoDigest),
        (true, Some(d)) => subject.digest = d.to_string(),
        (false, Some(d)) if d != subject.digest => {
            return Err(AttestError::DigestMismatch {
                report: subject.digest,
                given: d.to_string(),
            });
        }
        (false, _) => {}
    }
    if Digest::parse(&subject.digest).is_err() {
        return Err(AttestError::BadDigest(subject.digest));
    }
    if subject.platform.is_none() {
        subject.platform = platform.map(str::to_string);
    }
    Ok(subject)
}

/// fipsgate's scan predicate for `report` of `subject`.
pub fn predicate(report: &Report, subject: &ImageSubject) -> Result<ScanPredicate, AttestError> {
    let scanned_at = report.scanned_at.ok_or(AttestError::NoScanTime)?;
    let mut modules: Vec<CryptoModule> = report.modules.clone();
    // An accepted file's module is relied on too (its certificate is judged at admission).
    let accepted = (report.findings.iter())
        .filter(|f| f.exception.is_some())
        .filter_map(|f| f.module.as_ref());
    for m in accepted {
        if !(modules.iter()).any(|k| k.name == m.name && k.certificate == m.certificate) {
            modules.push(m.clone());
        }
    }
    let unpassed = (report.findings.iter())
        .filter(|f| matches!(f.verdict, Verdict::Fail | Verdict::Warn | Verdict::Unknown));
    let findings: Vec<ScanFinding> = unpassed
        .map(|f| ScanFinding {
            path: f.path.clone(),
            verdict: f.verdict.as_str().to_string(),
            rule: f.rule.as_str().to_string(),
            error: f.error.map(|e| e.as_str()),
            reason: f.reason.clone(),
            exception: f.exception.clone(),
        })
        .collect();
    let exceptions = (findings.iter())
        .filter_map(|f| {
            Some(AppliedException {
                path: f.path.clone(),
                error: f.error.clone(),
                reason: f.exception.clone()?,
            })
        })
        .collect();
    let c = &report.counts;
    Ok(ScanPredicate {
        scanner: Scanner {
            name: "fipsgate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: RULES_VERSION.into(),
        },
        image: Some(ScannedImage {
            reference: subject.reference.clone(),
            index: subject.index.clone(),
        }),
        profile: report.profile.as_str().into(),
        platform: subject.platform.clone(),
        status: report.status,
        modules: modules.into_iter().map(Into::into).collect(),
        files: FileCounts {
            scanned: report.files_scanned,
            judged: report.findings.len(),
            pass: c.pass,
            warn: c.warn,
            fail: c.fail,
            not_applicable: c.not_applicable,
            unknown: c.unknown,
            excepted: c.excepted,
        },
        findings,
        exceptions,
        date: report.date,
        scanned_at,
    })
}

/// The statement about `digests` (the platform manifest scanned, and the index when the
/// whole index passed), named `name` (`registry/repository`).
pub fn statement(
    name: &str,
    digests: &[&str],
    predicate: ScanPredicate,
) -> InTotoStatement<ScanPredicate> {
    let subject = (digests.iter())
        .map(|d| StatementSubject::new(name, d))
        .collect();
    InTotoStatement::new(subject, SCAN_PREDICATE, predicate)
}

/// Whether the whole index passed: every runnable platform it lists was scanned (a report's
/// subject is that platform's digest) and is `full`.
pub fn index_passed(reports: &[(&ImageSubject, Status)], platforms: &[Platform]) -> bool {
    !platforms.is_empty()
        && platforms.iter().all(|p| {
            (reports.iter()).any(|(s, status)| s.digest == p.digest && *status == Status::Full)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fips::CertificateStatus;
    use crate::scan::{Counts, ErrorName, FileKind, Finding, Profile, Rule};

    const D: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    fn module(cert: &str) -> CryptoModule {
        CryptoModule {
            name: "BoringCrypto".into(),
            version: None,
            standard: "FIPS 140-2".into(),
            certificate: Some(cert.into()),
            certificate_status: CertificateStatus::Active,
            sunset: None,
            build: None,
            previous_certificates: Vec::new(),
        }
    }

    fn finding(path: &str, verdict: Verdict, error: Option<ErrorName>) -> Finding {
        Finding {
            path: path.into(),
            kind: FileKind::Executable,
            arch: None,
            go_version: None,
            link: None,
            crypto: "boringcrypto".into(),
            rule: Rule::G6,
            verdict,
            error,
            reason: "a reason".into(),
            module: None,
            exception: None,
        }
    }

    fn report() -> Report {
        let mut accepted = finding(
            "/usr/local/bin/old",
            Verdict::Warn,
            Some(ErrorName::CertificateHistorical),
        );
        accepted.module = Some(module("3678"));
        accepted.exception = Some("140-2 until replaced".into());
        let mut pass = finding("/usr/local/bin/app", Verdict::Pass, None);
        pass.module = Some(module("4735"));
        Report {
            image: None,
            date: Some(jiff::civil::date(2026, 11, 28)),
            scanned_at: Some("2026-11-28T12:00:00Z".parse().unwrap()),
            status: Status::Partial,
            profile: Profile::VendorStaticBoring,
            modules: vec![module("4735")],
            counts: Counts {
                pass: 1,
                warn: 1,
                not_applicable: 1,
                excepted: 1,
                ..Counts::default()
            },
            files_scanned: 7,
            findings: vec![
                accepted,
                pass,
                finding("/bin/sh", Verdict::NotApplicable, None),
            ],
        }
    }

    /// The predicate says everything a summary of a scan needs: scanner and rules, profile,
    /// platform, status, the modules relied on (an accepted file's too), counts, the files
    /// that did not pass and the exceptions that accepted them.
    #[test]
    fn a_report_becomes_the_scan_predicate() {
        let r = report();
        let s = subject_of(&r, "r.io/app:1", Some(D), Some("linux/amd64")).unwrap();
        let p = predicate(&r, &s).unwrap();
        assert_eq!(
            (p.scanner.name.as_str(), p.scanner.rules.as_str()),
            ("fipsgate", RULES_VERSION)
        );
        assert_eq!(p.scanner.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(
            (p.profile.as_str(), p.platform.as_deref()),
            ("vendor-static-boring", Some("linux/amd64"))
        );
        assert_eq!(p.status, Status::Partial);
        let certs: Vec<_> = p.modules.iter().map(|m| m.certificate.as_deref()).collect();
        assert_eq!(certs, [Some("4735"), Some("3678")]);
        assert_eq!(
            (p.files.scanned, p.files.judged, p.files.excepted),
            (7, 3, 1)
        );
        assert_eq!(p.findings.len(), 1);
        assert_eq!(
            p.findings[0].error.as_deref(),
            Some("CertificateHistorical")
        );
        assert_eq!(p.findings[0].rule, "G6");
        assert_eq!(p.exceptions[0].reason, "140-2 until replaced");
        assert_eq!(p.image.as_ref().unwrap().reference, "r.io/app:1");
        let st = statement("r.io/app", &[D], p);
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(json["predicateType"], SCAN_PREDICATE);
        assert_eq!(
            json["subject"][0]["digest"]["sha256"],
            D.trim_start_matches("sha256:")
        );
        let mut unstamped = report();
        unstamped.scanned_at = None;
        assert_eq!(
            predicate(&unstamped, &s).unwrap_err(),
            AttestError::NoScanTime
        );
    }

    #[test]
    fn the_subject_is_the_digest_scanned() {
        let mut r = report();
        assert_eq!(
            subject_of(&r, "r.io/app:1", None, None).unwrap_err(),
            AttestError::NoDigest
        );
        assert!(matches!(
            subject_of(&r, "r.io/app:1", Some("sha256:beef"), None),
            Err(AttestError::BadDigest(_))
        ));
        r.image = Some(ImageSubject {
            reference: "r.io/app:1".into(),
            digest: D.into(),
            platform: Some("linux/arm64".into()),
            index: None,
        });
        let s = subject_of(&r, "r.io/app:2", None, Some("linux/amd64")).unwrap();
        assert_eq!(
            (s.digest.as_str(), s.platform.as_deref()),
            (D, Some("linux/arm64"))
        );
        let other = format!("sha256:{}", "1".repeat(64));
        assert!(matches!(
            subject_of(&r, "r.io/app:1", Some(&other), None),
            Err(AttestError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn the_index_passes_only_when_every_platform_is_full() {
        let sub = |d: &str| ImageSubject {
            reference: "r.io/app:1".into(),
            digest: d.into(),
            platform: None,
            index: Some("sha256:ix".into()),
        };
        let (a, b) = (sub("sha256:a"), sub("sha256:b"));
        let platforms = |ds: &[&str]| -> Vec<Platform> {
            ds.iter()
                .map(|d| Platform {
                    digest: d.to_string(),
                    name: "linux/amd64".into(),
                })
                .collect()
        };
        let both = platforms(&["sha256:a", "sha256:b"]);
        assert!(index_passed(
            &[(&a, Status::Full), (&b, Status::Full)],
            &both
        ));
        assert!(!index_passed(
            &[(&a, Status::Full), (&b, Status::Partial)],
            &both
        ));
        assert!(!index_passed(&[(&a, Status::Full)], &both));
        assert!(!index_passed(&[(&a, Status::Full)], &[]));
    }
}
