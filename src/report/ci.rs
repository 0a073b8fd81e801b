//! `check`'s verdicts for CI: SARIF 2.1.0 for code-scanning tools (a result per violating
//! container, at the manifest's file and line) and JUnit XML (a test case per object).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::app::check::Report;
use crate::engine::{Outcome, Verdict};

use super::escape as esc;

const DENIED: &str = "fipsgate/would-deny";
const WARNED: &str = "fipsgate/warn";

/// The SARIF log of `reports`.
pub fn sarif(reports: &[Report]) -> Value {
    let mut results = Vec::new();
    for r in reports {
        for c in &r.findings {
            let (rule, index, level) = match c.verdict {
                Verdict::Denied => (DENIED, 0, "error"),
                Verdict::Warned => (WARNED, 1, "warning"),
                _ => continue,
            };
            let what = format!(
                "{} {:?} container {:?} ({})",
                r.kind, r.name, c.container, c.image
            );
            let reason = c.reason.as_deref().unwrap_or("violates the FIPS policy");
            let uri = if r.origin == "-" {
                "stdin"
            } else {
                r.origin.as_str()
            };
            results.push(json!({
                "ruleId": rule,
                "ruleIndex": index,
                "level": level,
                "message": {"text": format!("{what}: {reason}")},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": r.line.max(1)},
                }}],
                "partialFingerprints": {
                    "fipsgate/v1": format!("{}/{}/{}/{}/{}", r.namespace, r.kind, r.name, c.container, c.image),
                },
            }));
        }
    }
    let rule = |id: &str, text: &str, level: &str| {
        json!({
            "id": id,
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": level},
        })
    };
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "fipsgate",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": [
                    rule(DENIED, "A container image the namespace's enforce level would deny (not FIPS-validated cryptography)", "error"),
                    rule(WARNED, "A container image the namespace's warn or audit level reports", "warning"),
                ],
            }},
            "results": results,
        }],
    })
}

/// The JUnit XML of `reports`: a test case per object, failed when it would be denied.
pub fn junit(reports: &[Report]) -> String {
    let failures = reports
        .iter()
        .filter(|r| r.outcome != Outcome::Allow)
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"fipsgate check\" tests=\"{n}\" failures=\"{failures}\">\n<testsuite name=\"fipsgate check\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
        n = reports.len()
    );
    for r in reports {
        let _ = write!(
            out,
            "<testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\"",
            esc(&r.namespace),
            esc(&format!("{}/{} ({}:{})", r.kind, r.name, r.origin, r.line)),
            esc(&r.origin),
            r.line
        );
        let failed = r.outcome != Outcome::Allow;
        if !failed && r.warnings.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        if failed {
            let message = r.message.as_deref().unwrap_or("would be denied");
            let _ = writeln!(
                out,
                "<failure type=\"{}\" message=\"{}\">{}</failure>",
                r.outcome.as_str(),
                esc(message),
                esc(message)
            );
        }
        if !r.warnings.is_empty() {
            let _ = writeln!(
                out,
                "<system-out>{}</system-out>",
                esc(&r.warnings.join("\n"))
            );
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}
