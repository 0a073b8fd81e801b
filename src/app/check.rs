//! `check`: manifests (Pods and workloads) judged before they ship, as the pods they make
//! would be judged at admission. Pure: the command line reads the files.

use serde::Serialize;

use crate::app::assess::classify_offline;
use crate::catalog::Catalog;
use crate::config::yaml;
use crate::domain::policy::NamespacePolicy;
use crate::domain::workload::{Object, PodSpec, WorkloadError};
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

/// Parses a YAML or JSON stream into objects with a pod spec. `List`s are flattened.
pub fn parse_manifests(
    text: &str,
    origin: &str,
    unsupported: Unsupported,
) -> Result<Vec<Manifest>, InputError> {
    let mut out = Vec::new();
    let mut documents = 0;
    for (start, doc) in split_documents(text) {
        let value: serde_json::Value = if doc.trim_start().starts_with('{') {
            serde_json::from_str(doc).map_err(|e| {
                input_error(
                    origin,
                    Some(start + e.line() as u64 - 1),
                    format!("invalid JSON: {e}"),
                )
            })?
        } else {
            yaml::from_str(doc, origin).map_err(|e| {
                input_error(
                    origin,
                    Some(start + e.line.map_or(0, |l| l.0.saturating_sub(1))),
                    format!("invalid YAML: {}", e.reason),
                )
            })?
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
    out: &mut Vec<Manifest>,
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
    let object: Object = serde_json::from_value(value).map_err(|e| err(format!("{kind}: {e}")))?;
    match object.pod_spec() {
        Ok(spec) => out.push(Manifest {
            origin: origin.to_string(),
            line,
            object,
            spec,
        }),
        Err(WorkloadError::UnsupportedKind(_)) if unsupported == Unsupported::Skip => {}
        Err(e) => return Err(err(e.to_string())),
    }
    Ok(())
}

/// Splits a YAML stream at `---` lines, keeping each document's first line number (1-based).
fn split_documents(text: &str) -> Vec<(u64, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let l = line.trim_end();
        if l == "---" || l.starts_with("--- ") || l == "..." {
            docs.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i as u64 + 2;
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

/// Evaluates every manifest as the pods it makes would be evaluated at admission.
pub fn evaluate(
    manifests: &[Manifest],
    rules: &Rules,
    catalog: &Catalog,
    policy: &NamespacePolicy,
    default_namespace: &str,
    username: &str,
    today: jiff::civil::Date,
) -> Vec<Report> {
    manifests
        .iter()
        .map(|m| {
            let namespace = if m.object.metadata.namespace.is_empty() {
                default_namespace
            } else {
                &m.object.metadata.namespace
            };
            let name = m.object.display_name();
            let classes: Vec<Classification> = m
                .spec
                .all()
                .map(|(_, c)| classify_offline(rules, catalog, &c.image))
                .collect();
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
                findings,
                ..
            } = engine::evaluate(rules, &subject, &m.spec, &classes, policy, today);
            Report {
                origin: m.origin.clone(),
                line: m.line,
                kind: m.object.kind.clone(),
                namespace: namespace.to_string(),
                name,
                outcome,
                message,
                warnings,
                findings,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_lines() {
        let text = "# c\n---\nkind: Pod\nspec: {containers: [{name: a, image: nginx}]}\n---\n---\nkind: List\nitems:\n- kind: Pod\n  spec: {containers: [{name: b, image: busybox}]}\n...\n";
        let m = parse_manifests(text, "x.yaml", Unsupported::Error).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].line, m[1].line), (3, 7));
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
        assert_eq!(skipped.len(), 1);
    }
}
