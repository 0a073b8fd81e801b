//! `-o table|wide|json|yaml`: one output choice, the same on every command.

use clap::ValueEnum;
use serde::Serialize;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Columns for the terminal.
    #[default]
    Table,
    /// The table with more detail: more columns (digests, evidence, certificates), whole lists.
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

    /// Commands that print no report: a server, files written, a script.
    const NO_OUTPUT: &[&str] = &["serve", "certs", "completions", "help"];

    /// Every command, walked from the root, as (path, command).
    fn commands(c: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in c.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            out.push((p.clone(), sub.clone()));
            commands(sub, &p, out);
        }
    }

    /// Every command that prints a report takes `-o/--output` with at least the shared four
    /// values, so a new command cannot drift.
    #[test]
    fn every_command_takes_the_shared_output_values() {
        let root = <crate::cli::Cli as clap::CommandFactory>::command();
        let mut all = Vec::new();
        commands(&root, "fipsgate", &mut all);
        let mut checked = 0;
        for (path, c) in &all {
            let Some(o) = c.get_arguments().find(|a| a.get_id() == "output") else {
                let name = c.get_name();
                assert!(NO_OUTPUT.contains(&name), "{path} has no -o/--output");
                continue;
            };
            assert_eq!(o.get_short(), Some('o'), "{path}");
            assert_eq!(o.get_long(), Some("output"), "{path}");
            let values: Vec<String> = (o.get_possible_values().iter())
                .map(|v| v.get_name().to_string())
                .collect();
            for want in Output::value_variants() {
                let name = want.to_possible_value().unwrap().get_name().to_string();
                assert!(values.contains(&name), "{path} -o {name}: {values:?}");
            }
            assert_eq!(
                o.get_default_values(),
                ["table"],
                "{path}: the default is the table"
            );
            checked += 1;
        }
        assert!(checked >= 6, "{checked} commands with --output");
    }

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
