//! The catalogue of FIPS-compliant components: the embedded default, user files that extend or
//! replace it, registry mirrors and digest pins, and the look-up that turns an image reference
//! into an [`Assessment`].

mod diff;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::pattern::Components;
pub use crate::domain::pattern::{Pattern, PatternError};
pub use diff::{CatalogDiff, CertificateChange, ComponentChange, ImageChange, diff};

use crate::domain::assessment::Assessment;
pub use crate::domain::fips::{
    Category, Certificate, CertificateStatus, Component, CryptoModule, Evidence, Status,
};
use crate::domain::image::{Digest, ImageRef};

/// The embedded default catalogue (from the FIPS-compliant components document).
pub const DEFAULT_CATALOG: &str = include_str!("default.yaml");

/// A registry mirror: images under `mirror` match like images under `original`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mirror {
    pub original: String,
    pub mirror: String,
}

/// How an image's repository name matched the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternMatch {
    pub component: Arc<Component>,
    /// The full pattern (under its registry root) that matched.
    pub pattern: String,
    /// The mirror the name was read through, when it was.
    pub mirror: Option<Mirror>,
}

/// A winning pattern, the index of its component, and the mirror (`(mirror, original)`) the
/// name went through.
type Found<'a> = (&'a Pattern, usize, Option<(&'a str, &'a str)>);

/// The shape of a catalogue file (the embedded default and user files alike).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogFile {
    /// Registry roots that relative image patterns are placed under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
    /// CMVP certificates, keyed by number; one with an existing number replaces it. Module
    /// statuses (of components and of attestations) are taken from here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// Components to add; one with an existing id replaces it.
    #[serde(default)]
    pub components: Vec<Component>,
}

/// Why catalogue files could not be merged into one catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

/// The effective catalogue with its compiled matchers.
#[derive(Clone, Debug)]
pub struct Catalog {
    file: CatalogFile,
    components: Vec<Arc<Component>>,
    /// Patterns indexed by their literal last component; the rest by their literal registry,
    /// and the few with neither are tried for every name.
    by_last: HashMap<String, Vec<(Pattern, usize)>>,
    wildcard: HashMap<String, Vec<(Pattern, usize)>>,
    wildcard_anywhere: Vec<(Pattern, usize)>,
    digests: HashMap<String, usize>,
    mirrors: Vec<(String, String)>,
}

impl Catalog {
    /// The embedded default catalogue.
    pub fn embedded() -> Self {
        Self::build(vec![("embedded default".into(), Self::default_file())])
            .expect("the embedded catalogue is valid (tested)")
    }

    /// The embedded default catalogue as a file, to merge user files onto.
    pub fn default_file() -> CatalogFile {
        serde_saphyr::from_str(DEFAULT_CATALOG).expect("the embedded catalogue parses (tested)")
    }

    /// Merges catalogue files (later ids replace earlier ones) and compiles their patterns.
    pub fn build(parts: Vec<(String, CatalogFile)>) -> Result<Self, CatalogError> {
        let mut merged = CatalogFile::default();
        for (origin, part) in parts {
            let invalid = |reason: String| CatalogError::Invalid {
                origin: origin.clone(),
                reason,
            };
            for r in &part.registries {
                validate_root(r).map_err(invalid)?;
                if !merged.registries.contains(r) {
                    merged.registries.push(r.clone());
                }
            }
            for m in &part.mirrors {
                validate_root(&m.original).map_err(invalid)?;
                validate_root(&m.mirror).map_err(invalid)?;
                merged.mirrors.push(m.clone());
            }
            for c in part.certificates {
                validate_certificate(&c).map_err(invalid)?;
                match merged
                    .certificates
                    .iter_mut()
                    .find(|e| e.number == c.number)
                {
                    Some(existing) => *existing = c,
                    None => merged.certificates.push(c),
                }
            }
            let mut seen = std::collections::HashSet::new();
            for c in part.components {
                validate_component(&c).map_err(invalid)?;
                if !seen.insert(c.id.clone()) {
                    return Err(invalid(format!("component id {:?} appears twice", c.id)));
                }
                match merged.components.iter_mut().find(|e| e.id == c.id) {
                    Some(existing) => *existing = c,
                    None => merged.components.push(c),
                }
            }
        }
        Self::compile(merged)
    }

    fn compile(file: CatalogFile) -> Result<Self, CatalogError> {
        let invalid = |reason: String| CatalogError::Invalid {
            origin: "catalogue".into(),
            reason,
        };
        let mut by_last: HashMap<String, Vec<(Pattern, usize)>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<(Pattern, usize)>> = HashMap::new();
        let mut wildcard_anywhere = Vec::new();
        let mut digests = HashMap::new();
        for (idx, c) in file.components.iter().enumerate() {
            if c.host_only {
                continue;
            }
            for img in &c.images {
                for full in expand(img, &file.registries) {
                    let p = Pattern::new(&full)
                        .map_err(|e| invalid(format!("component {:?}: {e}", c.id)))?;
                    match (p.last_literal(), p.first_literal()) {
                        (Some(last), _) => {
                            by_last.entry(last.to_string()).or_default().push((p, idx))
                        }
                        (None, Some(registry)) => {
                            let key = registry.to_string();
                            wildcard.entry(key).or_default().push((p, idx))
                        }
                        (None, None) => wildcard_anywhere.push((p, idx)),
                    }
                }
            }
            for d in &c.digests {
                if let Some(prev) = digests.insert(d.clone(), idx) {
                    return Err(invalid(format!(
                        "digest {d} is pinned to both {:?} and {:?}",
                        file.components[prev].id, c.id
                    )));
                }
            }
        }
        let mirrors = file
            .mirrors
            .iter()
            .map(|m| (m.mirror.clone(), m.original.clone()))
            .collect();
        // Every module's certificate facts come from the table.
        let components = (file.components.iter().cloned())
            .map(|mut c| {
                c.modules = (c.modules.into_iter())
                    .map(|m| m.certified_by(&file.certificates))
                    .collect();
                Arc::new(c)
            })
            .collect();
        Ok(Self {
            components,
            file,
            by_last,
            wildcard,
            wildcard_anywhere,
            digests,
            mirrors,
        })
    }

    /// All components, in catalogue order.
    pub fn components(&self) -> &[Arc<Component>] {
        &self.components
    }

    /// The merged catalogue as a file (what `fipsgate catalog -o file` prints).
    pub fn as_file(&self) -> &CatalogFile {
        &self.file
    }

    /// The certificate with this CMVP number (`#` optional).
    pub fn certificate(&self, number: &str) -> Option<&Certificate> {
        let n = number.trim_start_matches('#');
        self.file.certificates.iter().find(|c| c.number == n)
    }

    /// A component's patterns as they are matched: relative ones under every registry root.
    pub fn patterns_of(&self, c: &Component) -> Vec<String> {
        if c.host_only {
            return Vec::new();
        }
        (c.images.iter())
            .flat_map(|i| expand(i, &self.file.registries))
            .collect()
    }

    /// The certificate table.
    pub fn certificates(&self) -> &[Certificate] {
        &self.file.certificates
    }

    /// The component with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Component>> {
        self.components.iter().find(|c| c.id == id)
    }

    /// Resolves an image: a pinned digest first, then repository patterns (through mirrors).
    pub fn lookup(&self, image: &ImageRef) -> Assessment {
        image
            .digest()
            .and_then(|d| self.pinned(d.as_str()))
            .unwrap_or_else(|| self.lookup_patterns(image))
    }

    /// The component a digest is pinned to, verified for that digest.
    pub fn pinned(&self, digest: &str) -> Option<Assessment> {
        let &idx = self.digests.get(digest)?;
        let a = Assessment::matched(self.components[idx].clone(), Evidence::Digest);
        Some(a.with_digest(digest))
    }

    /// Matches the repository name against the patterns, through the mirrors.
    pub fn lookup_patterns(&self, image: &ImageRef) -> Assessment {
        match self.find_pattern(image.name()) {
            Some((_, idx, _)) => {
                Assessment::matched(self.components[idx].clone(), Evidence::Repository)
            }
            None => Assessment::not_listed(),
        }
    }

    /// The pattern [`Self::lookup_patterns`] matches the image by, with its component and the
    /// mirror it went through.
    pub fn pattern_match(&self, image: &ImageRef) -> Option<PatternMatch> {
        let (pattern, idx, mirror) = self.find_pattern(image.name())?;
        Some(PatternMatch {
            component: self.components[idx].clone(),
            pattern: pattern.as_str().to_string(),
            mirror: mirror.map(|(m, o)| Mirror {
                original: o.to_string(),
                mirror: m.to_string(),
            }),
        })
    }

    /// The winning pattern for `name`, directly or through a mirror (`(mirror, original)`).
    fn find_pattern(&self, name: &str) -> Option<Found<'_>> {
        let direct = self.match_name(name).map(|(p, idx)| (p, idx, None));
        direct.or_else(|| {
            self.mirrors.iter().find_map(|(mirror, original)| {
                let rest = name.strip_prefix(mirror.as_str())?.strip_prefix('/')?;
                let (p, idx) = self.match_name(&format!("{original}/{rest}"))?;
                Some((p, idx, Some((mirror.as_str(), original.as_str()))))
            })
        })
    }

    fn match_name(&self, name: &str) -> Option<(&Pattern, usize)> {
        let last = name.rsplit('/').next().unwrap_or(name);
        let registry = name.split('/').next().unwrap_or(name);
        let split = Components::of(name);
        (self.by_last.get(last).into_iter().flatten())
            .chain(self.wildcard.get(registry).into_iter().flatten())
            .chain(&self.wildcard_anywhere)
            .filter(|(p, _)| p.matches_split(&split))
            .max_by(|(a, ai), (b, bi)| a.specificity().cmp(&b.specificity()).then(bi.cmp(ai)))
            .map(|(p, idx)| (p, *idx))
    }
}

/// Places a relative pattern under every registry root; an absolute one stays as it is.
fn expand(pattern: &str, roots: &[String]) -> Vec<String> {
    let first = pattern.split('/').next().unwrap_or_default();
    if crate::domain::image::is_registry_host(first) {
        vec![pattern.to_string()]
    } else {
        roots.iter().map(|r| format!("{r}/{pattern}")).collect()
    }
}

fn validate_root(root: &str) -> Result<(), String> {
    let probe = format!("{root}/probe");
    match ImageRef::parse(&probe) {
        Ok(r) if r.name() == probe => Ok(()),
        Ok(_) => Err(format!(
            "registry root {root:?} must start with a registry host (e.g. registry.example.com/path)"
        )),
        Err(e) => Err(format!("registry root {root:?}: {e}")),
    }
}

fn validate_certificate(c: &Certificate) -> Result<(), String> {
    if c.number.is_empty() || !c.number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "certificate {:?}: the number is CMVP digits (no '#')",
            c.number
        ));
    }
    if !matches!(c.standard.as_str(), "FIPS 140-2" | "FIPS 140-3") {
        return Err(format!(
            "certificate {}: standard must be \"FIPS 140-2\" or \"FIPS 140-3\", not {:?}",
            c.number, c.standard
        ));
    }
    if c.source.trim().is_empty() {
        return Err(format!(
            "certificate {}: say where its facts come from (source)",
            c.number
        ));
    }
    Ok(())
}

fn validate_component(c: &Component) -> Result<(), String> {
    let ctx = |m: String| format!("component {:?}: {m}", c.id);
    if c.id.is_empty() || !c.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ctx("id must be non-empty letters, digits and '-'".into()));
    }
    if c.status == Status::Partial && c.exceptions.is_empty() {
        return Err(ctx("status partial needs the list of exceptions".into()));
    }
    if matches!(c.status, Status::None | Status::Unknown) {
        return Err(ctx("status must be full or partial in a catalogue".into()));
    }
    if c.host_only && (!c.images.is_empty() || !c.digests.is_empty()) {
        return Err(ctx(
            "a hostOnly component cannot have images or digests".into()
        ));
    }
    for d in &c.digests {
        Digest::parse(d).map_err(|e| ctx(e.to_string()))?;
    }
    for img in &c.images {
        Pattern::new(img).map_err(|e| ctx(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn lookup(cat: &Catalog, image: &str) -> (Option<String>, Status, Evidence) {
        let r = cat.lookup(&ImageRef::parse(image).unwrap());
        (
            r.component().map(|c| c.id.clone()),
            r.status(),
            r.evidence(),
        )
    }

    #[test]
    fn embedded_default_matches_the_document() {
        let cat = Catalog::embedded();
        let ids: Vec<_> = cat.components().iter().map(|c| c.id.as_str()).collect();
        for id in [
            "ubuntu-pro",
            "kube-apiserver",
            "kubelet",
            "coredns",
            "ingress-nginx",
            "calico",
            "longhorn-manager",
            "runc",
            "vsphere-csi",
            "aws-ebs-csi-driver",
            "csi-sidecars",
            "management-plane",
        ] {
            assert!(ids.contains(&id), "{id} missing");
        }
        // One ingress-nginx component; no catch-all nginx.
        for gone in [
            "nginx-server",
            "nginx-ingress-controller",
            "ingress-controller",
        ] {
            assert!(!ids.contains(&gone), "{gone}");
        }
        let lh = cat.get("longhorn-manager").unwrap();
        assert_eq!(lh.status, Status::Partial);
        assert_eq!(
            lh.exceptions,
            [
                "openssl",
                "curl",
                "nfs-utils (nfs-client)",
                "bind-tools (bind-utils)"
            ]
        );
        for host in [
            "ubuntu-pro",
            "containerd",
            "kubelet",
            "kubeadm",
            "runc",
            "crictl",
            "ctr",
        ] {
            assert!(cat.get(host).unwrap().host_only, "{host}");
        }
        // The module is stated for the management plane only; the rest say how they are built.
        for c in cat.components() {
            assert!(c.source.is_some(), "{}: no source", c.id);
            if c.id == "management-plane" {
                let m = &c.modules[0];
                assert_eq!(m.certificate.as_deref(), Some("5061"));
                assert_eq!(m.standard, "FIPS 140-3");
                assert_eq!(m.previous_certificates, ["4349"]);
            } else {
                assert!(c.modules.is_empty() && c.crypto.is_some(), "{}", c.id);
            }
        }
        for cert in cat.certificates() {
            assert!(!cert.source.is_empty(), "#{}", cert.number);
        }
    }

    /// Every real path of the vendor's FIPS images, their non-FIPS twins and look-alikes.
    #[test]
    fn matching_table() {
        let cat = Catalog::embedded();
        for (image, id) in real_paths() {
            let (got_id, got_status, _) = lookup(&cat, &image);
            assert_eq!(got_id.as_deref(), id, "{image}");
            let want = if id.is_some() {
                Status::Full
            } else {
                Status::None
            };
            assert!(
                got_status == want || got_status == Status::Partial,
                "{image}"
            );
        }
        let p = "us-docker.pkg.dev/palette-images-fips";
        let (_, status, _) = lookup(
            &cat,
            &format!("{p}/packs/csi-longhorn/1.5.3/longhorn-manager"),
        );
        assert_eq!(status, Status::Partial);
    }

    /// The vendor's real paths, their twins and look-alikes, with the component each is
    /// (none: not FIPS as the document means it).
    fn real_paths() -> Vec<(String, Option<&'static str>)> {
        let table = include_str!("../../tests/fixtures/real-paths.tsv");
        (table.lines())
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (image, id) = l.split_once('\t').expect("image<TAB>component");
                (image.to_string(), (id != "-").then_some(id))
            })
            .collect()
    }

    fn user(yaml_text: &str) -> CatalogFile {
        serde_saphyr::from_str(yaml_text).unwrap()
    }

    #[test]
    fn mirrors_digests_and_overrides() {
        let extra = user(&format!(
            r#"
mirrors:
  - original: us-docker.pkg.dev/palette-images-fips
    mirror: harbor.example.internal/palette-fips
components:
  - id: coredns
    name: CoreDNS (site build)
    category: auxiliary
    images: ["registry.internal/dns/coredns"]
    status: full
  - id: in-house-proxy
    name: In-house proxy
    category: auxiliary
    status: partial
    exceptions: [curl]
    digests: ["{D1}"]
"#
        ));
        let cat = Catalog::build(vec![
            ("default".into(), Catalog::default_file()),
            ("user.yaml".into(), extra),
        ])
        .unwrap();
        let cases: Vec<(String, Option<&str>, Status, Evidence)> = vec![
            (
                "harbor.example.internal/palette-fips/k8s/kube-apiserver:v1".into(),
                Some("kube-apiserver"),
                Status::Full,
                Evidence::Repository,
            ),
            (
                "harbor.example.internal/palette-fips-x/kube-apiserver:v1".into(),
                None,
                Status::None,
                Evidence::None,
            ),
            (
                "harbor.example.internal/kube-apiserver:v1".into(),
                None,
                Status::None,
                Evidence::None,
            ),
            (
                format!("anything.io/x/y@{D1}"),
                Some("in-house-proxy"),
                Status::Partial,
                Evidence::Digest,
            ),
            (
                "registry.internal/dns/coredns:1".into(),
                Some("coredns"),
                Status::Full,
                Evidence::Repository,
            ),
            // overridden: the default patterns for coredns are gone
            (
                "gcr.io/spectro-images-fips/coredns:1".into(),
                None,
                Status::None,
                Evidence::None,
            ),
        ];
        for (image, id, status, ev) in cases {
            assert_eq!(
                lookup(&cat, &image),
                (id.map(String::from), status, ev),
                "{image}"
            );
        }
    }

    #[test]
    fn pattern_match_names_the_pattern_and_the_mirror() {
        let extra = user(
            "mirrors: [{original: us-docker.pkg.dev/palette-images-fips, mirror: harbor.example.internal/fips}]\n",
        );
        let cat = Catalog::build(vec![
            ("default".into(), Catalog::default_file()),
            ("user.yaml".into(), extra),
        ])
        .unwrap();
        let m = |image: &str| cat.pattern_match(&ImageRef::parse(image).unwrap());
        let direct = m("us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1").unwrap();
        assert_eq!(direct.component.id, "kube-apiserver");
        assert_eq!(
            direct.pattern,
            "us-docker.pkg.dev/palette-images-fips/**/kube-apiserver"
        );
        assert_eq!(direct.mirror, None);
        let mirrored = m("harbor.example.internal/fips/k8s/kube-apiserver:v1").unwrap();
        assert_eq!(mirrored.pattern, direct.pattern);
        assert_eq!(
            mirrored.mirror.unwrap().mirror,
            "harbor.example.internal/fips"
        );
        assert_eq!(m("nginx"), None);
    }

    #[test]
    fn replace_default() {
        let cat = Catalog::build(vec![(
            "only.yaml".into(),
            user("components: [{id: x, name: X, category: core, images: [\"r.io/x\"], status: full}]"),
        )])
        .unwrap();
        assert_eq!(cat.components().len(), 1);
        assert_eq!(lookup(&cat, "r.io/x:1").0.as_deref(), Some("x"));
    }

    #[test]
    fn invalid_catalogues_are_refused_whole() {
        let cases = [
            (
                "components: [{id: a, name: A, category: core, status: partial}]",
                "exceptions",
            ),
            (
                "components: [{id: a, name: A, category: core, status: full, digests: [sha256:12]}]",
                "invalid digest",
            ),
            (
                "components: [{id: a, name: A, category: core, status: full, hostOnly: true, images: [a]}]",
                "hostOnly",
            ),
            (
                "components: [{id: a, name: A, category: core, status: none}]",
                "full or partial",
            ),
            (
                "components: [{id: a, name: A, category: core, status: full, images: [\"a//b\"]}]",
                "empty path",
            ),
            ("registries: [nohost]", "registry host"),
            (
                "components: [{id: a, name: A, category: core, status: full}, {id: a, name: B, category: core, status: full}]",
                "twice",
            ),
        ];
        for (text, want) in cases {
            let err = Catalog::build(vec![("u.yaml".into(), user(text))]).unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn certificate_status_follows_the_calendar() {
        let cat = Catalog::embedded();
        let c = cat.certificate("#4349").unwrap();
        assert_eq!(c.standard, "FIPS 140-2");
        let on = |y, m, d| c.status_on(jiff::civil::date(y, m, d));
        assert_eq!(on(2026, 9, 20), CertificateStatus::Active);
        assert_eq!(on(2026, 9, 21), CertificateStatus::Historical);
        let current = cat.certificate("5061").unwrap();
        assert_eq!(current.standard, "FIPS 140-3");
        let today = jiff::civil::date(2026, 11, 28);
        assert_eq!(current.status_on(today), CertificateStatus::Active);
        // A module's facts come from the table, whatever the entry (or an attestation) says.
        let m = &cat.get("management-plane").unwrap().modules[0];
        assert_eq!(m.status_on(today), CertificateStatus::Active);
        let stale = CryptoModule {
            certificate_status: CertificateStatus::InProcess,
            standard: "FIPS 140-2".into(),
            ..m.clone()
        };
        let fresh = stale.certified_by(cat.certificates());
        assert_eq!(fresh.certificate_status, CertificateStatus::Active);
        assert_eq!(fresh.standard, "FIPS 140-3");
    }

    #[test]
    fn user_certificates_extend_and_override_the_table() {
        let extra = user(
            "certificates:\n  - {number: \"5061\", module: M, standard: FIPS 140-3, status: revoked, source: site}\n  - {number: \"9999\", module: N, standard: FIPS 140-3, status: active, source: site}\n",
        );
        let cat = Catalog::build(vec![
            ("default".into(), Catalog::default_file()),
            ("user.yaml".into(), extra),
        ])
        .unwrap();
        assert_eq!(cat.certificate("9999").unwrap().module, "N");
        let m = &cat.get("management-plane").unwrap().modules[0];
        assert_eq!(m.certificate_status, CertificateStatus::Revoked);
        for (text, want) in [
            (
                "certificates: [{number: \"#1\", module: M, standard: FIPS 140-3, status: active, source: s}]",
                "CMVP digits",
            ),
            (
                "certificates: [{number: \"1\", module: M, standard: FIPS 140-1, status: active, source: s}]",
                "standard",
            ),
            (
                "certificates: [{number: \"1\", module: M, standard: FIPS 140-3, status: active, source: \" \"}]",
                "source",
            ),
        ] {
            let err = Catalog::build(vec![("u.yaml".into(), user(text))]).unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
    }
}
