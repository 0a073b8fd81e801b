//! `fipsgate check`: evaluates manifests (files, directories, stdin) before they ship.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::domain::policy::NamespacePolicy;
use crate::domain::workload::{Object, PodSpec};
use crate::engine::{self, Decision, Outcome, Resolution, Rules, Subject};

/// Inputs larger than this are refused.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// A manifest problem that stops the check (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {reason}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct InputError {
    pub origin: String,
    pub line: Option<u64>,
    pub reason: String,
}

fn input_error(origin: &str, line: Option<u64>, reason: impl Into<String>) -> InputError {
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

/// Reads every object from the given paths (`-` is stdin; directories are walked for
/// `.yaml`, `.yml` and `.json` files, in name order).
pub fn read_inputs(
    paths: &[PathBuf],
    unsupported: Unsupported,
) -> Result<Vec<Manifest>, InputError> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            let read = std::io::stdin()
                .take(MAX_INPUT_BYTES + 1)
                .read_to_string(&mut text)
                .map_err(|e| input_error("<stdin>", None, e.to_string()))?;
            if read as u64 > MAX_INPUT_BYTES {
                return Err(too_large("<stdin>"));
            }
            out.extend(parse_manifests(&text, "<stdin>", unsupported)?);
        } else if path.is_dir() {
            for file in walk(path)? {
                out.extend(read_file(&file, unsupported)?);
            }
        } else {
            out.extend(read_file(path, unsupported)?);
        }
    }
    Ok(out)
}

fn too_large(origin: &str) -> InputError {
    input_error(
        origin,
        None,
        format!(
            "input is larger than {} MiB",
            MAX_INPUT_BYTES / (1024 * 1024)
        ),
    )
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let origin = dir.display().to_string();
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| input_error(&origin, None, e.to_string()))?;
        for entry in entries {
            let p = entry
                .map_err(|e| input_error(&origin, None, e.to_string()))?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(input_error(
            &origin,
            None,
            "no .yaml, .yml or .json files in directory",
        ));
    }
    Ok(files)
}

fn read_file(path: &Path, unsupported: Unsupported) -> Result<Vec<Manifest>, InputError> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| input_error(&origin, None, e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| input_error(&origin, None, e.to_string()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large(&origin));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| input_error(&origin, None, format!("not UTF-8 text: {e}")))?;
    parse_manifests(&text, &origin, unsupported)
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
            crate::config::yaml::from_str(doc, origin).map_err(|e| {
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
        Err(crate::domain::workload::WorkloadError::UnsupportedKind(_))
            if unsupported == Unsupported::Skip => {}
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
            let resolutions: Vec<Resolution> = m
                .spec
                .all()
                .map(|(_, c)| rules.resolve(&c.image, |r| catalog.lookup(r)))
                .collect();
            let subject = Subject {
                kind: &m.object.kind,
                namespace,
                name: &name,
                username,
                enforceable: true,
            };
            let Decision {
                outcome,
                message,
                warnings,
                findings,
                ..
            } = engine::evaluate(rules, &subject, &m.spec, &resolutions, policy, today);
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

/// A plain-text table with one row per container.
pub fn table(reports: &[Report]) -> String {
    let mut rows = vec![
        [
            "OBJECT",
            "CONTAINER",
            "IMAGE",
            "COMPONENT",
            "STATUS",
            "EVIDENCE",
            "VERDICT",
        ]
        .map(String::from),
    ];
    for r in reports {
        for f in &r.findings {
            rows.push([
                format!("{}/{}", r.kind, r.name),
                format!("{}{}", f.container, kind_suffix(f.kind)),
                f.image.clone(),
                f.component.clone().unwrap_or_else(|| "-".into()),
                f.status.map_or("-".into(), |s| s.to_string()),
                f.evidence.map_or("-".into(), |e| e.to_string()),
                f.verdict_label().into(),
            ]);
        }
    }
    let mut out = crate::cli::render_table(&rows);
    for r in reports {
        if let Some(m) = &r.message {
            let prefix = if r.outcome == Outcome::Deny {
                "denied"
            } else {
                "would deny"
            };
            out.push_str(&format!("\n{prefix}: {}:{}: {m}", r.origin, r.line));
        }
        for w in &r.warnings {
            out.push_str(&format!("\nwarning: {}/{}: {w}", r.kind, r.name));
        }
    }
    out.push('\n');
    out
}

fn kind_suffix(kind: crate::domain::workload::ContainerKind) -> &'static str {
    match kind {
        crate::domain::workload::ContainerKind::Init => " (init)",
        crate::domain::workload::ContainerKind::Regular => "",
        crate::domain::workload::ContainerKind::Ephemeral => " (ephemeral)",
    }
}

impl engine::Finding {
    fn verdict_label(&self) -> &'static str {
        match self.verdict {
            engine::Verdict::Allowed => "allowed",
            engine::Verdict::Exempt => "exempt",
            engine::Verdict::Warned => "warned",
            engine::Verdict::Denied => "denied",
        }
    }
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
