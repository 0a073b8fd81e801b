//! `check`: manifests (Pods and workloads) judged before they ship, as the pods they make
//! would be judged at admission. The command line reads the files; images are assessed
//! through the [`AssessmentSource`] port.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::app::assess::classify;
use crate::app::ports::{AssessmentSource, LookupContext};
use crate::config::yaml;
use crate::domain::policy::NamespacePolicy;
use crate::domain::workload::{Object, PodSpec, SpecPath, WorkloadError, kind_named};
use crate::engine::{self, Classification, Decision, Outcome, Rules, Subject};

/// A manifest problem that stops the check (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {reason}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct InputError {
    pub origin: String,
    pub line: Option<u64>,
    pub reason: String,
}

/// An [`InputError`] at `origin` (and `line`, when known).
pub fn input_error(origin: &str, line: Option<u64>, reason: impl Into<String>) -> InputError {
    InputError {
        origin: origin.to_string(),
        line,
        reason: reason.into(),
    }
}

/// One object found in the input, with where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub origin: String,
    pub line: u64,
    pub object: Object,
    pub spec: PodSpec,
}

/// How to treat documents of kinds that carry no pod spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    Error,
    Skip,
}

/// The objects of a stream: those with a pod spec, the documents skipped (with where), and
/// the labels of the Namespaces it creates.
#[derive(Debug, Default)]
pub struct Stream {
    pub manifests: Vec<Manifest>,
    pub skipped: Vec<Skipped>,
    /// Namespace name → its labels, for the objects of the stream that land in it.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl Stream {
    /// Adds `other`'s objects after this stream's.
    pub fn extend(&mut self, other: Stream) {
        self.manifests.extend(other.manifests);
        self.skipped.extend(other.skipped);
        self.namespaces.extend(other.namespaces);
    }
}

/// The policy of each namespace a check meets: that of a Namespace in the stream, read from
/// its labels, else `default` (the command line's labels and the configured defaults).
#[derive(Debug, Clone)]
pub struct Policies {
    pub default: NamespacePolicy,
    pub by_namespace: BTreeMap<String, NamespacePolicy>,
}

impl Policies {
    /// The policy objects in `namespace` are judged under.
    pub fn of(&self, namespace: &str) -> &NamespacePolicy {
        self.by_namespace.get(namespace).unwrap_or(&self.default)
    }
}

/// A document of a kind without a pod spec, not judged.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// `file:line`.
    pub at: String,
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}/{} (no pod spec)", self.at, self.kind, self.name)
    }
}

/// `12 objects judged, 4 skipped: Service ×2, ConfigMap ×2`.
pub fn summary(judged: usize, skipped: &[Skipped]) -> String {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for s in skipped {
        match kinds.iter_mut().find(|(k, _)| *k == s.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((&s.kind, 1)),
        }
    }
    let objects = if judged == 1 { "object" } else { "objects" };
    if kinds.is_empty() {
        return format!("{judged} {objects} judged");
    }
    let by_kind: Vec<String> = kinds
        .iter()
        .map(|(k, n)| match *k {
            "Namespace" => format!("{k} ×{n} (labels used)"),
            _ => format!("{k} ×{n}"),
        })
        .collect();
    format!(
        "{judged} {objects} judged, {} skipped: {}",
        skipped.len(),
        by_kind.join(", ")
    )
}

/// Parses a YAML or JSON stream into objects with a pod spec. `List`s are flattened.
pub fn parse_manifests(
    text: &str,
    origin: &str,
    unsupported: Unsupported,
) -> Result<Stream, InputError> {
    let mut out = Stream::default();
    let mut documents = 0;
    for (start, doc) in split_documents(text) {
        let yaml = || {
            yaml::from_str(doc, origin).map_err(|e| {
                input_error(
                    origin,
                    Some(start + e.line.map_or(0, |l| l.0.saturating_sub(1))),
                    format!("invalid YAML: {}", e.reason),
                )
            })
        };
        // JSON (`{"kind": ...`) is read as JSON, its errors are clearer; `{kind: Pod}` is YAML's
        // flow style.
        let json = doc.trim_start().strip_prefix('{').map(str::trim_start);
        let value: serde_json::Value = if json.is_some_and(|j| j.starts_with(['"', '}'])) {
            serde_json::from_str(doc).map_err(|e| {
                input_error(
                    origin,
                    Some(start + e.line() as u64 - 1),
                    format!("invalid JSON: {e}"),
                )
            })?
        } else {
            yaml()?
        };
        if value.is_null() {
            continue;
        }
        documents += 1;
        collect(value, origin, start, unsupported, &mut out)?;
    }
    if documents == 0 {
        return Err(input_error(
            origin,
            None,
            "no Kubernetes objects found (empty input)",
        ));
    }
    Ok(out)
}

fn collect(
    value: serde_json::Value,
    origin: &str,
    line: u64,
    unsupported: Unsupported,
    out: &mut Stream,
) -> Result<(), InputError> {
    let err = |reason: String| input_error(origin, Some(line), reason);
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or_else(|| err("document is not a Kubernetes object (no kind)".into()))?
        .to_string();
    if kind == "List" || kind.ends_with("List") {
        let items = match value.get("items") {
            Some(serde_json::Value::Array(items)) => items.clone(),
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(_) => return Err(err(format!("{kind}.items is not a list"))),
        };
        for item in items {
            collect(item, origin, line, unsupported, out)?;
        }
        return Ok(());
    }
    let strict = pod_spec_value(&value).map(unknown_fields);
    let object: Object = serde_json::from_value(value).map_err(|e| err(format!("{kind}: {e}")))?;
    if kind == "Namespace" && object.api_version == "v1" {
        let labels = object.metadata.labels.clone().unwrap_or_default();
        out.namespaces.insert(object.metadata.name.clone(), labels);
    }
    match object.pod_spec() {
        Ok(spec) => {
            if let Some(Err(e)) = strict {
                return Err(err(format!("{kind} {}: {e}", object.display_name())));
            }
            out.manifests.push(Manifest {
                origin: origin.to_string(),
                line,
                object,
                spec,
            });
        }
        Err(WorkloadError::UnsupportedKind(_)) if unsupported == Unsupported::Skip => {
            out.skipped.push(Skipped {
                at: format!("{origin}:{line}"),
                kind,
                name: object.display_name(),
            });
        }
        Err(e) => return Err(err(e.to_string())),
    }
    Ok(())
}

/// Where a supported kind keeps its pod spec, in the raw object.
fn pod_spec_value(object: &serde_json::Value) -> Option<&serde_json::Value> {
    let kind = kind_named(object.get("kind")?.as_str()?)?;
    let path = match kind.spec {
        SpecPath::Pod => "/spec",
        SpecPath::Template => "/spec/template/spec",
        SpecPath::JobTemplate => "/spec/jobTemplate/spec/template/spec",
        SpecPath::PodTemplate => "/template/spec",
        SpecPath::Ephemeral => return None,
    };
    object.pointer(path)
}

/// A pod spec read as `kubectl apply --validate=strict` reads it: a field Kubernetes does not
/// know (`contianers:`) is an error, not a silently empty pod. Read through k8s-openapi's
/// `PodSpec`; a field that does not survive the round trip is unknown.
fn unknown_fields(spec: &serde_json::Value) -> Result<(), String> {
    let typed: k8s_openapi::api::core::v1::PodSpec =
        serde_json::from_value(spec.clone()).map_err(|e| format!("pod spec: {e}"))?;
    let known = serde_json::to_value(&typed).map_err(|e| format!("pod spec: {e}"))?;
    let mut unknown = Vec::new();
    unknown_paths(spec, &known, "spec", &mut unknown);
    match unknown.as_slice() {
        [] => Ok(()),
        [one] => Err(format!("unknown field {one}")),
        many => Err(format!("unknown fields {}", many.join(", "))),
    }
}

fn unknown_paths(
    given: &serde_json::Value,
    known: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => {
            for (name, v) in g.iter().filter(|(_, v)| !v.is_null()) {
                let here = format!("{path}.{name}");
                match k.get(name) {
                    Some(kv) => unknown_paths(v, kv, &here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(g), Value::Array(k)) => {
            for (i, (gv, kv)) in g.iter().zip(k).enumerate() {
                unknown_paths(gv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Splits a YAML stream at `---` lines, keeping each document's first line number (1-based).
fn split_documents(text: &str) -> Vec<(u64, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let l = line.trim_end();
        if l == "---" || l == "..." {
            docs.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i as u64 + 2;
        } else if l.starts_with("--- ") {
            // `--- {kind: Pod, ...}`: the next document starts on the separator's line.
            docs.push((start_line, &text[start_byte..offset]));
            start_byte = offset + 4;
            start_line = i as u64 + 1;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start_byte..]));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// The check of one object.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub origin: String,
    pub line: u64,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub findings: Vec<engine::Finding>,
}

/// Evaluates every manifest as the pods it makes would be evaluated at admission, each distinct
/// image classified once through `source` (the catalogue alone, or the chain with registries).
pub async fn evaluate(
    manifests: &[Manifest],
    rules: &Rules,
    source: &dyn AssessmentSource,
    policies: &Policies,
    default_namespace: &str,
    username: &str,
    today: jiff::civil::Date,
) -> Vec<Report> {
    let mut memo: HashMap<String, Classification> = HashMap::new();
    let mut reports = Vec::with_capacity(manifests.len());
    for m in manifests {
        let namespace = if m.object.metadata.namespace.is_empty() {
            default_namespace
        } else {
            &m.object.metadata.namespace
        };
        let name = m.object.display_name();
        let ctx = LookupContext {
            namespace: namespace.to_string(),
            pull_secrets: (m.spec.image_pull_secrets.iter())
                .map(|s| s.name.clone())
                .collect(),
        };
        let mut classes: Vec<Classification> = Vec::with_capacity(m.spec.len());
        for (_, c) in m.spec.all() {
            if let Some(known) = memo.get(&c.image) {
                classes.push(known.clone());
                continue;
            }
            let (class, _) = classify(rules, source, &c.image, &ctx, None, today).await;
            memo.insert(c.image.clone(), class.clone());
            classes.push(class);
        }
        let subject = Subject {
            kind: &m.object.kind,
            namespace,
            name: &name,
            username,
            enforceable: true,
            previous: None,
        };
        let Decision {
            outcome,
            message,
            warnings,
            mut findings,
            ..
        } = engine::evaluate(
            rules,
            &subject,
            &m.spec,
            &classes,
            policies.of(namespace),
            today,
        );
        engine::with_modules(&mut findings, &classes, today);
        reports.push(Report {
            origin: m.origin.clone(),
            line: m.line,
            kind: m.object.kind.clone(),
            namespace: namespace.to_string(),
            name,
            outcome,
            message,
            warnings,
            findings,
        });
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_lines() {
        let text = "# c\n---\nkind: Pod\nspec: {containers: [{name: a, image: nginx}]}\n---\n---\nkind: List\nitems:\n- kind: Pod\n  spec: {containers: [{name: b, image: busybox}]}\n...\n";
        let m = parse_manifests(text, "x.yaml", Unsupported::Error)
            .unwrap()
            .manifests;
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].line, m[1].line), (3, 7));
        // An object written on its separator line is a document like any other.
        let text = "kind: Pod\nspec: {containers: [{name: a, image: nginx}]}\n--- {kind: Pod, metadata: {name: b}, spec: {containers: [{name: b, image: busybox}]}}\n";
        let m = parse_manifests(text, "x.yaml", Unsupported::Error)
            .unwrap()
            .manifests;
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[1].line, m[1].spec.containers[0].image.as_str()),
            (3, "busybox")
        );
    }

    #[test]
    fn bad_inputs() {
        let cases = [
            ("", "x.yaml: no Kubernetes objects found"),
            ("# only a comment\n", "x.yaml: no Kubernetes objects found"),
            ("kind: Service\n", "x.yaml:1: unsupported kind \"Service\""),
            ("a: 1\n", "x.yaml:1: document is not a Kubernetes object"),
            (
                "kind: Pod\nspec: {containers: [\n",
                "x.yaml:2: invalid YAML: unclosed bracket",
            ),
            (
                "kind: Pod\nspec: {}\n---\nkind: Pod\nspec:\n  containers: 5\n",
                "x.yaml:4: Pod: invalid type",
            ),
            ("{\"kind\": \"Pod\",\n\"spec\": }", "x.yaml:2: invalid JSON"),
            (
                "kind: Deployment\nspec: {}\n",
                "x.yaml:1: Deployment has no spec.template.spec",
            ),
            // A misspelt field used to give a pod without containers, and a pass.
            (
                "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      contianers: [{name: a, image: nginx}]\n",
                "x.yaml:1: Deployment web: unknown field spec.contianers",
            ),
            (
                "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: nginx, imagePolicy: Always}], nodeSelecter: {}}\n",
                "x.yaml:1: Pod p: unknown fields spec.containers[0].imagePolicy, spec.nodeSelecter",
            ),
        ];
        for (text, want) in cases {
            let e = parse_manifests(text, "x.yaml", Unsupported::Error)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let skipped = parse_manifests(
            "kind: Service\n---\nkind: Pod\nspec: {}\n",
            "x",
            Unsupported::Skip,
        )
        .unwrap();
        assert_eq!(skipped.manifests.len(), 1);
        let said: Vec<String> = skipped.skipped.iter().map(|s| s.to_string()).collect();
        assert_eq!(said, ["x:1: Service/(unnamed) (no pod spec)"]);
        assert_eq!(
            summary(1, &skipped.skipped),
            "1 object judged, 1 skipped: Service ×1"
        );
        let many = [("Service", 2), ("ConfigMap", 2)]
            .iter()
            .flat_map(|&(k, n)| {
                (0..n).map(move |i| Skipped {
                    at: format!("x:{i}"),
                    kind: k.into(),
                    name: "n".into(),
                })
            });
        assert_eq!(
            summary(12, &many.collect::<Vec<_>>()),
            "12 objects judged, 4 skipped: Service ×2, ConfigMap ×2"
        );
    }
}
