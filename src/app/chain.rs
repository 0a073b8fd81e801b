//! The chain of sources an image is assessed from: catalogue pins, signed registry attestations
//! and catalogue repository patterns, in the configured order. The registry is a port
//! ([`RegistryEvidence`]); what it returns is already verified. [`SourceChain::trace`] also
//! says what each source said (`explain`).

use std::sync::Arc;

use serde::Serialize;

use crate::app::ports::{
    AssessmentSource, BoxFuture, Found, Lookup, LookupContext, RegistryEvidence,
};
use crate::attest::{Attested, SCAN_PREDICATE};
use crate::catalog::Catalog;
use crate::domain::assessment::{Assessment, ScanFacts, SourceKind, StatementPool};
use crate::domain::fips::{Category, Component, Evidence, Status};
use crate::domain::image::ImageRef;

/// The configured chain of sources over one catalogue.
pub struct SourceChain {
    catalog: Arc<Catalog>,
    order: Vec<SourceKind>,
    minimum: Evidence,
    registry: Option<Arc<dyn RegistryEvidence>>,
    pool: StatementPool,
}

/// What one source of the chain said about an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub source: SourceKind,
    pub outcome: StepOutcome,
    pub detail: String,
}

/// How a source took part in an assessment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// It knew the image: its answer is the assessment.
    Answered,
    /// Asked, it knew nothing of the image.
    Nothing,
    /// It found evidence and refused it (an attestation that does not verify).
    Rejected,
    /// The look-up failed.
    Failed,
    /// Not asked: no registry, a registry outside the allowed ones, or an earlier answer.
    NotAsked,
}

impl StepOutcome {
    /// The one spelling, as in `-o json`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Answered => "answered",
            StepOutcome::Nothing => "nothing",
            StepOutcome::Rejected => "rejected",
            StepOutcome::Failed => "failed",
            StepOutcome::NotAsked => "not-asked",
        }
    }
}

/// Whether a command's judgements asked registries for attestations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AttestationUse {
    /// Enabled in the configuration and asked.
    #[serde(rename = "consulted")]
    Consulted,
    /// Enabled in the configuration, but the command ran offline.
    #[serde(rename = "not consulted")]
    NotConsulted,
    /// Not enabled in the configuration.
    #[serde(rename = "not configured")]
    NotConfigured,
}

impl AttestationUse {
    /// From whether the configuration asks for attestations and whether registries are asked.
    pub fn of(configured: bool, online: bool) -> Self {
        match (configured, online) {
            (false, _) => AttestationUse::NotConfigured,
            (true, false) => AttestationUse::NotConsulted,
            (true, true) => AttestationUse::Consulted,
        }
    }
}

/// The look-up state of one assessment: the digest known so far, why stronger evidence is
/// missing, and a registry failure.
struct Pending {
    digest: Option<String>,
    problem: Option<String>,
    error: Option<String>,
}

/// Where the steps of an assessment go: nowhere on the admission path, a list for `explain`.
struct Trace<'a> {
    steps: Option<Vec<Step>>,
    no_registry: &'a str,
}

impl Trace<'_> {
    /// Records a step; `detail` is only worded when steps are kept.
    fn note(&mut self, source: SourceKind, outcome: StepOutcome, detail: impl FnOnce() -> String) {
        if let Some(steps) = &mut self.steps {
            steps.push(Step {
                source,
                outcome,
                detail: detail(),
            });
        }
    }

    /// The step of a catalogue source (pins, patterns).
    fn local(
        &mut self,
        chain: &SourceChain,
        source: SourceKind,
        image: &ImageRef,
        digest: Option<&str>,
        found: bool,
    ) {
        if self.steps.is_none() {
            return;
        }
        let (outcome, detail) = match (source, digest) {
            (SourceKind::Pins, None) => {
                (StepOutcome::Nothing, "the reference has no digest".into())
            }
            (SourceKind::Pins, Some(d)) => match chain.catalog.pinned(d) {
                Some(a) => (
                    StepOutcome::Answered,
                    format!("{d} is pinned to {}", a.component().map_or("", |c| &c.id)),
                ),
                None => (
                    StepOutcome::Nothing,
                    format!("{d} is pinned to no component"),
                ),
            },
            _ => match chain.catalog.pattern_match(image).filter(|_| found) {
                Some(m) => {
                    let through = (m.mirror.as_ref())
                        .map(|m| format!(" (through mirror {} of {})", m.mirror, m.original))
                        .unwrap_or_default();
                    let (name, id) = (image.name(), &m.component.id);
                    (
                        StepOutcome::Answered,
                        format!("{name} matches {}{through}: {id}", m.pattern),
                    )
                }
                None => (
                    StepOutcome::Nothing,
                    format!("no catalogue pattern matches {}", image.name()),
                ),
            },
        };
        self.note(source, outcome, || detail);
    }
}

impl SourceChain {
    /// The chain `order` over `catalog`, with the registry when attestations are enabled.
    pub fn new(
        catalog: Arc<Catalog>,
        order: Vec<SourceKind>,
        minimum: Evidence,
        registry: Option<Arc<dyn RegistryEvidence>>,
    ) -> Self {
        Self {
            catalog,
            order,
            minimum,
            registry,
            pool: StatementPool::default(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The assessment and what each source said (`explain`); `no_registry` is what the
    /// attestation step says when the chain has no registry (attestations off, or offline).
    pub async fn trace(
        &self,
        image: &ImageRef,
        ctx: &LookupContext,
        no_registry: &str,
    ) -> (Assessment, Vec<Step>) {
        let mut trace = Trace {
            steps: Some(Vec::new()),
            no_registry,
        };
        let r = self.assess_image(image, ctx, &mut trace).await;
        (r, trace.steps.unwrap_or_default())
    }

    async fn assess_image(
        &self,
        image: &ImageRef,
        ctx: &LookupContext,
        trace: &mut Trace<'_>,
    ) -> Assessment {
        let mut state = Pending {
            digest: image.digest().map(|d| d.to_string()),
            problem: None,
            error: None,
        };
        for (i, &source) in self.order.iter().enumerate() {
            let found = match source {
                SourceKind::Pins | SourceKind::Patterns => {
                    let r = self.local(source, image, state.digest.as_deref());
                    trace.local(self, source, image, state.digest.as_deref(), r.is_some());
                    r.map(|r| self.finish(r, state.problem.take(), state.error.take()))
                }
                SourceKind::Attestations => self.ask_registry(image, ctx, &mut state, trace).await,
            };
            if let Some(r) = found {
                for &rest in &self.order[i + 1..] {
                    trace.note(rest, StepOutcome::NotAsked, || {
                        format!("not asked: {source} answered first")
                    });
                }
                return r;
            }
        }
        self.finish(Assessment::not_listed(), state.problem, state.error)
    }

    /// The references looked up in registries since start ([`RegistryEvidence::looked_up`]).
    pub fn looked_up(&self) -> Vec<crate::app::warm::WarmTarget> {
        self.registry
            .as_ref()
            .map(|r| r.looked_up())
            .unwrap_or_default()
    }

    /// Whether images may be looked up in registries (there is something to warm).
    pub fn asks_registries(&self) -> bool {
        self.registry.is_some()
    }

    /// The registry's attestations for the image, when it has one that verifies; records
    /// why not in `state` otherwise.
    async fn ask_registry(
        &self,
        image: &ImageRef,
        ctx: &LookupContext,
        state: &mut Pending,
        trace: &mut Trace<'_>,
    ) -> Option<Assessment> {
        use StepOutcome::{Answered, Failed, NotAsked, Nothing, Rejected};
        let at = SourceKind::Attestations;
        let Some(reg) = &self.registry else {
            let why = trace.no_registry;
            trace.note(at, NotAsked, || why.to_string());
            return None;
        };
        if let Some(why) = reg.declines(image) {
            trace.note(at, NotAsked, || why.clone());
            state.problem = Some(why);
            return None;
        }
        let assess = |a| self.attested_result(image, a);
        let (digest, found) = match reg.lookup(image, ctx, &assess).await {
            Lookup::Resolved { digest, found } => (digest, found),
            Lookup::NotFound => {
                let why = format!("image {image} not found in its registry");
                trace.note(at, Nothing, || why.clone());
                state.problem = Some(why);
                return None;
            }
            Lookup::Unresolved(e) => {
                trace.note(at, Failed, || format!("resolving {image}: {e}"));
                state.error = Some(e.to_string());
                return None;
            }
        };
        match found {
            Ok(Found::Attested(r)) => {
                trace.note(at, Answered, || match r.scan() {
                    Some(s) => format!(
                        "a signed scan attestation for {digest} verifies: {}",
                        s.status
                    ),
                    None => format!("a signed attestation for {digest} verifies"),
                });
                return Some(r.with_digest(&digest));
            }
            Ok(Found::Rejected(reason)) => {
                trace.note(at, Rejected, || reason.clone());
                state.problem = Some(reason);
            }
            Ok(Found::Missing) => {
                let why = format!("no FIPS attestation for {digest}");
                trace.note(at, Nothing, || why.clone());
                state.problem = Some(why);
            }
            Err(e) => {
                trace.note(at, Failed, || e.to_string());
                state.error = Some(e.to_string());
            }
        }
        state.digest.get_or_insert(digest);
        None
    }

    /// What a catalogue source (pins, patterns) says about the image, when it matches.
    fn local(
        &self,
        source: SourceKind,
        image: &ImageRef,
        digest: Option<&str>,
    ) -> Option<Assessment> {
        match source {
            SourceKind::Pins => self.catalog.pinned(digest?),
            SourceKind::Patterns => {
                Some(self.catalog.lookup_patterns(image)).filter(|r| r.component().is_some())
            }
            SourceKind::Attestations => None,
        }
    }

    /// A registry error only matters when the evidence found without it is not enough.
    fn finish(&self, r: Assessment, problem: Option<String>, error: Option<String>) -> Assessment {
        match (error, problem) {
            (Some(e), _) if r.evidence() < self.minimum => {
                Assessment::unknown(format!("attestation lookup failed: {e}"))
            }
            (Some(e), _) => r.with_problem(format!("attestation lookup failed: {e}")),
            (None, Some(p)) => r.with_problem(p),
            (None, None) => r,
        }
    }

    fn attested_result(&self, image: &ImageRef, mut a: Attested) -> Assessment {
        if let Some(facts) = a.scan.take() {
            return self.scanned_result(image, a, *facts);
        }
        let component = match &a.component {
            Some(id) => self.catalog.get(id).cloned(),
            None => self.catalog.lookup_patterns(image).component_arc(),
        };
        let Some(c) = component else {
            return Assessment::not_listed().with_problem(match a.component {
                Some(id) => format!("attested component {id:?} is not in the catalogue"),
                None => format!(
                    "attested by {} but no catalogue component matches the image",
                    a.predicate_type
                ),
            });
        };
        // A predicate that names no component is checked against the catalogue's.
        if let Some(refused) = a.refused_by_scope(image.name(), Some(&c.id)) {
            return Assessment::not_listed().with_problem(refused.to_string());
        }
        // The catalogue's certificate table overrides what the attestation says of a known
        // certificate (a status gone stale since it was signed).
        let table = self.catalog.certificates();
        let modules = (a.modules.into_iter())
            .map(|m| m.certified_by(table))
            .collect();
        Assessment::attested(c, modules, a.exceptions).pooled(&self.pool)
    }

    /// A verified scan attestation: the image is the catalogue component its name matches, or
    /// else an application known by its repository; its status is the scan's. The key must
    /// be allowed that component (an application's id is its repository).
    fn scanned_result(&self, image: &ImageRef, a: Attested, facts: ScanFacts) -> Assessment {
        let component = (self.catalog.lookup_patterns(image).component_arc())
            .unwrap_or_else(|| Arc::new(application(image.name(), facts.status)));
        if let Some(refused) = a.refused_by_scope(image.name(), Some(&component.id)) {
            return Assessment::not_listed().with_problem(refused.to_string());
        }
        let table = self.catalog.certificates();
        let modules = (a.modules.into_iter())
            .map(|m| m.certified_by(table))
            .collect();
        Assessment::scanned(component, facts, modules, a.exceptions).pooled(&self.pool)
    }
}

/// An image that is no catalogue component, known by a signed scan of it: its id and name are
/// its repository (`registry.example.com/team/app`).
fn application(repository: &str, status: Status) -> Component {
    Component {
        id: repository.to_string(),
        name: repository.to_string(),
        category: Category::Application,
        description: "an application known by a signed scan of its image".into(),
        part_of: None,
        host_only: false,
        images: Vec::new(),
        status,
        exceptions: Vec::new(),
        modules: Vec::new(),
        digests: Vec::new(),
        crypto: None,
        source: Some(format!("a {SCAN_PREDICATE} attestation")),
    }
}

impl AssessmentSource for SourceChain {
    /// Decided without IO when a catalogue source answers before the registry is asked, or
    /// when there is no registry.
    fn assess_now(&self, image: &ImageRef) -> Option<Assessment> {
        let digest = image.digest().map(|d| d.as_str());
        for &source in &self.order {
            if source == SourceKind::Attestations && self.registry.is_some() {
                return None;
            }
            if let Some(r) = self.local(source, image, digest) {
                return Some(r);
            }
        }
        Some(Assessment::not_listed())
    }

    fn looks_up(&self, image: &ImageRef) -> bool {
        self.assess_now(image).is_none()
            && (self.registry.as_ref()).is_some_and(|r| r.declines(image).is_none())
    }

    fn assess<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
    ) -> BoxFuture<'a, Assessment> {
        Box::pin(async move {
            let mut quiet = Trace {
                steps: None,
                no_registry: "",
            };
            self.assess_image(image, ctx, &mut quiet).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SourceKind::{Attestations, Patterns, Pins};

    const PINNED: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    fn catalog() -> Arc<Catalog> {
        let user = crate::config::yaml::from_str(
            &format!(
                "components: [{{id: proxy, name: Proxy, category: auxiliary, status: full, digests: [\"{PINNED}\"]}}]"
            ),
            "user.yaml",
        )
        .unwrap();
        let default =
            crate::config::yaml::from_str(crate::catalog::DEFAULT_CATALOG, "default").unwrap();
        Arc::new(Catalog::build(vec![("default".into(), default), ("user".into(), user)]).unwrap())
    }

    /// A registry that must never be asked: `assess_now` does not need it, and a declined
    /// one is not contacted.
    struct NeverAsked {
        declined: bool,
    }

    impl RegistryEvidence for NeverAsked {
        fn declines(&self, image: &ImageRef) -> Option<String> {
            (self.declined).then(|| format!("{} is not allowed", image.registry()))
        }

        fn lookup<'a>(
            &'a self,
            _: &'a ImageRef,
            _: &'a LookupContext,
            _: &'a (dyn Fn(Attested) -> Assessment + Send + Sync),
        ) -> BoxFuture<'a, Lookup> {
            unreachable!("the registry was asked")
        }
    }

    /// A registry that resolves every image to one digest and answers with `found`.
    struct Answers(Found);

    impl RegistryEvidence for Answers {
        fn lookup<'a>(
            &'a self,
            _: &'a ImageRef,
            _: &'a LookupContext,
            _: &'a (dyn Fn(Attested) -> Assessment + Send + Sync),
        ) -> BoxFuture<'a, Lookup> {
            Box::pin(std::future::ready(Lookup::Resolved {
                digest: format!("sha256:{}", "b".repeat(64)),
                found: Ok(self.0.clone()),
            }))
        }
    }

    /// The trace names every configured source in order: the one that answered, those asked
    /// that knew nothing, and those not asked; the assessment is the one admission gets.
    #[tokio::test]
    async fn the_trace_says_what_each_source_said() {
        use StepOutcome::*;
        let fips = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
        let image = ImageRef::parse(fips).unwrap();
        let ctx = LookupContext::default();
        let steps = |s: &[Step]| s.iter().map(|s| (s.source, s.outcome)).collect::<Vec<_>>();
        let order = vec![Attestations, Pins, Patterns];
        let missing = Some(Arc::new(Answers(Found::Missing)) as Arc<dyn RegistryEvidence>);
        let chain = SourceChain::new(catalog(), order.clone(), Evidence::None, missing);
        let (r, trace) = chain.trace(&image, &ctx, "unused").await;
        assert_eq!(r, chain.assess(&image, &ctx).await);
        assert_eq!(r.evidence(), Evidence::Repository);
        assert_eq!(
            steps(&trace),
            [
                (Attestations, Nothing),
                (Pins, Nothing),
                (Patterns, Answered)
            ]
        );
        let b = "b".repeat(64);
        assert_eq!(
            trace[0].detail,
            format!("no FIPS attestation for sha256:{b}")
        );
        assert_eq!(
            trace[1].detail,
            format!("sha256:{b} is pinned to no component")
        );
        let component = catalog().get("kube-apiserver").unwrap().clone();
        let attested = Assessment::attested(component, Vec::new(), Vec::new());
        let answers =
            Some(Arc::new(Answers(Found::Attested(attested))) as Arc<dyn RegistryEvidence>);
        let chain = SourceChain::new(catalog(), order.clone(), Evidence::None, answers);
        let (r, trace) = chain.trace(&image, &ctx, "unused").await;
        assert_eq!(r.evidence(), Evidence::Attestation);
        assert_eq!(
            steps(&trace),
            [
                (Attestations, Answered),
                (Pins, NotAsked),
                (Patterns, NotAsked)
            ]
        );
        let offline = SourceChain::new(catalog(), order, Evidence::None, None);
        let (_, trace) = offline.trace(&image, &ctx, "offline").await;
        assert_eq!(
            (trace[0].outcome, trace[0].detail.as_str()),
            (NotAsked, "offline")
        );
    }

    /// A verified scan attestation, signed by a key with `scope` (none: anything).
    fn scan_attested(status: Status, scope: Option<crate::attest::KeyScope>) -> Attested {
        use crate::domain::assessment::ScanProblem;
        let facts = ScanFacts {
            status,
            platform: Some("linux/amd64".into()),
            profile: "any".into(),
            scanner: "fipsgate 0.1.0 (rules 2026.11.1)".into(),
            scanned_at: "2026-11-28T12:00:00Z".parse().unwrap(),
            problems: vec![ScanProblem {
                path: "/app/server".into(),
                verdict: "FAIL".into(),
                error: Some("GoBoringNotLinked".into()),
            }],
        };
        let module = crate::domain::fips::CryptoModule {
            name: "OpenSSL FIPS Provider".into(),
            version: Some("3.1.2".into()),
            standard: "unknown".into(),
            certificate: Some("4985".into()),
            certificate_status: crate::domain::fips::CertificateStatus::InProcess,
            sunset: None,
            build: None,
            previous_certificates: Vec::new(),
        };
        Attested {
            signers: vec![crate::attest::Signer {
                key_id: "k".into(),
                scope: scope.map(Arc::new),
            }],
            predicate_type: SCAN_PREDICATE.into(),
            component: None,
            modules: vec![module],
            exceptions: Vec::new(),
            scan: Some(Box::new(facts)),
        }
    }

    /// A scan of a non-catalogue image makes it an application named by its repository; of a
    /// catalogue image, that component. The status is the scan's, the modules' facts the
    /// certificate table's, and a key scoped to components vouches only for those.
    #[test]
    fn scan_attestations_make_applications_or_catalogue_components() {
        let chain = SourceChain::new(catalog(), vec![Attestations], Evidence::Scan, None);
        let app = ImageRef::parse("r.io/team/app:1").unwrap();
        let r = chain.attested_result(&app, scan_attested(Status::Full, None));
        assert_eq!((r.status(), r.evidence()), (Status::Full, Evidence::Scan));
        let c = r.component().unwrap();
        assert_eq!(
            (c.id.as_str(), c.category),
            ("r.io/team/app", Category::Application)
        );
        // The table knows #4985: its standard and status replace what the scan carried.
        let m = &r.modules()[0];
        assert_eq!(
            (m.standard.as_str(), m.certificate_status),
            ("FIPS 140-3", crate::domain::fips::CertificateStatus::Active)
        );
        let fips = ImageRef::parse("gcr.io/spectro-images-fips/coredns:v1.12.1").unwrap();
        let r = chain.attested_result(&fips, scan_attested(Status::None, None));
        assert_eq!(r.component().unwrap().id, "coredns");
        assert_eq!((r.status(), r.evidence()), (Status::None, Evidence::Scan));
        assert_eq!(
            r.problem(),
            Some("scan found GoBoringNotLinked in /app/server")
        );
        let only_dns = crate::attest::KeyScope {
            components: vec!["coredns".into()],
            ..Default::default()
        };
        let r = chain.attested_result(&app, scan_attested(Status::Full, Some(only_dns.clone())));
        assert_eq!(r.evidence(), Evidence::None);
        assert!(
            r.problem().unwrap().contains("component \"r.io/team/app\""),
            "{r:?}"
        );
        let r = chain.attested_result(&fips, scan_attested(Status::Full, Some(only_dns)));
        assert_eq!(r.evidence(), Evidence::Scan);
    }

    /// A declined registry is no evidence and no failure: the reason is the problem, and the
    /// catalogue still says what it knows.
    #[tokio::test]
    async fn a_declined_registry_is_not_asked_and_says_why() {
        use crate::domain::fips::Status;
        let registry = Some(Arc::new(NeverAsked { declined: true }) as Arc<dyn RegistryEvidence>);
        let chain = SourceChain::new(
            catalog(),
            vec![Attestations, Patterns],
            Evidence::Attestation,
            registry,
        );
        let ctx = LookupContext::default();
        let r = chain
            .assess(&ImageRef::parse("r.io/app:v1").unwrap(), &ctx)
            .await;
        assert_eq!((r.status(), r.evidence()), (Status::None, Evidence::None));
        assert_eq!(r.problem(), Some("r.io is not allowed"));
        let fips = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
        let r = chain.assess(&ImageRef::parse(fips).unwrap(), &ctx).await;
        assert_eq!(r.evidence(), Evidence::Repository);
        assert_eq!(r.problem(), Some("us-docker.pkg.dev is not allowed"));
    }

    /// What is decided without IO: the catalogue sources before the registry, everything
    /// without a registry; `None` sends the image to the registry.
    #[test]
    fn assess_now_stops_where_the_registry_would_be_asked() {
        let fips = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
        let pinned = format!("nginx@{PINNED}");
        let cases: &[(&[SourceKind], bool, &str, Option<Evidence>)] = &[
            (
                &[Pins, Attestations, Patterns],
                false,
                fips,
                Some(Evidence::Repository),
            ),
            (
                &[Pins, Attestations, Patterns],
                false,
                "nginx",
                Some(Evidence::None),
            ),
            (
                &[Pins, Attestations, Patterns],
                true,
                &pinned,
                Some(Evidence::Digest),
            ),
            (&[Pins, Attestations, Patterns], true, fips, None),
            (&[Pins, Attestations, Patterns], true, "nginx", None),
            (
                &[Patterns, Attestations],
                true,
                fips,
                Some(Evidence::Repository),
            ),
            (&[Patterns, Attestations], true, "nginx", None),
            (&[Attestations, Pins], true, &pinned, None),
            (
                &[Attestations, Pins],
                false,
                &pinned,
                Some(Evidence::Digest),
            ),
            (&[Patterns], true, "nginx", Some(Evidence::None)),
        ];
        for &(order, with_registry, image, want) in cases {
            let registry = with_registry
                .then(|| Arc::new(NeverAsked { declined: false }) as Arc<dyn RegistryEvidence>);
            let chain = SourceChain::new(catalog(), order.to_vec(), Evidence::None, registry);
            let got = chain
                .assess_now(&ImageRef::parse(image).unwrap())
                .map(|r| r.evidence());
            assert_eq!(got, want, "{order:?} registry={with_registry} {image}");
        }
    }
}
