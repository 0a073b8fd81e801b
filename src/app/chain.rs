//! The chain of sources an image is assessed from: catalogue pins, signed registry attestations
//! and catalogue repository patterns, in the configured order. The registry is a port
//! ([`RegistryEvidence`]); what it returns is already verified.

use std::sync::Arc;

use crate::app::ports::{AssessmentSource, BoxFuture, Found, LookupContext, RegistryEvidence};
use crate::attest::Attested;
use crate::catalog::Catalog;
use crate::domain::assessment::{Assessment, SourceKind, StatementPool};
use crate::domain::fips::Evidence;
use crate::domain::image::ImageRef;

/// The configured chain of sources over one catalogue.
pub struct SourceChain {
    catalog: Arc<Catalog>,
    order: Vec<SourceKind>,
    minimum: Evidence,
    registry: Option<Arc<dyn RegistryEvidence>>,
    pool: StatementPool,
}

impl SourceChain {
    /// The chain `order` over `catalog`, with the registry when attestations are enabled.
    pub fn new(
        catalog: Arc<Catalog>,
        order: Vec<SourceKind>,
        minimum: Evidence,
        registry: Option<Arc<dyn RegistryEvidence>>,
    ) -> Self {
        Self {
            catalog,
            order,
            minimum,
            registry,
            pool: StatementPool::default(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn assess_image(&self, image: &ImageRef, ctx: &LookupContext) -> Assessment {
        let mut digest: Option<String> = image.digest().map(|d| d.to_string());
        let mut problem: Option<String> = None;
        let mut error: Option<String> = None;
        for &source in &self.order {
            match source {
                SourceKind::Pins | SourceKind::Patterns => {
                    if let Some(r) = self.local(source, image, digest.as_deref()) {
                        return self.finish(r, problem, error);
                    }
                }
                SourceKind::Attestations => {
                    let Some(reg) = &self.registry else { continue };
                    if let Some(why) = reg.declines(image) {
                        problem = Some(why);
                        continue;
                    }
                    let resolved = match reg.resolve(image, ctx).await {
                        Ok(Some(r)) => r,
                        Ok(None) => {
                            problem = Some(format!("image {image} not found in its registry"));
                            continue;
                        }
                        Err(e) => {
                            error = Some(e.to_string());
                            continue;
                        }
                    };
                    digest.get_or_insert_with(|| resolved.digest.clone());
                    let assess = |a| {
                        let verified = self.attested_result(image, a);
                        verified.with_digest(&resolved.digest)
                    };
                    match reg.attestations(image, &resolved, ctx, &assess).await {
                        Ok(Found::Attested(r)) => return r,
                        Ok(Found::Rejected(reason)) => problem = Some(reason),
                        Ok(Found::Missing) => {
                            problem = Some(format!("no FIPS attestation for {}", resolved.digest))
                        }
                        Err(e) => error = Some(e.to_string()),
                    }
                }
            }
        }
        self.finish(Assessment::not_listed(), problem, error)
    }

    /// What a catalogue source (pins, patterns) says about the image, when it matches.
    fn local(
        &self,
        source: SourceKind,
        image: &ImageRef,
        digest: Option<&str>,
    ) -> Option<Assessment> {
        match source {
            SourceKind::Pins => self.catalog.pinned(digest?),
            SourceKind::Patterns => {
                Some(self.catalog.lookup_patterns(image)).filter(|r| r.component().is_some())
            }
            SourceKind::Attestations => None,
        }
    }

    /// A registry error only matters when the evidence found without it is not enough.
    fn finish(&self, r: Assessment, problem: Option<String>, error: Option<String>) -> Assessment {
        match (error, problem) {
            (Some(e), _) if r.evidence() < self.minimum => {
                Assessment::unknown(format!("attestation lookup failed: {e}"))
            }
            (Some(e), _) => r.with_problem(format!("attestation lookup failed: {e}")),
            (None, Some(p)) => r.with_problem(p),
            (None, None) => r,
        }
    }

    fn attested_result(&self, image: &ImageRef, a: Attested) -> Assessment {
        let component = match &a.component {
            Some(id) => self.catalog.get(id).cloned(),
            None => self.catalog.lookup_patterns(image).component_arc(),
        };
        let Some(c) = component else {
            return Assessment::not_listed().with_problem(match a.component {
                Some(id) => format!("attested component {id:?} is not in the catalogue"),
                None => format!(
                    "attested by {} but no catalogue component matches the image",
                    a.predicate_type
                ),
            });
        };
        // A predicate that names no component is checked against the catalogue's.
        if let Some(refused) = a.refused_by_scope(image.name(), Some(&c.id)) {
            return Assessment::not_listed().with_problem(refused.to_string());
        }
        // The catalogue's certificate table overrides what the attestation says of a known
        // certificate (a status gone stale since it was signed).
        let table = self.catalog.certificates();
        let modules = (a.modules.into_iter())
            .map(|m| m.certified_by(table))
            .collect();
        Assessment::attested(c, modules, a.exceptions).pooled(&self.pool)
    }
}

impl AssessmentSource for SourceChain {
    /// Decided without IO when a catalogue source answers before the registry is asked, or
    /// when there is no registry.
    fn assess_now(&self, image: &ImageRef) -> Option<Assessment> {
        let digest = image.digest().map(|d| d.as_str());
        for &source in &self.order {
            if source == SourceKind::Attestations && self.registry.is_some() {
                return None;
            }
            if let Some(r) = self.local(source, image, digest) {
                return Some(r);
            }
        }
        Some(Assessment::not_listed())
    }

    fn assess<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
    ) -> BoxFuture<'a, Assessment> {
        Box::pin(self.assess_image(image, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SourceKind::{Attestations, Patterns, Pins};

    const PINNED: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    fn catalog() -> Arc<Catalog> {
        let user = crate::config::yaml::from_str(
            &format!(
                "components: [{{id: proxy, name: Proxy, category: auxiliary, status: full, digests: [\"{PINNED}\"]}}]"
            ),
            "user.yaml",
        )
        .unwrap();
        let default =
            crate::config::yaml::from_str(crate::catalog::DEFAULT_CATALOG, "default").unwrap();
        Arc::new(Catalog::build(vec![("default".into(), default), ("user".into(), user)]).unwrap())
    }

    /// A registry that must never be asked: `assess_now` does not need it, and a declined
    /// one is not contacted.
    struct NeverAsked {
        declined: bool,
    }

    impl RegistryEvidence for NeverAsked {
        fn declines(&self, image: &ImageRef) -> Option<String> {
            (self.declined).then(|| format!("{} is not allowed", image.registry()))
        }

        fn resolve<'a>(
            &'a self,
            _: &'a ImageRef,
            _: &'a LookupContext,
        ) -> BoxFuture<'a, Result<Option<crate::app::ports::Resolved>, Arc<str>>> {
            unreachable!("the registry was asked")
        }

        fn attestations<'a>(
            &'a self,
            _: &'a ImageRef,
            _: &'a crate::app::ports::Resolved,
            _: &'a LookupContext,
            _: &'a (dyn Fn(Attested) -> Assessment + Send + Sync),
        ) -> BoxFuture<'a, Result<Found, Arc<str>>> {
            unreachable!("the registry was asked")
        }
    }

    /// A declined registry is no evidence and no failure: the reason is the problem, and the
    /// catalogue still says what it knows.
    #[tokio::test]
    async fn a_declined_registry_is_not_asked_and_says_why() {
        use crate::domain::fips::Status;
        let registry = Some(Arc::new(NeverAsked { declined: true }) as Arc<dyn RegistryEvidence>);
        let chain = SourceChain::new(
            catalog(),
            vec![Attestations, Patterns],
            Evidence::Attestation,
            registry,
        );
        let ctx = LookupContext::default();
        let r = chain
            .assess(&ImageRef::parse("r.io/app:v1").unwrap(), &ctx)
            .await;
        assert_eq!((r.status(), r.evidence()), (Status::None, Evidence::None));
        assert_eq!(r.problem(), Some("r.io is not allowed"));
        let fips = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
        let r = chain.assess(&ImageRef::parse(fips).unwrap(), &ctx).await;
        assert_eq!(r.evidence(), Evidence::Repository);
        assert_eq!(r.problem(), Some("us-docker.pkg.dev is not allowed"));
    }

    /// What is decided without IO: the catalogue sources before the registry, everything
    /// without a registry; `None` sends the image to the registry.
    #[test]
    fn assess_now_stops_where_the_registry_would_be_asked() {
        let fips = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";
        let pinned = format!("nginx@{PINNED}");
        let cases: &[(&[SourceKind], bool, &str, Option<Evidence>)] = &[
            (
                &[Pins, Attestations, Patterns],
                false,
                fips,
                Some(Evidence::Repository),
            ),
            (
                &[Pins, Attestations, Patterns],
                false,
                "nginx",
                Some(Evidence::None),
            ),
            (
                &[Pins, Attestations, Patterns],
                true,
                &pinned,
                Some(Evidence::Digest),
            ),
            (&[Pins, Attestations, Patterns], true, fips, None),
            (&[Pins, Attestations, Patterns], true, "nginx", None),
            (
                &[Patterns, Attestations],
                true,
                fips,
                Some(Evidence::Repository),
            ),
            (&[Patterns, Attestations], true, "nginx", None),
            (&[Attestations, Pins], true, &pinned, None),
            (
                &[Attestations, Pins],
                false,
                &pinned,
                Some(Evidence::Digest),
            ),
            (&[Patterns], true, "nginx", Some(Evidence::None)),
        ];
        for &(order, with_registry, image, want) in cases {
            let registry = with_registry
                .then(|| Arc::new(NeverAsked { declined: false }) as Arc<dyn RegistryEvidence>);
            let chain = SourceChain::new(catalog(), order.to_vec(), Evidence::None, registry);
            let got = chain
                .assess_now(&ImageRef::parse(image).unwrap())
                .map(|r| r.evidence());
            assert_eq!(got, want, "{order:?} registry={with_registry} {image}");
        }
    }
}
