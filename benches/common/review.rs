//! The captured pod-create review the benchmarks send, and variants of it.
#![allow(dead_code)]

/// The review a real kube-apiserver sent for a pod create (4 KB, an init container and a
/// container).
pub fn captured() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/admission-reviews/pod-create-init-and-containers.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

/// The captured review with one container and no init container, as text around its image.
pub fn one_container_parts() -> (String, String) {
    let mut review = captured();
    review["request"]["object"]["spec"]["initContainers"] = serde_json::json!([]);
    review["request"]["object"]["spec"]["containers"] =
        serde_json::json!([{"name": "app", "image": "IMAGE"}]);
    let text = serde_json::to_string(&review).unwrap();
    let (a, b) = text.split_once("IMAGE").unwrap();
    (a.to_string(), b.to_string())
}
