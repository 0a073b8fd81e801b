//! Reports for assessors, made from an audit's document ([`Report`], what `audit -o json`
//! writes): a self-contained HTML page and OSCAL Assessment Results. Pure functions of the
//! document, so a report can be made off-cluster from evidence collected on it
//! (`fipsgate report --from audit.json`).

pub mod ci;
pub mod html;
pub mod markdown;
pub mod oscal;

use std::collections::BTreeMap;

use crate::app::audit::{ImageSummary, Report};
use crate::domain::fips::CertificateStatus;

/// Escapes text for HTML and XML, in content and attribute values; characters XML 1.0 cannot
/// carry at all (C0 controls but tab and line breaks) become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// How an image counts in a summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Compliant,
    Partial,
    NonCompliant,
    Exempt,
}

impl Standing {
    pub fn of(image: &ImageSummary) -> Self {
        match image.status.as_str() {
            "full" => Standing::Compliant,
            "partial" => Standing::Partial,
            "exempt" => Standing::Exempt,
            _ => Standing::NonCompliant,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Compliant => "compliant",
            Standing::Partial => "partial",
            Standing::NonCompliant => "non-compliant",
            Standing::Exempt => "exempt",
        }
    }
}

/// A certificate the running images rely on, with its sunset and the images relying on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sunset {
    pub certificate: String,
    pub module: String,
    pub standard: String,
    pub status: CertificateStatus,
    pub sunset: Option<jiff::civil::Date>,
    pub images: Vec<String>,
}

/// The certificates of the report's images, soonest sunset first (none last).
pub fn sunsets(report: &Report) -> Vec<Sunset> {
    let mut by_cert: BTreeMap<String, Sunset> = BTreeMap::new();
    for image in &report.images {
        for m in &image.modules {
            let Some(cert) = &m.certificate else { continue };
            let entry = by_cert.entry(cert.clone()).or_insert_with(|| Sunset {
                certificate: cert.clone(),
                module: m.module.clone(),
                standard: m.standard.clone(),
                status: m.status,
                sunset: m.sunset,
                images: Vec::new(),
            });
            if !entry.images.contains(&image.image) {
                entry.images.push(image.image.clone());
            }
        }
    }
    let mut out: Vec<Sunset> = by_cert.into_values().collect();
    out.sort_by_key(|s| (s.sunset.is_none(), s.sunset, s.certificate.clone()));
    out
}

/// Counts of images by standing: (compliant, partial, non-compliant, exempt).
pub fn image_counts(report: &Report) -> [usize; 4] {
    let mut counts = [0; 4];
    for i in &report.images {
        counts[Standing::of(i) as usize] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped_for_html_and_xml() {
        assert_eq!(
            super::escape("a<b>&\"c\"'d'\u{1}\te"),
            "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;\u{fffd}\te"
        );
    }
}
