//! `fipsgate explain IMAGE...`: what fipsgate knows about each image and what every policy
//! level makes of it. Exit 0 when every image was explained, 1 with `--require LEVEL` when that
//! level denies one of them, 2 on a malformed reference or a bad configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::chain::Step;
use crate::app::explain::{Admission, Explain, Explanation, Module};
use crate::app::today_utc;
use crate::config::Loaded;
use crate::domain::assessment::ScanFacts;
use crate::domain::fips::CertificateStatus;
use crate::domain::image::ImageRef;
use crate::domain::policy::Level;

use super::LevelArg;
use super::chain::{block_on, source_chain};
use super::output::{Output, document};
use super::table::{render_fields, render_table};

/// `fipsgate explain`
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Image references, as a pod spec names them (`nginx`, `registry/repo:tag@sha256:…`).
    #[arg(required = true, num_args = 1..)]
    pub images: Vec<String>,
    /// Configuration file (levels' rules, exemptions, catalogue files, attestations).
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The day certificate statuses are evaluated on (YYYY-MM-DD; default today, UTC).
    #[arg(long)]
    pub date: Option<jiff::civil::Date>,
    /// Ask registries for attestations as the configuration says (`attestations`).
    #[arg(long)]
    pub registry: bool,
    /// Exit 1 when this level denies any of the images (for CI).
    #[arg(long, value_enum)]
    pub require: Option<LevelArg>,
    /// `json` and `yaml`: one image's explanation, or a list of them for several images.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl ExplainArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Self {
            images,
            config,
            date,
            registry,
            require,
            output,
        } = self;
        // A malformed reference stops before anything is asked.
        for image in &images {
            ImageRef::parse(image).map_err(|e| anyhow::anyhow!("image {image:?}: {e}"))?;
        }
        let Loaded {
            config,
            rules,
            catalog,
        } = Loaded::from_file(config.as_deref())?;
        let (chain, attestations) = source_chain(&config, catalog, registry)?;
        let explain = Explain {
            rules: &rules,
            chain: &chain,
            attestations,
            today: date.unwrap_or_else(today_utc),
        };
        let explained = block_on(async {
            let mut all = Vec::with_capacity(images.len());
            for image in &images {
                all.push(explain.image(image).await?);
            }
            Ok::<_, crate::app::explain::ExplainError>(all)
        })??;
        super::emit(&match (output, explained.as_slice()) {
            (Output::Table | Output::Wide, all) => {
                let blocks: Vec<String> = all
                    .iter()
                    .map(|x| text(x, output == Output::Wide))
                    .collect();
                blocks.join("\n")
            }
            (_, [one]) => document(one, output)?,
            (_, all) => document(&all, output)?,
        })?;
        let denied = require.map(Level::from).is_some_and(|level| {
            (explained.iter()).any(|x| x.at(level).is_some_and(|v| v.verdict == Admission::Deny))
        });
        Ok(if denied {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// One image's explanation as aligned fields, the evidence chain and the levels.
fn text(x: &Explanation, wide: bool) -> String {
    let dash = |v: Option<&str>| v.unwrap_or("-").to_string();
    let r = &x.reference;
    let mut fields: Vec<(&str, String)> = vec![("image", x.image.clone())];
    if r.normalized != x.image {
        fields.push(("normalized", r.normalized.clone()));
    }
    fields.extend([
        ("registry", r.registry.clone()),
        ("repository", r.repository.clone()),
        ("tag", dash(r.tag.as_deref())),
        ("digest", dash(r.digest.as_deref())),
    ]);
    fields.extend(component_fields(x, wide));
    let mut out = render_fields(&fields, 0);
    if !x.chain.is_empty() {
        out.push_str("evidence chain:\n");
        out.push_str(&indent(&render_table(&chain_rows(&x.chain))));
    }
    out.push_str(&format!("policy on {}:\n", x.evaluated_on));
    out.push_str(&indent(&levels(x)));
    out
}

/// What the image is: exempt, or its component, status, evidence, crypto and modules.
fn component_fields(x: &Explanation, wide: bool) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    if x.exempt {
        f.push((
            "exempt",
            "matches exemptions.images: no source is asked".into(),
        ));
        return f;
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    match &x.component {
        Some(c) => {
            f.push((
                "component",
                format!("{} ({}, {})", c.id, c.name, category(c)),
            ));
            if let Some(p) = &c.pattern {
                f.push(("pattern", p.clone()));
            }
            if let Some(m) = &c.mirror {
                f.push(("mirror", format!("{} of {}", m.mirror, m.original)));
            }
            if wide {
                f.push(("part of", or_dash(c.part_of.clone())));
                f.push(("description", c.description.clone()));
                f.push(("source", or_dash(c.source.clone())));
            }
        }
        None => f.push(("component", "none: no catalogue component".into())),
    }
    f.push(("status", or_dash(x.status.map(|s| s.to_string()))));
    f.push(("evidence", or_dash(x.evidence.map(|e| e.to_string()))));
    if let Some(d) = &x.digest {
        f.push(("verified digest", d.clone()));
    }
    if let Some(p) = &x.problem {
        f.push(("problem", p.clone()));
    }
    if !x.exceptions.is_empty() {
        f.push(("not FIPS", x.exceptions.join(", ")));
    }
    if let Some(c) = &x.crypto {
        f.push(("crypto", c.clone()));
    }
    if let Some(s) = &x.scan {
        f.extend(scan_fields(s, wide));
    }
    if x.component.is_some() && x.modules.is_empty() {
        let who = if x.scan.is_some() {
            "scan"
        } else {
            "catalogue"
        };
        f.push(("certificate", format!("none: the {who} names no module")));
    }
    for m in &x.modules {
        f.push(("module", module(m)));
        if wide {
            f.push(("  certificate source", m.source.clone()));
            for p in &m.previous {
                let status = p
                    .status
                    .map_or("not in the table", CertificateStatus::as_str);
                f.push(("  previously", format!("#{} {status}", p.number)));
            }
        }
    }
    f
}

/// A signed scan: its verdict and how it was made, and (wide) every file it did not pass.
fn scan_fields(s: &ScanFacts, wide: bool) -> Vec<(&'static str, String)> {
    let platform = s.platform.as_deref().unwrap_or("platform not stated");
    let mut f = vec![(
        "scan",
        format!(
            "{} ({platform}, profile {}; {}, {})",
            s.status, s.profile, s.scanner, s.scanned_at
        ),
    )];
    let shown = if wide { s.problems.len() } else { 3 };
    for p in s.problems.iter().take(shown) {
        let what = p.error.as_deref().unwrap_or(&p.verdict);
        f.push(("  found", format!("{} {what} in {}", p.verdict, p.path)));
    }
    if s.problems.len() > shown {
        let more = s.problems.len() - shown;
        f.push(("  found", format!("{more} more (-o wide lists them)")));
    }
    f
}

fn category(c: &crate::app::explain::ComponentMatch) -> String {
    serde_json::to_value(c.category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `Spectro Cloud Cryptographic Module: #4349 (FIPS 140-2) historical since 2026-09-21`.
fn module(m: &Module) -> String {
    let cert = match &m.certificate {
        Some(c) => format!("#{c} ({})", m.standard),
        None => format!("no certificate ({})", m.standard),
    };
    let status = m.status.as_str();
    let when = match (m.status, m.sunset) {
        (CertificateStatus::Historical, Some(s)) if m.recorded == CertificateStatus::Active => {
            format!(" since {s} (its sunset)")
        }
        (CertificateStatus::Active, Some(s)) => format!(" until {s} (its sunset)"),
        _ => String::new(),
    };
    format!("{}: {cert} {status}{when}", m.name)
}

fn chain_rows(steps: &[Step]) -> Vec<[String; 3]> {
    (steps.iter())
        .map(|s| {
            [
                s.source.as_str().to_string(),
                s.outcome.as_str().to_string(),
                s.detail.clone(),
            ]
        })
        .collect()
}

/// One row per level: the verdict and the engine's reason, its warnings below.
fn levels(x: &Explanation) -> String {
    let mut out = String::new();
    let width = x
        .levels
        .iter()
        .map(|v| v.level.as_str().len())
        .max()
        .unwrap_or(0);
    for v in &x.levels {
        let verdict = v.verdict.as_str();
        let reason = match (v.verdict, &v.reason) {
            (Admission::Deny, Some(r)) => format!("  {r}"),
            _ => String::new(),
        };
        let line = format!("{:<width$}  {verdict:<5}{reason}", v.level.as_str());
        out.push_str(line.trim_end());
        out.push('\n');
        for w in &v.warnings {
            out.push_str(&format!("{:width$}  warning: {w}\n", ""));
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::app::chain::{AttestationUse, SourceChain};
    use crate::app::ports::{BoxFuture, Found, Lookup, LookupContext, RegistryEvidence};
    use crate::attest::Attested;
    use crate::catalog::Catalog;
    use crate::config::Config;
    use crate::domain::assessment::{Assessment, ScanProblem, SourceKind};
    use crate::domain::fips::{Evidence, Status};
    use crate::domain::image::ImageRef;

    const DIGEST: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    /// A registry whose every image carries a verified scan attestation that found `status`.
    struct Scanned(Status);

    impl RegistryEvidence for Scanned {
        fn lookup<'a>(
            &'a self,
            _: &'a ImageRef,
            _: &'a LookupContext,
            assess: &'a (dyn Fn(Attested) -> Assessment + Send + Sync),
        ) -> BoxFuture<'a, Lookup> {
            let problem = |i: usize| ScanProblem {
                path: format!("/app/bin{i}"),
                verdict: "FAIL".into(),
                error: Some("GoBoringNotLinked".into()),
            };
            let facts = ScanFacts {
                status: self.0,
                platform: Some("linux/amd64".into()),
                profile: "any".into(),
                scanner: "fipsgate 0.1.0 (rules 2026.11.1)".into(),
                scanned_at: "2026-11-28T12:00:00Z".parse().unwrap(),
                problems: (0..5).map(problem).collect(),
            };
            let a = Attested {
                signers: Vec::new(),
                predicate_type: crate::attest::SCAN_PREDICATE.into(),
                component: None,
                modules: Vec::new(),
                exceptions: Vec::new(),
                scan: Some(Box::new(facts)),
            };
            Box::pin(std::future::ready(Lookup::Resolved {
                digest: DIGEST.into(),
                found: Ok(Found::Attested(assess(a))),
            }))
        }
    }

    /// `explain` shows scan evidence: what the scan was, what it found (three files, all of
    /// them with -o wide), and the engine's reason at each level.
    #[tokio::test]
    async fn scan_evidence_is_explained() {
        let mut config = Config::default();
        config.evidence.minimum = Evidence::Scan;
        let rules = config.rules().unwrap();
        let registry = Some(Arc::new(Scanned(Status::None)) as Arc<dyn RegistryEvidence>);
        let chain = SourceChain::new(
            Arc::new(Catalog::embedded()),
            vec![SourceKind::Attestations, SourceKind::Patterns],
            Evidence::Scan,
            registry,
        );
        let explain = Explain {
            rules: &rules,
            chain: &chain,
            attestations: AttestationUse::Consulted,
            today: jiff::civil::date(2026, 11, 28),
        };
        let x = explain.image("r.io/team/app:1").await.unwrap();
        assert_eq!(x.evidence, Some(Evidence::Scan));
        assert_eq!(x.scan.as_ref().unwrap().problems.len(), 5);
        let table = text(&x, false);
        for want in [
            "component:       r.io/team/app (r.io/team/app, application)",
            "evidence:        scan",
            "scan:            none (linux/amd64, profile any; fipsgate 0.1.0 (rules 2026.11.1), 2026-11-28T12:00:00Z)",
            "  found:         FAIL GoBoringNotLinked in /app/bin2",
            "  found:         2 more (-o wide lists them)",
            "certificate:     none: the scan names no module",
            "strict    deny   is not FIPS-compliant: scan found GoBoringNotLinked in /app/bin0",
        ] {
            assert!(table.contains(want), "{want:?} in:\n{table}");
        }
        assert!(text(&x, true).contains("FAIL GoBoringNotLinked in /app/bin4"));
        let json = serde_json::to_value(&x).unwrap();
        assert_eq!(json["scan"]["problems"][0]["error"], "GoBoringNotLinked");
        assert_eq!(json["scan"]["scannedAt"], "2026-11-28T12:00:00Z");
    }
}
