//! Kubernetes objects that carry a pod spec, read only as far as fipsgate needs: the kind, the
//! name, and every image the pod can run — its containers' and its image volumes'.

use std::fmt;

use serde::Deserialize;

/// Where an image sits in the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
    /// An image volume (`volumes[].image`): pulled onto the node, its files readable and
    /// executable by the pod's containers.
    Volume,
}

impl fmt::Display for ContainerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerKind::Init => "init container",
            ContainerKind::Regular => "container",
            ContainerKind::Ephemeral => "ephemeral container",
            ContainerKind::Volume => "image volume",
        })
    }
}

/// A container's name and image, as written in the object (for an image volume: the volume's
/// name and its `image.reference`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: String,
    /// For an image volume, its index in `volumes`.
    #[serde(skip)]
    pub slot: Option<usize>,
}

/// The container lists of a pod spec.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    #[serde(deserialize_with = "null_as_empty")]
    pub init_containers: Vec<Container>,
    #[serde(deserialize_with = "null_as_empty")]
    pub containers: Vec<Container>,
    #[serde(deserialize_with = "null_as_empty")]
    pub ephemeral_containers: Vec<Container>,
    /// The image volumes of `volumes` (the other volumes are not read).
    #[serde(rename = "volumes", deserialize_with = "image_volumes")]
    pub image_volumes: Vec<Container>,
    #[serde(deserialize_with = "null_as_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// `{name: ...}`, as in `imagePullSecrets`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct LocalObjectReference {
    #[serde(default)]
    pub name: String,
}

impl PodSpec {
    /// Every image the pod can run, with where it sits: init containers, containers,
    /// ephemeral containers, image volumes.
    pub fn all(&self) -> impl Iterator<Item = (ContainerKind, &Container)> {
        let tag = |k| move |c| (k, c);
        self.init_containers
            .iter()
            .map(tag(ContainerKind::Init))
            .chain(self.containers.iter().map(tag(ContainerKind::Regular)))
            .chain(
                self.ephemeral_containers
                    .iter()
                    .map(tag(ContainerKind::Ephemeral)),
            )
            .chain(self.image_volumes.iter().map(tag(ContainerKind::Volume)))
    }

    pub fn len(&self) -> usize {
        self.init_containers.len()
            + self.containers.len()
            + self.ephemeral_containers.len()
            + self.image_volumes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A volume, as far as fipsgate reads it: only image volumes matter.
#[derive(Deserialize)]
struct Volume {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: Option<ImageVolumeSource>,
}

#[derive(Deserialize)]
struct ImageVolumeSource {
    /// An image volume without a reference is judged as the empty reference: invalid.
    #[serde(default)]
    reference: String,
}

/// The image volumes of `volumes`, as containers named after their volume.
fn image_volumes<'de, D>(d: D) -> Result<Vec<Container>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let volumes: Vec<Volume> = null_as_empty(d)?;
    Ok(volumes
        .into_iter()
        .enumerate()
        .filter_map(|(slot, v)| {
            v.image.map(|i| Container {
                name: v.name,
                image: i.reference,
                slot: Some(slot),
            })
        })
        .collect())
}

/// Entries a list of a pod spec (containers, volumes, pull secrets) may have. Kubernetes sets
/// no such bound, but an object the API server stores fits in 1.5 MiB: a list past this is
/// refused while it is read, before it costs memory.
pub const MAX_LIST_ENTRIES: usize = 1024;

/// A list of at most [`MAX_LIST_ENTRIES`]; `null` is empty.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {MAX_LIST_ENTRIES} entries, or null")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element()? {
                if out.len() == MAX_LIST_ENTRIES {
                    return Err(serde::de::Error::custom(format_args!(
                        "a list has more than {MAX_LIST_ENTRIES} entries, more than fipsgate reads"
                    )));
                }
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_option(Bounded(std::marker::PhantomData))
}

/// Object metadata fipsgate reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metadata {
    pub name: String,
    pub generate_name: String,
    pub namespace: String,
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Template {
    spec: Option<PodSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct JobTemplate {
    spec: Option<JobSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct JobSpec {
    template: Option<Template>,
}

/// `spec` of every supported kind: the pod fields for a Pod, `template` for workloads,
/// `jobTemplate` for a CronJob. (The pod fields are spelled out rather than flattened: serde's
/// flatten buffers the whole object, and this runs for every admission.)
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Spec {
    #[serde(deserialize_with = "null_as_empty")]
    init_containers: Vec<Container>,
    #[serde(deserialize_with = "null_as_empty")]
    containers: Vec<Container>,
    #[serde(deserialize_with = "null_as_empty")]
    ephemeral_containers: Vec<Container>,
    #[serde(rename = "volumes", deserialize_with = "image_volumes")]
    image_volumes: Vec<Container>,
    #[serde(deserialize_with = "null_as_empty")]
    image_pull_secrets: Vec<LocalObjectReference>,
    template: Option<Template>,
    job_template: Option<JobTemplate>,
}

impl Spec {
    fn into_pod(self) -> PodSpec {
        PodSpec {
            init_containers: self.init_containers,
            containers: self.containers,
            ephemeral_containers: self.ephemeral_containers,
            image_volumes: self.image_volumes,
            image_pull_secrets: self.image_pull_secrets,
        }
    }
}

/// Any object that may carry a pod spec.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    spec: Option<Spec>,
    /// `PodTemplate.template`.
    template: Option<Template>,
    /// `EphemeralContainers.ephemeralContainers` (the subresource's object before 1.22).
    #[serde(deserialize_with = "null_as_empty")]
    ephemeral_containers: Vec<Container>,
}

/// Where a kind keeps the pod spec it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecPath {
    /// `spec` (a Pod).
    Pod,
    /// `ephemeralContainers` (the `pods/ephemeralcontainers` object before 1.22).
    Ephemeral,
    /// `spec.template.spec` (Deployment, Job, ...).
    Template,
    /// `spec.jobTemplate.spec.template.spec` (CronJob).
    JobTemplate,
    /// `template.spec` (PodTemplate).
    PodTemplate,
}

/// A kind fipsgate reads pod specs from: the one table that admission, `check`, `audit` and
/// the webhook registration agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub spec: SpecPath,
    /// `audit` lists it (ReplicationControllers and PodTemplates are not listed).
    pub listed: bool,
    /// Served under another version by older clusters (CronJob: `batch/v1beta1` before 1.21).
    pub fallback_version: Option<&'static str>,
}

impl Kind {
    /// Pods themselves are denied; workload templates are only warned and audited.
    pub fn enforceable(&self) -> bool {
        matches!(self.spec, SpecPath::Pod | SpecPath::Ephemeral)
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        match self.group {
            "" => self.version.to_string(),
            g => format!("{g}/{}", self.version),
        }
    }
}

const fn kind(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    spec: SpecPath,
    listed: bool,
) -> Kind {
    Kind {
        group,
        version: "v1",
        kind,
        plural,
        spec,
        listed,
        fallback_version: None,
    }
}

/// Every kind whose pod spec fipsgate reads.
pub const KINDS: &[Kind] = &[
    kind("", "Pod", "pods", SpecPath::Pod, true),
    kind(
        "apps",
        "Deployment",
        "deployments",
        SpecPath::Template,
        true,
    ),
    kind(
        "apps",
        "StatefulSet",
        "statefulsets",
        SpecPath::Template,
        true,
    ),
    kind("apps", "DaemonSet", "daemonsets", SpecPath::Template, true),
    kind(
        "apps",
        "ReplicaSet",
        "replicasets",
        SpecPath::Template,
        true,
    ),
    kind(
        "",
        "ReplicationController",
        "replicationcontrollers",
        SpecPath::Template,
        false,
    ),
    kind("batch", "Job", "jobs", SpecPath::Template, true),
    Kind {
        fallback_version: Some("v1beta1"),
        ..kind("batch", "CronJob", "cronjobs", SpecPath::JobTemplate, true)
    },
    kind(
        "",
        "PodTemplate",
        "podtemplates",
        SpecPath::PodTemplate,
        false,
    ),
    kind(
        "",
        "EphemeralContainers",
        "pods",
        SpecPath::Ephemeral,
        false,
    ),
];

/// The supported kind with this name.
pub fn kind_named(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == name)
}

/// The supported kind with this API group and name.
pub fn kind_of(group: &str, name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.group == group && k.kind == name)
}

fn supported_kinds() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

/// Why an object's pod spec could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    #[error("unsupported kind {0:?} (supported: {kinds})", kinds = supported_kinds())]
    UnsupportedKind(String),
    #[error("{kind} has no {path}")]
    Missing { kind: String, path: &'static str },
}

impl Object {
    /// The pod spec this object creates pods from, or carries itself.
    pub fn pod_spec(&self) -> Result<PodSpec, WorkloadError> {
        let missing = |path| WorkloadError::Missing {
            kind: self.kind.clone(),
            path,
        };
        let template_spec = |t: &Option<Template>| t.as_ref().and_then(|t| t.spec.clone());
        let Some(kind) = kind_named(&self.kind) else {
            return Err(WorkloadError::UnsupportedKind(self.kind.clone()));
        };
        match kind.spec {
            SpecPath::Pod => Ok(self.spec.clone().ok_or_else(|| missing("spec"))?.into_pod()),
            SpecPath::Ephemeral => Ok(PodSpec {
                ephemeral_containers: self.ephemeral_containers.clone(),
                ..PodSpec::default()
            }),
            SpecPath::Template => self
                .spec
                .as_ref()
                .and_then(|s| template_spec(&s.template))
                .ok_or_else(|| missing("spec.template.spec")),
            SpecPath::JobTemplate => self
                .spec
                .as_ref()
                .and_then(|s| s.job_template.as_ref())
                .and_then(|j| j.spec.as_ref())
                .and_then(|j| template_spec(&j.template))
                .ok_or_else(|| missing("spec.jobTemplate.spec.template.spec")),
            SpecPath::PodTemplate => {
                template_spec(&self.template).ok_or_else(|| missing("template.spec"))
            }
        }
    }

    /// `name`, or `generateName*` for objects named by the server.
    pub fn display_name(&self) -> String {
        match (&self.metadata.name, &self.metadata.generate_name) {
            (n, _) if !n.is_empty() => n.clone(),
            (_, g) if !g.is_empty() => format!("{g}*"),
            _ => "(unnamed)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn images(v: serde_json::Value) -> Result<Vec<(ContainerKind, String)>, WorkloadError> {
        let o: Object = serde_json::from_value(v).unwrap();
        Ok(o.pod_spec()?
            .all()
            .map(|(k, c)| (k, c.image.clone()))
            .collect())
    }

    #[test]
    fn lists_are_bounded_while_read() {
        let list = |n: usize| {
            let c: Vec<_> = (0..n)
                .map(|i| json!({"name": format!("c{i}"), "image": "a"}))
                .collect();
            serde_json::to_string(&json!({"kind": "Pod", "spec": {"containers": c}})).unwrap()
        };
        let full: Object = serde_json::from_str(&list(MAX_LIST_ENTRIES)).unwrap();
        assert_eq!(full.pod_spec().unwrap().len(), MAX_LIST_ENTRIES);
        let e = serde_json::from_str::<Object>(&list(MAX_LIST_ENTRIES + 1)).unwrap_err();
        assert!(e.to_string().contains("more than 1024 entries"), "{e}");
        for field in [
            "initContainers",
            "ephemeralContainers",
            "volumes",
            "imagePullSecrets",
        ] {
            let items: Vec<_> = (0..=MAX_LIST_ENTRIES).map(|_| json!({})).collect();
            let v = json!({"kind": "Deployment", "spec": {"template": {"spec": {field: items}}}});
            let e = serde_json::from_str::<Object>(&v.to_string()).unwrap_err();
            assert!(e.to_string().contains("more than 1024"), "{field}: {e}");
            let null = json!({"kind": "Pod", "spec": {field: null}});
            assert!(serde_json::from_value::<Object>(null).is_ok(), "{field}");
        }
    }

    #[test]
    fn every_kind() {
        use ContainerKind::*;
        let pod = json!({"initContainers": [{"name": "i", "image": "a"}], "containers": [{"name": "c", "image": "b"}], "ephemeralContainers": [{"name": "e", "image": "c"}],
            "volumes": [{"name": "tok", "secret": {"secretName": "s"}}, {"name": "tools", "image": {"reference": "d", "pullPolicy": "Always"}}, {"name": "empty", "image": {}}, {"name": "n", "image": null}]});
        let all = vec![
            (Init, "a".into()),
            (Regular, "b".into()),
            (Ephemeral, "c".into()),
            (Volume, "d".into()),
            (Volume, "".into()),
        ];
        assert_eq!(images(json!({"kind": "Pod", "spec": pod})).unwrap(), all);
        for kind in [
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Job",
        ] {
            let v = json!({"kind": kind, "spec": {"template": {"spec": pod}}});
            assert_eq!(images(v).unwrap(), all, "{kind}");
        }
        let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}});
        assert_eq!(images(cron).unwrap(), all);
        assert_eq!(
            images(json!({"kind": "PodTemplate", "template": {"spec": pod}})).unwrap(),
            all
        );
        let eph = json!({"kind": "EphemeralContainers", "ephemeralContainers": [{"name": "d", "image": "busybox"}]});
        assert_eq!(images(eph).unwrap(), vec![(Ephemeral, "busybox".into())]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            images(json!({"kind": "Service"})).unwrap_err(),
            WorkloadError::UnsupportedKind("Service".into())
        );
        assert!(matches!(
            images(json!({"kind": "Deployment", "spec": {}})).unwrap_err(),
            WorkloadError::Missing {
                path: "spec.template.spec",
                ..
            }
        ));
        assert!(
            images(json!({"kind": "Pod", "spec": {"containers": null}}))
                .unwrap()
                .is_empty()
        );
    }
}
