//! The answer to a review: allowed or denied, warnings, and the audit annotations that record
//! why (keys without the webhook's prefix, which the API server adds).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{Decision, Exemption};

use super::Parsed;

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
        r
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
        r
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
        r
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
