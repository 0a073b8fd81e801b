//! What runs in the cluster, listed from the Kubernetes API page by page, so a large cluster
//! never sits in memory at once.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};

use crate::app::ports::{BoxFuture, Inventory, Labels, ListError, Listed, Page, PodLister};
use crate::domain::workload::{Kind, Object, kind_named};

/// Lists through the Kubernetes API.
#[derive(Clone)]
pub struct KubeInventory {
    pub client: kube::Client,
    /// Pod listings for relabels: each is up to a few LIST calls that a relabel review (which
    /// anyone reaching the webhook can send without client authentication) sets off.
    pub listings: std::sync::Arc<RateLimit>,
}

impl KubeInventory {
    /// Lists with `client`; relabel pod listings at most [`LISTINGS_PER_MINUTE`] a minute.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            listings: std::sync::Arc::new(RateLimit::new(LISTINGS_PER_MINUTE, 60.0)),
        }
    }
}

/// Relabel pod listings a minute at most (a burst of as many).
pub const LISTINGS_PER_MINUTE: u32 = 30;

/// A token bucket: `burst` tokens, refilled evenly over `per_secs` seconds.
pub struct RateLimit {
    burst: f64,
    per_sec: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl RateLimit {
    pub fn new(burst: u32, per_secs: f64) -> Self {
        let burst = f64::from(burst);
        Self {
            burst,
            per_sec: burst / per_secs,
            state: std::sync::Mutex::new((burst, std::time::Instant::now())),
        }
    }

    /// Takes a token if there is one.
    pub fn try_take(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let tokens = (s.0 + now.duration_since(s.1).as_secs_f64() * self.per_sec).min(self.burst);
        let took = tokens >= 1.0;
        *s = (if took { tokens - 1.0 } else { tokens }, now);
        took
    }
}

/// Reads a listed object; `None` for one without a readable pod spec.
fn listed(api_version: &str, kind: &str, obj: DynamicObject) -> Option<Listed> {
    let owner = obj
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.iter().find(|r| r.controller == Some(true)).or(o.first()))
        .map(|r| (r.kind.clone(), r.uid.clone()));
    let namespace = obj.metadata.namespace.clone().unwrap_or_default();
    let name = obj.metadata.name.clone().unwrap_or_default();
    let mut value = serde_json::to_value(&obj).ok()?;
    value["kind"] = kind.into();
    let image_ids = image_ids(&value["status"]);
    let object: Object = serde_json::from_value(value).ok()?;
    Some(Listed {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace,
        name,
        owner,
        spec: object.pod_spec().ok()?,
        image_ids,
    })
}

/// A pod status's `imageID` per container name (containers, init and ephemeral containers).
fn image_ids(status: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|k| status[k].as_array())
    .flatten()
    .filter_map(|c| {
        let name = c["name"].as_str()?;
        let id = c["imageID"].as_str().filter(|id| !id.is_empty())?;
        Some((name.to_string(), id.to_string()))
    })
    .collect()
}

impl KubeInventory {
    async fn list(
        &self,
        kind: &Kind,
        version: &str,
        namespace: Option<&str>,
        limit: u32,
        continue_token: Option<String>,
    ) -> Result<Page, kube::Error> {
        let gvk = GroupVersionKind::gvk(kind.group, version, kind.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
        let api: kube::Api<DynamicObject> = match namespace {
            Some(ns) => kube::Api::namespaced_with(self.client.clone(), ns, &ar),
            None => kube::Api::all_with(self.client.clone(), &ar),
        };
        let mut params = ListParams::default().limit(limit);
        if let Some(c) = &continue_token {
            params = params.continue_token(c);
        }
        let list = api.list(&params).await?;
        let next = list.metadata.continue_.clone().filter(|c| !c.is_empty());
        let items = list
            .items
            .into_iter()
            .filter_map(|o| listed(&ar.api_version, kind.kind, o))
            .collect();
        Ok((items, next))
    }
}

impl Inventory for KubeInventory {
    fn page<'a>(
        &'a self,
        kind: &'a Kind,
        version: &'a str,
        namespace: Option<&'a str>,
        limit: u32,
        continue_token: Option<String>,
    ) -> BoxFuture<'a, Result<Page, ListError>> {
        Box::pin(async move {
            match self
                .list(kind, version, namespace, limit, continue_token)
                .await
            {
                Ok(page) => Ok(page),
                Err(kube::Error::Api(e)) if e.code == 404 => Err(ListError::NotServed),
                Err(e) => Err(ListError::Failed(super::describe(&e))),
            }
        })
    }

    fn namespaces<'a>(
        &'a self,
        only: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<(String, Labels)>, String>> {
        Box::pin(async move {
            let api: kube::Api<
                kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>,
            > = kube::Api::all(self.client.clone());
            if let Some(name) = only {
                let ns = (api.get_metadata(name).await)
                    .map_err(|e| format!("reading namespace {name}: {}", super::describe(&e)))?;
                return Ok(vec![(
                    name.to_string(),
                    ns.metadata.labels.unwrap_or_default(),
                )]);
            }
            let list = api
                .list_metadata(&ListParams::default())
                .await
                .map_err(|e| format!("listing namespaces: {}", super::describe(&e)))?;
            Ok(list
                .items
                .into_iter()
                .map(|ns| {
                    let labels = ns.metadata.labels.unwrap_or_default();
                    (ns.metadata.name.unwrap_or_default(), labels)
                })
                .collect())
        })
    }
}

impl PodLister for KubeInventory {
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<(Vec<Listed>, bool), String>> {
        Box::pin(async move {
            if !self.listings.try_take() {
                return Err(format!(
                    "pod listings are limited to {LISTINGS_PER_MINUTE} a minute; try again later"
                ));
            }
            let pod = kind_named("Pod").expect("Pod is a supported kind");
            let mut out = Vec::new();
            let mut cont = None;
            let mut more = false;
            loop {
                let (page, next) = self
                    .list(pod, pod.version, Some(namespace), 500, cont.take())
                    .await
                    .map_err(|e| format!("listing pods in {namespace}: {}", super::describe(&e)))?;
                out.extend(page);
                match next {
                    Some(c) if out.len() < max => cont = Some(c),
                    Some(_) => {
                        more = true;
                        break;
                    }
                    None => break,
                }
            }
            let more = more || out.len() > max;
            out.truncate(max);
            Ok((out, more))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn a_bucket_allows_its_burst_then_refills() {
        let r = RateLimit::new(3, 0.2);
        assert!((0..3).all(|_| r.try_take()));
        assert!(!r.try_take(), "burst spent");
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(r.try_take(), "refilled (15 a second)");
    }
}
