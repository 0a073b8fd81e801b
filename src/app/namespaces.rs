//! Namespace policies kept in memory: a store fed by events (a metadata-only watch of
//! namespaces in `infra::kube`, or tests and `serve --dev` directly). A namespace the watch has
//! not delivered yet is fetched once live, through [`Fetch`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::app::ports::BoxFuture;
use crate::domain::policy::{Levels, NamespacePolicy};

/// Fetches one namespace's labels; `Ok(None)` when it does not exist.
pub type Fetch =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Option<Labels>, String>> + Send + Sync>;

pub use super::ports::Labels;

/// The policy of every known namespace.
pub struct NamespaceStore {
    defaults: Levels,
    default_policy: Arc<NamespacePolicy>,
    policies: RwLock<HashMap<String, Arc<NamespacePolicy>>>,
    synced: AtomicBool,
    fetch: Option<Fetch>,
}

/// Where a policy came from, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Cache,
    Live,
    /// Not known: the defaults apply (with the error, if the look-up failed).
    Defaults,
}

impl NamespaceStore {
    /// A store without a cluster: unknown namespaces get the defaults. Ready at once.
    pub fn standalone(defaults: Levels) -> Self {
        let s = Self::new(defaults, None);
        s.mark_synced();
        s
    }

    /// A store that a watch fills; `fetch` answers for namespaces not seen yet.
    pub fn new(defaults: Levels, fetch: Option<Fetch>) -> Self {
        Self {
            defaults,
            default_policy: Arc::new(NamespacePolicy::defaults(&defaults)),
            policies: RwLock::new(HashMap::new()),
            synced: AtomicBool::new(false),
            fetch,
        }
    }

    fn compile(&self, labels: &Labels) -> Arc<NamespacePolicy> {
        Arc::new(NamespacePolicy::from_label_map(labels, &self.defaults))
    }

    /// Records a namespace's labels.
    pub fn apply(&self, name: &str, labels: &Labels) {
        let p = self.compile(labels);
        self.write().insert(name.to_string(), p);
    }

    /// Forgets a deleted namespace.
    pub fn delete(&self, name: &str) {
        self.write().remove(name);
    }

    /// Replaces everything after a full re-list.
    pub fn replace_all(&self, all: impl IntoIterator<Item = (String, Labels)>) {
        let fresh: HashMap<_, _> = all
            .into_iter()
            .map(|(n, l)| {
                let p = self.compile(&l);
                (n, p)
            })
            .collect();
        *self.write() = fresh;
    }

    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// True once the watch delivered its first complete list.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<NamespacePolicy>>> {
        self.policies.write().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, name: &str) -> Option<Arc<NamespacePolicy>> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// The policy for `name`: cached, else fetched live once, else the defaults.
    pub async fn policy(&self, name: &str) -> (Arc<NamespacePolicy>, Source, Option<String>) {
        if let Some(p) = self.cached(name) {
            return (p, Source::Cache, None);
        }
        let Some(fetch) = &self.fetch else {
            return (self.default_policy.clone(), Source::Defaults, None);
        };
        match fetch(name.to_string()).await {
            Ok(Some(labels)) => {
                let p = self.compile(&labels);
                self.write()
                    .entry(name.to_string())
                    .or_insert_with(|| p.clone());
                (p, Source::Live, None)
            }
            Ok(None) => (self.default_policy.clone(), Source::Defaults, None),
            Err(e) => (self.default_policy.clone(), Source::Defaults, Some(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Level;

    #[tokio::test]
    async fn store_feeds_policies() {
        let store = NamespaceStore::standalone(Levels::default());
        let (p, src, _) = store.policy("a").await;
        assert_eq!((p.levels, src), (Levels::default(), Source::Defaults));
        store.apply(
            "a",
            &Labels::from([("fipsgate.io/enforce".into(), "strict".into())]),
        );
        let (p, src, _) = store.policy("a").await;
        assert_eq!((p.levels.enforce, src), (Level::Strict, Source::Cache));
        store.replace_all([("b".to_string(), Labels::new())]);
        assert_eq!(store.policy("a").await.1, Source::Defaults);
    }

    #[tokio::test]
    async fn misses_are_fetched_once() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let fetch: Fetch = Arc::new(move |name| {
            c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match name.as_str() {
                    "live" => Ok(Some(Labels::from([(
                        "fipsgate.io/warn".into(),
                        "off".into(),
                    )]))),
                    "broken" => Err("apiserver unreachable".into()),
                    _ => Ok(None),
                }
            })
        });
        let store = NamespaceStore::new(Levels::default(), Some(fetch));
        assert!(!store.is_synced());
        let (p, src, _) = store.policy("live").await;
        assert_eq!((p.levels.warn, src), (Level::Off, Source::Live));
        assert_eq!(store.policy("live").await.1, Source::Cache);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let (_, src, err) = store.policy("broken").await;
        assert_eq!(
            (src, err.as_deref()),
            (Source::Defaults, Some("apiserver unreachable"))
        );
    }
}
