//! The attestation source chain: catalogue pins, signed registry attestations and catalogue
//! repository patterns, in the configured order, with registry look-ups cached (moka) by
//! digest and concurrent look-ups of one key coalesced into one fetch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::attest::{self, Attested, PublicKey};
use crate::catalog::Catalog;
use crate::domain::assessment::{
    AttestationPool, AttestationResult, AttestationSource, BoxFuture, Evidence, LookupContext,
};
use crate::domain::image::ImageRef;
use crate::infra::registry::{Credentials, Registry, Resolved, auth_for};
use crate::telemetry::metrics::Metrics;

/// One link of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Digests pinned in the catalogue.
    Pins,
    /// Signed attestations in the image's registry.
    Attestations,
    /// Catalogue repository patterns.
    Patterns,
}

/// Reads image pull secrets (`kubernetes.io/dockerconfigjson`) of a namespace.
pub trait PullSecrets: Send + Sync {
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<Credentials, String>>;
}

/// Cache sizes and lifetimes.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    pub max_entries: u64,
    pub result_ttl: Duration,
    pub resolution_ttl: Duration,
    pub negative_ttl: Duration,
    pub error_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            result_ttl: Duration::from_secs(600),
            resolution_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(30),
            error_ttl: Duration::from_secs(5),
        }
    }
}

/// What the registry says about one digest.
#[derive(Clone, Debug)]
enum Found {
    /// Verified, as the result admissions get (converted once, when cached).
    Attested(AttestationResult),
    /// Envelopes were there, none acceptable: the first reason.
    Rejected(String),
    Missing,
}

/// A cached answer; `Err` is a look-up error (kept briefly, never a verdict).
type Cached<T> = Result<T, Arc<str>>;

struct Ttl {
    positive: Duration,
    negative: Duration,
    error: Duration,
}

impl Ttl {
    fn of(&self, kind: Option<bool>) -> Option<Duration> {
        Some(match kind {
            Some(true) => self.positive,
            Some(false) => self.negative,
            None => self.error,
        })
    }
}

impl moka::Expiry<String, Cached<Found>> for Ttl {
    fn expire_after_create(
        &self,
        _: &String,
        v: &Cached<Found>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        self.of(match v {
            Ok(Found::Attested(_)) => Some(true),
            Ok(_) => Some(false),
            Err(_) => None,
        })
    }
}

impl moka::Expiry<String, Cached<Option<Resolved>>> for Ttl {
    fn expire_after_create(
        &self,
        _: &String,
        v: &Cached<Option<Resolved>>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        self.of(match v {
            Ok(Some(_)) => Some(true),
            Ok(None) => Some(false),
            Err(_) => None,
        })
    }
}

/// Registry attestations with their caches.
pub struct RegistryAttestations {
    registry: Registry,
    keys: Vec<PublicKey>,
    accepted: Vec<String>,
    mounted: Credentials,
    pull_secrets: Option<Arc<dyn PullSecrets>>,
    resolutions: moka::future::Cache<String, Cached<Option<Resolved>>>,
    results: moka::future::Cache<String, Cached<Found>>,
    metrics: Metrics,
}

impl RegistryAttestations {
    pub fn new(
        registry: Registry,
        keys: Vec<PublicKey>,
        accepted: Vec<String>,
        mounted: Credentials,
        pull_secrets: Option<Arc<dyn PullSecrets>>,
        cache: &CacheSettings,
        metrics: Metrics,
    ) -> Self {
        let ttl = |positive| Ttl {
            positive,
            negative: cache.negative_ttl,
            error: cache.error_ttl,
        };
        Self {
            registry,
            keys,
            accepted,
            mounted,
            pull_secrets,
            resolutions: moka::future::Cache::builder()
                .max_capacity(cache.max_entries)
                .expire_after(ttl(cache.resolution_ttl))
                .build(),
            results: moka::future::Cache::builder()
                .max_capacity(cache.max_entries)
                .expire_after(ttl(cache.result_ttl))
                .build(),
            metrics,
        }
    }

    async fn credentials(&self, ctx: &LookupContext) -> Credentials {
        let Some(ps) = &self.pull_secrets else {
            return Credentials::default();
        };
        if ctx.pull_secrets.is_empty() {
            return Credentials::default();
        }
        match ps.credentials(&ctx.namespace, &ctx.pull_secrets).await {
            Ok(c) => c,
            Err(e) => {
                self.metrics.error("pull_secret");
                tracing::warn!(error = %e, namespace = %ctx.namespace, "image pull secrets unreadable; trying without");
                Credentials::default()
            }
        }
    }

    fn count_cache(&self, cache: &'static str, hit: bool) {
        self.metrics
            .cache_requests
            .get_or_create(&crate::telemetry::metrics::CacheLabels {
                cache,
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    /// The digests `image` stands for, resolved once per reference and TTL.
    async fn resolve(&self, image: &ImageRef, ctx: &LookupContext) -> Cached<Option<Resolved>> {
        let key = image.to_string();
        let entry = self
            .resolutions
            .entry(key)
            .or_insert_with(async {
                let creds = self.credentials(ctx).await;
                let auth = auth_for(image.registry(), &creds, &self.mounted);
                let started = Instant::now();
                let r = self.registry.resolve(image, &auth).await;
                self.record(
                    "resolve",
                    r.as_ref()
                        .map(|o| if o.is_some() { "resolved" } else { "missing" }),
                    started,
                );
                r.map_err(|e| Arc::from(e.to_string()))
            })
            .await;
        self.count_cache("resolution", !entry.is_fresh());
        entry.into_value()
    }

    /// The verdict of the registry's attestations for the image's digests.
    async fn found(
        &self,
        image: &ImageRef,
        r: &Resolved,
        ctx: &LookupContext,
        result_of: impl FnOnce(Attested) -> AttestationResult,
    ) -> Cached<Found> {
        let key = format!("{}@{}", image.name(), r.digest);
        let entry = self
            .results
            .entry(key)
            .or_insert_with(async {
                let creds = self.credentials(ctx).await;
                let auth = auth_for(image.registry(), &creds, &self.mounted);
                let started = Instant::now();
                let mut rejected = None;
                for digest in std::iter::once(&r.digest).chain(&r.platforms) {
                    // Lets the faster discovery path win; the winner's envelopes are verified
                    // again below for their statement (a second check, on cache misses only).
                    let verifies = |env: &[u8]| {
                        attest::verify(env, digest, &self.keys, &self.accepted).is_ok()
                    };
                    let envelopes = match self
                        .registry
                        .envelopes(image, digest, &auth, verifies)
                        .await
                    {
                        Ok(e) => e,
                        Err(e) => {
                            self.record("attestations", Err::<&str, _>(&e), started);
                            return Err(Arc::from(e.to_string()));
                        }
                    };
                    for env in envelopes {
                        match attest::verify(&env, digest, &self.keys, &self.accepted) {
                            Ok(a) => {
                                self.record("attestations", Ok::<_, ()>("attested"), started);
                                return Ok(Found::Attested(result_of(a)));
                            }
                            Err(reason) => {
                                rejected.get_or_insert(reason.to_string());
                            }
                        }
                    }
                }
                let outcome = if rejected.is_some() {
                    "rejected"
                } else {
                    "missing"
                };
                self.record("attestations", Ok::<_, ()>(outcome), started);
                Ok(rejected.map_or(Found::Missing, Found::Rejected))
            })
            .await;
        self.count_cache("result", !entry.is_fresh());
        entry.into_value()
    }

    fn record<E>(&self, source: &'static str, outcome: Result<&'static str, E>, started: Instant) {
        self.metrics
            .lookup_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .lookups
            .get_or_create(&crate::telemetry::metrics::LookupLabels {
                source,
                outcome: outcome.unwrap_or("error"),
            })
            .inc();
    }
}

/// The configured chain of sources over one catalogue.
pub struct Resolver {
    catalog: Arc<Catalog>,
    order: Vec<SourceKind>,
    minimum: Evidence,
    registry: Option<RegistryAttestations>,
    pool: AttestationPool,
}

impl Resolver {
    pub fn new(
        catalog: Arc<Catalog>,
        order: Vec<SourceKind>,
        minimum: Evidence,
        registry: Option<RegistryAttestations>,
    ) -> Self {
        Self {
            catalog,
            order,
            minimum,
            registry,
            pool: AttestationPool::default(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Reads pull secrets through `p` (the Kubernetes API in production).
    pub fn with_pull_secrets(mut self, p: Arc<dyn PullSecrets>) -> Self {
        if let Some(r) = &mut self.registry {
            r.pull_secrets = Some(p);
        }
        self
    }

    async fn resolve_image(&self, image: &ImageRef, ctx: &LookupContext) -> AttestationResult {
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
                    let result_of = |a| self.attested_result(image, a);
                    match reg.found(image, &resolved, ctx, result_of).await {
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
        self.finish(AttestationResult::not_listed(), problem, error)
    }

    /// What a catalogue source (pins, patterns) says about the image, when it matches.
    fn local(
        &self,
        source: SourceKind,
        image: &ImageRef,
        digest: Option<&str>,
    ) -> Option<AttestationResult> {
        match source {
            SourceKind::Pins => self.catalog.pinned(digest?),
            SourceKind::Patterns => {
                Some(self.catalog.lookup_patterns(image)).filter(|r| r.component().is_some())
            }
            SourceKind::Attestations => None,
        }
    }

    /// A registry error only matters when the evidence found without it is not enough.
    fn finish(
        &self,
        r: AttestationResult,
        problem: Option<String>,
        error: Option<String>,
    ) -> AttestationResult {
        match (error, problem) {
            (Some(e), _) if r.evidence() < self.minimum => {
                AttestationResult::unknown(format!("attestation lookup failed: {e}"))
            }
            (Some(e), _) => r.with_problem(format!("attestation lookup failed: {e}")),
            (None, Some(p)) => r.with_problem(p),
            (None, None) => r,
        }
    }

    fn attested_result(&self, image: &ImageRef, a: Attested) -> AttestationResult {
        let component = match &a.component {
            Some(id) => self.catalog.get(id).cloned(),
            None => self.catalog.lookup_patterns(image).component_arc(),
        };
        match component {
            Some(c) => AttestationResult::attested(c, a.modules, a.exceptions).pooled(&self.pool),
            None => AttestationResult::not_listed().with_problem(match a.component {
                Some(id) => format!("attested component {id:?} is not in the catalogue"),
                None => format!(
                    "attested by {} but no catalogue component matches the image",
                    a.predicate_type
                ),
            }),
        }
    }
}

impl Resolver {
    /// Builds the chain the configuration asks for. Key files are read now: a bad key stops
    /// start-up.
    pub fn from_config(
        config: &crate::config::Config,
        catalog: Arc<Catalog>,
        metrics: Metrics,
        kube: Option<kube::Client>,
    ) -> Result<Self, String> {
        let a = &config.attestations;
        let registry = if a.enabled {
            let (call_timeout, cache) = a.durations()?;
            let keys = a
                .keys
                .iter()
                .map(|p| {
                    let pem = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    PublicKey::from_pem(&pem).map_err(|e| format!("{}: {e}", p.display()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mounted = match &a.docker_config {
                Some(p) => {
                    let json = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    Credentials::from_docker_config(&json)
                        .map_err(|e| format!("{}: {e}", p.display()))?
                }
                None => Credentials::default(),
            };
            let pull_secrets: Option<Arc<dyn PullSecrets>> = match (a.pull_secrets, kube) {
                (true, Some(client)) => Some(Arc::new(KubePullSecrets { client })),
                (true, None) => {
                    tracing::warn!("attestations.pullSecrets needs a cluster; not reading them");
                    None
                }
                (false, _) => None,
            };
            Some(RegistryAttestations::new(
                Registry::new(&a.insecure_registries, call_timeout),
                keys,
                a.predicate_types.clone(),
                mounted,
                pull_secrets,
                &cache,
                metrics,
            ))
        } else {
            None
        };
        Ok(Self::new(
            catalog,
            config.sources.clone(),
            config.evidence.minimum,
            registry,
        ))
    }
}

impl AttestationSource for Resolver {
    /// Decided without IO when a catalogue source answers before the registry is asked, or
    /// when there is no registry.
    fn attest_now(&self, image: &ImageRef) -> Option<AttestationResult> {
        let digest = image.digest().map(|d| d.as_str());
        for &source in &self.order {
            if source == SourceKind::Attestations && self.registry.is_some() {
                return None;
            }
            if let Some(r) = self.local(source, image, digest) {
                return Some(r);
            }
        }
        Some(AttestationResult::not_listed())
    }

    fn attest<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
    ) -> BoxFuture<'a, AttestationResult> {
        Box::pin(self.resolve_image(image, ctx))
    }
}

/// Pull secrets read through the Kubernetes API (needs `get` on secrets).
pub struct KubePullSecrets {
    pub client: kube::Client,
}

impl PullSecrets for KubePullSecrets {
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<Credentials, String>> {
        Box::pin(async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
                kube::Api::namespaced(self.client.clone(), namespace);
            let mut creds = Credentials::default();
            for name in names {
                let secret = api
                    .get_opt(name)
                    .await
                    .map_err(|e| format!("secret {namespace}/{name}: {e}"))?;
                let Some(secret) = secret else { continue };
                if secret.type_.as_deref() != Some("kubernetes.io/dockerconfigjson") {
                    continue;
                }
                if let Some(data) = secret.data.and_then(|mut d| d.remove(".dockerconfigjson")) {
                    creds.merge(&Credentials::from_docker_config(&data.0)?);
                }
            }
            Ok(creds)
        })
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

    /// What is decided without IO: the catalogue sources before the registry, everything
    /// without a registry; `None` sends the image to the registry.
    #[test]
    fn attest_now_stops_where_the_registry_would_be_asked() {
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
            let registry = with_registry.then(|| {
                RegistryAttestations::new(
                    Registry::new(&[], Duration::from_secs(1)),
                    Vec::new(),
                    Vec::new(),
                    Credentials::default(),
                    None,
                    &CacheSettings::default(),
                    Metrics::new().0,
                )
            });
            let resolver = Resolver::new(catalog(), order.to_vec(), Evidence::None, registry);
            let got = resolver
                .attest_now(&ImageRef::parse(image).unwrap())
                .map(|r| r.evidence());
            assert_eq!(got, want, "{order:?} registry={with_registry} {image}");
        }
    }
}
