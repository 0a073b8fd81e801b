//! The audit as Markdown, for a pull request, an issue or a wiki: the HTML report's sections
//! as tables. Cells are escaped (`|`, `<`, line breaks): a pod can name its image anything.

use std::fmt::Write as _;

use crate::app::audit::Report;
use crate::engine::Verdict;

use super::{image_counts, sunsets};

/// A table cell: pipes, angle brackets and line breaks made harmless.
fn cell(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// The whole document.
pub fn render(report: &Report) -> String {
    let mut out = String::from("# FIPS compliance report\n\n");
    heading(&mut out, report);
    namespaces(&mut out, report);
    certificates(&mut out, report);
    exemptions(&mut out, report);
    findings(&mut out, report);
    out
}

fn heading(out: &mut String, report: &Report) {
    if let Some(m) = &report.meta {
        let mode = if m.fips_mode {
            "FIPS mode"
        } else {
            "not in FIPS mode"
        };
        let _ = writeln!(
            out,
            "- Cluster: {}\n- Audited: {}\n- Judged on: {}\n- fipsgate {}; catalogue: {}\n- Cryptographic module: {} ({mode})\n",
            cell(&m.cluster),
            m.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            m.day,
            cell(&m.fipsgate_version),
            cell(&m.catalog),
            cell(&m.crypto_module),
        );
    }
    let [ok, partial, non, exempt] = image_counts(report);
    let deny: usize = report.namespaces.values().map(|s| s.would_deny).sum();
    let _ = writeln!(
        out,
        "## Summary\n\n{} images: {ok} compliant, {partial} partial, {non} non-compliant, {exempt} exempt. {deny} objects would be denied.\n",
        report.images.len()
    );
}

fn namespaces(out: &mut String, report: &Report) {
    out.push_str("## Namespaces\n\n");
    let rows = (report.namespaces.iter())
        .map(|(ns, s)| {
            let l = s.levels;
            let counts = [
                s.objects,
                s.compliant,
                s.partial,
                s.non_compliant,
                s.exempt,
                s.would_deny,
            ];
            [
                ns.clone(),
                l.enforce.to_string(),
                l.warn.to_string(),
                l.audit.to_string(),
            ]
            .into_iter()
            .chain(counts.map(|n| n.to_string()))
            .collect()
        })
        .collect();
    let header = [
        "Namespace",
        "Enforce",
        "Warn",
        "Audit",
        "Objects",
        "Compliant",
        "Partial",
        "Non-compliant",
        "Exempt",
        "Would deny",
    ];
    table(out, &header, rows);
}

fn certificates(out: &mut String, report: &Report) {
    let certs = sunsets(report);
    if certs.is_empty() {
        return;
    }
    out.push_str("## Certificate sunsets\n\n");
    let rows = (certs.iter())
        .map(|s| {
            let sunset = s.sunset.map_or_else(|| "-".into(), |d| d.to_string());
            let cert = format!("#{}", s.certificate);
            let status = s.status.as_str().to_string();
            [
                cert,
                s.module.clone(),
                s.standard.clone(),
                status,
                sunset,
                s.images.join(", "),
            ]
            .to_vec()
        })
        .collect();
    let header = [
        "Certificate",
        "Module",
        "Standard",
        "Status",
        "Sunset",
        "Images",
    ];
    table(out, &header, rows);
}

fn exemptions(out: &mut String, report: &Report) {
    if report.exemptions.is_empty() {
        return;
    }
    out.push_str("## Exemptions\n\n");
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows = (report.exemptions.iter())
        .map(|e| {
            let g = &e.grant;
            let expires = dash(g.expires.map(|d| d.to_string()));
            let left = dash(e.days_left.map(|d| d.to_string()));
            let (kind, state) = (e.kind.as_str().to_string(), e.state.as_str().to_string());
            [
                kind,
                g.name.clone(),
                state,
                expires,
                left,
                dash(g.ticket.clone()),
                dash(g.reason.clone()),
            ]
            .to_vec()
        })
        .collect();
    let header = [
        "Kind",
        "Name",
        "State",
        "Expires",
        "Days left",
        "Ticket",
        "Reason",
    ];
    table(out, &header, rows);
}

fn findings(out: &mut String, report: &Report) {
    out.push_str("## Findings\n\n");
    let mut rows = Vec::new();
    for f in &report.findings {
        let violating = f
            .findings
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Denied | Verdict::Warned));
        for c in violating {
            let verdict = if c.verdict == Verdict::Denied {
                "would deny"
            } else {
                "warn"
            };
            let evidence = c.evidence.map_or_else(|| "-".into(), |e| e.to_string());
            let certs: Vec<String> = c.modules.iter().map(|m| m.short()).collect();
            let component = c.component.clone().unwrap_or_else(|| "-".into());
            let workload = format!("{}/{}", f.kind, f.name);
            let reason = c.reason.clone().unwrap_or_default();
            rows.push(vec![
                f.namespace.clone(),
                workload,
                c.container.clone(),
                c.image.clone(),
                component,
                evidence,
                certs.join(", "),
                verdict.into(),
                reason,
            ]);
        }
    }
    if rows.is_empty() {
        out.push_str("Nothing would be denied or warned about.\n");
        return;
    }
    let header = [
        "Namespace",
        "Workload",
        "Container",
        "Image",
        "Component",
        "Evidence",
        "Certificates",
        "Verdict",
        "Reason",
    ];
    table(out, &header, rows);
}
