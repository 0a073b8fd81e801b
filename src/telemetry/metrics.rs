//! Prometheus metrics. Label values come from small fixed sets: never a pod, namespace or image.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: Operation,
    /// The object's kind, from a fixed set.
    pub kind: ObjectKind,
    pub decision: DecisionLabel,
    /// `enforce`, or `dry-run` under the global dry-run switch.
    pub mode: RunMode,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Operation {
    CREATE,
    UPDATE,
    DELETE,
    CONNECT,
    other,
}

impl Operation {
    pub fn from_request(op: &str) -> Self {
        match op {
            "CREATE" => Self::CREATE,
            "UPDATE" => Self::UPDATE,
            "DELETE" => Self::DELETE,
            "CONNECT" => Self::CONNECT,
            _ => Self::other,
        }
    }
}

/// The kinds fipsgate is registered for; anything else is `other`, so the label stays bounded.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ObjectKind {
    Pod,
    EphemeralContainers,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    PodTemplate,
    Namespace,
    other,
}

impl ObjectKind {
    /// The label of an object kind as the review names it.
    pub fn from_kind(kind: &str) -> Self {
        match kind {
            "Pod" => Self::Pod,
            "EphemeralContainers" => Self::EphemeralContainers,
            "Deployment" => Self::Deployment,
            "StatefulSet" => Self::StatefulSet,
            "DaemonSet" => Self::DaemonSet,
            "ReplicaSet" => Self::ReplicaSet,
            "ReplicationController" => Self::ReplicationController,
            "Job" => Self::Job,
            "CronJob" => Self::CronJob,
            "PodTemplate" => Self::PodTemplate,
            "Namespace" => Self::Namespace,
            _ => Self::other,
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DecisionLabel {
    allow,
    deny,
    would_deny,
    exempt,
    skip,
    invalid,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RunMode {
    enforce,
    dry_run,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub mode: ModeLabel,
    pub level: LevelLabel,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ModeLabel {
    enforce,
    warn,
    audit,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LevelLabel {
    strict,
    baseline,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// A time-boxed exemption: `namespace`, `user` or `image`, and its name or pattern.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExemptionLabels {
    pub kind: &'static str,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `resolution` (tag → digest) or `result` (attestations of a digest).
    pub cache: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    pub source: &'static str,
    pub outcome: &'static str,
}

/// Every metric fipsgate exports.
#[derive(Clone)]
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Histogram,
    pub violations: Family<ViolationLabels, Counter>,
    pub exemptions: Family<KindLabel, Counter>,
    pub exemption_expiry: Family<ExemptionLabels, Gauge>,
    pub errors: Family<KindLabel, Counter>,
    pub ready: Gauge,
    pub fips_mode: Gauge,
    pub cache_requests: Family<CacheLabels, Counter>,
    pub lookups: Family<LookupLabels, Counter>,
    pub lookup_duration: Histogram,
    pub images_pinned: Counter,
    /// Build info, certificate expiry and the process's own resources.
    pub ops: super::process::Ops,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            violations: Family::default(),
            exemptions: Family::default(),
            exemption_expiry: Family::default(),
            errors: Family::default(),
            ready: Gauge::default(),
            fips_mode: Gauge::default(),
            cache_requests: Family::default(),
            lookups: Family::default(),
            lookup_duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            images_pinned: Counter::default(),
            ops: super::process::Ops::register(registry),
        };
        registry.register(
            "fipsgate_admission_requests",
            "Admission requests by operation, decision and mode",
            m.requests.clone(),
        );
        registry.register(
            "fipsgate_admission_duration_seconds",
            "Time to answer an admission request",
            m.duration.clone(),
        );
        registry.register(
            "fipsgate_violations",
            "Containers violating a policy level, by mode and level",
            m.violations.clone(),
        );
        registry.register(
            "fipsgate_exemptions",
            "Exempted requests or images, by kind (namespace, user, image)",
            m.exemptions.clone(),
        );
        registry.register(
            "fipsgate_exemption_expiry_timestamp_seconds",
            "When each time-boxed exemption stops exempting: the start of the day after its last day, UTC",
            m.exemption_expiry.clone(),
        );
        registry.register(
            "fipsgate_errors",
            "Errors by kind (bad_request, invalid_object, timeout, namespace_lookup, tls_reload)",
            m.errors.clone(),
        );
        registry.register(
            "fipsgate_ready",
            "1 when the webhook is ready to serve",
            m.ready.clone(),
        );
        registry.register(
            "fipsgate_fips_mode",
            "1 when TLS and signatures use the AWS-LC FIPS module",
            m.fips_mode.clone(),
        );
        registry.register(
            "fipsgate_attestation_cache_requests",
            "Attestation cache look-ups by cache and result (hit, miss)",
            m.cache_requests.clone(),
        );
        registry.register(
            "fipsgate_attestation_lookups",
            "Registry look-ups by source and outcome",
            m.lookups.clone(),
        );
        registry.register(
            "fipsgate_attestation_lookup_duration_seconds",
            "Time spent on registry look-ups",
            m.lookup_duration.clone(),
        );
        registry.register(
            "fipsgate_images_pinned",
            "Image references rewritten to their verified digest by /mutate",
            m.images_pinned.clone(),
        );
        m
    }

    /// Metrics and the registry that exports them.
    pub fn new() -> (Self, Registry) {
        let mut registry = Registry::default();
        let m = Self::register(&mut registry);
        (m, registry)
    }

    /// Counts an error of a fixed kind.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }
}
