//! Warm after a start: the registry look-ups of the images running pods use (and of those a
//! previous replica looked up), made in the background before admissions ask for them, most
//! used first and a few at a time. A restart or rollout then does not send the first creation
//! of every pod down the cold path at once; readiness never waits for it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::app::ports::{AssessmentSource, Inventory, ListError, Listed, LookupContext};
use crate::domain::image::ImageRef;
use crate::domain::workload::KINDS;

/// Pods listed per page.
const PAGE: u32 = 500;

/// One image to look up, with what its registry may need: the namespace and pull secrets of a
/// pod that runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmTarget {
    pub image: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<String>,
    /// How many containers use it (or looked it up), the order of warming.
    #[serde(default)]
    pub uses: u64,
}

impl WarmTarget {
    pub fn new(image: &str, ctx: &LookupContext, uses: u64) -> Self {
        Self {
            image: image.to_string(),
            namespace: ctx.namespace.clone(),
            pull_secrets: ctx.pull_secrets.clone(),
            uses,
        }
    }

    fn context(&self) -> LookupContext {
        LookupContext {
            namespace: self.namespace.clone(),
            pull_secrets: self.pull_secrets.clone(),
        }
    }
}

/// The distinct references of `pods`' containers and of `seeds`, most used first (then by
/// name), at most `max`. A reference keeps the context it was first seen with.
pub fn plan(pods: &[Listed], seeds: Vec<WarmTarget>, max: usize) -> Vec<WarmTarget> {
    let mut by_image: HashMap<String, WarmTarget> = HashMap::new();
    let mut add = |t: WarmTarget| {
        by_image
            .entry(t.image.clone())
            .and_modify(|known| known.uses += t.uses)
            .or_insert(t);
    };
    for pod in pods {
        let ctx = LookupContext {
            namespace: pod.namespace.clone(),
            pull_secrets: (pod.spec.image_pull_secrets.iter())
                .map(|s| s.name.clone())
                .collect(),
        };
        for (_, c) in pod.spec.all() {
            add(WarmTarget::new(&c.image, &ctx, 1));
        }
    }
    seeds.into_iter().for_each(add);
    let mut targets: Vec<WarmTarget> = by_image.into_values().collect();
    targets.sort_by(|a, b| b.uses.cmp(&a.uses).then_with(|| a.image.cmp(&b.image)));
    targets.truncate(max);
    targets
}

/// Every running pod, page by page, at most `max` (the rest are not warmed).
pub async fn running_pods(inventory: &dyn Inventory, max: usize) -> Result<Vec<Listed>, String> {
    let pod = KINDS
        .iter()
        .find(|k| k.kind == "Pod")
        .ok_or("no Pod kind")?;
    let mut pods = Vec::new();
    let mut cont = None;
    loop {
        let (items, next) = (inventory.page(pod, pod.version, None, PAGE, cont).await)
            .map_err(|e: ListError| format!("listing pods: {e}"))?;
        pods.extend(items);
        if pods.len() >= max || next.is_none() {
            pods.truncate(max);
            return Ok(pods);
        }
        cont = next;
    }
}

/// What warming did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warmed {
    /// References in the plan.
    pub planned: usize,
    /// Looked up (the others were answered without a registry, or were not references).
    pub looked_up: usize,
    /// Looked up but not answered within the per-image deadline.
    pub timed_out: usize,
    pub elapsed: Duration,
}

/// Looks up every target through `source` (which caches what it finds), `concurrency` at a
/// time, each within `per_image`. Images the source answers without a look-up are skipped.
pub async fn warm(
    source: &dyn AssessmentSource,
    targets: &[WarmTarget],
    concurrency: usize,
    per_image: Duration,
) -> Warmed {
    let started = Instant::now();
    let mut warmed = Warmed {
        planned: targets.len(),
        ..Warmed::default()
    };
    let lookups: Vec<(ImageRef, LookupContext)> = (targets.iter())
        .filter_map(|t| {
            let image = ImageRef::parse(&t.image).ok()?;
            source.looks_up(&image).then(|| (image, t.context()))
        })
        .collect();
    let outcomes: Vec<bool> = futures::stream::iter(lookups)
        .map(|(image, ctx)| async move {
            tokio::time::timeout(per_image, source.assess(&image, &ctx))
                .await
                .is_ok()
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    warmed.looked_up = outcomes.len();
    warmed.timed_out = outcomes.iter().filter(|ok| !**ok).count();
    warmed.elapsed = started.elapsed();
    warmed
}

/// The warm state a replica leaves for the next one: what it warmed and looked up, most used
/// first. References and contexts only: a verdict is never taken from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmState {
    pub images: Vec<WarmTarget>,
}

impl WarmState {
    /// Larger state files are refused (a few hundred thousand references).
    pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::app::ports::BoxFuture;
    use crate::domain::assessment::Assessment;
    use crate::domain::workload::PodSpec;

    fn pod(ns: &str, images: &[&str], secrets: &[&str]) -> Listed {
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": images.iter().enumerate()
                .map(|(i, im)| serde_json::json!({"name": format!("c{i}"), "image": im}))
                .collect::<Vec<_>>(),
            "imagePullSecrets": secrets.iter().map(|s| serde_json::json!({"name": s})).collect::<Vec<_>>(),
        }))
        .unwrap();
        Listed {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: ns.into(),
            name: "p".into(),
            owner: None,
            spec,
            image_ids: BTreeMap::new(),
        }
    }

    #[test]
    fn most_used_first_with_the_first_pods_context() {
        let pods = [
            pod("a", &["r.io/x:1", "r.io/y:1"], &["pull"]),
            pod("b", &["r.io/y:1"], &[]),
            pod("c", &["r.io/y:1", "r.io/z:1"], &[]),
        ];
        let seeds = vec![
            WarmTarget::new("r.io/z:1", &LookupContext::default(), 5),
            WarmTarget::new("r.io/w:1", &LookupContext::default(), 1),
        ];
        let p = plan(&pods, seeds, 10);
        let order: Vec<(&str, u64)> = p.iter().map(|t| (t.image.as_str(), t.uses)).collect();
        assert_eq!(
            order,
            [
                ("r.io/z:1", 6),
                ("r.io/y:1", 3),
                ("r.io/w:1", 1),
                ("r.io/x:1", 1)
            ]
        );
        let y = &p[1];
        assert_eq!(
            (y.namespace.as_str(), &y.pull_secrets[..]),
            ("a", &["pull".to_string()][..])
        );
        assert_eq!(plan(&pods, Vec::new(), 1).len(), 1);
    }

    /// A source that counts look-ups and answers `fast` images without IO.
    struct Counting {
        asked: AtomicUsize,
        running: AtomicUsize,
        most: AtomicUsize,
    }

    impl AssessmentSource for Counting {
        fn assess_now(&self, image: &ImageRef) -> Option<Assessment> {
            image.name().contains("fast").then(Assessment::not_listed)
        }

        fn assess<'a>(
            &'a self,
            image: &'a ImageRef,
            _: &'a LookupContext,
        ) -> BoxFuture<'a, Assessment> {
            Box::pin(async move {
                self.asked.fetch_add(1, Ordering::SeqCst);
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
                let slow = image.name().contains("slow");
                tokio::time::sleep(Duration::from_millis(if slow { 5_000 } else { 10 })).await;
                self.running.fetch_sub(1, Ordering::SeqCst);
                Assessment::not_listed()
            })
        }
    }

    /// Bounded concurrency, catalogue answers skipped, a slow image given up at its deadline,
    /// a reference that does not parse ignored.
    #[tokio::test]
    async fn warming_is_bounded() {
        let source = Arc::new(Counting {
            asked: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        });
        let ctx = LookupContext::default();
        let mut targets: Vec<_> = (0..20)
            .map(|i| WarmTarget::new(&format!("r.io/app{i}:v1"), &ctx, 1))
            .collect();
        targets.push(WarmTarget::new("r.io/fast:v1", &ctx, 1));
        targets.push(WarmTarget::new("r.io/slow:v1", &ctx, 1));
        targets.push(WarmTarget::new("NOT A REFERENCE", &ctx, 1));
        let w = warm(source.as_ref(), &targets, 3, Duration::from_millis(200)).await;
        assert_eq!((w.planned, w.looked_up, w.timed_out), (23, 21, 1));
        assert_eq!(source.asked.load(Ordering::SeqCst), 21);
        assert_eq!(source.most.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_state_file_round_trips_and_refuses_unknown_fields() {
        let s = WarmState {
            images: vec![WarmTarget::new(
                "r.io/x:1",
                &LookupContext {
                    namespace: "a".into(),
                    pull_secrets: vec!["pull".into()],
                },
                3,
            )],
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<WarmState>(&text).unwrap(), s);
        assert!(serde_json::from_str::<WarmState>(r#"{"images":[],"verdicts":[]}"#).is_err());
    }
}
