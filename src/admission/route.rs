//! Routing: which requests fipsgate evaluates, and the pod spec each one is about.

use std::collections::HashMap;

use crate::domain::workload::{ContainerKind, PodSpec, kind_of};

use super::Action;
use super::review::{IntoObject, Request, take};

/// What fipsgate does with a request: evaluate a pod or a workload template, look at a
/// namespace's new labels, or let it through.
pub(super) fn route<O: IntoObject>(req: &mut Request<O>) -> Action {
    let (group, kind) = (req.kind.group.as_str(), req.kind.kind.as_str());
    let op = req.operation.as_str();
    if !matches!(op, "CREATE" | "UPDATE") {
        return Action::Skip("operation not evaluated");
    }
    if group.is_empty() && kind == "Namespace" && req.sub_resource.is_empty() {
        return namespace_change(req);
    }
    let Some(supported) = kind_of(group, kind) else {
        return Action::Skip(match req.sub_resource.as_str() {
            "" => "kind not evaluated",
            _ => "subresource not evaluated",
        });
    };
    let is_pod = supported.enforceable();
    match req.sub_resource.as_str() {
        "" => {}
        "ephemeralcontainers" if is_pod && op == "UPDATE" => {}
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
    let mut previous = None;
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
        previous = Some(old);
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
        previous,
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
/// Linear in the two specs: an UPDATE carries up to two objects of the request's size.
pub fn images_changed(old: &PodSpec, new: &PodSpec) -> bool {
    let before: HashMap<(ContainerKind, &str), &str> = old
        .all()
        .map(|(k, c)| ((k, c.name.as_str()), c.image.as_str()))
        .collect();
    new.all()
        .any(|(k, c)| before.get(&(k, c.name.as_str())) != Some(&c.image.as_str()))
}
