//! `-o table|wide|json|yaml`: one output choice, the same on every command.

use clap::ValueEnum;
use serde::Serialize;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Columns for the terminal.
    #[default]
    Table,
    /// The table with more columns (digests, evidence, certificates).
    Wide,
    /// Pretty-printed JSON, the same document as `yaml`.
    Json,
    /// YAML, the same document as `json`.
    Yaml,
}

impl Output {
    /// Whether this is one of the two document formats.
    pub fn is_structured(self) -> bool {
        matches!(self, Output::Json | Output::Yaml)
    }
}

/// `value` as the document format `output` names (JSON for the table formats), ending in a
/// newline.
pub fn document(value: &impl Serialize, output: Output) -> anyhow::Result<String> {
    Ok(match output {
        Output::Yaml => {
            let mut text = serde_saphyr::to_string(value)?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
        _ => format!("{}\n", serde_json::to_string_pretty(value)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_are_the_same_document() {
        let value = serde_json::json!({"image": "a/b:1", "levels": ["strict", "baseline"]});
        let json: serde_json::Value =
            serde_json::from_str(&document(&value, Output::Json).unwrap()).unwrap();
        let yaml: serde_json::Value =
            serde_saphyr::from_str(&document(&value, Output::Yaml).unwrap()).unwrap();
        assert_eq!(json, value);
        assert_eq!(yaml, value);
    }
}
