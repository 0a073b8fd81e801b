//! The rules the engine applies: defaults, dry-run, the evidence and certificate policy, and
//! exemptions, compiled once (by `config`, or directly by tests and benches).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::assessment::Assessment;
use crate::domain::fips::Evidence;
use crate::domain::image::{DEFAULT_REGISTRY, ImageRef, ReferenceError, is_registry_host};
use crate::domain::pattern::{Pattern, PatternError};
use crate::domain::policy::{Binding, CertificateAction, Levels, LookupFailure, NamespaceFailure};

use super::Exemption;

/// The configuration the engine applies.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Levels of namespaces without fipsgate labels.
    pub defaults: Levels,
    /// Nothing is denied: denials become `[dry-run]` warnings.
    pub dry_run: bool,
    pub minimum_evidence: Evidence,
    /// A reference without the digest its evidence rests on.
    pub binding: Binding,
    pub historical: CertificateAction,
    pub in_process: CertificateAction,
    pub on_lookup_failure: LookupFailure,
    pub on_namespace_failure: NamespaceFailure,
    pub exemptions: Exemptions,
}

impl Default for Rules {
    /// The built-in defaults: the default levels, repository evidence, historical and
    /// in-process certificates warned about, failed look-ups denied, unreadable namespaces strict, no exemptions.
    fn default() -> Self {
        Self {
            defaults: Levels::default(),
            dry_run: false,
            minimum_evidence: Evidence::Repository,
            binding: Binding::default(),
            historical: CertificateAction::default(),
            in_process: CertificateAction::default(),
            on_lookup_failure: LookupFailure::default(),
            on_namespace_failure: NamespaceFailure::default(),
            exemptions: Exemptions::default(),
        }
    }
}

/// One exemption as configured: what it names, why, under which ticket (a plan of action),
/// and the last day it exempts (none: open-ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The last day it exempts; from the next day on it is expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<jiff::civil::Date>,
}

impl Grant {
    /// An open-ended exemption of `name`, without reason or ticket.
    pub fn open(name: &str) -> Self {
        Self {
            name: name.to_string(),
            reason: None,
            ticket: None,
            expires: None,
        }
    }

    /// In force on `today`: open-ended, or `today` is on or before its last day.
    pub fn active_on(&self, today: jiff::civil::Date) -> bool {
        self.expires.is_none_or(|last| today <= last)
    }

    /// `the exemption of namespace "legacy" (POAM-12) expired on 2026-11-01`.
    pub fn expired_note(&self, kind: Exemption) -> String {
        let ticket = (self.ticket.as_ref()).map_or_else(String::new, |t| format!(" ({t})"));
        let day = (self.expires).map_or_else(String::new, |d| format!(" on {d}"));
        format!(
            "the exemption of {} {:?}{ticket} expired{day}",
            kind.as_str(),
            self.name
        )
    }
}

/// Requests and images let through without evaluation (and always recorded), each while its
/// grant is in force.
#[derive(Clone, Debug, Default)]
pub struct Exemptions {
    namespaces: BTreeMap<String, Grant>,
    usernames: BTreeMap<String, Grant>,
    images: Vec<(ImagePattern, Grant)>,
}

impl Exemptions {
    /// Open-ended exemptions of these names and image patterns; a pattern that does not parse
    /// is an error.
    pub fn new(
        namespaces: &[String],
        usernames: &[String],
        images: &[String],
    ) -> Result<Self, PatternError> {
        let open = |v: &[String]| v.iter().map(|n| Grant::open(n)).collect::<Vec<_>>();
        Self::from_grants(open(namespaces), open(usernames), open(images))
    }

    /// Exemptions as configured, with their reasons, tickets and expiry days.
    pub fn from_grants(
        namespaces: Vec<Grant>,
        usernames: Vec<Grant>,
        images: Vec<Grant>,
    ) -> Result<Self, PatternError> {
        let by_name = |v: Vec<Grant>| v.into_iter().map(|g| (g.name.clone(), g)).collect();
        Ok(Self {
            namespaces: by_name(namespaces),
            usernames: by_name(usernames),
            images: images
                .into_iter()
                .map(|g| Ok((ImagePattern::new(&g.name)?, g)))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Every exemption, namespaces, users then images.
    pub fn grants(&self) -> impl Iterator<Item = (Exemption, &Grant)> {
        let tag = |k| move |g| (k, g);
        (self.namespaces.values().map(tag(Exemption::Namespace)))
            .chain(self.usernames.values().map(tag(Exemption::User)))
            .chain(self.images.iter().map(|(_, g)| (Exemption::Image, g)))
    }
}

/// What is known about one container's image when the engine judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classification {
    /// The reference could not be parsed.
    Invalid(ReferenceError),
    /// The image matches an image exemption.
    Exempt,
    /// What the sources found out about the image.
    Assessed(Assessment),
}

/// The first step for one container's image: known already, or to be assessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Triage {
    /// Invalid or exempt: no source needs to be asked.
    Known(Classification),
    /// A valid reference that needs an assessment.
    Assess(ImageRef),
}

impl Rules {
    /// The request-level exemption in force on `today` for this namespace and user, if any.
    pub fn exemption(
        &self,
        namespace: &str,
        username: &str,
        today: jiff::civil::Date,
    ) -> Option<Exemption> {
        let e = &self.exemptions;
        let active = |g: Option<&Grant>| g.is_some_and(|g| g.active_on(today));
        if active(e.namespaces.get(namespace)) {
            Some(Exemption::Namespace)
        } else if active(e.usernames.get(username)) {
            Some(Exemption::User)
        } else {
            None
        }
    }

    /// The exemptions of this namespace and user that have expired by `today`, as notes for
    /// the answer (empty when one is still in force: the request is exempt).
    pub fn expired(
        &self,
        namespace: &str,
        username: &str,
        today: jiff::civil::Date,
    ) -> Vec<String> {
        let e = &self.exemptions;
        [
            (Exemption::Namespace, e.namespaces.get(namespace)),
            (Exemption::User, e.usernames.get(username)),
        ]
        .into_iter()
        .filter_map(|(kind, g)| {
            g.filter(|g| !g.active_on(today))
                .map(|g| g.expired_note(kind))
        })
        .collect()
    }

    /// True when an image exemption in force on `today` matches the image.
    pub fn image_exempt(&self, image: &ImageRef, today: jiff::civil::Date) -> bool {
        (self.exemptions.images.iter()).any(|(p, g)| g.active_on(today) && p.matches(image))
    }

    /// The note of an expired image exemption matching `image`, when none in force does.
    pub fn expired_image(&self, image: &str, today: jiff::civil::Date) -> Option<String> {
        let r = ImageRef::parse(image).ok()?;
        if self.image_exempt(&r, today) {
            return None;
        }
        (self.exemptions.images.iter())
            .find(|(p, g)| !g.active_on(today) && p.matches(&r))
            .map(|(_, g)| g.expired_note(Exemption::Image))
    }

    /// Parses a container's image and applies the image exemptions in force on `today`: the
    /// one first step of admission, `check` and `audit` alike.
    pub fn triage(&self, image: &str, today: jiff::civil::Date) -> Triage {
        match ImageRef::parse(image) {
            Err(e) => Triage::Known(Classification::Invalid(e)),
            Ok(r) if self.image_exempt(&r, today) => Triage::Known(Classification::Exempt),
            Ok(r) => Triage::Assess(r),
        }
    }
}

/// An image exemption: a repository pattern, optionally with a tag glob or a digest. A tag
/// glob matches only references without a digest; a digest matches that digest.
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
        let name = if is_registry_host(first) {
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
        // A reference with a digest runs that digest whatever its tag says: a tag-scoped
        // exemption does not reach it.
        if self.tag.is_some() && self.digest.is_none() && image.digest().is_some() {
            return false;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triage_table() {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = |c: &str| format!("sha256:{}", c.repeat(64));
        let pinned = format!("nginx@{}", d("a"));
        let rules = Rules {
            exemptions: Exemptions::new(
                &[],
                &[],
                &strings(&["busybox:1.*", "registry.io/tools/**", &pinned]),
            )
            .unwrap(),
            ..Rules::default()
        };
        let tagged_digest = format!("busybox:1.36@{}", d("b"));
        let tools_digest = format!("registry.io/tools/a@{}", d("c"));
        let nginx_pinned = format!("nginx:1.27@{}", d("a"));
        let nginx_other = format!("nginx@{}", d("b"));
        let cases: &[(&str, &str)] = &[
            ("busybox:1.36", "exempt"),
            ("docker.io/library/busybox:1.2", "exempt"),
            ("busybox:1", "assess"),
            ("busybox:2", "assess"),
            ("busybox", "assess"),
            ("registry.io/tools/a/b:1", "exempt"),
            ("registry.io/other:1", "assess"),
            ("nginx@sha256:aa", "invalid"),
            // The digest is what runs: a tag-scoped exemption does not reach it.
            (&tagged_digest, "assess"),
            (&tools_digest, "exempt"),
            (&nginx_pinned, "exempt"),
            (&nginx_other, "assess"),
            ("Not/Valid", "invalid"),
            ("", "invalid"),
        ];
        for (image, want) in cases {
            let got = match rules.triage(image, jiff::civil::date(2026, 11, 26)) {
                Triage::Known(Classification::Exempt) => "exempt",
                Triage::Known(Classification::Invalid(_)) => "invalid",
                Triage::Known(Classification::Assessed(_)) => "assessed",
                Triage::Assess(_) => "assess",
            };
            assert_eq!(got, *want, "{image}");
        }
    }
}
