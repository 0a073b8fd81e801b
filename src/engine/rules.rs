//! The rules the engine applies: defaults, dry-run, the evidence and certificate policy, and
//! exemptions, compiled once (by `config`, or directly by tests and benches).

use std::collections::HashSet;

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

/// Requests and images let through without evaluation (and always recorded).
#[derive(Clone, Debug, Default)]
pub struct Exemptions {
    namespaces: HashSet<String>,
    usernames: HashSet<String>,
    images: Vec<ImagePattern>,
}

impl Exemptions {
    /// Compiles the exemption lists; an image pattern that does not parse is an error.
    pub fn new(
        namespaces: &[String],
        usernames: &[String],
        images: &[String],
    ) -> Result<Self, PatternError> {
        Ok(Self {
            namespaces: namespaces.iter().cloned().collect(),
            usernames: usernames.iter().cloned().collect(),
            images: images
                .iter()
                .map(|p| ImagePattern::new(p))
                .collect::<Result<_, _>>()?,
        })
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
    /// The request-level exemption for this namespace and user, if any.
    pub fn exemption(&self, namespace: &str, username: &str) -> Option<Exemption> {
        if self.exemptions.namespaces.contains(namespace) {
            Some(Exemption::Namespace)
        } else if self.exemptions.usernames.contains(username) {
            Some(Exemption::User)
        } else {
            None
        }
    }

    /// True when the image matches an image exemption.
    pub fn image_exempt(&self, image: &ImageRef) -> bool {
        self.exemptions.images.iter().any(|p| p.matches(image))
    }

    /// Parses a container's image and applies the image exemptions: the one first step of
    /// admission, `check` and `audit` alike.
    pub fn triage(&self, image: &str) -> Triage {
        match ImageRef::parse(image) {
            Err(e) => Triage::Known(Classification::Invalid(e)),
            Ok(r) if self.image_exempt(&r) => Triage::Known(Classification::Exempt),
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
            let got = match rules.triage(image) {
                Triage::Known(Classification::Exempt) => "exempt",
                Triage::Known(Classification::Invalid(_)) => "invalid",
                Triage::Known(Classification::Assessed(_)) => "assessed",
                Triage::Assess(_) => "assess",
            };
            assert_eq!(got, *want, "{image}");
        }
    }
}
