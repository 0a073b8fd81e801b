//! The decision engine: a pure function from a pod's containers, their attestation results and
//! the namespace policy to allow / deny, warnings and audit annotations. No IO, no clock.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::catalog::{CertificateStatus, Pattern, PatternError};
use crate::config::{Config, HistoricalAction, LookupFailure};
use crate::domain::assessment::{AttestationResult, Evidence, Status};
use crate::domain::image::{DEFAULT_REGISTRY, ImageRef, ReferenceError};
use crate::domain::policy::{Level, Levels, Mode, NamespacePolicy};
use crate::domain::workload::{ContainerKind, PodSpec};

/// Warnings longer than this are shortened where possible.
pub const WARNING_BUDGET: usize = 120;

/// The configuration the engine applies, compiled once.
#[derive(Clone, Debug)]
pub struct Rules {
    pub defaults: Levels,
    pub dry_run: bool,
    pub minimum_evidence: Evidence,
    pub historical: HistoricalAction,
    pub on_lookup_failure: LookupFailure,
    exempt_namespaces: HashSet<String>,
    exempt_usernames: HashSet<String>,
    exempt_images: Vec<ImagePattern>,
}

/// An image exemption: a repository pattern, optionally with a tag glob or a digest.
#[derive(Clone, Debug)]
struct ImagePattern {
    name: Pattern,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImagePattern {
    fn new(source: &str) -> Result<Self, PatternError> {
        let (rest, digest) = match source.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (source, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(rest[i + 1..].into())),
            _ => (rest, None),
        };
        let first = name.split('/').next().unwrap_or_default();
        let name = if first.contains('.') || first.contains(':') || first == "localhost" {
            name.to_string()
        } else if name.contains('/') {
            format!("{DEFAULT_REGISTRY}/{name}")
        } else {
            format!("{DEFAULT_REGISTRY}/library/{name}")
        };
        Ok(Self {
            name: Pattern::new(&name)?,
            tag,
            digest,
        })
    }

    fn matches(&self, image: &ImageRef) -> bool {
        let tag_ok = match (&self.tag, image.tag()) {
            (None, _) => true,
            (Some(p), Some(t)) => match p.strip_suffix('*') {
                Some(prefix) => t.starts_with(prefix),
                None => p == t,
            },
            (Some(_), None) => false,
        };
        let digest_ok = match &self.digest {
            None => true,
            Some(d) => image.digest().is_some_and(|x| x.as_str() == d),
        };
        tag_ok && digest_ok && self.name.matches(image.name())
    }
}

impl Rules {
    /// Compiles the decision-relevant parts of the configuration.
    pub fn new(config: &Config) -> Result<Self, PatternError> {
        Ok(Self {
            defaults: config.defaults,
            dry_run: config.dry_run,
            minimum_evidence: config.evidence.minimum,
            historical: config.certificates.historical,
            on_lookup_failure: config.on_lookup_failure,
            exempt_namespaces: config.exemptions.namespaces.iter().cloned().collect(),
            exempt_usernames: config.exemptions.usernames.iter().cloned().collect(),
            exempt_images: config
                .exemptions
                .images
                .iter()
                .map(|p| ImagePattern::new(p))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The request-level exemption for this namespace and user, if any.
    pub fn exemption(&self, namespace: &str, username: &str) -> Option<Exemption> {
        if self.exempt_namespaces.contains(namespace) {
            Some(Exemption::Namespace)
        } else if self.exempt_usernames.contains(username) {
            Some(Exemption::User)
        } else {
            None
        }
    }

    /// True when the image matches an image exemption.
    pub fn image_exempt(&self, image: &ImageRef) -> bool {
        self.exempt_images.iter().any(|p| p.matches(image))
    }

    /// Parses a container's image and applies image exemptions; `lookup` runs only for images
    /// that need a result. The synchronous path used by the CLI and the tests.
    pub fn resolve(
        &self,
        image: &str,
        lookup: impl FnOnce(&ImageRef) -> AttestationResult,
    ) -> Resolution {
        match ImageRef::parse(image) {
            Err(e) => Resolution::Invalid(e),
            Ok(r) if self.image_exempt(&r) => Resolution::Exempt,
            Ok(r) => Resolution::Result(lookup(&r)),
        }
    }
}

/// Why a request was let through without evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exemption {
    Namespace,
    User,
    Image,
}

impl Exemption {
    pub fn as_str(self) -> &'static str {
        match self {
            Exemption::Namespace => "namespace",
            Exemption::User => "user",
            Exemption::Image => "image",
        }
    }
}

/// What is known about one container's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The reference could not be parsed.
    Invalid(ReferenceError),
    /// The image matches an image exemption.
    Exempt,
    Result(AttestationResult),
}

/// The request being decided.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    /// `Pod`, `Deployment`, ...
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub username: &'a str,
    /// Workload templates are warned and audited, never denied.
    pub enforceable: bool,
}

/// The verdict for one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Allowed,
    Exempt,
    /// Violates the warn or audit level only.
    Warned,
    /// Violates the enforce level (denied, or would be under dry-run).
    Denied,
}

/// One container's evaluation, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: ContainerKind,
    pub container: String,
    pub image: String,
    pub component: Option<String>,
    pub status: Option<Status>,
    pub evidence: Option<Evidence>,
    pub verdict: Verdict,
    /// Why the image violates the strictest level that fails, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The outcome of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Allow,
    Deny,
    /// Denied by policy but let through by the global dry-run.
    WouldDeny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::WouldDeny => "would-deny",
        }
    }
}

/// The engine's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// The denial message, when denied.
    pub message: Option<String>,
    pub warnings: Vec<String>,
    /// Audit annotations (keys without the webhook prefix).
    pub audit_annotations: BTreeMap<&'static str, String>,
    pub findings: Vec<Finding>,
    pub exemption: Option<Exemption>,
    /// Violations found per level that was applied, for metrics.
    pub violations: Vec<(Mode, Level, usize)>,
    pub levels: Levels,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.outcome != Outcome::Deny
    }
}

/// Decides a request. `resolutions` has one entry per container of `spec.all()`, in order.
pub fn evaluate(
    rules: &Rules,
    subject: &Subject<'_>,
    spec: &PodSpec,
    resolutions: &[Resolution],
    policy: &NamespacePolicy,
    today: jiff::civil::Date,
) -> Decision {
    let levels = policy.levels;
    let mut audit = BTreeMap::new();
    audit.insert("policy", levels.summary());
    if !policy.errors.is_empty() {
        audit.insert("error", policy.errors.join("; "));
    }
    let mut warnings: Vec<String> = policy.errors.clone();

    if let Some(ex) = rules.exemption(subject.namespace, subject.username) {
        audit.insert("decision", Outcome::Allow.as_str().into());
        audit.insert("exempt", ex.as_str().into());
        let findings = spec
            .all()
            .map(|(kind, c)| Finding {
                kind,
                container: c.name.clone(),
                image: c.image.clone(),
                component: None,
                status: None,
                evidence: None,
                verdict: Verdict::Exempt,
                reason: None,
            })
            .collect();
        return Decision {
            outcome: Outcome::Allow,
            message: None,
            warnings,
            audit_annotations: audit,
            findings,
            exemption: Some(ex),
            violations: Vec::new(),
            levels,
        };
    }

    let enforce = if subject.enforceable {
        levels.enforce
    } else {
        Level::Off
    };
    let mut findings = Vec::with_capacity(resolutions.len());
    let mut denials = Vec::new();
    let mut warn_lines = Vec::new();
    let mut audit_lines = Vec::new();
    let mut notes = Vec::new();
    let mut historical: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut exempt_images = Vec::new();
    let any_level = [levels.enforce, levels.warn, levels.audit]
        .iter()
        .any(|l| *l != Level::Off);

    for ((kind, c), res) in spec.all().zip(resolutions) {
        let who = || format!("{kind} {:?} ({})", c.name, c.image);
        let mut finding = Finding {
            kind,
            container: c.name.clone(),
            image: c.image.clone(),
            component: None,
            status: None,
            evidence: None,
            verdict: Verdict::Allowed,
            reason: None,
        };
        if let Resolution::Result(r) = res {
            finding.component = r.component().map(|c| c.id.clone());
            finding.status = Some(r.status());
            finding.evidence = Some(r.evidence());
            if any_level {
                note_result(r, rules, today, &who, &mut notes, &mut historical);
            }
        }
        if *res == Resolution::Exempt {
            finding.verdict = Verdict::Exempt;
            exempt_images.push(c.name.clone());
            findings.push(finding);
            continue;
        }
        let deny = violation(res, enforce, rules, today);
        let warn = violation(res, levels.warn, rules, today);
        let aud = violation(res, levels.audit, rules, today);
        let lookup_failed = matches!(res, Resolution::Result(r) if r.status() == Status::Unknown);
        let deny =
            deny.filter(|_| !(lookup_failed && rules.on_lookup_failure == LookupFailure::Allow));
        if let Some(reason) = &deny {
            denials.push(format!("{} {reason}", who()));
            finding.verdict = Verdict::Denied;
        } else if warn.is_some() || aud.is_some() || (lookup_failed && enforce != Level::Off) {
            finding.verdict = Verdict::Warned;
        }
        if lookup_failed && deny.is_none() && warn.is_none() && enforce != Level::Off {
            // Lookup failures are never silent, even when they are allowed.
            warn_lines.push(shorten(&format!("{}: {}", who(), reason_of(res))));
        }
        // A workload template is never denied, but its pods will be: say so now.
        let template_denial = (!subject.enforceable)
            .then(|| violation(res, levels.enforce, rules, today))
            .flatten();
        if let Some(reason) = &template_denial {
            finding.verdict = Verdict::Warned;
            warn_lines.push(shorten(&format!(
                "[enforce={}] pods would be denied: {}: {reason}",
                levels.enforce,
                who()
            )));
        } else if let Some(reason) = &warn {
            warn_lines.push(shorten(&format!("[{}] {}: {reason}", levels.warn, who())));
        }
        if let Some(reason) = &aud {
            audit_lines.push(format!("{kind} {:?} {}: {reason}", c.name, c.image));
        }
        finding.reason = deny.or(warn).or(aud);
        findings.push(finding);
    }

    let violations = vec![
        (Mode::Enforce, enforce, denials.len()),
        (Mode::Warn, levels.warn, warn_lines.len()),
        (Mode::Audit, levels.audit, audit_lines.len()),
    ];
    let outcome = match (denials.is_empty(), rules.dry_run) {
        (true, _) => Outcome::Allow,
        (false, false) => Outcome::Deny,
        (false, true) => Outcome::WouldDeny,
    };
    let message = (!denials.is_empty()).then(|| {
        let n = denials.len();
        let total = findings.len();
        format!(
            "{} {:?} violates the {} FIPS policy of namespace {:?} ({n} of {total} container{}): {}",
            subject.kind,
            subject.name,
            enforce,
            subject.namespace,
            if total == 1 { "" } else { "s" },
            denials.join("; ")
        )
    });
    match outcome {
        Outcome::Deny => {}
        Outcome::WouldDeny => {
            for d in &denials {
                warnings.push(shorten(&format!(
                    "[dry-run] would deny under enforce={enforce}: {d}"
                )));
            }
            warnings.extend(warn_lines);
        }
        Outcome::Allow => warnings.extend(warn_lines),
    }
    if outcome != Outcome::Deny {
        warnings.extend(notes);
        for (cert, comps) in historical {
            warnings.push(shorten(&format!(
                "certificate {cert} is historical (not for new procurement): {}",
                comps.join(", ")
            )));
        }
    }
    dedup(&mut warnings);

    audit.insert("decision", outcome.as_str().into());
    if !audit_lines.is_empty() {
        audit.insert("violations", audit_lines.join("; "));
    }
    let exemption = (!exempt_images.is_empty()).then_some(Exemption::Image);
    if exemption.is_some() {
        audit.insert("exempt", format!("image: {}", exempt_images.join(", ")));
    }
    Decision {
        outcome,
        message,
        warnings,
        audit_annotations: audit,
        findings,
        exemption,
        violations,
        levels,
    }
}

/// Notes that are not violations: partial compliance and historical certificates.
fn note_result(
    r: &AttestationResult,
    rules: &Rules,
    today: jiff::civil::Date,
    who: &dyn Fn() -> String,
    notes: &mut Vec<String>,
    historical: &mut BTreeMap<String, Vec<String>>,
) {
    let Some(comp) = r.component() else { return };
    if r.status() == Status::Partial {
        notes.push(shorten(&format!(
            "{} is partially FIPS-compliant; not FIPS: {}",
            who(),
            r.exceptions().join(", ")
        )));
    }
    if rules.historical == HistoricalAction::Warn {
        for m in r.modules() {
            if m.status_on(today) != CertificateStatus::Active {
                let ids = historical.entry(m.label()).or_default();
                if !ids.contains(&comp.id) {
                    ids.push(comp.id.clone());
                }
            }
        }
    }
}

/// Why `res` fails `level`, or `None` when it passes.
fn violation(
    res: &Resolution,
    level: Level,
    rules: &Rules,
    today: jiff::civil::Date,
) -> Option<String> {
    if level == Level::Off {
        return None;
    }
    let r = match res {
        Resolution::Exempt => return None,
        Resolution::Invalid(_) => return Some(reason_of(res)),
        Resolution::Result(r) => r,
    };
    match r.status() {
        Status::Unknown | Status::None => return Some(reason_of(res)),
        Status::Partial if level == Level::Strict => {
            return Some(format!(
                "is only partially FIPS-compliant (not FIPS: {})",
                r.exceptions().join(", ")
            ));
        }
        Status::Partial | Status::Full => {}
    }
    if r.evidence() < rules.minimum_evidence {
        let why = r.problem().map(|p| format!(" ({p})")).unwrap_or_default();
        return Some(format!(
            "is matched by {} only; {} evidence is required{why}",
            r.evidence(),
            rules.minimum_evidence
        ));
    }
    if rules.historical == HistoricalAction::Deny
        && let Some(m) = r
            .modules()
            .iter()
            .find(|m| m.status_on(today) != CertificateStatus::Active)
    {
        return Some(
            format!(
                "relies on certificate {} which is {:?}",
                m.label(),
                m.status_on(today)
            )
            .to_lowercase(),
        );
    }
    None
}

fn reason_of(res: &Resolution) -> String {
    match res {
        Resolution::Invalid(e) => format!("has an invalid image reference: {e}"),
        Resolution::Exempt => "is exempt".into(),
        Resolution::Result(r) => match r.status() {
            Status::Unknown => format!(
                "has an unknown FIPS status: {}",
                r.problem().unwrap_or("look-up failed")
            ),
            Status::None => match r.problem() {
                Some(p) => format!("is not a FIPS-compliant component ({p})"),
                None => "is not a FIPS-compliant component".into(),
            },
            s => format!("is {s}"),
        },
    }
}

/// Shortens a warning to [`WARNING_BUDGET`] by eliding the middle of the longest quoted image.
fn shorten(s: &str) -> String {
    if s.chars().count() <= WARNING_BUDGET {
        return s.to_string();
    }
    // Elide inside the first parenthesised image, keeping its start and end.
    if let (Some(open), Some(close)) = (s.find('('), s.find(')'))
        && close > open
    {
        let image = &s[open + 1..close];
        let excess = s.chars().count() - WARNING_BUDGET + 1;
        let chars: Vec<char> = image.chars().collect();
        if chars.len() > excess + 16 {
            let keep = chars.len() - excess;
            let head: String = chars[..keep / 2].iter().collect();
            let tail: String = chars[chars.len() - (keep - keep / 2)..].iter().collect();
            let mut out = String::with_capacity(s.len());
            let _ = write!(out, "{}({head}…{tail}){}", &s[..open], &s[close + 1..]);
            return out;
        }
    }
    s.to_string()
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::domain::workload::Container;
    use Level::*;

    const FIPS_API: &str = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
    const FIPS_DNS: &str = "gcr.io/spectro-images-fips/coredns:v1.12.1";
    const LONGHORN: &str = "gcr.io/spectro-images-fips/longhornio/longhorn-manager:v1.7";
    const TODAY: jiff::civil::Date = jiff::civil::date(2026, 11, 26);

    fn pod(init: &[&str], main: &[&str], eph: &[&str]) -> PodSpec {
        let mk = |prefix: &str, list: &[&str]| {
            list.iter()
                .enumerate()
                .map(|(i, img)| Container {
                    name: format!("{prefix}{i}"),
                    image: img.to_string(),
                })
                .collect()
        };
        PodSpec {
            init_containers: mk("init", init),
            containers: mk("c", main),
            ephemeral_containers: mk("debug", eph),
            ..PodSpec::default()
        }
    }

    fn run(config: &Config, spec: &PodSpec, labels: &[(&str, &str)]) -> Decision {
        run_as(config, spec, labels, "ns", "alice", true)
    }

    fn run_as(
        config: &Config,
        spec: &PodSpec,
        labels: &[(&str, &str)],
        ns: &str,
        user: &str,
        enforceable: bool,
    ) -> Decision {
        let rules = Rules::new(config).unwrap();
        let cat = Catalog::embedded();
        let res: Vec<_> = spec
            .all()
            .map(|(_, c)| rules.resolve(&c.image, |r| cat.lookup(r)))
            .collect();
        let policy = NamespacePolicy::from_labels(labels.iter().copied(), &rules.defaults);
        let subject = Subject {
            kind: "Pod",
            namespace: ns,
            name: "p",
            username: user,
            enforceable,
        };
        evaluate(&rules, &subject, spec, &res, &policy, TODAY)
    }

    fn ignore_historical() -> Config {
        let mut c = Config::default();
        c.certificates.historical = HistoricalAction::Ignore;
        c
    }

    #[test]
    fn levels_and_statuses() {
        let cfg = ignore_historical();
        let cases: &[(&str, Level, Outcome)] = &[
            (FIPS_API, Strict, Outcome::Allow),
            (FIPS_API, Baseline, Outcome::Allow),
            ("nginx", Strict, Outcome::Deny),
            ("nginx", Baseline, Outcome::Deny),
            ("nginx", Off, Outcome::Allow),
            (LONGHORN, Strict, Outcome::Deny),
            (LONGHORN, Baseline, Outcome::Allow),
            ("Not/Valid", Baseline, Outcome::Deny),
            ("Not/Valid", Off, Outcome::Allow),
            ("", Strict, Outcome::Deny),
        ];
        for (image, level, want) in cases {
            let d = run(
                &cfg,
                &pod(&[], &[image], &[]),
                &[
                    ("fipsgate.io/enforce", level.as_str()),
                    ("fipsgate.io/warn", "off"),
                ],
            );
            assert_eq!(d.outcome, *want, "{image} under {level}: {d:?}");
        }
    }

    #[test]
    fn partial_under_baseline_warns_with_exceptions() {
        let d = run(
            &ignore_historical(),
            &pod(&[], &[LONGHORN], &[]),
            &[("fipsgate.io/warn", "off")],
        );
        assert!(d.allowed());
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(
            d.warnings[0].contains("not FIPS: openssl, curl, nfs-utils, bind-tools"),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn every_container_kind_is_checked() {
        let cfg = ignore_historical();
        let strict = [("fipsgate.io/enforce", "strict")];
        for spec in [
            pod(&["busybox"], &[FIPS_API], &[]),
            pod(&[], &[FIPS_API, "busybox"], &[]),
            pod(&[], &[FIPS_API], &["busybox"]),
        ] {
            let d = run(&cfg, &spec, &strict);
            assert_eq!(d.outcome, Outcome::Deny, "{spec:?}");
            let msg = d.message.unwrap();
            assert!(
                msg.contains("(busybox) is not a FIPS-compliant component"),
                "{msg}"
            );
            assert!(msg.contains("1 of 2 containers"), "{msg}");
        }
        let d = run(
            &cfg,
            &pod(
                &["busybox:1.36"],
                &[FIPS_API, "registry.k8s.io/coredns/coredns:v1.11.1"],
                &[],
            ),
            &strict,
        );
        let msg = d.message.unwrap();
        assert!(msg.starts_with("Pod \"p\" violates the strict FIPS policy of namespace \"ns\" (2 of 3 containers): "), "{msg}");
        assert!(
            msg.contains("init container \"init0\" (busybox:1.36)"),
            "{msg}"
        );
        assert!(
            msg.contains("container \"c1\" (registry.k8s.io/coredns/coredns:v1.11.1)"),
            "{msg}"
        );
        assert_eq!(
            d.findings
                .iter()
                .filter(|f| f.verdict == Verdict::Denied)
                .count(),
            2
        );
    }

    #[test]
    fn modes() {
        let cfg = ignore_historical();
        let spec = pod(&[], &["nginx"], &[]);
        // warn only
        let d = run(
            &cfg,
            &spec,
            &[("fipsgate.io/enforce", "off"), ("fipsgate.io/audit", "off")],
        );
        assert!(d.allowed());
        assert_eq!(
            d.warnings,
            ["[strict] container \"c0\" (nginx): is not a FIPS-compliant component"]
        );
        assert!(!d.audit_annotations.contains_key("violations"));
        // audit only
        let d = run(
            &cfg,
            &spec,
            &[("fipsgate.io/enforce", "off"), ("fipsgate.io/warn", "off")],
        );
        assert!(d.warnings.is_empty());
        assert_eq!(
            d.audit_annotations["violations"],
            "container \"c0\" nginx: is not a FIPS-compliant component"
        );
        assert_eq!(d.audit_annotations["decision"], "allow");
        // enforce: warnings are skipped once denied
        let d = run(&cfg, &spec, &[]);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(d.warnings.is_empty());
        assert_eq!(d.audit_annotations["decision"], "deny");
        assert_eq!(
            d.audit_annotations["policy"],
            "enforce=baseline,warn=strict,audit=strict"
        );
    }

    #[test]
    fn dry_run_never_denies() {
        let mut cfg = ignore_historical();
        cfg.dry_run = true;
        let d = run(
            &cfg,
            &pod(&[], &["nginx"], &[]),
            &[
                ("fipsgate.io/enforce", "strict"),
                ("fipsgate.io/warn", "off"),
            ],
        );
        assert_eq!(d.outcome, Outcome::WouldDeny);
        assert!(d.allowed());
        assert!(d.message.is_some());
        assert_eq!(d.audit_annotations["decision"], "would-deny");
        assert_eq!(d.warnings.len(), 1);
        assert!(
            d.warnings[0]
                .starts_with("[dry-run] would deny under enforce=strict: container \"c0\" (nginx)"),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn exemptions_are_recorded() {
        let mut cfg = ignore_historical();
        cfg.exemptions.namespaces = vec!["kube-system".into()];
        cfg.exemptions.usernames = vec!["system:serviceaccount:ci:deployer".into()];
        cfg.exemptions.images = vec!["busybox:1.*".into(), "registry.io/tools/**".into()];
        let spec = pod(&[], &["nginx"], &[]);
        let d = run_as(&cfg, &spec, &[], "kube-system", "alice", true);
        assert_eq!(
            (d.outcome, d.exemption),
            (Outcome::Allow, Some(Exemption::Namespace))
        );
        assert_eq!(d.audit_annotations["exempt"], "namespace");
        let d = run_as(
            &cfg,
            &spec,
            &[],
            "ns",
            "system:serviceaccount:ci:deployer",
            true,
        );
        assert_eq!(
            (d.outcome, d.exemption),
            (Outcome::Allow, Some(Exemption::User))
        );
        assert_eq!(d.audit_annotations["exempt"], "user");
        let d = run(
            &cfg,
            &pod(
                &["busybox:1.36"],
                &[FIPS_API, "registry.io/tools/a/b:1"],
                &[],
            ),
            &[("fipsgate.io/enforce", "strict")],
        );
        assert_eq!(d.outcome, Outcome::Allow, "{d:?}");
        assert_eq!(d.audit_annotations["exempt"], "image: init0, c1");
        // tag outside the exemption glob
        let d = run(&cfg, &pod(&[], &["busybox:2"], &[]), &[]);
        assert_eq!(d.outcome, Outcome::Deny);
    }

    #[test]
    fn invalid_labels_are_strict_and_reported() {
        let d = run(
            &ignore_historical(),
            &pod(&[], &[LONGHORN], &[]),
            &[("fipsgate.io/enforce", "bogus")],
        );
        assert_eq!(d.outcome, Outcome::Deny);
        assert_eq!(d.levels.enforce, Strict);
        assert!(d.audit_annotations["error"].contains("fipsgate.io/enforce"));
        assert!(d.message.unwrap().contains("partially"));
    }

    #[test]
    fn historical_certificates() {
        let spec = pod(&[], &[FIPS_API, FIPS_DNS], &[]);
        let d = run(&Config::default(), &spec, &[]);
        assert!(d.allowed());
        assert_eq!(
            d.warnings,
            [
                "certificate #4349 (FIPS 140-2) is historical (not for new procurement): kube-apiserver, coredns"
            ]
        );
        let mut deny = Config::default();
        deny.certificates.historical = HistoricalAction::Deny;
        let d = run(&deny, &spec, &[]);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(
            d.message
                .unwrap()
                .contains("certificate #4349 (fips 140-2) which is historical")
        );
        let d = run(&ignore_historical(), &spec, &[]);
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn minimum_evidence() {
        let mut cfg = ignore_historical();
        cfg.evidence.minimum = Evidence::Digest;
        let d = run(&cfg, &pod(&[], &[FIPS_API], &[]), &[]);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(
            d.message
                .unwrap()
                .contains("matched by repository only; digest evidence is required")
        );
    }

    #[test]
    fn lookup_failures() {
        let rules = Rules::new(&ignore_historical()).unwrap();
        let spec = pod(&[], &["x.io/a:1"], &[]);
        let res = [Resolution::Result(AttestationResult::unknown(
            "attestation lookup timed out",
        ))];
        let subject = Subject {
            kind: "Pod",
            namespace: "ns",
            name: "p",
            username: "u",
            enforceable: true,
        };
        let policy =
            NamespacePolicy::from_labels([("fipsgate.io/enforce", "strict")], &rules.defaults);
        let d = evaluate(&rules, &subject, &spec, &res, &policy, TODAY);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(d.message.unwrap().contains("attestation lookup timed out"));
        let warn_only =
            NamespacePolicy::from_labels([("fipsgate.io/enforce", "off")], &rules.defaults);
        let d = evaluate(&rules, &subject, &spec, &res, &warn_only, TODAY);
        assert!(d.allowed());
        assert!(d.warnings[0].contains("attestation lookup timed out"));
        assert!(d.audit_annotations["violations"].contains("timed out"));
        let mut allow = ignore_historical();
        allow.on_lookup_failure = LookupFailure::Allow;
        let rules = Rules::new(&allow).unwrap();
        let d = evaluate(&rules, &subject, &spec, &res, &policy, TODAY);
        assert!(d.allowed());
        assert!(
            d.warnings.iter().any(|w| w.contains("timed out")),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn workloads_are_never_denied() {
        let nginx = pod(&[], &["nginx"], &[]);
        let d = run_as(
            &ignore_historical(),
            &nginx,
            &[
                ("fipsgate.io/enforce", "strict"),
                ("fipsgate.io/warn", "off"),
            ],
            "ns",
            "u",
            false,
        );
        assert!(d.allowed());
        assert_eq!(
            d.warnings,
            [
                "[enforce=strict] pods would be denied: container \"c0\" (nginx): is not a FIPS-compliant component"
            ]
        );
        let d = run_as(
            &ignore_historical(),
            &nginx,
            &[("fipsgate.io/enforce", "off")],
            "ns",
            "u",
            false,
        );
        assert_eq!(
            d.warnings,
            ["[strict] container \"c0\" (nginx): is not a FIPS-compliant component"]
        );
    }

    #[test]
    fn long_warnings_are_shortened() {
        let long = format!(
            "registry.example.com/{}/image:v1",
            "very-long-path-component/".repeat(6).trim_end_matches('/')
        );
        let d = run(
            &ignore_historical(),
            &pod(&[], &[&long], &[]),
            &[("fipsgate.io/enforce", "off")],
        );
        assert!(
            d.warnings[0].chars().count() <= WARNING_BUDGET,
            "{}",
            d.warnings[0]
        );
        assert!(d.warnings[0].contains("registry.exam") && d.warnings[0].contains("image:v1"));
    }
}
