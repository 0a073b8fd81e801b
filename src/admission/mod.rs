//! The AdmissionReview protocol (`admission.k8s.io/v1` and `v1beta1`): reading a review into
//! what fipsgate must decide ([`review`], [`route`]), and writing the answer ([`response`]).
//! Pure: no IO.

mod response;
mod review;
mod route;

use std::collections::BTreeMap;

use crate::domain::workload::PodSpec;

pub use response::{Pin, Response, ReviewResponse, Status};
pub use review::{Unanswerable, parse};
pub use route::images_changed;

pub const V1: &str = "admission.k8s.io/v1";
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// What the request asks fipsgate to decide.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub api_version: &'static str,
    pub uid: String,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    pub username: String,
    /// `ephemeralcontainers`, `status`, ...; empty for the object itself.
    pub sub_resource: String,
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
        /// On UPDATE, the spec before it.
        previous: Option<PodSpec>,
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

#[cfg(test)]
mod tests {
    use super::review::parse;
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
    fn images_changed_compares_each_place() {
        let spec = |v: serde_json::Value| -> PodSpec { serde_json::from_value(v).unwrap() };
        let old = spec(
            serde_json::json!({"initContainers": [{"name": "a", "image": "x"}],
            "containers": [{"name": "a", "image": "y"}, {"name": "b", "image": "z"}]}),
        );
        let cases = [
            (
                serde_json::json!({"initContainers": [{"name": "a", "image": "x"}], "containers": [{"name": "b", "image": "z"}, {"name": "a", "image": "y"}]}),
                false,
            ),
            (
                serde_json::json!({"containers": [{"name": "a", "image": "y"}]}),
                false,
            ),
            (
                serde_json::json!({"containers": [{"name": "a", "image": "x"}]}),
                true,
            ),
            (
                serde_json::json!({"ephemeralContainers": [{"name": "a", "image": "y"}]}),
                true,
            ),
            (
                serde_json::json!({"containers": [{"name": "c", "image": "z"}]}),
                true,
            ),
        ];
        for (new, changed) in cases {
            assert_eq!(images_changed(&old, &spec(new.clone())), changed, "{new}");
        }
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
