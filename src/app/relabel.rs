//! A namespace created or relabelled: allowed, with warnings naming existing pods that a
//! stricter enforce level would deny (bounded in pods and time; one pod per owner first, so a
//! bounded check covers as many workloads as it can).

use std::time::Duration;

use tokio::time::Instant;

use crate::app::admit::Admission;
use crate::app::assess::classify;
use crate::app::ports::{Labels, Listed, LookupContext};
use crate::domain::policy::{Level, Levels, Mode, NamespacePolicy};
use crate::engine::{self, Subject, Verdict};

/// A tightened namespace gets at most this many pods checked, within this long.
pub const RELABEL_MAX_PODS: usize = 3000;
pub const RELABEL_MAX_TIME: Duration = Duration::from_secs(1);
/// At most this many pods are named in warnings.
const RELABEL_MAX_WARNINGS: usize = 10;

/// What relabel warnings may say about pods the caller did not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disclosure {
    /// Pod names, containers and images: the callers are authenticated (the API server).
    Names,
    /// Counts only: anyone who reaches the webhook could forge a relabel to read them.
    Counts,
}

/// What a relabel is answered with.
#[derive(Debug, Default)]
pub struct Relabelled {
    pub warnings: Vec<String>,
    /// Levels lowered, for the record: `enforce strict -> off by alice`.
    pub loosened: Vec<String>,
    /// The pods could not be listed (the warnings say why).
    pub list_failed: bool,
}

impl Admission {
    /// A namespace's labels set by `user`: lowering a level is warned about and recorded;
    /// tightening the enforce level checks the pods already there.
    pub async fn relabel(
        &self,
        namespace: &str,
        user: &str,
        old: Option<&Labels>,
        new: &Labels,
        deadline: Instant,
        disclosure: Disclosure,
    ) -> Relabelled {
        let defaults = &self.rules.defaults;
        let new_policy = NamespacePolicy::from_label_map(new, defaults);
        // A namespace created without labels has the defaults: creating it with lower levels
        // loosens them as much as relabelling would.
        let old_levels = old.map_or(*defaults, |o| {
            NamespacePolicy::from_label_map(o, defaults).levels
        });
        let mut out = Relabelled {
            warnings: new_policy.errors,
            ..Relabelled::default()
        };
        for mode in Mode::ALL {
            let (was, is) = (old_levels.get(mode), new_policy.levels.get(mode));
            if is < was {
                out.warnings.push(format!(
                    "{mode} lowered from {was} to {is} in namespace {namespace:?}: recorded"
                ));
                out.loosened.push(format!("{mode} {was} -> {is} by {user}"));
            }
        }
        let enforce = new_policy.levels.enforce;
        let (Some(pods), true) = (&self.pods, enforce > old_levels.enforce) else {
            return out;
        };
        let today = super::today_utc();
        if self.rules.exemption(namespace, "", today).is_some() {
            return out;
        }
        let stop = deadline.min(Instant::now() + RELABEL_MAX_TIME);
        let listing = tokio::time::timeout_at(stop, pods.pods(namespace, RELABEL_MAX_PODS));
        match listing.await {
            Ok(Ok((pods, more))) => {
                let w = (self.existing(namespace, pods, more, enforce, stop, disclosure)).await;
                out.warnings.extend(w);
            }
            Ok(Err(e)) => {
                out.list_failed = true;
                out.warnings.push(format!("existing pods not checked: {e}"));
            }
            Err(_) => out
                .warnings
                .push("existing pods not checked: listing timed out".into()),
        }
        out
    }

    /// Warnings for the existing pods that `enforce` would deny, checked until `stop`.
    async fn existing(
        &self,
        namespace: &str,
        pods: Vec<Listed>,
        more: bool,
        enforce: Level,
        stop: Instant,
        disclosure: Disclosure,
    ) -> Vec<String> {
        let total = pods.len();
        let only_enforce = NamespacePolicy {
            levels: Levels {
                enforce,
                warn: Level::Off,
                audit: Level::Off,
            },
            errors: Vec::new(),
        };
        let today = super::today_utc();
        let ctx = LookupContext {
            namespace: namespace.to_string(),
            pull_secrets: Vec::new(),
        };
        let (mut checked, mut denied, mut lines) = (0, 0, Vec::new());
        for pod in one_per_owner_first(pods) {
            if Instant::now() >= stop {
                break;
            }
            let mut classes = Vec::with_capacity(pod.spec.len());
            for (_, c) in pod.spec.all() {
                let (class, _) = classify(
                    &self.rules,
                    &*self.source,
                    &c.image,
                    &ctx,
                    Some(stop),
                    today,
                )
                .await;
                classes.push(class);
            }
            checked += 1;
            let subject = Subject {
                kind: "Pod",
                namespace,
                name: &pod.name,
                username: "",
                enforceable: true,
                previous: None,
            };
            let d = engine::evaluate(
                &self.rules,
                &subject,
                &pod.spec,
                &classes,
                &only_enforce,
                today,
            );
            if d.message.is_none() {
                continue;
            }
            denied += 1;
            if disclosure == Disclosure::Names && lines.len() < RELABEL_MAX_WARNINGS {
                lines.push(would_deny(&pod.name, enforce, &d.findings));
            }
        }
        if disclosure == Disclosure::Counts && denied > 0 {
            lines.push(format!(
                "{denied} of {checked} existing pods checked would be denied under \
                 enforce={enforce} (not named: fipsgate does not authenticate its callers; \
                 `fipsgate audit` lists them)"
            ));
        } else if denied > RELABEL_MAX_WARNINGS {
            lines.push(format!(
                "… and {} more pods would be denied",
                denied - RELABEL_MAX_WARNINGS
            ));
        }
        if checked < total || more {
            lines.push(format!(
                "checked {checked} of {}{} existing pods before the limit ({} pods, {} ms)",
                total,
                if more { "+" } else { "" },
                RELABEL_MAX_PODS,
                RELABEL_MAX_TIME.as_millis()
            ));
        }
        lines
    }
}

/// `existing pod "p" would be denied under enforce=strict: c (image), ...`
fn would_deny(pod: &str, enforce: Level, findings: &[engine::Finding]) -> String {
    let why: Vec<String> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Denied)
        .map(|f| format!("{} ({})", f.container, f.image))
        .collect();
    format!(
        "existing pod {pod:?} would be denied under enforce={enforce}: {}",
        why.join(", ")
    )
}

/// Orders pods so that one pod per owner comes first: a bounded check then covers as many
/// workloads as it can.
pub fn one_per_owner_first(pods: Vec<Listed>) -> Vec<Listed> {
    let mut seen = std::collections::HashSet::new();
    let (first, rest): (Vec<_>, Vec<_>) = pods.into_iter().partition(|p| match &p.owner {
        Some((_, uid)) => seen.insert(uid.clone()),
        None => true,
    });
    first.into_iter().chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workload::PodSpec;

    fn pod(name: &str, owner: Option<&str>) -> Listed {
        Listed {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: "ns".into(),
            name: name.into(),
            owner: owner.map(|o| ("ReplicaSet".into(), o.into())),
            spec: PodSpec::default(),
            image_ids: Default::default(),
        }
    }

    #[test]
    fn owners_first() {
        let pods = vec![
            pod("a1", Some("a")),
            pod("a2", Some("a")),
            pod("b1", Some("b")),
            pod("solo", None),
            pod("a3", Some("a")),
        ];
        let names: Vec<_> = one_per_owner_first(pods)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a1", "b1", "solo", "a2", "a3"]);
    }
}
