//! The answer to a review: allowed or denied, warnings, and the audit annotations that record
//! why (keys without the webhook's prefix, which the API server adds).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{Decision, Exemption};

use super::Parsed;

/// Warnings per answer at most: a pod of a thousand containers must not make a megabyte
/// answer.
pub const MAX_WARNINGS: usize = 16;
/// Characters of one warning at most (a reference with its digest fits).
pub const MAX_WARNING_CHARS: usize = 1024;
/// Characters of all warnings at most: past this the API server cuts every warning to 256.
pub const MAX_WARNINGS_TOTAL_CHARS: usize = 4096;
/// Every warning starts with this: kubectl shows them among its own.
pub const WARNING_PREFIX: &str = "fipsgate: ";
/// Characters of the denial message and of each audit annotation at most.
pub const MAX_TEXT_CHARS: usize = 4096;

/// An AdmissionReview answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: Response,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<&'static str, String>,
    /// A base64 JSONPatch (mutating webhooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
}

/// One image reference to rewrite: where it is (a JSON pointer into the object) and what it
/// was, so the patch fails rather than overwrite a reference that changed in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub path: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ReviewResponse {
    fn new(req: &Parsed, allowed: bool) -> Self {
        Self {
            api_version: req.api_version,
            kind: "AdmissionReview",
            response: Response {
                uid: req.uid.clone(),
                allowed,
                status: None,
                warnings: Vec::new(),
                audit_annotations: BTreeMap::new(),
                patch: None,
                patch_type: None,
            },
        }
    }

    /// Allowed without evaluation.
    pub fn allow(req: &Parsed) -> Self {
        Self::new(req, true)
    }

    /// A namespace relabel: allowed, with its warnings; lowered levels are recorded in the
    /// `loosened` annotation.
    pub fn relabelled(req: &Parsed, warnings: Vec<String>, loosened: &[String]) -> Self {
        let mut r = Self::new(req, true);
        r.response.warnings = warnings;
        if !loosened.is_empty() {
            r.response
                .audit_annotations
                .insert("loosened", loosened.join("; "));
        }
        r.bounded()
    }

    /// Allowed, with the image references rewritten to their verified digests (`test` then
    /// `replace` for each), recorded in the `pinned` annotation.
    pub fn pinned(req: &Parsed, pins: &[Pin]) -> Self {
        use base64::Engine as _;
        let mut r = Self::new(req, true);
        if pins.is_empty() {
            return r;
        }
        let ops: Vec<serde_json::Value> = pins
            .iter()
            .flat_map(|p| {
                [
                    serde_json::json!({"op": "test", "path": p.path, "value": p.from}),
                    serde_json::json!({"op": "replace", "path": p.path, "value": p.to}),
                ]
            })
            .collect();
        let patch = serde_json::to_vec(&ops).unwrap_or_default();
        r.response.patch = Some(base64::engine::general_purpose::STANDARD.encode(patch));
        r.response.patch_type = Some("JSONPatch");
        let record: Vec<String> = pins
            .iter()
            .map(|p| format!("{} -> {}", p.path, p.to))
            .collect();
        r.response
            .audit_annotations
            .insert("pinned", record.join(", "));
        r
    }

    /// Denied because the object itself is malformed (HTTP-style code 400).
    pub fn invalid(req: &Parsed, message: &str) -> Self {
        let mut r = Self::new(req, false);
        r.response.status = Some(Status {
            code: 400,
            reason: "BadRequest",
            message: format!("fipsgate cannot read the object: {message}"),
        });
        r.response
            .audit_annotations
            .insert("error", message.to_string());
        r.bounded()
    }

    /// The engine's decision, as the API server expects it. `errors` are problems the decision
    /// was made despite (a namespace or image look-up that failed); they are recorded.
    pub fn from_decision(req: &Parsed, d: Decision, errors: &[String]) -> Self {
        let mut r = Self::new(req, d.allowed());
        r.response.audit_annotations = audit_annotations(&d, errors);
        if !d.allowed() {
            r.response.status = Some(Status {
                code: 403,
                reason: "Forbidden",
                message: d.message.unwrap_or_default(),
            });
        }
        r.response.warnings = d.warnings;
        r.bounded()
    }

    /// The answer within its bounds: at most [`MAX_WARNINGS`] warnings of
    /// [`MAX_WARNING_CHARS`], [`MAX_WARNINGS_TOTAL_CHARS`] in all, the message and each
    /// annotation at most [`MAX_TEXT_CHARS`]. What is cut says how much.
    fn bounded(mut self) -> Self {
        let r = &mut self.response;
        for w in &mut r.warnings {
            // kubectl prints `Warning: ` and the text: this says whose warning it is.
            if !w.starts_with(WARNING_PREFIX) {
                w.insert_str(0, WARNING_PREFIX);
            }
            truncate(w, MAX_WARNING_CHARS);
        }
        // Room is kept for the line that says how many were left out.
        let (mut kept, mut total) = (0, 0);
        for w in &r.warnings {
            let n = w.chars().count();
            if kept == MAX_WARNINGS - 1 || total + n > MAX_WARNINGS_TOTAL_CHARS - 64 {
                break;
            }
            (kept, total) = (kept + 1, total + n);
        }
        if kept < r.warnings.len() && r.warnings.len() > 1 + kept {
            let more = r.warnings.len() - kept;
            r.warnings.truncate(kept);
            r.warnings
                .push(format!("{WARNING_PREFIX}… and {more} more warnings"));
        }
        if let Some(status) = &mut r.status {
            truncate(&mut status.message, MAX_TEXT_CHARS);
        }
        for value in r.audit_annotations.values_mut() {
            truncate(value, MAX_TEXT_CHARS);
        }
        self
    }
}

/// Cuts `s` to at most `max` characters, the last an ellipsis, when it is longer.
fn truncate(s: &mut String, max: usize) {
    if let Some((cut, _)) = s.char_indices().nth(max.saturating_sub(1))
        && s[cut..].chars().nth(1).is_some()
    {
        s.truncate(cut);
        s.push('…');
    }
}

/// What the API server records in the audit log: the policy applied, the decision, the
/// audit-level violations, exemptions and errors.
fn audit_annotations(d: &Decision, errors: &[String]) -> BTreeMap<&'static str, String> {
    let mut a = BTreeMap::new();
    a.insert("policy", d.levels.summary());
    let all_errors: Vec<&str> = d
        .policy_errors
        .iter()
        .chain(errors)
        .map(String::as_str)
        .collect();
    if !all_errors.is_empty() {
        a.insert("error", all_errors.join("; "));
    }
    a.insert("decision", d.outcome.as_str().to_string());
    if !d.audit_violations.is_empty() {
        a.insert("violations", d.audit_violations.join("; "));
    }
    // What was verified, so the record says which image each container was admitted as.
    let digests: Vec<String> = (d.findings.iter())
        .filter_map(|f| Some(format!("{}={}", f.container, f.digest.as_ref()?)))
        .collect();
    if !digests.is_empty() {
        a.insert("digests", digests.join(", "));
    }
    match d.exemption {
        Some(Exemption::Image) => {
            a.insert(
                "exempt",
                format!("image: {}", d.exempt_containers.join(", ")),
            );
        }
        Some(e) => {
            a.insert("exempt", e.as_str().to_string());
        }
        None => {}
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        let cases = [
            ("abc", 3, "abc"),
            ("abcd", 3, "ab…"),
            ("ééééé", 4, "ééé…"),
            ("", 1, ""),
        ];
        for (input, max, want) in cases {
            let mut s = input.to_string();
            truncate(&mut s, max);
            assert_eq!(s, want, "{input} to {max}");
        }
    }

    impl ReviewResponse {
        fn allow_with_warnings(warnings: Vec<String>) -> Self {
            let mut r = ReviewResponse {
                api_version: super::super::V1,
                kind: "AdmissionReview",
                response: Response {
                    uid: "u".into(),
                    allowed: true,
                    status: None,
                    warnings: Vec::new(),
                    audit_annotations: BTreeMap::new(),
                    patch: None,
                    patch_type: None,
                },
            };
            r.response.warnings = warnings;
            r
        }
    }

    #[test]
    fn an_answer_is_bounded_whatever_the_decision_said() {
        let mut r = ReviewResponse {
            api_version: super::super::V1,
            kind: "AdmissionReview",
            response: Response {
                uid: "u".into(),
                allowed: false,
                status: Some(Status {
                    code: 403,
                    reason: "Forbidden",
                    message: "m".repeat(1 << 20),
                }),
                warnings: (0..1000)
                    .map(|i| format!("{i} {}", "w".repeat(990)))
                    .collect(),
                audit_annotations: BTreeMap::from([("violations", "v".repeat(1 << 20))]),
                patch: None,
                patch_type: None,
            },
        };
        r = r.bounded();
        let w = &r.response.warnings;
        // Four warnings of about 1003 characters (prefix included) fit in 4096, with room for the
        // last line.
        assert_eq!(w.len(), 5, "{w:?}");
        assert_eq!(w[4], "fipsgate: … and 996 more warnings");
        let total: usize = w.iter().map(|w| w.chars().count()).sum();
        assert!(total <= MAX_WARNINGS_TOTAL_CHARS, "{total}");
        assert!(w[0].starts_with("fipsgate: 0 www") && !w[0].ends_with('…'));
        let msg = &r.response.status.as_ref().unwrap().message;
        assert_eq!(msg.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(
            r.response.audit_annotations["violations"].chars().count(),
            MAX_TEXT_CHARS
        );
        assert!(serde_json::to_vec(&r).unwrap().len() < 16 * 1024);
        // Short warnings: at most sixteen lines.
        let mut r = ReviewResponse::allow_with_warnings((0..40).map(|i| format!("w{i}")).collect());
        r = r.bounded();
        assert_eq!(r.response.warnings.len(), MAX_WARNINGS);
        assert_eq!(r.response.warnings[15], "fipsgate: … and 25 more warnings");
        // One long warning is cut, the cut marked.
        let mut r = ReviewResponse::allow_with_warnings(vec!["x".repeat(5000)]);
        r = r.bounded();
        assert_eq!(r.response.warnings.len(), 1);
        assert_eq!(r.response.warnings[0].chars().count(), MAX_WARNING_CHARS);
        assert!(r.response.warnings[0].ends_with('…'));
    }
}
