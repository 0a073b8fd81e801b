//! Registry attestations behind the app's [`RegistryEvidence`] port: tag resolutions and
//! verified verdicts cached (moka) with their own lifetimes, concurrent look-ups of one key
//! coalesced into one fetch, errors kept briefly and never as verdicts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::ports::{BoxFuture, Found, LookupContext, RegistryEvidence, Resolved};
use crate::attest::{self, Attested, PublicKey};
use crate::config::CacheSettings;
use crate::domain::assessment::Assessment;
use crate::domain::fips::Status;
use crate::domain::image::ImageRef;
use crate::telemetry::metrics::Metrics;

use super::{Credentials, Discovered, PullSecrets, Registry, RegistryAuth, auth_for};

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

    /// Reads pull secrets through `p` (the Kubernetes API in production).
    pub fn with_pull_secrets(mut self, p: Arc<dyn PullSecrets>) -> Self {
        self.pull_secrets = Some(p);
        self
    }

    /// The digests `image` stands for, resolved once per reference and TTL.
    async fn resolve_cached(
        &self,
        image: &ImageRef,
        ctx: &LookupContext,
    ) -> Cached<Option<Resolved>> {
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

    /// The verdict of the registry's attestations for what the reference stands for, kept as
    /// the assessment `assess` makes of a verified statement. An attestation of the digest
    /// itself (image or index) suffices; an index without one needs a verified attestation of
    /// every runnable platform, since a node may run any of them.
    async fn found(
        &self,
        image: &ImageRef,
        r: &Resolved,
        ctx: &LookupContext,
        assess: &(dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> Cached<Found> {
        let key = format!("{}@{}", image.name(), r.digest);
        let entry = self
            .results
            .entry(key)
            .or_insert_with(async {
                let creds = self.credentials(ctx).await;
                let auth = auth_for(image.registry(), &creds, &self.mounted);
                let started = Instant::now();
                let found = self.verdict(image, r, &auth, assess).await;
                let outcome = match &found {
                    Ok(Found::Attested(_)) => Ok("attested"),
                    Ok(Found::Rejected(_)) => Ok("rejected"),
                    Ok(Found::Missing) => Ok("missing"),
                    Err(_) => Err(()),
                };
                self.record("attestations", outcome, started);
                found
            })
            .await;
        self.count_cache("result", !entry.is_fresh());
        entry.into_value()
    }

    /// The attestation of one digest, verified.
    async fn discover(
        &self,
        image: &ImageRef,
        digest: &str,
        auth: &RegistryAuth,
    ) -> Cached<Discovered> {
        let verify = |env: &[u8]| {
            attest::verify(env, digest, &self.keys, &self.accepted)?.within_scope(image.name())
        };
        self.registry
            .discover(image, digest, auth, verify)
            .await
            .map_err(|e| Arc::from(e.to_string()))
    }

    async fn verdict(
        &self,
        image: &ImageRef,
        r: &Resolved,
        auth: &RegistryAuth,
        assess: &(dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> Cached<Found> {
        let discover = |digest| self.discover(image, digest, auth);
        let own = match discover(&r.digest).await? {
            Discovered::Attested(a) => return Ok(Found::Attested(assess(a))),
            Discovered::Rejected(reason) => Found::Rejected(reason),
            Discovered::Missing => Found::Missing,
        };
        if !r.index {
            return Ok(own);
        }
        if r.platforms.is_empty() {
            return Ok(Found::Rejected(format!(
                "index {} lists no runnable platform and has no attestation of its own",
                r.digest
            )));
        }
        let each = futures::future::join_all(r.platforms.iter().map(|p| discover(&p.digest)));
        let mut assessed = Vec::with_capacity(r.platforms.len());
        for (p, found) in r.platforms.iter().zip(each.await) {
            match found? {
                Discovered::Attested(a) => assessed.push(assess(a)),
                Discovered::Rejected(reason) => {
                    return Ok(Found::Rejected(format!(
                        "platform {} ({}): {reason}",
                        p.name, p.digest
                    )));
                }
                Discovered::Missing => {
                    return Ok(Found::Rejected(format!(
                        "platform {} ({}) has no FIPS attestation",
                        p.name, p.digest
                    )));
                }
            }
        }
        Ok(weakest(assessed))
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

impl RegistryEvidence for RegistryAttestations {
    fn declines(&self, image: &ImageRef) -> Option<String> {
        (self.registry.declines(image.registry()))
            .map(|why| format!("no FIPS attestation looked up for {image}: {why}"))
    }

    fn resolve<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
    ) -> BoxFuture<'a, Result<Option<Resolved>, Arc<str>>> {
        Box::pin(self.resolve_cached(image, ctx))
    }

    fn attestations<'a>(
        &'a self,
        image: &'a ImageRef,
        resolved: &'a Resolved,
        ctx: &'a LookupContext,
        assess: &'a (dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> BoxFuture<'a, Result<Found, Arc<str>>> {
        Box::pin(self.found(image, resolved, ctx, assess))
    }
}

/// One assessment for an index whose platforms are each attested: they must name one
/// component, and the index is as compliant as its weakest platform.
fn weakest(assessed: Vec<Assessment>) -> Found {
    let ids: Vec<Option<&str>> = assessed
        .iter()
        .map(|a| a.component().map(|c| c.id.as_str()))
        .collect();
    if ids.windows(2).any(|w| w[0] != w[1]) {
        let names: Vec<&str> = ids.iter().map(|i| i.unwrap_or("none")).collect();
        return Found::Rejected(format!(
            "platforms are attested as different components: {}",
            names.join(", ")
        ));
    }
    let rank = |a: &Assessment| match a.status() {
        Status::Full => 2,
        Status::Partial => 1,
        Status::None | Status::Unknown => 0,
    };
    assessed
        .into_iter()
        .min_by_key(rank)
        .map_or(Found::Missing, Found::Attested)
}
