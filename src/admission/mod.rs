//! The AdmissionReview protocol (`admission.k8s.io/v1` and `v1beta1`): reading a review into
//! what fipsgate must decide, and writing the answer. Pure: no IO.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::workload::{Container, ContainerKind, Object, PodSpec};
use crate::engine::Decision;

pub const V1: &str = "admission.k8s.io/v1";
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// A review whose objects are read as `O`: typed [`Object`]s on the fast path (one pass over
/// the body), raw JSON when that fails, to say precisely what is wrong with the object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review<O> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request<O>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<O> {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    sub_resource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    user_info: UserInfo,
    object: Option<O>,
    old_object: Option<O>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// How a request's object becomes an [`Object`].
trait IntoObject {
    fn into_object(self, field: &str) -> Result<Object, String>;
}

impl IntoObject for Object {
    fn into_object(self, _: &str) -> Result<Object, String> {
        Ok(self)
    }
}

impl IntoObject for &RawValue {
    fn into_object(self, field: &str) -> Result<Object, String> {
        serde_json::from_str(self.get()).map_err(|e| format!("{field} is not a valid pod: {e}"))
    }
}

fn take<O: IntoObject>(o: Option<O>, field: &str) -> Result<Object, String> {
    o.ok_or_else(|| format!("request has no {field}"))?
        .into_object(field)
}

#[derive(Default, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

#[derive(Default, Deserialize)]
struct UserInfo {
    #[serde(default)]
    username: String,
}

/// A review that cannot be answered with an AdmissionReview (no uid, not a review at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unanswerable(pub String);

/// What the request asks fipsgate to decide.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub api_version: &'static str,
    pub uid: String,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    pub username: String,
    pub dry_run: bool,
    pub action: Action,
}

/// How fipsgate handles the request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Evaluate these containers of a pod, or of a workload's pod template (warn and audit
    /// only: not `enforceable`).
    Evaluate {
        kind: String,
        spec: PodSpec,
        enforceable: bool,
    },
    /// A namespace created or relabelled: warn about existing pods a stricter enforce level
    /// would deny. `old` is `None` on CREATE.
    NamespaceLabels {
        namespace: String,
        old: Option<BTreeMap<String, String>>,
        new: BTreeMap<String, String>,
    },
    /// Allowed without evaluation, for the stated reason (logged at debug).
    Skip(&'static str),
    /// The review is well-formed but its object is not; denied with this message.
    Invalid(String),
}

/// Parses a review body. `Err` only when no uid can be found to answer to.
pub fn parse(body: &[u8]) -> Result<Parsed, Unanswerable> {
    if let Ok(review) = serde_json::from_slice::<Review<Object>>(body) {
        return finish(review);
    }
    match serde_json::from_slice::<Review<&RawValue>>(body) {
        Ok(review) => finish(review),
        Err(e) => Err(salvage(body, &e)),
    }
}

fn finish<O: IntoObject>(review: Review<O>) -> Result<Parsed, Unanswerable> {
    let api_version = match review.api_version.as_str() {
        V1 => V1,
        V1BETA1 => V1BETA1,
        "" => return Err(Unanswerable("AdmissionReview has no apiVersion".into())),
        other => {
            return Err(Unanswerable(format!(
                "unsupported apiVersion {other:?} (want {V1} or {V1BETA1})"
            )));
        }
    };
    if review.kind != "AdmissionReview" {
        return Err(Unanswerable(format!(
            "kind is {:?}, not AdmissionReview",
            review.kind
        )));
    }
    let mut req = review
        .request
        .ok_or_else(|| Unanswerable("AdmissionReview has no request".into()))?;
    if req.uid.is_empty() {
        return Err(Unanswerable("AdmissionReview request has no uid".into()));
    }
    let action = classify(&mut req);
    Ok(Parsed {
        api_version,
        uid: req.uid,
        operation: req.operation,
        namespace: req.namespace,
        name: req.name,
        username: req.user_info.username,
        dry_run: req.dry_run.unwrap_or(false),
        action,
    })
}

/// After a parse error: is there still a uid to answer, so the API server gets a review back?
fn salvage(body: &[u8], err: &serde_json::Error) -> Unanswerable {
    Unanswerable(match serde_json::from_slice::<serde_json::Value>(body) {
        Err(_) => format!("body is not valid JSON: {err}"),
        Ok(v) if !v.is_object() => "body is not a JSON object".into(),
        Ok(_) => format!("malformed AdmissionReview: {err}"),
    })
}

/// Workload kinds (group, kind) whose pod template is checked with warn and audit only.
const WORKLOADS: &[(&str, &str)] = &[
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "ReplicationController"),
    ("", "PodTemplate"),
];

fn classify<O: IntoObject>(req: &mut Request<O>) -> Action {
    let (group, kind) = (req.kind.group.as_str(), req.kind.kind.as_str());
    let op = req.operation.as_str();
    if !matches!(op, "CREATE" | "UPDATE") {
        return Action::Skip("operation not evaluated");
    }
    if group.is_empty() && kind == "Namespace" && req.sub_resource.is_empty() {
        return namespace_change(req);
    }
    let is_pod = group.is_empty() && matches!(kind, "Pod" | "EphemeralContainers");
    let is_workload = WORKLOADS.contains(&(group, kind));
    match req.sub_resource.as_str() {
        "" if is_pod || is_workload => {}
        "ephemeralcontainers" if is_pod && op == "UPDATE" => {}
        "" => return Action::Skip("kind not evaluated"),
        _ => return Action::Skip("subresource not evaluated"),
    }
    let specs = take(req.object.take(), "object").and_then(|o| {
        let spec = o.pod_spec().map_err(|e| format!("object: {e}"))?;
        Ok((o.kind, spec))
    });
    let (object_kind, spec) = match specs {
        Ok(v) => v,
        Err(e) if is_pod => return Action::Invalid(e),
        // Workloads are only warned about: an unreadable template is not fipsgate's to refuse.
        Err(_) => return Action::Skip("workload without a readable pod template"),
    };
    if op == "UPDATE" {
        let old = match take(req.old_object.take(), "oldObject")
            .and_then(|o| o.pod_spec().map_err(|e| format!("oldObject: {e}")))
        {
            Ok(s) => s,
            Err(e) if is_pod => return Action::Invalid(e),
            Err(_) => PodSpec::default(),
        };
        if !images_changed(&old, &spec) {
            return Action::Skip("update changes no image and adds no container");
        }
    }
    Action::Evaluate {
        // The pre-1.22 subresource object is still a pod to the user.
        kind: if object_kind == "EphemeralContainers" {
            "Pod".into()
        } else {
            object_kind
        },
        spec,
        enforceable: is_pod,
    }
}

fn namespace_change<O: IntoObject>(req: &mut Request<O>) -> Action {
    let Ok(new) = take(req.object.take(), "object") else {
        return Action::Skip("namespace without readable labels");
    };
    let old = take(req.old_object.take(), "oldObject").ok();
    let name = if new.metadata.name.is_empty() {
        req.name.clone()
    } else {
        new.metadata.name
    };
    Action::NamespaceLabels {
        namespace: name,
        old: old.map(|o| o.metadata.labels.unwrap_or_default()),
        new: new.metadata.labels.unwrap_or_default(),
    }
}

/// True when `new` has a container that `old` lacks, or a container whose image differs.
pub fn images_changed(old: &PodSpec, new: &PodSpec) -> bool {
    let find = |kind: ContainerKind, c: &Container| {
        old.all()
            .find(|(k, o)| *k == kind && o.name == c.name)
            .map(|(_, o)| o.image.as_str())
    };
    new.all()
        .any(|(kind, c)| find(kind, c) != Some(c.image.as_str()))
}

/// An AdmissionReview answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: Response,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ReviewResponse {
    fn new(req: &Parsed, allowed: bool) -> Self {
        Self {
            api_version: req.api_version,
            kind: "AdmissionReview",
            response: Response {
                uid: req.uid.clone(),
                allowed,
                status: None,
                warnings: Vec::new(),
                audit_annotations: BTreeMap::new(),
            },
        }
    }

    /// Allowed without evaluation.
    pub fn allow(req: &Parsed) -> Self {
        Self::new(req, true)
    }

    /// Denied because the object itself is malformed (HTTP-style code 400).
    pub fn invalid(req: &Parsed, message: &str) -> Self {
        let mut r = Self::new(req, false);
        r.response.status = Some(Status {
            code: 400,
            reason: "BadRequest",
            message: format!("fipsgate cannot read the object: {message}"),
        });
        r.response
            .audit_annotations
            .insert("error", message.to_string());
        r
    }

    /// The engine's decision, as the API server expects it.
    pub fn from_decision(req: &Parsed, d: Decision) -> Self {
        let mut r = Self::new(req, d.allowed());
        if !d.allowed() {
            r.response.status = Some(Status {
                code: 403,
                reason: "Forbidden",
                message: d.message.unwrap_or_default(),
            });
        }
        r.response.warnings = d.warnings;
        r.response.audit_annotations = d.audit_annotations;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"apiVersion": V1, "kind": "AdmissionReview", "request": request}),
        )
        .unwrap()
    }

    fn pod(images: &[(&str, &str)]) -> serde_json::Value {
        let containers: Vec<_> = images
            .iter()
            .map(|(n, i)| serde_json::json!({"name": n, "image": i}))
            .collect();
        serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    fn action(request: serde_json::Value) -> Action {
        parse(&review(request)).unwrap().action
    }

    #[test]
    fn routing() {
        let base = |op: &str, sub: &str, kind: &str, group: &str| serde_json::json!({"uid": "u", "operation": op, "subResource": sub, "kind": {"group": group, "version": "v1", "kind": kind}, "object": pod(&[("a", "nginx")]), "oldObject": pod(&[("a", "nginx")])});
        assert!(matches!(
            action(base("CREATE", "", "Pod", "")),
            Action::Evaluate { .. }
        ));
        assert!(matches!(
            action(base("UPDATE", "", "Pod", "")),
            Action::Skip(_)
        ));
        assert!(matches!(
            action(base("DELETE", "", "Pod", "")),
            Action::Skip(_)
        ));
        assert!(matches!(
            action(base("CREATE", "", "Service", "")),
            Action::Skip("kind not evaluated")
        ));
        let mut deploy = base("CREATE", "", "Deployment", "apps");
        deploy["object"] = serde_json::json!({"kind": "Deployment",
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}}});
        assert!(matches!(
            action(deploy.clone()),
            Action::Evaluate {
                enforceable: false,
                ..
            }
        ));
        deploy["object"] = serde_json::json!({"kind": "Deployment", "spec": {}});
        assert!(matches!(action(deploy), Action::Skip(_)));
        assert!(matches!(
            action(base("CREATE", "", "Ingress", "networking.k8s.io")),
            Action::Skip(_)
        ));
        assert!(matches!(
            action(base("UPDATE", "status", "Pod", "")),
            Action::Skip(_)
        ));
        assert!(matches!(
            action(base("CREATE", "exec", "PodExecOptions", "")),
            Action::Skip(_)
        ));
        let mut upd = base("UPDATE", "", "Pod", "");
        upd["object"] = pod(&[("a", "nginx:2")]);
        assert!(matches!(action(upd.clone()), Action::Evaluate { .. }));
        upd["object"] = pod(&[("a", "nginx"), ("b", "nginx")]);
        assert!(matches!(action(upd), Action::Evaluate { .. }));
        let mut bad = base("CREATE", "", "Pod", "");
        bad["object"] = serde_json::json!({"kind": "Pod", "spec": {"containers": "nope"}});
        assert!(matches!(action(bad), Action::Invalid(_)));
        let mut none = base("CREATE", "", "Pod", "");
        none.as_object_mut().unwrap().remove("object");
        assert!(matches!(action(none), Action::Invalid(m) if m == "request has no object"));
    }

    #[test]
    fn unanswerable() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not valid JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "no request"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#, "no uid"),
            (br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"x"}}"#, "unsupported apiVersion"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"x"}}"#, "not AdmissionReview"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#, "malformed AdmissionReview"),
        ];
        for (body, want) in cases {
            let e = parse(body).unwrap_err();
            assert!(e.0.contains(want), "{}: {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn captured_reviews() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/admission-reviews/"
        );
        let read = |f: &str| std::fs::read(format!("{dir}{f}")).unwrap();
        let p = parse(&read("pod-create-init-and-containers.json")).unwrap();
        assert_eq!(p.uid, "beda5770-d7a3-4fc3-8492-1b2de81a3b26");
        let Action::Evaluate { spec, .. } = p.action else {
            panic!()
        };
        assert_eq!(spec.len(), 3);
        let p = parse(&read("pod-update-image-changed.json")).unwrap();
        assert!(matches!(p.action, Action::Evaluate { .. }));
        let p = parse(&read("pod-ephemeralcontainers-v1.20-shape.json")).unwrap();
        let Action::Evaluate { spec, .. } = p.action else {
            panic!()
        };
        assert_eq!(spec.ephemeral_containers[0].image, "busybox:1.36");
        assert!(parse(&read("pod-create-dry-run.json")).unwrap().dry_run);
        assert!(matches!(
            parse(&read("namespace-create.json")).unwrap().action,
            Action::NamespaceLabels { old: None, .. }
        ));
        let Action::NamespaceLabels {
            namespace,
            old,
            new,
        } = parse(&read("namespace-update-enforce-label.json"))
            .unwrap()
            .action
        else {
            panic!()
        };
        assert_eq!(namespace, "team-a");
        assert!(old.is_some());
        assert_eq!(
            new.get("fipsgate.io/enforce").map(String::as_str),
            Some("strict")
        );
        let Action::Evaluate {
            enforceable, spec, ..
        } = parse(&read("deployment-create.json")).unwrap().action
        else {
            panic!()
        };
        assert!(!enforceable);
        assert_eq!(spec.containers[0].image, "nginx:1.25");
    }
}

/// Parses a Go duration as the API server writes it in `?timeout=` (`5s`, `1m30s`, `250ms`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?} (e.g. 5s, 250ms, 1m30s)");
    if s.is_empty() || s.len() > 32 {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        let ok = [
            ("5s", 5000),
            ("250ms", 250),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("0s", 0),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
        for s in ["", "5", "s", "5x", "-1s", "1e9h"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &str =
        include_str!("../../tests/fixtures/admission-reviews/pod-create-init-and-containers.json");

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&body);
        }

        #[test]
        fn mutated_reviews_never_panic(at in 0..FIXTURE.len(), len in 0..64usize, with in "\\PC{0,16}") {
            let mut s = FIXTURE.as_bytes().to_vec();
            let end = (at + len).min(s.len());
            s.splice(at..end, with.bytes());
            if let Ok(p) = parse(&s) {
                // Whatever was read must still be answerable.
                let r = ReviewResponse::allow(&p);
                prop_assert_eq!(r.response.uid, p.uid);
            }
        }
    }

    #[test]
    fn nesting_huge_strings_and_wrong_types_get_answers() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes()).is_err());
        let mut huge: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        huge["request"]["object"]["spec"]["containers"][0]["image"] = "a".repeat(1 << 20).into();
        let p = parse(&serde_json::to_vec(&huge).unwrap()).unwrap();
        assert!(matches!(p.action, Action::Evaluate { .. }));
        let mut wrong: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        wrong["request"]["object"]["spec"]["containers"][0]["image"] = 42.into();
        let p = parse(&serde_json::to_vec(&wrong).unwrap()).unwrap();
        assert!(
            matches!(p.action, Action::Invalid(ref m) if m.contains("invalid type")),
            "{:?}",
            p.action
        );
        // Invalid UTF-8 inside a string.
        let mut bad = FIXTURE.as_bytes().to_vec();
        let i = FIXTURE.rfind("busybox:1.36").unwrap();
        bad[i] = 0xff;
        match parse(&bad) {
            Err(e) => assert!(e.0.contains("JSON"), "{e}"),
            Ok(p) => assert!(matches!(p.action, Action::Invalid(_)), "{:?}", p.action),
        }
        // Duplicate keys: serde_json rejects a duplicated field.
        let dup = FIXTURE.replacen("\"uid\":", "\"uid\":\"x\",\"uid\":", 1);
        assert!(parse(dup.as_bytes()).is_err());
    }
}
