//! Admission: a pod (or a workload's pod template) decided within the request's deadline, and
//! namespace relabels checked against the pods they already hold ([`super::relabel`]).

use std::sync::Arc;

use tokio::time::Instant;

use crate::admission::Pin;
use crate::app::assess::{Pending, TIMEOUT_REASON, classify_now, look_up};
use crate::app::namespaces::NamespaceStore;
use crate::app::ports::{AssessmentSource, LookupContext, PodLister};
use crate::domain::assessment::Assessment;
use crate::domain::policy::{Level, Levels, NamespaceFailure, NamespacePolicy};
use crate::domain::workload::{ContainerKind, PodSpec};
use crate::engine::{self, Classification, Decision, Rules, Subject};

/// What admission decisions need.
pub struct Admission {
    pub rules: Rules,
    pub source: Arc<dyn AssessmentSource>,
    pub namespaces: Arc<NamespaceStore>,
    /// Lists a namespace's pods when its enforce level tightens; `None` without a cluster.
    pub pods: Option<Arc<dyn PodLister>>,
}

/// A decision, and what went wrong on the way to it.
#[derive(Debug)]
pub struct Admitted {
    pub decision: Decision,
    /// Problems the decision was made despite, for the audit record.
    pub errors: Vec<String>,
    /// The namespace's policy could not be read (evaluated as `onNamespaceFailure` says).
    pub namespace_failed: bool,
    /// Images whose look-up outlived the deadline.
    pub timed_out: usize,
}

impl Admission {
    /// Decides `spec` for `subject` before `deadline`.
    pub async fn admit(
        &self,
        subject: &Subject<'_>,
        spec: &PodSpec,
        deadline: Instant,
    ) -> Admitted {
        let (policy, namespace_error) = self.policy(subject.namespace, deadline).await;
        let today = super::today_utc();
        let exempt = self
            .rules
            .exemption(subject.namespace, subject.username, today)
            .is_some();
        let l = policy.levels;
        let judged = [l.enforce, l.warn, l.audit]
            .iter()
            .any(|l| *l != Level::Off);
        let (classes, timed_out) = if exempt {
            (Vec::new(), 0)
        } else if !judged {
            // No level would use a look-up's result: a pod in such a namespace cannot make
            // fipsgate contact a registry of its choosing.
            (self.classify_offline(spec, today), 0)
        } else {
            self.classify_all(subject.namespace, spec, deadline, today)
                .await
        };
        let mut decision = engine::evaluate(&self.rules, subject, spec, &classes, &policy, today);
        let mut errors = Vec::new();
        let namespace_failed = namespace_error.is_some();
        if let Some(e) = namespace_error {
            let applied = match self.rules.on_namespace_failure {
                NamespaceFailure::Strict => "evaluated as strict",
                NamespaceFailure::Defaults => "defaults applied",
            };
            tracing::warn!(error = %e, "namespace policy unavailable; {applied}");
            decision
                .warnings
                .push(format!("namespace policy unavailable, {applied}: {e}"));
            errors.push(e);
        }
        if timed_out > 0 {
            tracing::warn!(images = timed_out, "attestation look-ups timed out");
            errors.push(format!("{TIMEOUT_REASON} for {timed_out} image(s)"));
        }
        Admitted {
            decision,
            errors,
            namespace_failed,
            timed_out,
        }
    }

    /// The references of `spec` to pin to the digest their evidence was verified for (an
    /// attestation, a catalogue pin): what the mutating endpoint rewrites, so that the nodes
    /// pull what was verified. Exempt requests and images are left as they are.
    pub async fn pins(&self, subject: &Subject<'_>, spec: &PodSpec, deadline: Instant) -> Vec<Pin> {
        let today = super::today_utc();
        if self
            .rules
            .exemption(subject.namespace, subject.username, today)
            .is_some()
        {
            return Vec::new();
        }
        let (classes, _) = self
            .classify_all(subject.namespace, spec, deadline, today)
            .await;
        let mut seen = [0usize; 3];
        let mut pins = Vec::new();
        for ((kind, c), class) in spec.all().zip(&classes) {
            // Where the reference sits: its list and index (a volume's own index in `volumes`).
            let (list, index) = match kind {
                ContainerKind::Volume => match c.slot {
                    Some(slot) => ("volumes", slot),
                    None => continue,
                },
                _ => {
                    let (list, n) = match kind {
                        ContainerKind::Init => ("initContainers", &mut seen[0]),
                        ContainerKind::Regular => ("containers", &mut seen[1]),
                        _ => ("ephemeralContainers", &mut seen[2]),
                    };
                    *n += 1;
                    (list, *n - 1)
                }
            };
            let Classification::Assessed(a) = class else {
                continue;
            };
            let Some(d) = a.digest().filter(|_| !c.image.contains('@')) else {
                continue;
            };
            let field = if kind == ContainerKind::Volume {
                "image/reference"
            } else {
                "image"
            };
            pins.push(Pin {
                path: format!("/spec/{list}/{index}/{field}"),
                from: c.image.clone(),
                to: format!("{}@{d}", c.image),
            });
        }
        pins
    }

    /// The namespace's policy. One that cannot be read in time is evaluated as
    /// `onNamespaceFailure` says (`strict` unless configured), with the reason.
    async fn policy(
        &self,
        namespace: &str,
        deadline: Instant,
    ) -> (Arc<NamespacePolicy>, Option<String>) {
        let lookup = tokio::time::timeout_at(deadline, self.namespaces.policy(namespace));
        let error = match lookup.await {
            Ok((p, _, None)) => return (p, None),
            Ok((_, _, Some(e))) => e,
            Err(_) => "namespace lookup timed out".into(),
        };
        let policy = match self.rules.on_namespace_failure {
            NamespaceFailure::Strict => NamespacePolicy {
                levels: Levels {
                    enforce: Level::Strict,
                    warn: Level::Strict,
                    audit: Level::Strict,
                },
                errors: Vec::new(),
            },
            NamespaceFailure::Defaults => NamespacePolicy::defaults(&self.rules.defaults),
        };
        (Arc::new(policy), Some(error))
    }

    /// Every container's image classified without IO: what needs a look-up is not looked up.
    fn classify_offline(&self, spec: &PodSpec, today: jiff::civil::Date) -> Vec<Classification> {
        spec.all()
            .map(
                |(_, c)| match classify_now(&self.rules, &*self.source, &c.image, today) {
                    Pending::Ready(class) => class,
                    Pending::Lookup(_) => Classification::Assessed(
                        Assessment::not_listed().with_problem("not looked up: every level is off"),
                    ),
                },
            )
            .collect()
    }

    /// Every container's image classified: in place when no IO is needed (the catalogue, a
    /// chain that never reaches a registry), the rest looked up at once within the deadline.
    /// The count says how many look-ups timed out.
    async fn classify_all(
        &self,
        namespace: &str,
        spec: &PodSpec,
        deadline: Instant,
        today: jiff::civil::Date,
    ) -> (Vec<Classification>, usize) {
        let pending: Vec<Pending> = spec
            .all()
            .map(|(_, c)| classify_now(&self.rules, &*self.source, &c.image, today))
            .collect();
        let lookups: Vec<&_> = pending
            .iter()
            .filter_map(|p| match p {
                Pending::Lookup(r) => Some(r),
                Pending::Ready(_) => None,
            })
            .collect();
        let mut found = Vec::new().into_iter();
        if !lookups.is_empty() {
            let ctx = LookupContext {
                namespace: namespace.to_string(),
                pull_secrets: spec
                    .image_pull_secrets
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
            };
            let source = &*self.source;
            let all = lookups
                .into_iter()
                .map(|r| look_up(source, r, &ctx, Some(deadline)));
            found = futures::future::join_all(all).await.into_iter();
        }
        let mut timed_out = 0;
        let classes = pending
            .into_iter()
            .map(|p| match p {
                Pending::Ready(c) => c,
                Pending::Lookup(_) => match found.next() {
                    Some((c, late)) => {
                        timed_out += usize::from(late);
                        c
                    }
                    // One result per look-up; were one missing, the image fails closed.
                    None => Classification::Assessed(Assessment::unknown("look-up result missing")),
                },
            })
            .collect();
        (classes, timed_out)
    }
}
