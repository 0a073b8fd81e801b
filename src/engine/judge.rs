//! One container judged against the namespace's levels: its finding and what it adds to the
//! denial, the warnings and the audit record.

use std::collections::HashSet;

use crate::domain::assessment::Assessment;
use crate::domain::fips::{CertificateStatus, Status};
use crate::domain::policy::{Binding, CertificateAction, Level, Levels, LookupFailure};
use crate::domain::workload::{Container, ContainerKind};

use super::message::{reason_of, shorten};
use super::{Classification, Finding, Rules, Subject, Verdict};

/// What the engine needs to judge every container of one request.
pub(super) struct Judge<'a> {
    pub rules: &'a Rules,
    pub subject: &'a Subject<'a>,
    pub levels: Levels,
    /// The enforce level that applies: `off` for workload templates.
    pub enforce: Level,
    pub today: jiff::civil::Date,
    /// On UPDATE, what the pod already ran: (kind, container, image).
    pub previous: Option<HashSet<(ContainerKind, &'a str, &'a str)>>,
}

/// One container's judgement.
pub(super) struct Judgement {
    pub finding: Finding,
    /// `<who> <reason>` when the enforce level denies it.
    pub denial: Option<String>,
    /// Warning lines, in order.
    pub warnings: Vec<String>,
    /// The audit-level violation.
    pub audit: Option<String>,
    /// Not violations: partial compliance, a reference to pin.
    pub notes: Vec<String>,
    /// Certificates to warn about (historical, in process), with the component relying on
    /// them.
    pub certificates: Vec<(CertificateStatus, String, String)>,
}

impl Judge<'_> {
    pub fn container(&self, kind: ContainerKind, c: &Container, cl: &Classification) -> Judgement {
        let who = || format!("{kind} {:?} ({})", c.name, c.image);
        let mut j = Judgement {
            finding: Finding::new(kind, c, Verdict::Allowed),
            denial: None,
            warnings: Vec::new(),
            audit: None,
            notes: Vec::new(),
            certificates: Vec::new(),
        };
        if let Classification::Assessed(a) = cl {
            j.finding.component = a.component().map(|c| c.id.clone());
            j.finding.status = Some(a.status());
            j.finding.evidence = Some(a.evidence());
            j.finding.digest = a.digest().map(str::to_string);
            let l = self.levels;
            if [l.enforce, l.warn, l.audit]
                .iter()
                .any(|l| *l != Level::Off)
            {
                self.notes(c, a, &who, &mut j);
            }
        }
        if *cl == Classification::Exempt {
            j.finding.verdict = Verdict::Exempt;
            return j;
        }
        self.violations(kind, c, cl, &who, &mut j);
        j
    }

    /// The denial, warnings and audit line of a container that is not exempt.
    fn violations(
        &self,
        kind: ContainerKind,
        c: &Container,
        cl: &Classification,
        who: &dyn Fn() -> String,
        j: &mut Judgement,
    ) {
        let (levels, enforce) = (self.levels, self.enforce);
        let violation = |level| self.violation(c, cl, level);
        let (warn, audit) = (violation(levels.warn), violation(levels.audit));
        let lookup_failed =
            matches!(cl, Classification::Assessed(a) if a.status() == Status::Unknown);
        let mut deny = violation(enforce)
            .filter(|_| !(lookup_failed && self.rules.on_lookup_failure == LookupFailure::Allow));
        // A violation an exemption covered until it expired says so.
        let expired = (deny.is_some() || warn.is_some() || audit.is_some())
            .then(|| self.rules.expired_image(&c.image, self.today))
            .flatten();
        let with_note = |r: Option<String>| match &expired {
            Some(note) => r.map(|r| format!("{r} ({note})")),
            None => r,
        };
        let (warn, audit) = (with_note(warn), with_note(audit));
        deny = with_note(deny);
        // An image the pod already had is not this update's to deny: it is warned about.
        let unchanged = deny.is_some() && self.unchanged(kind, c);
        if unchanged && let Some(reason) = deny.take() {
            j.warnings.push(shorten(&format!(
                "[enforce={enforce}] unchanged by this update, not denied: {}: {reason}",
                who()
            )));
            j.finding.reason = Some(reason);
        }
        if let Some(reason) = &deny {
            j.denial = Some(format!("{} {reason}", who()));
            j.finding.verdict = Verdict::Denied;
        } else if unchanged
            || warn.is_some()
            || audit.is_some()
            || (lookup_failed && enforce != Level::Off)
        {
            j.finding.verdict = Verdict::Warned;
        }
        if lookup_failed && deny.is_none() && warn.is_none() && enforce != Level::Off {
            // Look-up failures are never silent, even when they are allowed.
            j.warnings
                .push(shorten(&format!("{}: {}", who(), reason_of(cl))));
        }
        // A workload template is never denied, but its pods will be: say so now.
        let template_denial = (!self.subject.enforceable)
            .then(|| self.violation(c, cl, levels.enforce))
            .flatten();
        if let Some(reason) = &template_denial {
            j.finding.verdict = Verdict::Warned;
            j.warnings.push(shorten(&format!(
                "[enforce={}] pods would be denied: {}: {reason}",
                levels.enforce,
                who()
            )));
        } else if let Some(reason) = warn.as_ref().filter(|_| !unchanged) {
            // (an unchanged image has its warning already)
            j.warnings
                .push(shorten(&format!("[{}] {}: {reason}", levels.warn, who())));
        }
        if let Some(reason) = &audit {
            j.audit = Some(format!("{kind} {:?} {}: {reason}", c.name, c.image));
        }
        j.finding.reason = deny.or(j.finding.reason.take()).or(warn).or(audit);
    }

    /// True when the pod had this image in this place before the update.
    fn unchanged(&self, kind: ContainerKind, c: &Container) -> bool {
        (self.previous.as_ref())
            .is_some_and(|old| old.contains(&(kind, c.name.as_str(), c.image.as_str())))
    }

    /// Notes that are not violations: partial compliance, a reference to pin, historical
    /// and in-process certificates.
    fn notes(&self, c: &Container, a: &Assessment, who: &dyn Fn() -> String, j: &mut Judgement) {
        let Some(comp) = a.component() else { return };
        if a.status() == Status::Partial {
            j.notes.push(shorten(&format!(
                "{} is partially FIPS-compliant; not FIPS: {}",
                who(),
                a.exceptions().join(", ")
            )));
        }
        if self.rules.binding == Binding::Warn
            && let Some(d) = unbound(c, a)
        {
            j.notes.push(format!(
                "{kind} {:?} is verified as {d} but referenced by tag, which a node resolves \
                 again: pin it as {}@{d}",
                c.name,
                c.image,
                kind = j.finding.kind,
            ));
        }
        for m in a.modules() {
            let status = m.status_on(self.today);
            if self.action(status) == Some(CertificateAction::Warn) {
                j.certificates.push((status, m.label(), comp.id.clone()));
            }
        }
    }

    /// What a module with this certificate status does: `None` for a revoked one, which is a
    /// violation whatever is configured.
    fn action(&self, status: CertificateStatus) -> Option<CertificateAction> {
        match status {
            CertificateStatus::Active => Some(CertificateAction::Ignore),
            CertificateStatus::Revoked => None,
            CertificateStatus::Historical => Some(self.rules.historical),
            CertificateStatus::InProcess => Some(self.rules.in_process),
        }
    }

    /// Why `cl` fails `level`, or `None` when it passes.
    fn violation(&self, c: &Container, cl: &Classification, level: Level) -> Option<String> {
        if level == Level::Off {
            return None;
        }
        let a = match cl {
            Classification::Exempt => return None,
            Classification::Invalid(_) => return Some(reason_of(cl)),
            Classification::Assessed(a) => a,
        };
        match a.status() {
            Status::Unknown | Status::None => return Some(reason_of(cl)),
            Status::Partial if level == Level::Strict => {
                return Some(format!(
                    "is only partially FIPS-compliant (not FIPS: {})",
                    a.exceptions().join(", ")
                ));
            }
            Status::Partial | Status::Full => {}
        }
        let rules = self.rules;
        if a.evidence() < rules.minimum_evidence {
            let why = a.problem().map(|p| format!(" ({p})")).unwrap_or_default();
            return Some(format!(
                "is matched by {} only; {} evidence is required{why}",
                a.evidence(),
                rules.minimum_evidence
            ));
        }
        if rules.binding == Binding::Require
            && let Some(d) = unbound(c, a)
        {
            return Some(format!(
                "is verified as {d} but referenced by tag, which a node resolves again: use {}@{d}",
                c.image
            ));
        }
        for m in a.modules() {
            let status = m.status_on(self.today);
            let why = match status {
                CertificateStatus::Active => continue,
                CertificateStatus::Revoked => "revoked",
                CertificateStatus::Historical => "historical",
                CertificateStatus::InProcess => "in process (not validated)",
            };
            if matches!(self.action(status), None | Some(CertificateAction::Deny)) {
                return Some(
                    format!("relies on certificate {} which is {why}", m.label()).to_lowercase(),
                );
            }
        }
        None
    }
}

/// The digest the evidence rests on, when the reference does not carry it: a tag that every
/// node resolves again, and may find moved.
fn unbound<'a>(c: &Container, a: &'a Assessment) -> Option<&'a str> {
    a.digest().filter(|_| !c.image.contains('@'))
}
