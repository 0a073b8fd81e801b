//! Attestation results: what fipsgate knows about an image, and the interface of the sources
//! that produce that knowledge (the catalogue first, signed registry attestations later).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Component, CryptoModule};
use crate::domain::image::ImageRef;

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
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Full => "full",
            Status::Partial => "partial",
            Status::None => "none",
            Status::Unknown => "unknown",
        })
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Evidence::None => "none",
            Evidence::Repository => "repository",
            Evidence::Digest => "digest",
            Evidence::Attestation => "attestation",
        })
    }
}

/// What a source found out about one image. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationResult {
    component: Option<Arc<Component>>,
    status: Status,
    evidence: Evidence,
    /// Why the status is `unknown`, or why stronger evidence was not found.
    problem: Option<Arc<str>>,
    /// Modules and exceptions stated by a signed attestation, when there is one.
    attested: Option<Arc<Attestation>>,
}

/// The modules and exceptions a signed attestation states.
pub type Attestation = (Vec<CryptoModule>, Vec<String>);

/// Equal [`Attestation`]s shared between results: a cache of many images of one component
/// holds the statement once. Bounded; when full it starts over (sharing is only a saving).
#[derive(Default)]
pub struct AttestationPool(std::sync::Mutex<std::collections::HashSet<Arc<Attestation>>>);

impl AttestationPool {
    const MAX: usize = 1024;

    fn share(&self, a: Arc<Attestation>) -> Arc<Attestation> {
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

impl AttestationResult {
    /// The image is this catalogue component, shown by `evidence`.
    pub fn matched(component: Arc<Component>, evidence: Evidence) -> Self {
        Self {
            status: component.status,
            component: Some(component),
            evidence,
            problem: None,
            attested: None,
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
            attested: Some(Arc::new((modules, all))),
        }
    }

    /// The same result, its attested statement shared through `pool`.
    pub fn pooled(mut self, pool: &AttestationPool) -> Self {
        self.attested = self.attested.map(|a| pool.share(a));
        self
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
            (Some(a), _) => &a.0,
            (None, Some(c)) => &c.modules,
            (None, None) => &[],
        }
    }

    /// Parts of the image that are not FIPS-compliant.
    pub fn exceptions(&self) -> &[String] {
        match (&self.attested, self.component.as_deref()) {
            (Some(a), _) => &a.1,
            (None, Some(c)) => &c.exceptions,
            (None, None) => &[],
        }
    }

    /// Why the status is unknown, or why stronger evidence was not found.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
}

/// A boxed future, so sources can be used behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where an image is being admitted: what a source may need to reach its registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupContext {
    pub namespace: String,
    /// The pod's `imagePullSecrets` names.
    pub pull_secrets: Vec<String>,
}

/// Turns an image reference into an attestation result.
pub trait AttestationSource: Send + Sync {
    /// The result when it is known without IO (a catalogue match, a chain that never reaches
    /// a registry), so the hot path needs no future and no timer; `None`: ask [`Self::attest`].
    fn attest_now(&self, _image: &ImageRef) -> Option<AttestationResult> {
        None
    }

    fn attest<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
    ) -> BoxFuture<'a, AttestationResult>;
}

impl AttestationSource for Catalog {
    fn attest_now(&self, image: &ImageRef) -> Option<AttestationResult> {
        Some(self.lookup(image))
    }

    fn attest<'a>(
        &'a self,
        image: &'a ImageRef,
        _ctx: &'a LookupContext,
    ) -> BoxFuture<'a, AttestationResult> {
        Box::pin(std::future::ready(self.lookup(image)))
    }
}
