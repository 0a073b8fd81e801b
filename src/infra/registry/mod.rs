//! OCI registries over HTTP ([`http`]: bounded reads, token auth): tag → digest resolution,
//! platform digests of multi-arch indexes, and attestation discovery (OCI 1.1 referrers and
//! cosign's `sha256-<hex>.att` tag) that returns verified statements. [`attestations`] caches
//! it all behind the app's port; [`credentials`] says who fipsgate is to each registry.

mod attestations;
mod credentials;
mod http;
mod image_cache;
mod push;

use std::time::Duration;

use serde::Deserialize;

use crate::app::ports::{Platform, Resolved};
use crate::attest::{Attested, DSSE_MEDIA_TYPE, Rejection};
use crate::config::AllowedRegistries;
use crate::domain::image::{Digest, ImageRef};

pub use attestations::RegistryAttestations;
pub use credentials::{Credentials, PullSecrets, RegistryAuth, auth_for};
use http::{FetchError, Http, MAX_MANIFEST_BYTES, MAX_REFERRERS_BYTES, Repo, Streaming};
pub use push::{Descriptor, ReferrersVia, Stored};

/// Manifests fipsgate reads: images and indexes, OCI and Docker.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// At most this many platform manifests of an index are considered.
const MAX_PLATFORMS: usize = 16;
/// Attestation layers larger than this are not read.
const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// At most this many attestation manifests are read per digest.
const MAX_ATTESTATIONS: usize = 16;
/// At most this many envelopes are read from one attestation manifest.
const MAX_ENVELOPES_PER_MANIFEST: usize = 8;

/// A registry call that failed: not a verdict, reported and handled by the failure behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry {registry}: {message}")]
pub struct RegistryError {
    pub registry: String,
    pub message: String,
}

/// Why a blob's bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("blob {digest} does not match its digest: its bytes hash to {actual}")]
    Mismatch { digest: String, actual: String },
    #[error("blob {digest} is longer than the {declared} bytes its descriptor declares")]
    TooLong { digest: String, declared: u64 },
    #[error("blob {digest} ends after {seen} bytes; its descriptor declares {declared}")]
    TooShort {
        digest: String,
        seen: u64,
        declared: u64,
    },
    #[error("blob {0}: unsupported digest algorithm")]
    Algorithm(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A blob's bytes checked as they pass: never more than its descriptor declares, and at the
/// end its length and digest (sha256, sha384 or sha512, with AWS-LC: the FIPS module in a
/// FIPS build).
pub struct DigestCheck {
    digest: String,
    declared: u64,
    seen: u64,
    ctx: Option<aws_lc_rs::digest::Context>,
    /// The verdict, once given: later calls repeat it.
    outcome: Option<Result<(), BlobError>>,
}

impl DigestCheck {
    pub fn new(digest: &str, declared: u64) -> Result<Self, BlobError> {
        use aws_lc_rs::digest::{Context, SHA256, SHA384, SHA512};
        let alg = match digest.split_once(':').map(|(a, _)| a) {
            Some("sha256") => &SHA256,
            Some("sha384") => &SHA384,
            Some("sha512") => &SHA512,
            _ => return Err(BlobError::Algorithm(digest.to_string())),
        };
        Ok(Self {
            digest: digest.to_string(),
            declared,
            seen: 0,
            ctx: Some(Context::new(alg)),
            outcome: None,
        })
    }

    /// Bytes that passed; past the declared length, refused.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        if let Some(o) = &self.outcome {
            return o.clone();
        }
        self.seen += bytes.len() as u64;
        if self.seen > self.declared {
            let e = BlobError::TooLong {
                digest: self.digest.clone(),
                declared: self.declared,
            };
            self.outcome = Some(Err(e.clone()));
            return Err(e);
        }
        if let Some(ctx) = self.ctx.as_mut() {
            ctx.update(bytes);
        }
        Ok(())
    }

    /// The end of the bytes: their length and digest are the descriptor's, or refused.
    pub fn finish(&mut self) -> Result<(), BlobError> {
        if let Some(o) = &self.outcome {
            return o.clone();
        }
        let outcome = match self.ctx.take() {
            _ if self.seen != self.declared => Err(BlobError::TooShort {
                digest: self.digest.clone(),
                seen: self.seen,
                declared: self.declared,
            }),
            Some(ctx) => {
                let (alg, _) = self.digest.split_once(':').unwrap_or_default();
                let actual = format!("{alg}:{}", crate::attest::hex(ctx.finish().as_ref()));
                if actual == self.digest {
                    Ok(())
                } else {
                    Err(BlobError::Mismatch {
                        digest: self.digest.clone(),
                        actual,
                    })
                }
            }
            None => Ok(()),
        };
        self.outcome = Some(outcome.clone());
        outcome
    }
}

/// A blob read from a registry as it arrives, its digest checked on the way ([`DigestCheck`]):
/// the last chunk comes only once the whole blob is known to be the one named.
pub struct BlobStream {
    registry: String,
    stream: Streaming,
    check: DigestCheck,
}

impl BlobStream {
    /// The next checked piece; `None` at the end of a blob that matches its digest.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, BlobError> {
        let next = (self.stream.chunk().await)
            .map_err(|e| Registry::error(&self.registry, e.to_string()))?;
        match next {
            Some(bytes) => {
                self.check.update(&bytes)?;
                Ok(Some(bytes))
            }
            None => self.check.finish().map(|()| None),
        }
    }
}

/// What discovery found for one digest, verified once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovered {
    Attested(Attested),
    /// Envelopes were there, none acceptable: the first reason.
    Rejected(String),
    Missing,
}

impl Discovered {
    /// The newest scan attestation that verifies (the stronger evidence: a scan again says
    /// what the image is now), else the first other envelope that verifies, else the first
    /// reason one was refused.
    fn judge(
        envelopes: &[Vec<u8>],
        verify: &impl Fn(&[u8]) -> Result<Attested, Rejection>,
    ) -> Self {
        let mut rejected = None;
        let mut verified = None;
        let mut scanned: Option<Attested> = None;
        let when = |a: &Attested| a.scan.as_ref().map(|s| s.scanned_at);
        for e in envelopes {
            match verify(e) {
                Ok(a) if a.scan.is_some() => {
                    if scanned.as_ref().is_none_or(|s| when(s) < when(&a)) {
                        scanned = Some(a);
                    }
                }
                Ok(a) => {
                    verified.get_or_insert(a);
                }
                Err(reason) => {
                    rejected.get_or_insert_with(|| reason.to_string());
                }
            }
        }
        match (scanned.or(verified), rejected) {
            (Some(a), _) => Discovered::Attested(a),
            (None, Some(r)) => Discovered::Rejected(r),
            (None, None) => Discovered::Missing,
        }
    }

    /// A verified scan attestation.
    fn is_scan(&self) -> bool {
        matches!(self, Discovered::Attested(a) if a.scan.is_some())
    }
}

/// The OCI registries fipsgate reads, through one HTTP client.
pub struct Registry {
    http: Http,
    allowed: AllowedRegistries,
    call_timeout: Duration,
}

/// An attestation manifest, read for its layers.
#[derive(Deserialize)]
struct ManifestView {
    #[serde(default)]
    layers: Vec<LayerView>,
}

#[derive(Deserialize)]
struct LayerView {
    #[serde(default, rename = "mediaType")]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
}

/// A referrers list (an index), read for the digests it lists.
#[derive(Deserialize)]
struct IndexView {
    #[serde(default)]
    manifests: Vec<ListedView>,
}

#[derive(Deserialize)]
struct ListedView {
    digest: String,
}

/// What a resolved reference is: an image manifest or an index. The fields tell them apart
/// only with the media type, and a document that carries both shapes is refused: a client
/// would not know which it is (CVE-2021-41190).
#[derive(Deserialize)]
struct Document {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<Vec<DescriptorView>>,
    config: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct DescriptorView {
    digest: String,
    #[serde(default)]
    platform: Option<PlatformView>,
}

#[derive(Deserialize)]
struct PlatformView {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

const INDEX_TYPES: &[&str] = &[MANIFEST_TYPES[0], MANIFEST_TYPES[1]];
const IMAGE_TYPES: &[&str] = &[MANIFEST_TYPES[2], MANIFEST_TYPES[3]];

impl Document {
    /// The platforms of an index (`Some`), or `None` for an image manifest.
    fn platforms(self) -> Result<Option<Vec<Platform>>, String> {
        let image_parts = self.config.is_some() || self.layers.is_some();
        let listed = self.manifests.is_some();
        let ambiguous = || Err("has both manifests and config/layers: refused as ambiguous".into());
        let index = match self.media_type.as_deref() {
            _ if listed && image_parts => return ambiguous(),
            Some(t) if INDEX_TYPES.contains(&t) && image_parts => return ambiguous(),
            Some(t) if IMAGE_TYPES.contains(&t) && listed => return ambiguous(),
            Some(t) if INDEX_TYPES.contains(&t) => true,
            Some(t) if IMAGE_TYPES.contains(&t) => false,
            Some(t) => return Err(format!("has media type {t:?}, not an image")),
            None if listed => true,
            None if image_parts => false,
            None => return Err("is neither an image manifest nor an index".into()),
        };
        if !index {
            return Ok(None);
        }
        // Build attestations (buildx) ride in indexes as `unknown/unknown`: not runnable. One
        // past the limit is enough to refuse; no names are built for the rest.
        let runnable: Vec<Platform> = (self.manifests.unwrap_or_default().into_iter())
            .filter(|d| {
                !(d.platform.as_ref())
                    .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
            })
            .take(MAX_PLATFORMS + 1)
            .map(|d| Platform {
                name: match d.platform {
                    Some(p) => match p.variant {
                        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    },
                    None => "unspecified".into(),
                },
                digest: d.digest,
            })
            .collect();
        if runnable.len() > MAX_PLATFORMS {
            return Err(format!(
                "lists more than {MAX_PLATFORMS} platforms; at most {MAX_PLATFORMS} are checked"
            ));
        }
        Ok(Some(runnable))
    }
}

impl Registry {
    /// `insecure` lists `host[:port]`s spoken to over plain HTTP; only `allowed` registries
    /// are contacted.
    pub fn new(
        insecure: &[String],
        allowed: AllowedRegistries,
        call_timeout: Duration,
    ) -> Result<Self, String> {
        Ok(Self {
            http: Http::new(insecure, allowed.clone(), call_timeout)?,
            allowed,
            call_timeout,
        })
    }

    /// Why `registry` is not contacted, when it is not: `attestations.registries` omits it.
    pub fn declines(&self, registry: &str) -> Option<String> {
        (!self.allowed.allows(registry)).then(|| {
            format!(
                "registry {registry} is not in attestations.registries ({})",
                self.allowed
            )
        })
    }

    fn error(registry: &str, message: String) -> RegistryError {
        RegistryError {
            registry: registry.to_string(),
            message,
        }
    }

    /// The repository of `image` as `auth`, when its registry may be contacted.
    fn repo<'a>(
        &self,
        image: &'a ImageRef,
        auth: &'a RegistryAuth,
    ) -> Result<Repo<'a>, RegistryError> {
        match self.declines(image.registry()) {
            Some(why) => Err(Self::error(image.registry(), why)),
            None => Ok(Repo {
                registry: image.registry(),
                repository: image.repository(),
                auth,
                push: false,
            }),
        }
    }

    async fn call<T>(
        &self,
        registry: &str,
        fut: impl std::future::Future<Output = Result<Option<T>, FetchError>>,
    ) -> Result<Option<T>, RegistryError> {
        match tokio::time::timeout(self.call_timeout, fut).await {
            Err(_) => Err(Self::error(
                registry,
                format!("no answer within {} ms", self.call_timeout.as_millis()),
            )),
            Ok(r) => r.map_err(|e| Self::error(registry, e.to_string())),
        }
    }

    /// `GET /v2/<repository>/manifests/<reference>`, within [`MAX_MANIFEST_BYTES`], its digest
    /// checked (`what` names it in errors): the body and that digest.
    async fn manifest(
        &self,
        repo: &Repo<'_>,
        reference: &str,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<Option<(Vec<u8>, String)>, RegistryError> {
        let path = format!("manifests/{reference}");
        let accept = MANIFEST_TYPES.join(", ");
        let get = self
            .http
            .get(repo, &path, Some(&accept), MAX_MANIFEST_BYTES, what);
        let Some(body) = self.call(repo.registry, get).await? else {
            return Ok(None);
        };
        let by_digest = Digest::parse(reference).ok();
        let digest = content_digest(&body, by_digest.as_ref().map(Digest::as_str))
            .map_err(|e| Self::error(repo.registry, format!("{} {e}", what())))?;
        Ok(Some((body.bytes, digest)))
    }

    /// The manifest or index `reference` (a tag or a digest) names in the image's repository,
    /// within [`MAX_MANIFEST_BYTES`] and checked against its digest: the body and that digest.
    pub async fn document(
        &self,
        image: &ImageRef,
        auth: &RegistryAuth,
        reference: &str,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let repo = self.repo(image, auth)?;
        let what = || format!("manifest {}:{reference}", image.name());
        match self.manifest(&repo, reference, &what).await? {
            Some(found) => Ok(found),
            None => Err(Self::error(
                image.registry(),
                format!("{} is not in the registry", what()),
            )),
        }
    }

    /// The blob `digest` of the image's repository, streamed and checked as it arrives: no
    /// more than `size` bytes are taken, and the end says whether they are the blob named.
    pub async fn blob(
        &self,
        image: &ImageRef,
        auth: &RegistryAuth,
        digest: &str,
        size: u64,
    ) -> Result<BlobStream, BlobError> {
        let repo = self.repo(image, auth)?;
        if Digest::parse(digest).is_err() {
            return Err(BlobError::Algorithm(digest.to_string()));
        }
        let check = DigestCheck::new(digest, size)?;
        let what = || format!("blob {digest}");
        let path = format!("blobs/{digest}");
        let open = self.http.stream(&repo, &path, size, &what);
        match self.call(repo.registry, open).await? {
            Some(stream) => Ok(BlobStream {
                registry: image.registry().to_string(),
                stream,
                check,
            }),
            None => Err(Self::error(
                image.registry(),
                format!("blob {digest} is not in {}", image.name()),
            )
            .into()),
        }
    }

    /// The digest the reference names (its own digest, or the tag's), and the runnable
    /// platforms when it is an index. `Ok(None)` when the registry has no such manifest; an
    /// ambiguous document, or an index with more platforms than are checked, is an error.
    pub async fn resolve(
        &self,
        image: &ImageRef,
        auth: &RegistryAuth,
    ) -> Result<Option<Resolved>, RegistryError> {
        let repo = self.repo(image, auth)?;
        let reference = match (image.digest(), image.tag()) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        };
        let what = || format!("manifest of {image}");
        let Some((body, digest)) = self.manifest(&repo, reference, &what).await? else {
            return Ok(None);
        };
        let refused = |why: String| Self::error(image.registry(), format!("{} {why}", what()));
        let doc: Document = serde_json::from_slice(&body)
            .map_err(|e| refused(format!("is not valid JSON: {e}")))?;
        let (index, platforms) = match doc.platforms().map_err(refused)? {
            Some(p) => (true, p),
            None => (false, Vec::new()),
        };
        if let Some(p) = platforms.iter().find(|p| Digest::parse(&p.digest).is_err()) {
            return Err(refused(format!("lists an invalid digest {:?}", p.digest)));
        }
        Ok(Some(Resolved {
            digest,
            index,
            platforms,
        }))
    }

    /// The attestation of `digest` of the image's repository, found through the OCI 1.1
    /// referrers API and through cosign's `sha256-<hex>.att` tag and checked with `verify`.
    /// Both paths run at once and the first to bring a scan attestation that verifies wins, so
    /// a cold look-up costs the round trips of the faster path; another verified attestation
    /// waits for the other path (it may hold a scan), then wins. Otherwise the first rejection
    /// is returned, or the error of a path that failed.
    pub async fn discover(
        &self,
        image: &ImageRef,
        digest: &str,
        auth: &RegistryAuth,
        verify: impl Fn(&[u8]) -> Result<Attested, Rejection>,
    ) -> Result<Discovered, RegistryError> {
        let repo = self.repo(image, auth)?;
        let repo = &repo;
        let referrers = std::pin::pin!(async {
            let listed = self.referrers(repo, digest).await?;
            let fetches = (listed.iter().take(MAX_ATTESTATIONS))
                .map(|d| self.manifest_layers(repo, d.as_str()));
            let manifests = futures::future::join_all(fetches)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            self.dsse_blobs(repo, &manifests).await
        });
        let by_tag = std::pin::pin!(async {
            let tag = format!("{}.att", digest.replace(':', "-"));
            let layers = self.manifest_layers(repo, &tag).await?;
            self.dsse_blobs(repo, &[layers]).await
        });
        let judge = |found: Result<Vec<Vec<u8>>, RegistryError>| {
            found.map(|envelopes| Discovered::judge(&envelopes, &verify))
        };
        use futures::future::Either;
        let (first, other) = match futures::future::select(referrers, by_tag).await {
            Either::Left((first, other)) => (judge(first), Either::Left(other)),
            Either::Right((first, other)) => (judge(first), Either::Right(other)),
        };
        // A scan attestation wins at once; another verified one waits for the other path,
        // which may hold a scan.
        if first.as_ref().is_ok_and(Discovered::is_scan) {
            return first;
        }
        let second = judge(other.await);
        if second.as_ref().is_ok_and(Discovered::is_scan) {
            return second;
        }
        for found in [&first, &second] {
            if let Ok(Discovered::Attested(_)) = found {
                return found.clone();
            }
        }
        Ok(match (first?, second?) {
            (Discovered::Rejected(r), _) | (_, Discovered::Rejected(r)) => Discovered::Rejected(r),
            _ => Discovered::Missing,
        })
    }
}

impl Registry {
    /// The manifests that refer to `digest`, within [`MAX_REFERRERS_BYTES`]: the OCI 1.1
    /// referrers API, else (404) the index of the referrers tag schema, `sha256-<hex>`.
    async fn referrers(&self, repo: &Repo<'_>, digest: &str) -> Result<Vec<Digest>, RegistryError> {
        let what = || format!("referrers list of {}@{digest}", repo.repository);
        let accept = Some(MANIFEST_TYPES[0]);
        let api = format!("referrers/{digest}");
        let get = self
            .http
            .get(repo, &api, accept, MAX_REFERRERS_BYTES, &what);
        let body = match self.call(repo.registry, get).await? {
            Some(b) => b,
            None => {
                let tag = format!("manifests/{}", digest.replace(':', "-"));
                let get = self
                    .http
                    .get(repo, &tag, accept, MAX_REFERRERS_BYTES, &what);
                match self.call(repo.registry, get).await? {
                    Some(b) => b,
                    None => return Ok(Vec::new()),
                }
            }
        };
        let index: IndexView = serde_json::from_slice(&body.bytes).map_err(|e| {
            Self::error(repo.registry, format!("{} is not valid JSON: {e}", what()))
        })?;
        // A listed digest that is not one names nothing fipsgate can fetch.
        Ok((index.manifests.iter())
            .filter_map(|m| Digest::parse(&m.digest).ok())
            .collect())
    }

    /// The layers of a manifest; none when it does not exist or is not a manifest.
    async fn manifest_layers(
        &self,
        repo: &Repo<'_>,
        reference: &str,
    ) -> Result<Vec<LayerView>, RegistryError> {
        let what = || format!("attestation manifest {}:{reference}", repo.repository);
        let Some((body, _)) = self.manifest(repo, reference, &what).await? else {
            return Ok(Vec::new());
        };
        Ok(serde_json::from_slice::<ManifestView>(&body)
            .map(|v| v.layers)
            .unwrap_or_default())
    }

    /// The DSSE layers of these manifests, fetched at once, each within
    /// [`MAX_ENVELOPE_BYTES`] whatever size it declares, and checked against its digest.
    async fn dsse_blobs(
        &self,
        repo: &Repo<'_>,
        manifests: &[Vec<LayerView>],
    ) -> Result<Vec<Vec<u8>>, RegistryError> {
        let blobs = manifests.iter().flat_map(|layers| {
            (layers.iter())
                .filter(|l| l.media_type == DSSE_MEDIA_TYPE && l.size <= MAX_ENVELOPE_BYTES as i64)
                .filter(|l| Digest::parse(&l.digest).is_ok())
                .take(MAX_ENVELOPES_PER_MANIFEST)
                .map(move |l| async move {
                    let what = || format!("attestation blob {}", l.digest);
                    let path = format!("blobs/{}", l.digest);
                    let get = self.http.get(repo, &path, None, MAX_ENVELOPE_BYTES, &what);
                    let Some(blob) = self.call(repo.registry, get).await? else {
                        return Ok(None);
                    };
                    verify_digest(&blob.bytes, &l.digest)
                        .map_err(|e| Self::error(repo.registry, format!("{} {e}", what())))?;
                    Ok::<_, RegistryError>(Some(blob.bytes))
                })
        });
        let mut out = Vec::new();
        for blob in futures::future::join_all(blobs).await {
            if let Some(b) = blob? {
                out.push(b);
            }
        }
        Ok(out)
    }
}

/// A manifest's digest, checked against its body: the reference's when it names one, and the
/// registry's `Docker-Content-Digest` when it sends one (then that digest is the one returned,
/// as the registry's canonical digest); else the body's sha256.
fn content_digest(body: &http::Body, reference: Option<&str>) -> Result<String, String> {
    if let Some(r) = reference {
        verify_digest(&body.bytes, r)?;
    }
    match &body.digest {
        Some(header) => {
            let d = Digest::parse(header)
                .map_err(|_| format!("comes with an invalid Docker-Content-Digest {header:?}"))?;
            verify_digest(&body.bytes, d.as_str())?;
            Ok(d.as_str().to_string())
        }
        None => Ok(match reference {
            Some(r) => r.to_string(),
            None => format!("sha256:{}", hash(&aws_lc_rs::digest::SHA256, &body.bytes)),
        }),
    }
}

/// Checks `bytes` against a `sha256`, `sha384` or `sha512` digest.
fn verify_digest(bytes: &[u8], digest: &str) -> Result<(), String> {
    use aws_lc_rs::digest::{SHA256, SHA384, SHA512};
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let alg = match algorithm {
        "sha256" => &SHA256,
        "sha384" => &SHA384,
        "sha512" => &SHA512,
        _ => {
            return Err(format!(
                "cannot be checked against {digest}: unsupported algorithm"
            ));
        }
    };
    if hash(alg, bytes) == hex {
        Ok(())
    } else {
        Err(format!("does not match its digest {digest}"))
    }
}

fn hash(alg: &'static aws_lc_rs::digest::Algorithm, bytes: &[u8]) -> String {
    crate::attest::hex(aws_lc_rs::digest::digest(alg, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a resolved document is: `Ok(None)` an image, `Ok(Some(platforms))` an index.
    fn read(doc: serde_json::Value) -> Result<Option<Vec<String>>, String> {
        let d: Document = serde_json::from_value(doc).unwrap();
        d.platforms().map(|p| {
            p.map(|p| {
                p.into_iter()
                    .map(|p| format!("{} {}", p.name, p.digest))
                    .collect()
            })
        })
    }

    /// Of the envelopes on one digest, the newest verified scan wins over other attestations
    /// and older scans; without a scan, the first verified one; without any, the first reason.
    #[test]
    fn the_newest_scan_is_preferred() {
        use crate::domain::assessment::ScanFacts;
        use crate::domain::fips::Status;
        let attested = |scan: Option<(&str, Status)>| Attested {
            signers: Vec::new(),
            predicate_type: "p".into(),
            component: None,
            modules: Vec::new(),
            exceptions: Vec::new(),
            scan: scan.map(|(at, status)| {
                Box::new(ScanFacts {
                    status,
                    platform: None,
                    profile: "any".into(),
                    scanner: "fipsgate".into(),
                    scanned_at: at.parse().unwrap(),
                    problems: Vec::new(),
                })
            }),
        };
        // Each envelope's text names what it verifies as.
        let verify = |e: &[u8]| match e {
            b"component" => Ok(attested(None)),
            b"old-none" => Ok(attested(Some(("2026-01-01T00:00:00Z", Status::None)))),
            b"new-full" => Ok(attested(Some(("2026-11-01T00:00:00Z", Status::Full)))),
            _ => Err(Rejection::BadSignature),
        };
        let judge = |envs: &[&[u8]]| {
            let envs: Vec<Vec<u8>> = envs.iter().map(|e| e.to_vec()).collect();
            match Discovered::judge(&envs, &verify) {
                Discovered::Attested(a) => {
                    a.scan.map_or("component".into(), |s| s.status.to_string())
                }
                Discovered::Rejected(r) => r,
                Discovered::Missing => "missing".into(),
            }
        };
        assert_eq!(judge(&[b"component", b"old-none", b"new-full"]), "full");
        assert_eq!(judge(&[b"new-full", b"old-none", b"component"]), "full");
        assert_eq!(judge(&[b"bad", b"old-none", b"component"]), "none");
        assert_eq!(judge(&[b"bad", b"component"]), "component");
        assert!(judge(&[b"bad"]).contains("does not verify"));
        assert_eq!(judge(&[]), "missing");
    }

    #[test]
    fn blobs_are_checked_as_they_pass() {
        use aws_lc_rs::digest::SHA256;
        let good = format!("sha256:{}", hash(&SHA256, b"abcdef"));
        let check = |pieces: &[&[u8]], declared: u64| {
            let mut c = DigestCheck::new(&good, declared).unwrap();
            for p in pieces {
                c.update(p)?;
            }
            let first = c.finish();
            assert_eq!(first, c.finish(), "the verdict is repeated");
            first
        };
        assert_eq!(check(&[b"abc", b"def"], 6), Ok(()));
        let e = check(&[b"abc", b"dez"], 6).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "blob {good} does not match its digest: its bytes hash to sha256:"
            )),
            "{e}"
        );
        assert_eq!(
            check(&[b"abc"], 6).unwrap_err().to_string(),
            format!("blob {good} ends after 3 bytes; its descriptor declares 6")
        );
        // Past the declared length, refused at once (nothing more is taken).
        let mut c = DigestCheck::new(&good, 4).unwrap();
        assert!(matches!(
            c.update(b"abcdef"),
            Err(BlobError::TooLong { .. })
        ));
        assert!(matches!(c.update(b""), Err(BlobError::TooLong { .. })));
        assert!(DigestCheck::new("md5:00", 1).is_err());
    }

    #[test]
    fn manifest_digests_are_checked_against_the_body() {
        use aws_lc_rs::digest::{SHA256, SHA512};
        let body = |digest: Option<&str>| super::http::Body {
            bytes: b"{}".to_vec(),
            digest: digest.map(str::to_string),
        };
        let d256 = format!("sha256:{}", hash(&SHA256, b"{}"));
        let d512 = format!("sha512:{}", hash(&SHA512, b"{}"));
        let other = format!("sha256:{}", hash(&SHA256, b"[]"));
        // By tag: the registry's digest when it sends one, checked; else the body's.
        assert_eq!(content_digest(&body(None), None), Ok(d256.clone()));
        assert_eq!(content_digest(&body(Some(&d256)), None), Ok(d256.clone()));
        let e = content_digest(&body(Some(&other)), None).unwrap_err();
        assert_eq!(e, format!("does not match its digest {other}"));
        // By digest: the body is what the reference names.
        assert_eq!(content_digest(&body(None), Some(&d512)), Ok(d512.clone()));
        assert_eq!(content_digest(&body(Some(&d256)), Some(&d512)), Ok(d256));
        assert!(content_digest(&body(None), Some(&other)).is_err());
        assert!(content_digest(&body(Some(&d512)), Some(&other)).is_err());
        let e = content_digest(&body(Some("sha256:beef")), None).unwrap_err();
        assert!(e.contains("invalid Docker-Content-Digest"), "{e}");
        let blake3 = format!("blake3:{}", "a".repeat(64));
        let e = content_digest(&body(None), Some(&blake3)).unwrap_err();
        assert!(e.contains("unsupported algorithm"), "{e}");
    }

    #[test]
    fn documents_are_what_their_media_type_says_and_never_both() {
        use serde_json::json;
        let (oci_image, oci_index) = (MANIFEST_TYPES[2], MANIFEST_TYPES[0]);
        let cfg = json!({"digest": "sha256:c", "size": 1});
        let entry = |d: &str, os: &str, arch: &str| json!({"digest": d, "platform": {"os": os, "architecture": arch}});
        let ok_image = [
            json!({"mediaType": oci_image, "config": cfg, "layers": []}),
            json!({"mediaType": MANIFEST_TYPES[3], "config": cfg, "layers": []}),
            json!({"config": cfg, "layers": []}),
        ];
        for doc in ok_image {
            assert_eq!(read(doc.clone()), Ok(None), "{doc}");
        }
        let index = json!({"mediaType": oci_index, "manifests": [
            entry("sha256:a", "linux", "amd64"),
            entry("sha256:b", "unknown", "unknown"),
            {"digest": "sha256:c"},
            {"digest": "sha256:d", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        ]});
        assert_eq!(
            read(index),
            Ok(Some(vec![
                "linux/amd64 sha256:a".into(),
                "unspecified sha256:c".into(),
                "linux/arm/v7 sha256:d".into()
            ]))
        );
        let refused = [
            // An image manifest that also lists manifests (CVE-2021-41190), and the reverse.
            (
                json!({"mediaType": oci_image, "config": cfg, "layers": [], "manifests": [entry("sha256:a", "linux", "amd64")]}),
                "ambiguous",
            ),
            (
                json!({"mediaType": oci_index, "manifests": [], "layers": []}),
                "ambiguous",
            ),
            (
                json!({"mediaType": oci_image, "manifests": []}),
                "ambiguous",
            ),
            (json!({"manifests": [], "config": cfg}), "ambiguous"),
            (
                json!({"mediaType": "application/vnd.cncf.helm.config.v1+json", "config": cfg}),
                "not an image",
            ),
            (json!({}), "neither"),
        ];
        for (doc, why) in refused {
            let e = read(doc.clone()).unwrap_err();
            assert!(e.contains(why), "{doc}: {e}");
        }
        let many: Vec<_> = (0..=MAX_PLATFORMS)
            .map(|i| entry(&format!("sha256:{i}"), "linux", "amd64"))
            .collect();
        let e = read(json!({"mediaType": oci_index, "manifests": many})).unwrap_err();
        assert!(e.contains("at most 16 are checked"), "{e}");
    }
}
