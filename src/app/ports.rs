//! The ports the use cases need, implemented by the adapters in `infra` (and by test doubles).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::attest::Attested;
use crate::catalog::Catalog;
use crate::domain::assessment::Assessment;
use crate::domain::image::ImageRef;
use crate::domain::workload::{Kind, PodSpec};

/// A boxed future, so sources can be used behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where an image is being admitted: what a source may need to reach its registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupContext {
    pub namespace: String,
    /// The pod's `imagePullSecrets` names.
    pub pull_secrets: Vec<String>,
}

/// Turns an image reference into its assessment (the catalogue, a chain of sources).
pub trait AssessmentSource: Send + Sync {
    /// The result when it is known without IO (a catalogue match, a chain that never reaches
    /// a registry), so the hot path needs no future and no timer; `None`: ask [`Self::assess`].
    fn assess_now(&self, _image: &ImageRef) -> Option<Assessment> {
        None
    }

    fn assess<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
    ) -> BoxFuture<'a, Assessment>;

    /// Whether assessing `image` would look it up somewhere (worth warming after a start).
    fn looks_up(&self, image: &ImageRef) -> bool {
        self.assess_now(image).is_none()
    }
}

impl AssessmentSource for Catalog {
    fn assess_now(&self, image: &ImageRef) -> Option<Assessment> {
        Some(self.lookup(image))
    }

    fn assess<'a>(
        &'a self,
        image: &'a ImageRef,
        _ctx: &'a LookupContext,
    ) -> BoxFuture<'a, Assessment> {
        Box::pin(std::future::ready(self.lookup(image)))
    }
}

/// The digests an image reference stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The manifest (or index) digest.
    pub digest: String,
    /// `digest` is a multi-arch index: a node runs one of its platforms.
    pub index: bool,
    /// The index's runnable platform manifests (attestation manifests aside).
    pub platforms: Vec<Platform>,
}

/// A platform manifest of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub digest: String,
    /// `linux/amd64`, `linux/arm/v7`; `unspecified` when the index does not say.
    pub name: String,
}

/// What an image's registry says about its attestations.
#[derive(Clone, Debug)]
pub enum Found {
    /// A verified attestation, as the assessment admissions get.
    Attested(Assessment),
    /// Envelopes were there, none acceptable: the first reason.
    Rejected(String),
    Missing,
}

/// What an image's registry says about it: one cached answer per reference.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// The registry has no manifest by that reference.
    NotFound,
    /// Resolving the reference failed: a look-up failure, never a verdict.
    Unresolved(Arc<str>),
    /// The digest the reference stands for, and what its attestations say (`Err`: they could
    /// not be read, a look-up failure).
    Resolved {
        digest: String,
        found: Result<Found, Arc<str>>,
    },
}

/// Signed attestations in OCI registries (cached and coalesced by the adapter).
pub trait RegistryEvidence: Send + Sync {
    /// Why the registry of `image` is not to be asked, when it is not (it is outside the
    /// registries fipsgate may contact): the image then has no registry evidence, and the
    /// reason is its problem.
    fn declines(&self, _image: &ImageRef) -> Option<String> {
        None
    }

    /// The digest `image` stands for and its attestations, verified; `assess` turns a
    /// verified statement into the image's assessment (what the adapter keeps, without the
    /// digest: the caller adds it).
    fn lookup<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
        assess: &'a (dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> BoxFuture<'a, Lookup>;

    /// The references this source was asked about since it started, with the context of the
    /// first request and how many there were: what the next replica warms.
    fn looked_up(&self) -> Vec<crate::app::warm::WarmTarget> {
        Vec::new()
    }
}

/// One listed object with a pod spec.
#[derive(Clone, Debug)]
pub struct Listed {
    /// `apps/v1`, `batch/v1beta1`, `v1`: as listed from this cluster.
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The controlling owner (`kind`, `uid`), if any.
    pub owner: Option<(String, String)>,
    pub spec: PodSpec,
    /// Pods: each container's `imageID` as the kubelet reports it (what actually runs).
    pub image_ids: BTreeMap<String, String>,
}

/// An image to scan: a reference (pinned to the digest that runs when the cluster says it),
/// with what its registry may need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanTarget {
    pub reference: String,
    /// Where the image runs, and the pod's pull secrets, for the registry's credentials.
    pub context: LookupContext,
}

/// A scan of an image, and whether it was read from the cache of earlier scans.
#[derive(Clone, Debug)]
pub struct ScanResult {
    pub scan: crate::scan::ImageScan,
    pub cached: bool,
}

/// Pulls and scans images (each call one image; the caller bounds how many run at once).
pub trait ImageScanner: Send + Sync {
    fn scan<'a>(&'a self, target: &'a ScanTarget) -> BoxFuture<'a, Result<ScanResult, String>>;
}

/// Lists the pods of a namespace (for warnings when its policy tightens).
pub trait PodLister: Send + Sync {
    /// At most `max` pods; the flag says there were more.
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<(Vec<Listed>, bool), String>>;
}

/// A fixed list of pods (tests, a cluster-less server).
#[derive(Default)]
pub struct StaticPods(pub Vec<Listed>);

impl PodLister for StaticPods {
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<(Vec<Listed>, bool), String>> {
        let all: Vec<_> = self
            .0
            .iter()
            .filter(|p| p.namespace == namespace)
            .cloned()
            .collect();
        let more = all.len() > max;
        Box::pin(std::future::ready(Ok((
            all.into_iter().take(max).collect(),
            more,
        ))))
    }
}

/// A page of listed objects and the token of the next page.
pub type Page = (Vec<Listed>, Option<String>);

/// Why a list failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The cluster does not serve this kind at this version.
    #[error("not served by this cluster")]
    NotServed,
    #[error("{0}")]
    Failed(String),
}

/// What runs in a cluster, listed page by page (`audit`).
pub trait Inventory: Send + Sync {
    /// One page of `kind` at `version` (in every namespace when `namespace` is `None`).
    fn page<'a>(
        &'a self,
        kind: &'a Kind,
        version: &'a str,
        namespace: Option<&'a str>,
        limit: u32,
        continue_token: Option<String>,
    ) -> BoxFuture<'a, Result<Page, ListError>>;

    /// Every namespace with its labels, or only `only` (read by name: a user who may not list
    /// namespaces may still audit the one they work in).
    fn namespaces<'a>(
        &'a self,
        only: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<(String, Labels)>, String>>;
}

/// A namespace's labels.
pub type Labels = std::collections::BTreeMap<String, String>;
