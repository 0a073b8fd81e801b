//! Namespaces from the Kubernetes API: the metadata-only watch that feeds the namespace store,
//! and the live fetch of a namespace it has not delivered yet.

use std::sync::Arc;

use futures::StreamExt as _;

use crate::app::namespaces::{Fetch, Labels, NamespaceStore};

/// A live fetch through the Kubernetes API (metadata only).
pub fn kube_fetch(client: kube::Client) -> Fetch {
    Arc::new(move |name: String| {
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
        Box::pin(async move {
            match api.get_metadata_opt(&name).await {
                Ok(Some(ns)) => Ok(Some(ns.metadata.labels.unwrap_or_default())),
                Ok(None) => Ok(None),
                Err(e) => Err(format!("namespace {name}: {}", super::describe(&e))),
            }
        })
    })
}

/// Keeps `store` in step with the cluster's namespaces until the task is dropped.
pub async fn watch(client: kube::Client, store: Arc<NamespaceStore>) {
    use kube::runtime::WatchStreamExt as _;
    use kube::runtime::watcher::{self, Event};
    // `PartialObjectMeta` makes the watch metadata-only: no specs or statuses are sent.
    let api: kube::Api<kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>> =
        kube::Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut initial: Vec<(String, Labels)> = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => initial.clear(),
            Ok(Event::InitApply(ns)) => {
                let name = ns.metadata.name.unwrap_or_default();
                initial.push((name, ns.metadata.labels.unwrap_or_default()));
            }
            Ok(Event::InitDone) => {
                let n = initial.len();
                store.replace_all(std::mem::take(&mut initial));
                if !store.is_synced() {
                    tracing::info!(namespaces = n, "namespace watch synced");
                }
                store.mark_synced();
            }
            Ok(Event::Apply(ns)) => {
                let name = ns.metadata.name.unwrap_or_default();
                tracing::debug!(namespace = %name, "namespace labels updated");
                store.apply(&name, &ns.metadata.labels.unwrap_or_default());
            }
            Ok(Event::Delete(ns)) => store.delete(&ns.metadata.name.unwrap_or_default()),
            Err(e) => tracing::warn!(error = %e, "namespace watch error; retrying"),
        }
    }
}
