//! The audit as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched
//! (its Content-Security-Policy forbids every request), readable printed to PDF. Every value
//! from the cluster (names, images, reasons) is escaped: a pod can name its image anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::app::audit::{GrantState, Report};
use crate::engine::Verdict;

use super::{Standing, escape as esc, image_counts, sunsets};

const COLORS: [&str; 4] = ["#2e7d32", "#f9a825", "#c62828", "#9e9e9e"];
const NAMES: [&str; 4] = ["compliant", "partial", "non-compliant", "exempt"];

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b; margin: 24px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #1b1b1b; padding-bottom: 2px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 26px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.code, .code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; word-break: break-all; }
.deny { color: #c62828; font-weight: 600; } .warn { color: #8a6d00; font-weight: 600; } .ok { color: #2e7d32; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.muted { color: #666; }
@page { size: A4 landscape; margin: 12mm; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"#;

/// The whole page.
pub fn render(report: &Report) -> String {
    let title = match &report.meta {
        Some(m) => format!("FIPS compliance report: {} ({})", m.cluster, m.day),
        None => "FIPS compliance report".to_string(),
    };
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    page.push_str(&header(report));
    page.push_str(&summary(report));
    page.push_str(&namespaces(report));
    page.push_str(&certificates(report));
    page.push_str(&exemptions(report));
    page.push_str(&findings(report));
    page.push_str(&scans(report));
    page.push_str("<p class=\"muted\">Made by fipsgate from an audit of what runs in the cluster; each image is judged by its evidence (catalogue match, digest pin, signed attestation, scan) and the certificate table of the day above.</p>\n</body>\n</html>\n");
    page
}

fn header(report: &Report) -> String {
    let mut out = String::from("<header>\n<h1>FIPS compliance report</h1>\n<dl class=\"meta\">\n");
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    };
    match &report.meta {
        Some(m) => {
            row("Cluster", &m.cluster);
            row(
                "Audited",
                &m.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            );
            row("Judged on", &m.day.to_string());
            row("fipsgate", &m.fipsgate_version);
            row("Catalogue", &m.catalog);
            let mode = if m.fips_mode {
                "FIPS mode"
            } else {
                "not in FIPS mode"
            };
            row(
                "Cryptographic module",
                &format!("{} ({mode})", m.crypto_module),
            );
        }
        None => row("Audit", "no metadata in this document"),
    }
    out.push_str("</dl>\n</header>\n");
    out
}

/// A horizontal stacked bar of the four standings, with a title per segment.
fn bar(counts: [usize; 4], width: u32) -> String {
    let total: usize = counts.iter().sum();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"16\" role=\"img\" aria-label=\"{}\">",
        (0..4)
            .map(|i| format!("{} {}", counts[i], NAMES[i]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if total == 0 {
        let _ = write!(
            svg,
            "<rect width=\"{width}\" height=\"16\" fill=\"#eeeeee\"/>"
        );
    }
    let mut x = 0.0;
    for (i, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
        let w = f64::from(width) * *n as f64 / total as f64;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{}\"><title>{n} {}</title></rect>",
            COLORS[i], NAMES[i]
        );
        x += w;
    }
    svg.push_str("</svg>");
    svg
}

fn legend() -> String {
    let items: String = (0..4)
        .map(|i| {
            format!(
                "<span><i style=\"background:{}\"></i>{}</span>",
                COLORS[i], NAMES[i]
            )
        })
        .collect();
    format!("<p class=\"legend\">{items}</p>\n")
}

fn summary(report: &Report) -> String {
    let images = image_counts(report);
    let s = report.namespaces.values();
    let objects = s.clone().fold([0usize; 5], |mut a, n| {
        for (i, v) in [
            n.compliant,
            n.partial,
            n.non_compliant,
            n.exempt,
            n.would_deny,
        ]
        .into_iter()
        .enumerate()
        {
            a[i] += v;
        }
        a
    });
    let mut out =
        String::from("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n");
    let cards = [
        ("Images", report.images.len()),
        ("compliant", images[0]),
        ("partial", images[1]),
        ("non-compliant", images[2]),
        ("exempt", images[3]),
        ("Objects would be denied", objects[4]),
    ];
    for (k, v) in cards {
        let _ = writeln!(out, "<div class=\"card\"><b>{v}</b>{}</div>", esc(k));
    }
    out.push_str("</div>\n<p>Images</p>\n");
    out.push_str(&bar(images, 900));
    out.push_str(&legend());
    let _ = writeln!(
        out,
        "<p>Pods and workloads</p>\n{}",
        bar([objects[0], objects[1], objects[2], objects[3]], 900)
    );
    out.push_str(&by_evidence(report));
    out.push_str("</section>\n");
    out
}

/// Images by the evidence they rest on, and how each stands.
fn by_evidence(report: &Report) -> String {
    let mut rows: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for i in &report.images {
        let evidence = i
            .evidence
            .map_or_else(|| "none".to_string(), |e| e.to_string());
        rows.entry(evidence).or_default()[Standing::of(i) as usize] += 1;
    }
    let mut out = String::from(
        "<table>\n<tr><th>Evidence</th><th>Compliant</th><th>Partial</th><th>Non-compliant</th><th>Exempt</th></tr>\n",
    );
    for (evidence, c) in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&evidence),
            c[0],
            c[1],
            c[2],
            c[3]
        );
    }
    out.push_str("</table>\n");
    out
}

fn namespaces(report: &Report) -> String {
    let mut out = String::from(
        "<section id=\"namespaces\">\n<h2>Namespaces</h2>\n<table>\n<tr><th>Namespace</th><th>Enforce</th><th>Warn</th><th>Audit</th><th>Objects</th><th>Standing</th><th>Would deny</th></tr>\n",
    );
    for (ns, s) in &report.namespaces {
        let counts = [s.compliant, s.partial, s.non_compliant, s.exempt];
        let errors = if s.label_errors.is_empty() {
            String::new()
        } else {
            format!(
                "<br><span class=\"warn\">{}</span>",
                esc(&s.label_errors.join("; "))
            )
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"code\">{}{errors}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n{}\">{}</td></tr>",
            esc(ns),
            s.levels.enforce,
            s.levels.warn,
            s.levels.audit,
            s.objects,
            bar(counts, 300),
            if s.would_deny > 0 { " deny" } else { "" },
            s.would_deny
        );
    }
    out.push_str("</table>\n");
    out.push_str(&legend());
    out.push_str("</section>\n");
    out
}

/// The certificates running images rely on: a timeline of their sunsets and a table.
fn certificates(report: &Report) -> String {
    let list = sunsets(report);
    let mut out = String::from("<section id=\"certificates\">\n<h2>Certificate sunsets</h2>\n");
    if list.is_empty() {
        out.push_str(
            "<p>No running image relies on a certificate the catalogue dates.</p>\n</section>\n",
        );
        return out;
    }
    if let Some(m) = &report.meta {
        out.push_str(&timeline(&list, m.day));
    }
    out.push_str("<table>\n<tr><th>Certificate</th><th>Module</th><th>Standard</th><th>Status</th><th>Sunset</th><th>Images</th></tr>\n");
    for s in &list {
        let class = match s.status.as_str() {
            "active" => "ok",
            "revoked" => "deny",
            _ => "warn",
        };
        let _ = writeln!(
            out,
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td class=\"code\">{}</td></tr>",
            esc(&s.certificate),
            esc(&s.module),
            esc(&s.standard),
            s.status.as_str(),
            s.sunset.map_or_else(|| "-".into(), |d| d.to_string()),
            esc(&s.images.join(", "))
        );
    }
    out.push_str("</table>\n</section>\n");
    out
}

/// A timeline from the audit's day to a year past the last sunset, a mark per certificate.
fn timeline(list: &[super::Sunset], day: jiff::civil::Date) -> String {
    let dated: Vec<_> = list.iter().filter_map(|s| Some((s, s.sunset?))).collect();
    let (Some(first), Some(last)) = (
        dated.iter().map(|(_, d)| *d).min(),
        dated.iter().map(|(_, d)| *d).max(),
    ) else {
        return String::new();
    };
    let start = first.min(day);
    let end = last.max(day).saturating_add(jiff::Span::new().years(1));
    let span = start.until(end).map_or(1, |s| s.get_days().max(1)) as f64;
    let x = |d: jiff::civil::Date| {
        20.0 + 860.0 * start.until(d).map_or(0, |s| s.get_days()) as f64 / span
    };
    let height = 40 + 18 * dated.len();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"{height}\" role=\"img\" aria-label=\"certificate sunsets\">\
         <line x1=\"20\" y1=\"20\" x2=\"880\" y2=\"20\" stroke=\"#1b1b1b\"/>\
         <line x1=\"{0:.1}\" y1=\"10\" x2=\"{0:.1}\" y2=\"{height}\" stroke=\"#1565c0\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{1:.1}\" y=\"12\" font-size=\"11\" fill=\"#1565c0\">audit {day}</text>",
        x(day),
        x(day) + 4.0
    );
    for (i, (s, d)) in dated.iter().enumerate() {
        let y = 40 + 18 * i;
        let color = if *d <= day { "#c62828" } else { "#f9a825" };
        let n = s.images.len();
        let label = format!(
            "#{} {d} ({n} image{})",
            s.certificate,
            if n == 1 { "" } else { "s" }
        );
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"5\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{}</text>",
            x(*d),
            (x(*d) + 9.0).min(700.0),
            y + 4,
            esc(&label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn exemptions(report: &Report) -> String {
    let mut out = String::from("<section id=\"exemptions\">\n<h2>Exemptions</h2>\n");
    if report.exemptions.is_empty() {
        out.push_str("<p>None configured.</p>\n</section>\n");
        return out;
    }
    out.push_str("<table>\n<tr><th>Kind</th><th>Name</th><th>State</th><th>Expires</th><th>Days left</th><th>Ticket</th><th>Reason</th></tr>\n");
    for e in &report.exemptions {
        let class = match e.state {
            GrantState::Active => "ok",
            GrantState::Expired => "deny",
            GrantState::OpenEnded => "warn",
        };
        let dash = |v: Option<&String>| v.map_or_else(|| "-".to_string(), |s| esc(s));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"code\">{}</td><td class=\"{class}\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            e.kind.as_str(),
            esc(&e.grant.name),
            e.state.as_str(),
            e.grant
                .expires
                .map_or_else(|| "-".into(), |d| d.to_string()),
            e.days_left.map_or_else(|| "-".into(), |d| d.to_string()),
            dash(e.grant.ticket.as_ref()),
            dash(e.grant.reason.as_ref()),
        );
    }
    out.push_str("</table>\n</section>\n");
    out
}

/// Violations, grouped by namespace (one table each), objects in order.
fn findings(report: &Report) -> String {
    let mut out = String::from("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if report.findings.is_empty() {
        out.push_str("<p class=\"ok\">Nothing would be denied or warned about.</p>\n</section>\n");
        return out;
    }
    let mut by_ns: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for f in &report.findings {
        by_ns.entry(&f.namespace).or_default().push(f);
    }
    for (ns, mut objects) in by_ns {
        objects.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        let _ = writeln!(out, "<h3 class=\"code\">{}</h3>", esc(ns));
        out.push_str("<table>\n<tr><th>Workload</th><th>Container</th><th>Image</th><th>Component</th><th>Evidence</th><th>Certificates</th><th>Verdict</th><th>Reason</th></tr>\n");
        for f in objects {
            for c in f
                .findings
                .iter()
                .filter(|c| matches!(c.verdict, Verdict::Denied | Verdict::Warned))
            {
                let (class, verdict) = match c.verdict {
                    Verdict::Denied => ("deny", "would deny"),
                    _ => ("warn", "warn"),
                };
                let certs: Vec<String> = c.modules.iter().map(|m| m.short()).collect();
                let _ = writeln!(
                    out,
                    "<tr><td class=\"code\">{}/{}</td><td>{}</td><td class=\"code\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{verdict}</td><td>{}</td></tr>",
                    esc(&f.kind),
                    esc(&f.name),
                    esc(&c.container),
                    esc(&c.image),
                    esc(c.component.as_deref().unwrap_or("-")),
                    c.evidence.map_or_else(|| "-".into(), |e| e.to_string()),
                    esc(&if certs.is_empty() {
                        "-".into()
                    } else {
                        certs.join(", ")
                    }),
                    esc(c.reason.as_deref().unwrap_or("")),
                );
            }
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
    out
}

fn scans(report: &Report) -> String {
    if report.scans.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section id=\"scans\">\n<h2>Scans of the images' binaries</h2>\n<table>\n<tr><th>Image</th><th>Scan</th><th>Objects</th><th>Modules</th><th>Detail</th></tr>\n",
    );
    for s in &report.scans {
        let status = s
            .status
            .map_or_else(|| "error".to_string(), |st| st.to_string());
        let class = if status == "full" { "ok" } else { "deny" };
        let _ = writeln!(
            out,
            "<tr><td class=\"code\">{}</td><td class=\"{class}\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"code\">{}</td></tr>",
            esc(&s.reference),
            esc(&status),
            s.objects,
            esc(&s.modules.join(", ")),
            esc(&s.detail()),
        );
    }
    out.push_str("</table>\n</section>\n");
    out
}
