//! `explain`: what fipsgate knows about one image. Its parsed reference, the component it
//! resolves to and how, what each source of the chain said, its modules and their certificates
//! on a day, and what each policy level makes of it, in the engine's own words (the engine is
//! asked; no rule is restated here).

use serde::Serialize;

use crate::app::chain::{AttestationUse, SourceChain, Step};
use crate::app::ports::LookupContext;
use crate::catalog::{Catalog, Category, Mirror};
use crate::domain::assessment::{Assessment, ScanFacts};
use crate::domain::fips::{CertificateStatus, CryptoModule, Evidence, Status};
use crate::domain::image::{ImageRef, ReferenceError};
use crate::domain::policy::{Level, Levels, NamespacePolicy};
use crate::domain::workload::{Container, PodSpec};
use crate::engine::{self, Classification, Rules, Subject, Triage, Verdict};

/// The levels explained, strictest first.
pub const LEVELS: [Level; 3] = [Level::Strict, Level::Baseline, Level::Off];

/// What an explanation needs: the rules, the source chain and the day.
pub struct Explain<'a> {
    pub rules: &'a Rules,
    pub chain: &'a SourceChain,
    /// Whether the chain asks registries, and why not when it does not.
    pub attestations: AttestationUse,
    pub today: jiff::civil::Date,
}

/// An image reference that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image {image:?}: {source}")]
pub struct ExplainError {
    pub image: String,
    pub source: ReferenceError,
}

/// Everything known about one image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The image as given.
    pub image: String,
    pub reference: Reference,
    pub evaluated_on: jiff::civil::Date,
    pub attestations: AttestationUse,
    /// Matched by `exemptions.images`: no source is asked, every level admits it.
    pub exempt: bool,
    /// `None` for an exempt image.
    pub status: Option<Status>,
    pub evidence: Option<Evidence>,
    /// The digest the evidence was verified for (a pin, an attestation's subject).
    pub digest: Option<String>,
    pub component: Option<ComponentMatch>,
    /// Why the status is unknown, or why stronger evidence was not found.
    pub problem: Option<String>,
    /// Each source of the chain in the configured order, and what it said.
    pub chain: Vec<Step>,
    /// What the component says of its cryptography when it names no module.
    pub crypto: Option<String>,
    pub modules: Vec<Module>,
    /// The parts of the image that are not FIPS-compliant.
    pub exceptions: Vec<String>,
    /// What a signed scan of the image found, when the evidence is one.
    pub scan: Option<ScanFacts>,
    pub levels: Vec<LevelVerdict>,
}

/// The parsed, normalised reference.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// `registry/repository[:tag][@digest]`.
    pub normalized: String,
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// The catalogue component the image is, and the pattern its name matches.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentMatch {
    pub id: String,
    pub name: String,
    pub category: Category,
    /// The catalogue's status for the component (an attestation's exceptions may lower the
    /// image's).
    pub status: Status,
    /// The catalogue pattern the repository name matches, if any (whatever the evidence).
    pub pattern: Option<String>,
    /// The mirror the name was read through.
    pub mirror: Option<Mirror>,
    pub part_of: Option<String>,
    pub description: String,
    /// Where the component's facts come from.
    pub source: Option<String>,
}

/// A module the image relies on, with its certificate as of the evaluation day.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    pub name: String,
    pub version: Option<String>,
    pub standard: String,
    pub certificate: Option<String>,
    /// The status on the evaluation day.
    pub status: CertificateStatus,
    /// The status as recorded (an active certificate past its sunset is historical).
    pub recorded: CertificateStatus,
    /// The day an active certificate becomes historical.
    pub sunset: Option<jiff::civil::Date>,
    /// Where the certificate's facts come from.
    pub source: String,
    pub previous: Vec<Previous>,
}

/// An earlier certificate of a module (informational: the current one is judged).
#[derive(Debug, Clone, Serialize)]
pub struct Previous {
    pub number: String,
    pub standard: Option<String>,
    pub status: Option<CertificateStatus>,
    pub sunset: Option<jiff::civil::Date>,
}

/// What a level does to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Admission {
    Admit,
    Deny,
}

impl Admission {
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Admit => "admit",
            Admission::Deny => "deny",
        }
    }
}

/// The engine's verdict on the image in a namespace at one level (enforce, warn and audit
/// alike).
#[derive(Debug, Clone, Serialize)]
pub struct LevelVerdict {
    pub level: Level,
    pub verdict: Admission,
    /// The engine's reason when the level is violated.
    pub reason: Option<String>,
    /// The engine's warnings for the image at this level.
    pub warnings: Vec<String>,
}

impl Explanation {
    /// The verdict at `level`.
    pub fn at(&self, level: Level) -> Option<&LevelVerdict> {
        self.levels.iter().find(|v| v.level == level)
    }
}

impl Explain<'_> {
    /// Explains `image`; an unparsable reference is the one error.
    pub async fn image(&self, image: &str) -> Result<Explanation, ExplainError> {
        let (reference, class, chain) = match self.rules.triage(image, self.today) {
            Triage::Known(Classification::Invalid(source)) => {
                return Err(ExplainError {
                    image: image.to_string(),
                    source,
                });
            }
            Triage::Known(c) => {
                let r = ImageRef::parse(image).map_err(|source| ExplainError {
                    image: image.to_string(),
                    source,
                })?;
                (r, c, Vec::new())
            }
            Triage::Assess(r) => {
                let ctx = LookupContext::default();
                let (a, steps) = self.chain.trace(&r, &ctx, self.no_registry()).await;
                (r, Classification::Assessed(a), steps)
            }
        };
        Ok(self.explanation(image, &reference, class, chain))
    }

    /// What the attestation step says when the chain has no registry.
    fn no_registry(&self) -> &'static str {
        match self.attestations {
            AttestationUse::NotConsulted => {
                "not consulted (offline); pass --registry to use the configured attestations"
            }
            _ => "not configured (attestations.enabled is off)",
        }
    }

    fn explanation(
        &self,
        image: &str,
        r: &ImageRef,
        class: Classification,
        chain: Vec<Step>,
    ) -> Explanation {
        let catalog = self.chain.catalog();
        let levels = self.verdicts(image, r, &class);
        let a = match class {
            Classification::Assessed(a) => Some(a),
            _ => None,
        };
        let a = a.as_ref();
        Explanation {
            image: image.to_string(),
            reference: Reference {
                normalized: r.to_string(),
                registry: r.registry().to_string(),
                repository: r.repository().to_string(),
                tag: r.tag().map(str::to_string),
                digest: r.digest().map(|d| d.to_string()),
            },
            evaluated_on: self.today,
            attestations: self.attestations,
            exempt: a.is_none(),
            status: a.map(Assessment::status),
            evidence: a.map(Assessment::evidence),
            digest: a.and_then(|a| a.digest().map(str::to_string)),
            component: a.and_then(|a| component(catalog, r, a)),
            problem: a.and_then(|a| a.problem().map(str::to_string)),
            chain,
            crypto: a.and_then(|a| a.component()?.crypto.clone()),
            modules: (a.map(Assessment::modules).unwrap_or_default().iter())
                .map(|m| module(catalog, m, a.is_some_and(attested), self.today))
                .collect(),
            exceptions: a.map(|a| a.exceptions().to_vec()).unwrap_or_default(),
            scan: a.and_then(|a| a.scan().cloned()),
            levels,
        }
    }

    /// The engine's verdict at each level, for a pod with this one container.
    fn verdicts(&self, image: &str, r: &ImageRef, class: &Classification) -> Vec<LevelVerdict> {
        let spec = PodSpec {
            containers: vec![Container {
                name: container_name(r),
                image: image.to_string(),
                slot: None,
            }],
            ..PodSpec::default()
        };
        let subject = Subject {
            kind: "Pod",
            namespace: "",
            name: "explain",
            username: "",
            enforceable: true,
            previous: None,
        };
        let classes = std::slice::from_ref(class);
        LEVELS
            .iter()
            .map(|&level| {
                let policy = NamespacePolicy {
                    levels: Levels {
                        enforce: level,
                        warn: level,
                        audit: level,
                    },
                    errors: Vec::new(),
                };
                let d = engine::evaluate(self.rules, &subject, &spec, classes, &policy, self.today);
                let finding = d.findings.first();
                let denied = finding.is_some_and(|f| f.verdict == Verdict::Denied);
                LevelVerdict {
                    level,
                    verdict: if denied {
                        Admission::Deny
                    } else {
                        Admission::Admit
                    },
                    reason: finding.and_then(|f| f.reason.clone()),
                    warnings: d.warnings,
                }
            })
            .collect()
    }
}

/// A container name for the image, as `kubectl run` would pick: its last path component.
fn container_name(r: &ImageRef) -> String {
    let repository = r.repository();
    repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_string()
}

fn attested(a: &Assessment) -> bool {
    matches!(a.evidence(), Evidence::Attestation | Evidence::Scan)
}

fn component(catalog: &Catalog, r: &ImageRef, a: &Assessment) -> Option<ComponentMatch> {
    let c = a.component()?;
    let matched = catalog.pattern_match(r).filter(|m| m.component.id == c.id);
    let (pattern, mirror) = match matched {
        Some(m) => (Some(m.pattern), m.mirror),
        None => (None, None),
    };
    Some(ComponentMatch {
        id: c.id.clone(),
        name: c.name.clone(),
        category: c.category,
        status: c.status,
        pattern,
        mirror,
        part_of: c.part_of.clone(),
        description: c.description.clone(),
        source: c.source.clone(),
    })
}

fn module(catalog: &Catalog, m: &CryptoModule, attested: bool, today: jiff::civil::Date) -> Module {
    let known = m
        .certificate
        .as_deref()
        .and_then(|n| catalog.certificate(n));
    let source = match (known, attested) {
        (Some(c), _) => c.source.clone(),
        (None, true) => "the attestation (the certificate is not in the catalogue's table)".into(),
        (None, false) => "the catalogue entry (the certificate is not in the table)".into(),
    };
    let previous = (m.previous_certificates.iter())
        .map(|n| {
            let c = catalog.certificate(n);
            Previous {
                number: n.trim_start_matches('#').to_string(),
                standard: c.map(|c| c.standard.clone()),
                status: c.map(|c| c.status_on(today)),
                sunset: c.and_then(|c| c.sunset),
            }
        })
        .collect();
    Module {
        name: m.name.clone(),
        version: m.version.clone(),
        standard: m.standard.clone(),
        certificate: m.certificate.clone(),
        status: m.status_on(today),
        recorded: m.certificate_status,
        sunset: m.sunset,
        source,
        previous,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::app::chain::StepOutcome;
    use crate::config::Config;
    use crate::domain::assessment::SourceKind;

    const API: &str = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
    const PINNED: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";
    const DAY: jiff::civil::Date = jiff::civil::date(2026, 11, 28);

    /// The embedded catalogue plus a pinned proxy and a gateway on the FIPS 140-2 #4349.
    fn catalog() -> Arc<Catalog> {
        let user = format!(
            r#"
components:
  - {{id: proxy, name: Proxy, category: auxiliary, status: full, digests: ["{PINNED}"]}}
  - id: gateway
    name: Gateway
    category: management-plane
    images: ["registry.example.com/gw/gateway"]
    status: full
    modules:
      - {{name: Spectro Cloud Cryptographic Module, standard: FIPS 140-2, certificate: "4349", certificateStatus: active}}
"#
        );
        let user = crate::config::yaml::from_str(&user, "user.yaml").unwrap();
        let parts = vec![
            ("default".into(), Catalog::default_file()),
            ("user".into(), user),
        ];
        Arc::new(Catalog::build(parts).unwrap())
    }

    async fn explain(config: &Config, image: &str, today: jiff::civil::Date) -> Explanation {
        let chain = SourceChain::new(
            catalog(),
            config.sources.clone(),
            config.evidence.minimum,
            None,
        );
        let rules = config.rules().unwrap();
        let e = Explain {
            rules: &rules,
            chain: &chain,
            attestations: AttestationUse::NotConfigured,
            today,
        };
        e.image(image).await.unwrap()
    }

    fn verdicts(x: &Explanation) -> Vec<(&'static str, Option<&str>)> {
        (x.levels.iter())
            .map(|v| (v.verdict.as_str(), v.reason.as_deref()))
            .collect()
    }

    fn chain(x: &Explanation) -> Vec<(SourceKind, StepOutcome)> {
        x.chain.iter().map(|s| (s.source, s.outcome)).collect()
    }

    #[tokio::test]
    async fn a_catalogue_image_names_its_pattern_and_passes_every_level() {
        use SourceKind::*;
        use StepOutcome::*;
        let x = explain(&Config::default(), API, DAY).await;
        assert_eq!(x.reference.registry, "us-docker.pkg.dev");
        assert_eq!(
            x.reference.repository,
            "palette-images-fips/k8s/kube-apiserver"
        );
        assert_eq!(x.reference.tag.as_deref(), Some("v1.30.4"));
        let c = x.component.as_ref().unwrap();
        assert_eq!(c.id, "kube-apiserver");
        assert_eq!(
            c.pattern.as_deref(),
            Some("us-docker.pkg.dev/palette-images-fips/**/kube-apiserver")
        );
        assert_eq!(
            (x.status, x.evidence),
            (Some(Status::Full), Some(Evidence::Repository))
        );
        assert_eq!(
            chain(&x),
            [
                (Attestations, NotAsked),
                (Pins, Nothing),
                (Patterns, Answered)
            ]
        );
        assert!(
            x.chain[0].detail.contains("not configured"),
            "{:?}",
            x.chain
        );
        assert!(x.modules.is_empty() && x.crypto.is_some());
        assert_eq!(
            verdicts(&x),
            [("admit", None), ("admit", None), ("admit", None)]
        );
    }

    #[tokio::test]
    async fn a_non_fips_image_is_denied_with_the_engines_reason() {
        let x = explain(&Config::default(), "nginx", DAY).await;
        assert_eq!(x.reference.normalized, "docker.io/library/nginx:latest");
        assert!(x.component.is_none());
        assert_eq!(x.status, Some(Status::None));
        let none = Some("is not a FIPS-compliant component");
        assert_eq!(
            verdicts(&x),
            [("deny", none), ("deny", none), ("admit", None)]
        );
        assert_eq!(
            x.chain.last().unwrap().detail,
            "no catalogue pattern matches docker.io/library/nginx"
        );
    }

    #[tokio::test]
    async fn a_pinned_digest_answers_before_the_patterns() {
        use SourceKind::*;
        use StepOutcome::*;
        let image = format!("registry.example.com/edge/proxy@{PINNED}");
        let x = explain(&Config::default(), &image, DAY).await;
        assert_eq!(x.component.as_ref().unwrap().id, "proxy");
        assert_eq!(x.evidence, Some(Evidence::Digest));
        assert_eq!(x.digest.as_deref(), Some(PINNED));
        assert_eq!(x.reference.tag, None);
        assert_eq!(
            chain(&x),
            [
                (Attestations, NotAsked),
                (Pins, Answered),
                (Patterns, NotAsked)
            ]
        );
        assert_eq!(x.chain[1].detail, format!("{PINNED} is pinned to proxy"));
        assert_eq!(x.levels[0].verdict, Admission::Admit);
        // A required attestation is what the engine then asks for.
        let mut strict = Config::default();
        strict.evidence.minimum = Evidence::Attestation;
        let x = explain(&strict, &image, DAY).await;
        let reason = x.levels[1].reason.as_deref().unwrap();
        assert!(
            reason.starts_with("is matched by digest only; attestation evidence is required"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_look_alike_registry_is_no_component() {
        for image in [
            "evil.io/us-docker.pkg.dev/palette-images-fips/kube-apiserver:v1.30.4",
            "us-docker.pkg.dev/palette-images-fips-evil/kube-apiserver:v1.30.4",
            "docker.io/palette-images-fips/kube-apiserver:v1.30.4",
        ] {
            let x = explain(&Config::default(), image, DAY).await;
            assert!(x.component.is_none(), "{image}");
            assert_eq!(x.levels[0].verdict, Admission::Deny, "{image}");
        }
    }

    #[tokio::test]
    async fn a_certificate_is_judged_as_of_the_day_asked() {
        let image = "registry.example.com/gw/gateway:v1";
        let before = explain(&Config::default(), image, jiff::civil::date(2026, 9, 20)).await;
        let m = &before.modules[0];
        assert_eq!(m.certificate.as_deref(), Some("4349"));
        assert_eq!(
            (m.status, m.sunset),
            (
                CertificateStatus::Active,
                Some(jiff::civil::date(2026, 9, 21))
            )
        );
        assert!(m.source.contains("#4349"), "{}", m.source);
        assert!(
            before.levels.iter().all(|v| v.warnings.is_empty()),
            "{:?}",
            before.levels
        );
        let after = explain(&Config::default(), image, jiff::civil::date(2026, 9, 21)).await;
        let m = &after.modules[0];
        assert_eq!(
            (m.status, m.recorded),
            (CertificateStatus::Historical, CertificateStatus::Active)
        );
        // Warned about by default (strict and baseline alike), denied when configured so.
        assert_eq!(after.levels[0].verdict, Admission::Admit);
        assert!(
            after.levels[0]
                .warnings
                .iter()
                .any(|w| w.contains("#4349 (FIPS 140-2) is historical")),
            "{:?}",
            after.levels[0].warnings
        );
        let mut deny = Config::default();
        deny.certificates.historical = crate::config::CertificateAction::Deny;
        let x = explain(&deny, image, jiff::civil::date(2026, 9, 21)).await;
        assert_eq!(
            verdicts(&x)[..2],
            [
                (
                    "deny",
                    Some("relies on certificate #4349 (fips 140-2) which is historical")
                ),
                (
                    "deny",
                    Some("relies on certificate #4349 (fips 140-2) which is historical")
                ),
            ]
        );
    }

    #[tokio::test]
    async fn partial_exempt_and_malformed_images() {
        let longhorn = "gcr.io/spectro-images-fips/longhornio/longhorn-manager:v1.7";
        let x = explain(&Config::default(), longhorn, DAY).await;
        assert_eq!(x.status, Some(Status::Partial));
        assert_eq!(x.levels[0].verdict, Admission::Deny);
        assert_eq!(x.levels[1].verdict, Admission::Admit);
        assert!(
            x.levels[1].warnings[0].contains("partially FIPS-compliant"),
            "{:?}",
            x.levels
        );
        let mut config = Config::default();
        config.exemptions.images = vec!["nginx".into()];
        let x = explain(&config, "nginx:1.27", DAY).await;
        assert!(x.exempt && x.chain.is_empty() && x.status.is_none());
        assert!(x.levels.iter().all(|v| v.verdict == Admission::Admit));
        let chain = SourceChain::new(catalog(), vec![], Evidence::Repository, None);
        let rules = Rules::default();
        let e = Explain {
            rules: &rules,
            chain: &chain,
            attestations: AttestationUse::NotConsulted,
            today: DAY,
        };
        let err = e.image("Not/Valid").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "image \"Not/Valid\": repository name must be lowercase"
        );
    }

    #[test]
    fn container_names_are_the_last_path_component() {
        for (image, want) in [
            (API, "kube-apiserver"),
            ("nginx", "nginx"),
            (&format!("localhost:5000/a/b@{PINNED}"), "b"),
        ] {
            assert_eq!(container_name(&ImageRef::parse(image).unwrap()), want);
        }
    }
}
