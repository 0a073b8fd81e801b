//! YAML reading with errors that name the file, the line and the key path.

use serde::de::DeserializeOwned;

/// A YAML document that could not be read into the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}{}: {reason}", .line.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default(), .path.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
pub struct YamlError {
    /// The file (or other source) the text came from.
    pub origin: String,
    /// Line and column, 1-based, where known.
    pub line: Option<(u64, u64)>,
    /// The key path (`exemptions.namespaces[0]`), where known.
    pub path: Option<String>,
    pub reason: String,
}

/// Deserialises one YAML document; unknown keys and wrong types are errors with their path.
pub fn from_str<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let path = serde_saphyr::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| serde_path_to_error::deserialize::<_, T>(v).err())
            .map(|pe| pe.path().to_string())
            .filter(|p| p != ".");
        error(origin, &e, path)
    })
}

/// Reads every document of a multi-document stream as JSON values.
pub fn documents(text: &str, origin: &str) -> Result<Vec<serde_json::Value>, YamlError> {
    serde_saphyr::from_multiple::<serde_json::Value>(text).map_err(|e| error(origin, &e, None))
}

fn error(origin: &str, e: &serde_saphyr::Error, path: Option<String>) -> YamlError {
    let line = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line(), l.column()));
    YamlError {
        origin: origin.to_string(),
        line,
        path,
        reason: reason(e),
    }
}

/// The first line of the parser's message, without its source snippet or position suffix.
fn reason(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    let first = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let first = first.trim_start_matches("error: ");
    // Some messages lead with their own position; the caller prints it already.
    match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, rest)) if pos.contains(" column ") => rest.to_string(),
        _ => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        a: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn errors_carry_line_and_path() {
        let e = from_str::<Doc>("a:\n  n: 1\n  m: 2\n", "f.yaml").unwrap_err();
        assert_eq!(e.line.map(|l| l.0), Some(3), "{e}");
        assert_eq!(e.path.as_deref(), Some("a.m"), "{e}");
        assert!(e.to_string().starts_with("f.yaml:3:"), "{e}");
        assert!(e.reason.contains("unknown field"), "{e}");
        let e = from_str::<Doc>("a:\n  n: text\n", "f.yaml").unwrap_err();
        assert_eq!(e.path.as_deref(), Some("a.n"), "{e}");
        let e = from_str::<Doc>("a: [\n", "f.yaml").unwrap_err();
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn multi_document() {
        let docs = documents("a: 1\n---\nb: 2\n", "x").unwrap();
        assert_eq!(docs.len(), 2);
    }
}
