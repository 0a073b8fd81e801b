//! Registry attestations behind the app's [`RegistryEvidence`] port: one cached entry per
//! image reference ([`ImageCache`]: the digest and its verified verdict, each with its own
//! lifetime), concurrent look-ups of one reference coalesced into one fetch, errors kept
//! briefly and never as verdicts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::app::ports::{BoxFuture, Found, Lookup, LookupContext, RegistryEvidence, Resolved};
use crate::app::warm::WarmTarget;
use crate::attest::{self, Attested, PublicKey};
use crate::config::CacheSettings;
use crate::domain::assessment::Assessment;
use crate::domain::fips::Status;
use crate::domain::image::ImageRef;
use crate::telemetry::metrics::Metrics;

use super::image_cache::{Cached, CompactDigest, ImageCache, Lifetimes, State, Verdict};
use super::{Credentials, Discovered, PullSecrets, Registry, RegistryAuth, auth_for};

/// A look-up failure as it is kept (briefly) and reported.
type Failed = Arc<str>;

/// Registry attestations with their cache.
pub struct RegistryAttestations {
    registry: Registry,
    keys: Vec<PublicKey>,
    accepted: Vec<String>,
    mounted: Credentials,
    pull_secrets: Option<Arc<dyn PullSecrets>>,
    cache: ImageCache,
    /// The references asked for since start with how often, for the next replica to warm
    /// (bounded).
    looked_up: std::sync::Mutex<HashMap<String, WarmTarget>>,
    metrics: Metrics,
}

/// At most this many looked-up references are remembered for the next replica.
const MAX_REMEMBERED: usize = 10_000;

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
        let lifetimes = Lifetimes {
            resolution: cache.resolution_ttl,
            attested: cache.result_ttl,
            negative: cache.negative_ttl,
            error: cache.error_ttl,
        };
        Self {
            registry,
            keys,
            accepted,
            mounted,
            pull_secrets,
            cache: ImageCache::new(cache.max_entries, lifetimes),
            looked_up: Default::default(),
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

    /// What the registry says about `image`: cached, or looked up once for all concurrent
    /// callers. A tag whose resolution is due is resolved again, and keeps its verdict when
    /// its digest did not move.
    async fn lookup_cached(
        &self,
        image: &ImageRef,
        ctx: &LookupContext,
        assess: &(dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> Lookup {
        let key = match image.digest() {
            Some(d) => format!("{}@{d}", image.name()),
            None => image.to_string(),
        };
        self.remember(&key, ctx);
        let loading = match self.cache.get(&key).await {
            Cached::Hit(e) => {
                self.count_cache("resolution", true);
                self.count_cache("result", true);
                return e.answer();
            }
            Cached::Load(l) => l,
        };
        let creds = self.credentials(ctx).await;
        let auth = auth_for(image.registry(), &creds, &self.mounted);
        let digest_ref = image.digest().is_some();
        self.count_cache("resolution", false);
        let resolved = match self.resolve(image, &auth).await {
            Ok(Some(r)) => r,
            Ok(None) => return loading.finish(self.cache.entry(State::NotFound, digest_ref, None)),
            Err(e) => {
                let state = State::Unresolved(e);
                return loading.finish(self.cache.entry(state, digest_ref, None));
            }
        };
        let now = self.cache.now();
        let kept = (loading.previous.as_ref()).and_then(|p| {
            Some((
                p.verdict_for(&resolved.digest, now)?.clone(),
                p.verdict_by(),
            ))
        });
        self.count_cache("result", kept.is_some());
        let (verdict, kept_until) = match kept {
            Some((v, until)) => (v, Some(until)),
            None => (
                Verdict::of(self.found(image, &resolved, &auth, assess).await),
                None,
            ),
        };
        let state = State::Resolved {
            digest: CompactDigest::new(&resolved.digest),
            verdict,
        };
        loading.finish(self.cache.entry(state, digest_ref, kept_until))
    }

    fn remember(&self, reference: &str, ctx: &LookupContext) {
        let mut seen = self.looked_up.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = seen.get_mut(reference) {
            t.uses += 1;
        } else if seen.len() < MAX_REMEMBERED {
            seen.insert(reference.to_string(), WarmTarget::new(reference, ctx, 1));
        }
    }

    async fn resolve(
        &self,
        image: &ImageRef,
        auth: &RegistryAuth,
    ) -> Result<Option<Resolved>, Failed> {
        let started = Instant::now();
        let r = self.registry.resolve(image, auth).await;
        let outcome = r
            .as_ref()
            .map(|o| if o.is_some() { "resolved" } else { "missing" });
        self.record("resolve", outcome, started);
        r.map_err(|e| Arc::from(e.to_string()))
    }

    /// The verdict of the registry's attestations for what the reference stands for, kept as
    /// the assessment `assess` makes of a verified statement.
    async fn found(
        &self,
        image: &ImageRef,
        r: &Resolved,
        auth: &RegistryAuth,
        assess: &(dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> Result<Found, Failed> {
        let started = Instant::now();
        let found = self.verdict(image, r, auth, assess).await;
        let outcome = match &found {
            Ok(Found::Attested(_)) => Ok("attested"),
            Ok(Found::Rejected(_)) => Ok("rejected"),
            Ok(Found::Missing) => Ok("missing"),
            Err(_) => Err(()),
        };
        self.record("attestations", outcome, started);
        found
    }

    /// The attestation of one digest, verified.
    async fn discover(
        &self,
        image: &ImageRef,
        digest: &str,
        auth: &RegistryAuth,
    ) -> Result<Discovered, Failed> {
        let verify = |env: &[u8]| {
            attest::verify(env, digest, &self.keys, &self.accepted)?.within_scope(image.name())
        };
        self.registry
            .discover(image, digest, auth, verify)
            .await
            .map_err(|e| Arc::from(e.to_string()))
    }

    /// An attestation of the digest itself (image or index) suffices; an index without one
    /// needs a verified attestation of every runnable platform, since a node may run any of
    /// them.
    async fn verdict(
        &self,
        image: &ImageRef,
        r: &Resolved,
        auth: &RegistryAuth,
        assess: &(dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> Result<Found, Failed> {
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

    fn lookup<'a>(
        &'a self,
        image: &'a ImageRef,
        ctx: &'a LookupContext,
        assess: &'a (dyn Fn(Attested) -> Assessment + Send + Sync),
    ) -> BoxFuture<'a, Lookup> {
        Box::pin(self.lookup_cached(image, ctx, assess))
    }

    fn looked_up(&self) -> Vec<WarmTarget> {
        let seen = self.looked_up.lock().unwrap_or_else(|e| e.into_inner());
        seen.values().cloned().collect()
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
