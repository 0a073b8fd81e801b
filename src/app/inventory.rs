//! What already runs (IO edge): pods and workloads listed from the Kubernetes API page by page,
//! so a large cluster never sits in memory at once.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};

use crate::domain::assessment::BoxFuture;
use crate::domain::workload::{Object, PodSpec};

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

/// A fixed list of pods (for tests and `serve --dev`).
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

/// The kinds `fipsgate audit` lists: (group, version, kind, plural).
pub const POD: (&str, &str, &str, &str) = ("", "v1", "Pod", "pods");
pub const WORKLOADS: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
];

/// Lists through the Kubernetes API.
#[derive(Clone)]
pub struct KubeInventory {
    pub client: kube::Client,
}

fn api_resource((group, version, kind, plural): (&str, &str, &str, &str)) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
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
    let object: Object = serde_json::from_value(value).ok()?;
    Some(Listed {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace,
        name,
        owner,
        spec: object.pod_spec().ok()?,
    })
}

impl KubeInventory {
    /// One page of one kind (in every namespace when `namespace` is `None`), and the token
    /// of the next page.
    pub async fn page(
        &self,
        gvk: (&str, &str, &str, &str),
        namespace: Option<&str>,
        limit: u32,
        continue_token: Option<String>,
    ) -> Result<(Vec<Listed>, Option<String>), kube::Error> {
        let ar = api_resource(gvk);
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
            .filter_map(|o| listed(&ar.api_version, gvk.2, o))
            .collect();
        Ok((items, next))
    }
}

impl PodLister for KubeInventory {
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<(Vec<Listed>, bool), String>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut cont = None;
            let mut more = false;
            loop {
                let (page, next) = self
                    .page(POD, Some(namespace), 500, cont.take())
                    .await
                    .map_err(|e| format!("listing pods in {namespace}: {e}"))?;
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

    fn pod(name: &str, owner: Option<&str>) -> Listed {
        Listed {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: "ns".into(),
            name: name.into(),
            owner: owner.map(|o| ("ReplicaSet".into(), o.into())),
            spec: PodSpec::default(),
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
