//! The audit as OSCAL Assessment Results (OSCAL 1.2.1, JSON), reporting against NIST SP
//! 800-53 SC-13 (cryptographic protection): an observation per image with the evidence it
//! rests on, a risk per non-compliant image and per exemption (with its deadline), a finding
//! per namespace. Identifiers are name-based UUIDs (version 5), so one audit always gives the
//! same document.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::audit::{ExemptionState, GrantState, ImageSummary, Report};

use super::Standing;

pub const OSCAL_VERSION: &str = "1.2.1";
/// The namespace of fipsgate's properties.
pub const NS: &str = "https://fipsgate.io/ns/oscal";
const CONTROL: &str = "sc-13";

/// A stable UUID for `what` in this audit.
fn id(seed: &str, what: &str) -> String {
    let ns = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("{NS}/{seed}").as_bytes());
    Uuid::new_v5(&ns, what.as_bytes()).to_string()
}

fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "ns": NS, "value": value})
}

/// The document.
pub fn render(report: &Report) -> Value {
    let (seed, when, cluster, version) = match &report.meta {
        Some(m) => (
            format!("{}/{}", m.cluster, m.generated_at),
            m.generated_at.to_string(),
            m.cluster.clone(),
            m.fipsgate_version.clone(),
        ),
        None => (
            "audit".into(),
            jiff::Timestamp::UNIX_EPOCH.to_string(),
            "unknown cluster".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    };
    let observations: Vec<Value> = (report.images.iter())
        .map(|i| observation(&seed, i, &when))
        .collect();
    let mut risks: Vec<Value> = (report.images.iter())
        .filter(|i| Standing::of(i) == Standing::NonCompliant)
        .map(|i| image_risk(&seed, i))
        .collect();
    risks.extend(report.exemptions.iter().map(|e| exemption_risk(&seed, e)));
    let mut result = json!({
        "uuid": id(&seed, "result"),
        "title": format!("FIPS-validated cryptography in {cluster}"),
        "description": "What runs in the cluster, judged by fipsgate: each image by the evidence that its cryptography is a FIPS-validated module (catalogue match, digest pin, signed attestation, scan of its binaries) and by the certificate table of the day.",
        "start": when,
        "end": when,
        "props": [prop("catalog", report.meta.as_ref().map_or("unknown", |m| m.catalog.as_str()))],
        "reviewed-controls": {"control-selections": [{"include-controls": [{"control-id": CONTROL}]}]},
        "findings": findings(&seed, report),
    });
    if !report.images.is_empty() {
        result["local-definitions"] = json!({"inventory-items": inventory(&seed, &report.images)});
        result["observations"] = Value::Array(observations);
    }
    if !risks.is_empty() {
        result["risks"] = Value::Array(risks);
    }
    json!({"assessment-results": {
        "uuid": id(&seed, "assessment-results"),
        "metadata": {
            "title": format!("fipsgate FIPS audit of {cluster}"),
            "last-modified": when,
            "version": version,
            "oscal-version": OSCAL_VERSION,
        },
        "import-ap": {"href": "#fipsgate-assessment-plan"},
        "results": [result],
    }})
}

/// Each image as an inventory item that observations name.
fn inventory(seed: &str, images: &[ImageSummary]) -> Vec<Value> {
    images
        .iter()
        .map(|i| {
            let mut props = vec![
                prop("image", &i.image),
                prop("objects", &i.objects.to_string()),
            ];
            if let Some(d) = &i.digest {
                props.push(prop("digest", d));
            }
            json!({
                "uuid": id(seed, &format!("item/{}", i.image)),
                "description": format!("Container image {}", i.image),
                "props": props,
            })
        })
        .collect()
}

fn observation(seed: &str, i: &ImageSummary, when: &str) -> Value {
    let standing = Standing::of(i);
    let mut props = vec![
        prop("status", &i.status),
        prop("standing", standing.as_str()),
    ];
    if let Some(c) = &i.component {
        props.push(prop("component", c));
    }
    if let Some(e) = i.evidence {
        props.push(prop("evidence", &e.to_string()));
    }
    let mut evidence = vec![json!({"description": match i.evidence {
        Some(e) => format!("fipsgate evidence level: {e}{}", i.digest.as_ref().map_or(String::new(), |d| format!(" (verified for {d})"))),
        None => format!("no evidence: {}", i.status),
    }})];
    for m in &i.modules {
        let cert = m
            .certificate
            .as_ref()
            .map_or("no certificate".into(), |c| format!("CMVP #{c}"));
        evidence.push(json!({"description": format!("{} ({}, {cert}): {}", m.module, m.standard, m.status.as_str())}));
    }
    let description = match (&i.problem, standing) {
        (Some(p), _) => format!("{} is {}: {p}", i.image, standing.as_str()),
        (None, _) => format!("{} is {} ({})", i.image, standing.as_str(), i.status),
    };
    json!({
        "uuid": id(seed, &format!("observation/{}", i.image)),
        "title": format!("FIPS status of {}", i.image),
        "description": description,
        "props": props,
        "methods": ["EXAMINE", "TEST"],
        "types": ["control-objective"],
        "subjects": [{"subject-uuid": id(seed, &format!("item/{}", i.image)), "type": "inventory-item"}],
        "relevant-evidence": evidence,
        "collected": when,
    })
}

fn image_risk(seed: &str, i: &ImageSummary) -> Value {
    json!({
        "uuid": id(seed, &format!("risk/{}", i.image)),
        "title": format!("{} does not use FIPS-validated cryptography", i.image),
        "description": format!("{} runs in {} object(s) with status {}.", i.image, i.objects, i.status),
        "statement": i.problem.clone().unwrap_or_else(|| "No evidence that its cryptography is a FIPS-validated module.".into()),
        "status": "open",
        "related-observations": [{"observation-uuid": id(seed, &format!("observation/{}", i.image))}],
    })
}

/// An exemption is an accepted deviation until its deadline; an expired one is open again.
fn exemption_risk(seed: &str, e: &ExemptionState) -> Value {
    let g = &e.grant;
    let status = match e.state {
        GrantState::Expired => "open",
        GrantState::Active | GrantState::OpenEnded => "deviation-approved",
    };
    let mut props = vec![prop("exemption-state", e.state.as_str())];
    if let Some(t) = &g.ticket {
        props.push(prop("ticket", t));
    }
    let mut risk = json!({
        "uuid": id(seed, &format!("exemption/{}/{}", e.kind.as_str(), g.name)),
        "title": format!("Exemption of {} {}", e.kind.as_str(), g.name),
        "description": g.reason.clone().unwrap_or_else(|| "No reason recorded.".into()),
        "statement": match (e.state, g.expires) {
            (GrantState::OpenEnded, _) => "Exempt from FIPS enforcement without an end date (open-ended).".to_string(),
            (GrantState::Expired, Some(d)) => format!("The exemption expired after {d}: it no longer exempts."),
            (_, Some(d)) => format!("Exempt from FIPS enforcement through {d}."),
            (_, None) => "Exempt from FIPS enforcement.".to_string(),
        },
        "props": props,
        "status": status,
    });
    let deadline = (g.expires)
        .and_then(|d| d.tomorrow().ok())
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok());
    if let Some(d) = deadline {
        risk["deadline"] = json!(d.timestamp().to_string());
    }
    risk
}

/// One finding per namespace: satisfied when nothing in it is non-compliant.
fn findings(seed: &str, report: &Report) -> Vec<Value> {
    let mut violating: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in &report.findings {
        let images = violating.entry(&f.namespace).or_default();
        images.extend(f.findings.iter().map(|c| c.image.as_str()));
    }
    let known: BTreeSet<&str> = report.images.iter().map(|i| i.image.as_str()).collect();
    report
        .namespaces
        .iter()
        .map(|(ns, s)| {
            let state = if s.non_compliant == 0 { "satisfied" } else { "not-satisfied" };
            let images: Vec<&str> = (violating.get(ns.as_str()).into_iter().flatten())
                .filter(|i| known.contains(*i))
                .copied()
                .collect();
            let mut finding = json!({
                "uuid": id(seed, &format!("finding/{ns}")),
                "title": format!("SC-13 in namespace {ns}"),
                "description": format!(
                    "Namespace {ns} (enforce={}, warn={}, audit={}): {} objects, {} compliant, {} partial, {} non-compliant, {} exempt; {} would be denied.",
                    s.levels.enforce, s.levels.warn, s.levels.audit, s.objects, s.compliant, s.partial, s.non_compliant, s.exempt, s.would_deny
                ),
                "target": {"type": "statement-id", "target-id": "sc-13_smt", "status": {"state": state}},
            });
            if !images.is_empty() {
                finding["related-observations"] = images
                    .iter()
                    .map(|i| json!({"observation-uuid": id(seed, &format!("observation/{i}"))}))
                    .collect();
            }
            finding
        })
        .collect()
}
