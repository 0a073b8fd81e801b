//! The decision engine: a pure function from a pod's containers, what is known about their
//! images and the namespace policy to allow / deny, warnings and the record of why. No IO, no
//! clock, no wire formats: `admission` turns a [`Decision`] into an AdmissionReview answer.
//!
//! [`evaluate`] gathers per-container judgements ([`judge`]) into one decision.

mod judge;
mod message;
mod rules;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::fips::{CertificateStatus, CryptoModule, Evidence, Status};
use crate::domain::policy::{Level, Levels, NamespacePolicy};
use crate::domain::workload::{Container, ContainerKind, PodSpec};

pub use message::WARNING_BUDGET;
pub use rules::{Classification, Exemptions, Grant, Rules, Triage};

use judge::{Judge, Judgement};
use message::{dedup, shorten};

/// Why a request or an image was let through without evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// On UPDATE, the pod spec before it: images it already had are warned about, not denied.
    pub previous: Option<&'a PodSpec>,
}

/// The verdict for one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Allowed,
    Exempt,
    /// Violates the warn or audit level only.
    Warned,
    /// Violates the enforce level (denied, or would be under dry-run).
    Denied,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Exempt => "exempt",
            Verdict::Warned => "warned",
            Verdict::Denied => "denied",
        }
    }
}

/// One container's evaluation, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The digest the evidence was verified for, when it rests on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The cryptographic modules the image relies on, with their status on the day judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleStatus>,
}

/// A module an image relies on and its certificate's status on the day of the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleStatus {
    pub module: String,
    pub standard: String,
    /// The CMVP number; none while in process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    pub status: CertificateStatus,
    /// The day its certificate goes historical, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<jiff::civil::Date>,
}

/// Fills each finding's modules from its classification (`findings` and `classes` as
/// [`evaluate`] took and gave them), for the reports that show them; admission does not.
pub fn with_modules(
    findings: &mut [Finding],
    classes: &[Classification],
    today: jiff::civil::Date,
) {
    for (f, cl) in findings.iter_mut().zip(classes) {
        if let Classification::Assessed(a) = cl {
            f.modules = (a.modules().iter())
                .map(|m| ModuleStatus::of(m, today))
                .collect();
        }
    }
}

impl ModuleStatus {
    /// `module` as it stands on `today`.
    pub fn of(module: &CryptoModule, today: jiff::civil::Date) -> Self {
        Self {
            module: module.name.clone(),
            standard: module.standard.clone(),
            certificate: module.certificate.clone(),
            status: module.status_on(today),
            sunset: module.sunset,
        }
    }

    /// `#5061 active`, or `Module in-process` for a module without a certificate.
    pub fn short(&self) -> String {
        match &self.certificate {
            Some(c) => format!("#{c} {}", self.status.as_str()),
            None => format!("{} {}", self.module, self.status.as_str()),
        }
    }
}

impl Finding {
    /// A container not judged yet: nothing known, `verdict` as given.
    pub(crate) fn new(kind: ContainerKind, c: &Container, verdict: Verdict) -> Self {
        Self {
            kind,
            container: c.name.clone(),
            image: c.image.clone(),
            component: None,
            status: None,
            evidence: None,
            verdict,
            reason: None,
            digest: None,
            modules: Vec::new(),
        }
    }
}

/// The outcome of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// How many containers violate a mode's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub level: Level,
    pub containers: usize,
}

/// Violations per mode (the enforce level is `off` for workload templates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violations {
    pub enforce: Count,
    pub warn: Count,
    pub audit: Count,
}

/// The engine's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// The denial message, when denied (or would be, under dry-run).
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub findings: Vec<Finding>,
    /// Why the request, or some of its images, went unevaluated.
    pub exemption: Option<Exemption>,
    /// Containers whose images are exempt.
    pub exempt_containers: Vec<String>,
    pub levels: Levels,
    /// Invalid policy labels of the namespace (each evaluated as `strict`).
    pub policy_errors: Vec<String>,
    /// Audit-level violations, one line per container.
    pub audit_violations: Vec<String>,
    pub violations: Violations,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.outcome != Outcome::Deny
    }
}

/// Decides a request. `classes` has one entry per container of `spec.all()`, in order.
pub fn evaluate(
    rules: &Rules,
    subject: &Subject<'_>,
    spec: &PodSpec,
    classes: &[Classification],
    policy: &NamespacePolicy,
    today: jiff::civil::Date,
) -> Decision {
    let levels = policy.levels;
    if let Some(ex) = rules.exemption(subject.namespace, subject.username, today) {
        return exempt(spec, policy, ex);
    }
    let judge = Judge {
        rules,
        subject,
        levels,
        enforce: if subject.enforceable {
            levels.enforce
        } else {
            Level::Off
        },
        today,
        previous: subject.previous.map(|old| {
            old.all()
                .map(|(k, c)| (k, c.name.as_str(), c.image.as_str()))
                .collect()
        }),
    };
    let mut tally = Tally::with_capacity(classes.len());
    for ((kind, c), cl) in spec.all().zip(classes) {
        tally.add(judge.container(kind, c, cl));
    }
    let mut d = tally.finish(&judge, policy);
    // An expired exemption of the namespace or user is said, whatever the outcome.
    let expired = rules.expired(subject.namespace, subject.username, today);
    if !expired.is_empty() {
        if let Some(m) = &mut d.message {
            m.push_str(&format!(" ({})", expired.join("; ")));
        }
        d.warnings.extend(
            expired
                .iter()
                .map(|n| format!("{n}: judged as if never exempt")),
        );
    }
    d
}

/// A request exempt by namespace or user: allowed, every container recorded as exempt.
fn exempt(spec: &PodSpec, policy: &NamespacePolicy, ex: Exemption) -> Decision {
    let findings = spec
        .all()
        .map(|(kind, c)| Finding::new(kind, c, Verdict::Exempt))
        .collect();
    let none = |level| Count {
        level,
        containers: 0,
    };
    Decision {
        outcome: Outcome::Allow,
        message: None,
        warnings: policy.errors.clone(),
        findings,
        exemption: Some(ex),
        exempt_containers: Vec::new(),
        levels: policy.levels,
        policy_errors: policy.errors.clone(),
        audit_violations: Vec::new(),
        violations: Violations {
            enforce: none(Level::Off),
            warn: none(Level::Off),
            audit: none(Level::Off),
        },
    }
}

/// The judgements of a request, gathered.
#[derive(Default)]
struct Tally {
    findings: Vec<Finding>,
    denials: Vec<String>,
    warnings: Vec<String>,
    /// Warn-level lines, counted also for containers whose denial stands in for them.
    warned: usize,
    audit: Vec<String>,
    notes: Vec<String>,
    /// Certificate label → components relying on it, in order of appearance.
    historical: BTreeMap<String, Vec<String>>,
    in_process: BTreeMap<String, Vec<String>>,
    exempt: Vec<String>,
}

impl Tally {
    fn with_capacity(n: usize) -> Self {
        Self {
            findings: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    fn add(&mut self, j: Judgement) {
        self.notes.extend(j.notes);
        for (status, cert, component) in j.certificates {
            let map = match status {
                CertificateStatus::InProcess => &mut self.in_process,
                _ => &mut self.historical,
            };
            let ids = map.entry(cert).or_default();
            if !ids.contains(&component) {
                ids.push(component);
            }
        }
        if j.finding.verdict == Verdict::Exempt {
            self.exempt.push(j.finding.container.clone());
        }
        self.warned += j.warnings.len();
        // A denied container is said once: by its denial, or in dry-run by its `[dry-run]` line.
        if j.denial.is_none() {
            self.warnings.extend(j.warnings);
        }
        self.denials.extend(j.denial);
        self.audit.extend(j.audit);
        self.findings.push(j.finding);
    }

    fn finish(self, judge: &Judge<'_>, policy: &NamespacePolicy) -> Decision {
        let (levels, enforce) = (judge.levels, judge.enforce);
        let count = |level, containers| Count { level, containers };
        let violations = Violations {
            enforce: count(enforce, self.denials.len()),
            warn: count(levels.warn, self.warned),
            audit: count(levels.audit, self.audit.len()),
        };
        let outcome = match (self.denials.is_empty(), judge.rules.dry_run) {
            (true, _) => Outcome::Allow,
            (false, false) => Outcome::Deny,
            (false, true) => Outcome::WouldDeny,
        };
        let message = (!self.denials.is_empty())
            .then(|| message::denial(judge.subject, enforce, &self.denials, self.findings.len()));
        let mut warnings = policy.errors.clone();
        if outcome == Outcome::WouldDeny {
            for d in &self.denials {
                warnings.push(shorten(&format!(
                    "[dry-run] would deny under enforce={enforce}: {d}"
                )));
            }
        }
        if outcome != Outcome::Deny {
            warnings.extend(self.warnings);
            warnings.extend(self.notes);
            for (cert, comps) in self.historical {
                warnings.push(shorten(&format!(
                    "certificate {cert} is historical (not for new procurement): {}",
                    comps.join(", ")
                )));
            }
            for (cert, comps) in self.in_process {
                warnings.push(shorten(&format!(
                    "{cert} is in process: not a validated module yet: {}",
                    comps.join(", ")
                )));
            }
        }
        dedup(&mut warnings);
        Decision {
            outcome,
            message,
            warnings,
            findings: self.findings,
            exemption: (!self.exempt.is_empty()).then_some(Exemption::Image),
            exempt_containers: self.exempt,
            levels,
            policy_errors: policy.errors.clone(),
            audit_violations: self.audit,
            violations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::domain::assessment::Assessment;
    use crate::domain::policy::{CertificateAction, LookupFailure};
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
                    slot: None,
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

    fn run(rules: &Rules, spec: &PodSpec, labels: &[(&str, &str)]) -> Decision {
        run_as(rules, spec, labels, "ns", "alice", true)
    }

    fn run_as(
        rules: &Rules,
        spec: &PodSpec,
        labels: &[(&str, &str)],
        ns: &str,
        user: &str,
        enforceable: bool,
    ) -> Decision {
        run_in(
            &Catalog::embedded(),
            rules,
            spec,
            labels,
            ns,
            user,
            enforceable,
            TODAY,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run_in(
        cat: &Catalog,
        rules: &Rules,
        spec: &PodSpec,
        labels: &[(&str, &str)],
        ns: &str,
        user: &str,
        enforceable: bool,
        today: jiff::civil::Date,
    ) -> Decision {
        let res: Vec<_> = spec
            .all()
            .map(|(_, c)| match rules.triage(&c.image, today) {
                Triage::Known(k) => k,
                Triage::Assess(r) => Classification::Assessed(cat.lookup(&r)),
            })
            .collect();
        let policy = NamespacePolicy::from_labels(labels.iter().copied(), &rules.defaults);
        let subject = Subject {
            kind: "Pod",
            namespace: ns,
            name: "p",
            username: user,
            enforceable,
            previous: None,
        };
        evaluate(rules, &subject, spec, &res, &policy, today)
    }

    fn ignore_historical() -> Rules {
        Rules {
            historical: CertificateAction::Ignore,
            ..Rules::default()
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Serde and `as_str` spell every outcome, verdict and exemption the same way.
    #[test]
    fn one_spelling_per_value() {
        for o in [Outcome::Allow, Outcome::Deny, Outcome::WouldDeny] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for v in [
            Verdict::Allowed,
            Verdict::Exempt,
            Verdict::Warned,
            Verdict::Denied,
        ] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        for e in [Exemption::Namespace, Exemption::User, Exemption::Image] {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
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
            d.warnings[0].contains(
                "not FIPS: openssl, curl, nfs-utils (nfs-client), bind-tools (bind-utils)"
            ),
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
        assert!(d.audit_violations.is_empty());
        // audit only
        let d = run(
            &cfg,
            &spec,
            &[("fipsgate.io/enforce", "off"), ("fipsgate.io/warn", "off")],
        );
        assert!(d.warnings.is_empty());
        assert_eq!(
            d.audit_violations,
            ["container \"c0\" nginx: is not a FIPS-compliant component"]
        );
        assert_eq!(d.outcome, Outcome::Allow);
        // enforce: warnings are skipped once denied
        let d = run(&cfg, &spec, &[]);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(d.warnings.is_empty());
        assert_eq!(
            d.levels.summary(),
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
        assert_eq!(d.warnings.len(), 1);
        assert!(
            d.warnings[0]
                .starts_with("[dry-run] would deny under enforce=strict: container \"c0\" (nginx)"),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn dry_run_says_each_container_once() {
        let mut cfg = ignore_historical();
        cfg.dry_run = true;
        let d = run(
            &cfg,
            &pod(&[], &["nginx", "busybox"], &[]),
            &[
                ("fipsgate.io/enforce", "strict"),
                ("fipsgate.io/warn", "strict"),
            ],
        );
        assert_eq!(d.outcome, Outcome::WouldDeny);
        assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
        assert!(
            d.warnings.iter().all(|w| w.starts_with("[dry-run] ")),
            "{:?}",
            d.warnings
        );
        assert_eq!(d.violations.warn.containers, 2);
    }

    #[test]
    fn exemptions_are_recorded() {
        let mut cfg = ignore_historical();
        cfg.exemptions = Exemptions::new(
            &strings(&["kube-system"]),
            &strings(&["system:serviceaccount:ci:deployer"]),
            &strings(&["busybox:1.*", "registry.io/tools/**"]),
        )
        .unwrap();
        let spec = pod(&[], &["nginx"], &[]);
        let d = run_as(&cfg, &spec, &[], "kube-system", "alice", true);
        assert_eq!(
            (d.outcome, d.exemption),
            (Outcome::Allow, Some(Exemption::Namespace))
        );
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
        assert_eq!(
            (d.exemption, d.exempt_containers),
            (Some(Exemption::Image), strings(&["init0", "c1"]))
        );
        // tag outside the exemption glob
        let d = run(&cfg, &pod(&[], &["busybox:2"], &[]), &[]);
        assert_eq!(d.outcome, Outcome::Deny);
    }

    #[test]
    fn exemptions_end_after_their_last_day() {
        let grant = |name: &str, expires: Option<jiff::civil::Date>| Grant {
            name: name.into(),
            reason: Some("vendor rebuild".into()),
            ticket: Some("POAM-7".into()),
            expires,
        };
        let last = jiff::civil::date(2026, 11, 30);
        let mut cfg = ignore_historical();
        cfg.exemptions = Exemptions::from_grants(
            vec![grant("legacy", Some(last))],
            vec![grant("deployer", Some(last))],
            vec![grant("busybox", Some(last)), grant("nginx", None)],
        )
        .unwrap();
        let labels = [("fipsgate.io/enforce", "strict")];
        let at = |day, ns: &str, user: &str, image: &str| {
            let spec = pod(&[], &[image], &[]);
            run_in(
                &Catalog::embedded(),
                &cfg,
                &spec,
                &labels,
                ns,
                user,
                true,
                day,
            )
        };
        let next = last.tomorrow().unwrap();
        // On its last day each exempts; the next day none does, and the answer says why.
        assert_eq!(
            at(last, "legacy", "alice", "redis").exemption,
            Some(Exemption::Namespace)
        );
        assert_eq!(
            at(last, "ns", "deployer", "redis").exemption,
            Some(Exemption::User)
        );
        assert_eq!(
            at(last, "ns", "alice", "busybox").exemption,
            Some(Exemption::Image)
        );
        let d = at(next, "legacy", "alice", "redis");
        assert_eq!((d.outcome, d.exemption), (Outcome::Deny, None));
        let note = "the exemption of namespace \"legacy\" (POAM-7) expired on 2026-11-30";
        assert!(
            d.message
                .as_deref()
                .unwrap()
                .ends_with(&format!("({note})")),
            "{d:?}"
        );
        assert!(
            d.warnings
                .contains(&format!("{note}: judged as if never exempt")),
            "{d:?}"
        );
        let d = at(next, "ns", "deployer", "redis");
        assert!(
            d.message
                .unwrap()
                .contains("exemption of user \"deployer\"")
        );
        let d = at(next, "ns", "alice", "busybox");
        assert_eq!((d.outcome, d.exemption), (Outcome::Deny, None));
        assert!(
            d.findings[0]
                .reason
                .as_deref()
                .unwrap()
                .ends_with("(the exemption of image \"busybox\" (POAM-7) expired on 2026-11-30)"),
            "{d:?}"
        );
        // An open-ended one never ends; an expired one of a namespace leaves a compliant pod
        // admitted, with the note.
        assert_eq!(
            at(next, "ns", "alice", "nginx").exemption,
            Some(Exemption::Image)
        );
        let d = at(next, "legacy", "alice", FIPS_API);
        assert_eq!(d.outcome, Outcome::Allow);
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("expired on 2026-11-30"))
        );
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
        assert!(d.policy_errors[0].contains("fipsgate.io/enforce"));
        assert!(d.message.unwrap().contains("partially"));
    }

    /// The embedded catalogue with kube-apiserver and coredns built on certificate #4349
    /// (FIPS 140-2, active until the 140-2 sunset in the certificate table).
    fn on_4349() -> Catalog {
        let mut file = Catalog::default_file();
        for c in &mut file.components {
            if c.id == "kube-apiserver" || c.id == "coredns" {
                c.modules = vec![crate::catalog::CryptoModule {
                    name: "Spectro Cloud Cryptographic Module".into(),
                    version: None,
                    standard: "FIPS 140-3".into(),
                    certificate: Some("4349".into()),
                    certificate_status: CertificateStatus::InProcess,
                    sunset: None,
                    build: None,
                    previous_certificates: Vec::new(),
                }];
            }
        }
        Catalog::build(vec![("test".into(), file)]).unwrap()
    }

    #[test]
    fn historical_certificates_follow_the_calendar() {
        let cat = on_4349();
        let spec = pod(&[], &[FIPS_API, FIPS_DNS], &[]);
        let at = |rules: &Rules, today| run_in(&cat, rules, &spec, &[], "ns", "alice", true, today);
        // Before the 140-2 sunset the table's "active" holds, whatever the entry said.
        let d = at(&Rules::default(), jiff::civil::date(2026, 9, 20));
        assert!(d.allowed() && d.warnings.is_empty(), "{:?}", d.warnings);
        let d = at(&Rules::default(), TODAY);
        assert!(d.allowed());
        assert_eq!(
            d.warnings,
            [
                "certificate #4349 (FIPS 140-2) is historical (not for new procurement): kube-apiserver, coredns"
            ]
        );
        let deny = Rules {
            historical: CertificateAction::Deny,
            ..Rules::default()
        };
        let d = at(&deny, TODAY);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(
            d.message
                .unwrap()
                .contains("certificate #4349 (fips 140-2) which is historical")
        );
        let d = at(&ignore_historical(), TODAY);
        assert!(d.warnings.is_empty());
        // The embedded catalogue names no module for them: nothing to date.
        let d = run(&Rules::default(), &spec, &[]);
        assert!(d.allowed() && d.warnings.is_empty(), "{:?}", d.warnings);
    }

    #[test]
    fn minimum_evidence() {
        let mut cfg = ignore_historical();
        cfg.minimum_evidence = Evidence::Digest;
        let d = run(&cfg, &pod(&[], &[FIPS_API], &[]), &[]);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(
            d.message
                .unwrap()
                .contains("matched by repository only; digest evidence is required")
        );
    }

    /// An image known by a signed scan, as the source chain makes it.
    fn scanned(status: Status, problems: &[(&str, &str)], exceptions: &[&str]) -> Assessment {
        use crate::domain::assessment::{ScanFacts, ScanProblem};
        let component = crate::domain::fips::Component {
            id: "r.io/team/app".into(),
            name: "r.io/team/app".into(),
            category: crate::domain::fips::Category::Application,
            description: String::new(),
            part_of: None,
            host_only: false,
            images: Vec::new(),
            status,
            exceptions: Vec::new(),
            modules: Vec::new(),
            digests: Vec::new(),
            crypto: None,
            source: None,
        };
        let facts = ScanFacts {
            status,
            platform: Some("linux/amd64".into()),
            profile: "any".into(),
            scanner: "fipsgate 0.1.0 (rules 2026.11.1)".into(),
            scanned_at: "2026-11-28T12:00:00Z".parse().unwrap(),
            problems: (problems.iter())
                .map(|(error, path)| ScanProblem {
                    path: path.to_string(),
                    verdict: "FAIL".into(),
                    error: Some(error.to_string()),
                })
                .collect(),
        };
        let module = CryptoModule {
            name: "BoringCrypto".into(),
            version: None,
            standard: "FIPS 140-2".into(),
            certificate: Some("3678".into()),
            certificate_status: CertificateStatus::Active,
            sunset: Some(jiff::civil::date(2026, 9, 21)),
            build: None,
            previous_certificates: Vec::new(),
        };
        let exceptions = exceptions.iter().map(|e| e.to_string()).collect();
        Assessment::scanned(
            std::sync::Arc::new(component),
            facts,
            vec![module],
            exceptions,
        )
        .with_digest(&format!("sha256:{}", "a".repeat(64)))
    }

    /// Under `evidence.minimum: scan`: a full scan is admitted at every level, a partial one
    /// as a partial component is, a failing one is denied with what the scan found, and an
    /// attestation that is not a scan (or a catalogue match) is below the minimum.
    #[test]
    fn scan_evidence_and_its_verdicts() {
        let rules = Rules {
            minimum_evidence: Evidence::Scan,
            ..ignore_historical()
        };
        let image = format!("r.io/team/app@sha256:{}", "a".repeat(64));
        let spec = pod(&[], &[&image], &[]);
        let judge = |a: Assessment, level: &str| {
            let policy = NamespacePolicy::from_labels(
                [("fipsgate.io/enforce", level), ("fipsgate.io/warn", "off")],
                &rules.defaults,
            );
            let subject = Subject {
                kind: "Pod",
                namespace: "ns",
                name: "p",
                username: "u",
                enforceable: true,
                previous: None,
            };
            evaluate(
                &rules,
                &subject,
                &spec,
                &[Classification::Assessed(a)],
                &policy,
                TODAY,
            )
        };
        let full = scanned(Status::Full, &[], &[]);
        assert!(Evidence::Scan > Evidence::Attestation);
        for level in ["strict", "baseline"] {
            let d = judge(full.clone(), level);
            assert_eq!(d.outcome, Outcome::Allow, "{level}: {d:?}");
            assert_eq!(d.findings[0].evidence, Some(Evidence::Scan));
            assert_eq!(d.findings[0].component.as_deref(), Some("r.io/team/app"));
        }
        let partial = scanned(Status::Partial, &[], &["/usr/sbin/iptables (NotDynLinked)"]);
        let d = judge(partial.clone(), "strict");
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(d.message.unwrap().contains(
            "is only partially FIPS-compliant (not FIPS: /usr/sbin/iptables (NotDynLinked))"
        ));
        let d = judge(partial, "baseline");
        assert_eq!(d.outcome, Outcome::Allow);
        assert!(
            d.warnings[0].contains("partially FIPS-compliant"),
            "{:?}",
            d.warnings
        );
        for status in [Status::None, Status::Unknown] {
            let trap = scanned(status, &[("GoBoringNotLinked", "/app/server")], &[]);
            for level in ["strict", "baseline"] {
                let d = judge(trap.clone(), level);
                assert_eq!(d.outcome, Outcome::Deny, "{status} {level}");
                let msg = d.message.unwrap();
                assert!(
                    msg.contains(
                        "is not FIPS-compliant: scan found GoBoringNotLinked in /app/server"
                    ),
                    "{msg}"
                );
            }
        }
    }

    /// A failed scan is not a look-up failure, a component attestation is below a minimum of
    /// `scan`, and a scan's modules are dated like any other.
    #[test]
    fn scan_evidence_minimum_and_certificates() {
        let rules = Rules {
            minimum_evidence: Evidence::Scan,
            ..ignore_historical()
        };
        let image = format!("r.io/team/app@sha256:{}", "a".repeat(64));
        let spec = pod(&[], &[&image], &[]);
        let full = scanned(Status::Full, &[], &[]);
        // Not a look-up failure: `onLookupFailure: allow` does not let a failed scan through.
        let lenient = Rules {
            on_lookup_failure: LookupFailure::Allow,
            ..rules.clone()
        };
        let trap = scanned(Status::Unknown, &[("ProviderNotValidated", "/lib/x")], &[]);
        assert_eq!(trap.status(), Status::None);
        let policy =
            NamespacePolicy::from_labels([("fipsgate.io/enforce", "strict")], &rules.defaults);
        let subject = Subject {
            kind: "Pod",
            namespace: "ns",
            name: "p",
            username: "u",
            enforceable: true,
            previous: None,
        };
        let d = evaluate(
            &lenient,
            &subject,
            &spec,
            &[Classification::Assessed(trap)],
            &policy,
            TODAY,
        );
        assert_eq!(d.outcome, Outcome::Deny);
        // A component attestation is below the minimum.
        let attested = Assessment::attested(
            Catalog::embedded().get("coredns").unwrap().clone(),
            Vec::new(),
            Vec::new(),
        );
        let d = evaluate(
            &rules,
            &subject,
            &spec,
            &[Classification::Assessed(attested)],
            &policy,
            TODAY,
        );
        assert!(
            d.message
                .unwrap()
                .contains("matched by attestation only; scan evidence is required")
        );
        // The scan's modules are dated like any other: #3678 went historical at its sunset.
        let deny_historical = Rules {
            historical: CertificateAction::Deny,
            ..rules.clone()
        };
        let d = evaluate(
            &deny_historical,
            &subject,
            &spec,
            &[Classification::Assessed(full)],
            &policy,
            TODAY,
        );
        assert!(
            d.message
                .unwrap()
                .contains("relies on certificate #3678 (fips 140-2) which is historical"),
        );
    }

    #[test]
    fn lookup_failures() {
        let rules = ignore_historical();
        let spec = pod(&[], &["x.io/a:1"], &[]);
        let res = [Classification::Assessed(Assessment::unknown(
            "attestation lookup timed out",
        ))];
        let subject = Subject {
            kind: "Pod",
            namespace: "ns",
            name: "p",
            username: "u",
            enforceable: true,
            previous: None,
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
        assert!(d.audit_violations[0].contains("timed out"));
        let mut allow = ignore_historical();
        allow.on_lookup_failure = LookupFailure::Allow;
        let rules = allow;
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
