//! The assessment of an image: which FIPS component it is, its status, the evidence that ties
//! it to the component, and where that knowledge may come from.

use std::sync::Arc;

use crate::domain::fips::{Component, CryptoModule, Evidence, Status};

/// What a source found out about one image. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    component: Option<Arc<Component>>,
    status: Status,
    evidence: Evidence,
    /// Why the status is `unknown`, or why stronger evidence was not found.
    problem: Option<Arc<str>>,
    /// Modules and exceptions stated by a signed attestation, when there is one.
    attested: Option<Arc<Statement>>,
    /// The digest the evidence was verified for (an attestation's subject, a pinned digest).
    digest: Option<Arc<str>>,
}

/// The modules and exceptions a signed attestation states.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Statement {
    pub modules: Vec<CryptoModule>,
    pub exceptions: Vec<String>,
    /// What a scan attestation found, when the statement is one.
    pub scan: Option<ScanFacts>,
}

/// What a signed scan of the image found (`fipsgate attest`'s predicate).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanFacts {
    /// The scan's verdict on the image.
    pub status: Status,
    /// `linux/amd64`, when the scan says.
    pub platform: Option<String>,
    /// The link-method profile it was judged under (`any`).
    pub profile: String,
    /// `fipsgate 0.1.0 (rules 2026.11.1)`.
    pub scanner: String,
    pub scanned_at: jiff::Timestamp,
    /// Files that kept the image from `full` and no exception accepted, worst first.
    pub problems: Vec<ScanProblem>,
}

/// A file a scan did not pass.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ScanProblem {
    pub path: String,
    /// `FAIL`, `WARN` or `UNKNOWN`.
    pub verdict: String,
    /// The error name (`GoBoringNotLinked`), when the scan gives one.
    pub error: Option<String>,
}

impl ScanFacts {
    /// How many problems [`Self::found`] names before counting the rest.
    const NAMED: usize = 3;

    /// `scan found GoBoringNotLinked in /app/server, NotDynLinked in /bin/x and 2 more`.
    pub fn found(&self) -> String {
        if self.problems.is_empty() {
            return format!("scan status {}", self.status);
        }
        let named: Vec<String> = (self.problems.iter().take(Self::NAMED))
            .map(|p| format!("{} in {}", p.error.as_deref().unwrap_or(&p.verdict), p.path))
            .collect();
        let more = self.problems.len().saturating_sub(Self::NAMED);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let unknown = match self.status {
            Status::Unknown => " (scan status unknown)",
            _ => "",
        };
        format!("scan found {}{tail}{unknown}", named.join(", "))
    }
}

/// Equal [`Statement`]s shared between results: a cache of many images of one component
/// holds the statement once. Bounded; when full it starts over (sharing is only a saving).
#[derive(Default)]
pub struct StatementPool(std::sync::Mutex<std::collections::HashSet<Arc<Statement>>>);

impl StatementPool {
    const MAX: usize = 1024;

    fn share(&self, a: Arc<Statement>) -> Arc<Statement> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = pool.get(&a) {
            return shared.clone();
        }
        if pool.len() >= Self::MAX {
            pool.clear();
        }
        pool.insert(a.clone());
        a
    }
}

impl Assessment {
    /// The image is this catalogue component, shown by `evidence`.
    pub fn matched(component: Arc<Component>, evidence: Evidence) -> Self {
        Self {
            status: component.status,
            component: Some(component),
            evidence,
            problem: None,
            attested: None,
            digest: None,
        }
    }

    /// The image is this component by a signed attestation stating these modules and
    /// exceptions: the catalogue's status, refined by what was attested (exceptions turn a
    /// `full` component `partial`).
    pub fn attested(
        component: Arc<Component>,
        modules: Vec<CryptoModule>,
        exceptions: Vec<String>,
    ) -> Self {
        let mut status = component.status;
        let mut all = component.exceptions.clone();
        for e in exceptions {
            if !all.contains(&e) {
                all.push(e);
            }
        }
        if status == Status::Full && !all.is_empty() {
            status = Status::Partial;
        }
        let modules = if modules.is_empty() {
            component.modules.clone()
        } else {
            modules
        };
        Self {
            status,
            component: Some(component),
            evidence: Evidence::Attestation,
            problem: None,
            attested: Some(Arc::new(Statement {
                modules,
                exceptions: all,
                scan: None,
            })),
            digest: None,
        }
    }

    /// The image is `component` (a catalogue component, or an application known by its
    /// repository) by a signed scan: the scan's status, with the modules and the exceptions it
    /// states. A scan that is not `full` or `partial` makes the image no FIPS component, with
    /// what the scan found as the problem (never `unknown`: that is a failed look-up).
    pub fn scanned(
        component: Arc<Component>,
        facts: ScanFacts,
        modules: Vec<CryptoModule>,
        exceptions: Vec<String>,
    ) -> Self {
        let (status, problem) = match facts.status {
            Status::Full | Status::Partial => (facts.status, None),
            Status::None | Status::Unknown => (Status::None, Some(facts.found().into())),
        };
        Self {
            status,
            component: Some(component),
            evidence: Evidence::Scan,
            problem,
            attested: Some(Arc::new(Statement {
                modules,
                exceptions,
                scan: Some(facts),
            })),
            digest: None,
        }
    }

    /// What a signed scan found, when the evidence is one.
    pub fn scan(&self) -> Option<&ScanFacts> {
        self.attested.as_ref()?.scan.as_ref()
    }

    /// The same result, its attested statement shared through `pool`.
    pub fn pooled(mut self, pool: &StatementPool) -> Self {
        self.attested = self.attested.map(|a| pool.share(a));
        self
    }

    /// The same result, verified for `digest`.
    pub fn with_digest(mut self, digest: &str) -> Self {
        self.digest = Some(digest.into());
        self
    }

    /// The digest the evidence was verified for, when it rests on one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same result with a note on why stronger evidence is missing.
    pub fn with_problem(mut self, problem: impl Into<Arc<str>>) -> Self {
        self.problem = Some(problem.into());
        self
    }

    /// The image is no component of the catalogue.
    pub fn not_listed() -> Self {
        Self {
            component: None,
            status: Status::None,
            evidence: Evidence::None,
            problem: None,
            attested: None,
            digest: None,
        }
    }

    /// The look-up could not finish (`reason` is shown to the user).
    pub fn unknown(reason: impl Into<Arc<str>>) -> Self {
        Self {
            component: None,
            status: Status::Unknown,
            evidence: Evidence::None,
            problem: Some(reason.into()),
            attested: None,
            digest: None,
        }
    }

    pub fn component(&self) -> Option<&Component> {
        self.component.as_deref()
    }

    /// The component, shared.
    pub fn component_arc(&self) -> Option<Arc<Component>> {
        self.component.clone()
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn evidence(&self) -> Evidence {
        self.evidence
    }

    /// The crypto modules the image is built with.
    pub fn modules(&self) -> &[CryptoModule] {
        match (&self.attested, self.component.as_deref()) {
            (Some(a), _) => &a.modules,
            (None, Some(c)) => &c.modules,
            (None, None) => &[],
        }
    }

    /// Parts of the image that are not FIPS-compliant.
    pub fn exceptions(&self) -> &[String] {
        match (&self.attested, self.component.as_deref()) {
            (Some(a), _) => &a.exceptions,
            (None, Some(c)) => &c.exceptions,
            (None, None) => &[],
        }
    }

    /// Why the status is unknown, or why stronger evidence was not found.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
}

/// One link of the chain of sources an image is assessed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Digests pinned in the catalogue.
    Pins,
    /// Signed attestations in the image's registry.
    Attestations,
    /// Catalogue repository patterns.
    Patterns,
}

impl SourceKind {
    /// The one spelling, as in configuration and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Pins => "pins",
            SourceKind::Attestations => "attestations",
            SourceKind::Patterns => "patterns",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
