//! OCI registries through oci-client: tag → digest resolution, platform digests of multi-arch
//! indexes, and attestation discovery (OCI 1.1 referrers and cosign's `sha256-<hex>.att` tag)
//! that returns verified statements. [`attestations`] caches it all behind the app's port;
//! [`credentials`] says who fipsgate is to each registry.

mod attestations;
mod credentials;

use std::sync::Arc;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;

use crate::app::ports::{Platform, Resolved};
use crate::attest::{Attested, DSSE_MEDIA_TYPE, Rejection};
use crate::domain::image::ImageRef;

pub use attestations::RegistryAttestations;
pub use credentials::{Credentials, PullSecrets, auth_for};

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
const MAX_ENVELOPE_BYTES: i64 = 1024 * 1024;
/// At most this many attestation manifests are read per digest.
const MAX_ATTESTATIONS: usize = 16;
/// At most this many envelopes are read from one attestation manifest.
const MAX_ENVELOPES_PER_MANIFEST: usize = 8;

/// A buffer that refuses to grow past its cap: a blob larger than declared fails the read.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap,
        }
    }

    fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.buf.len() + data.len() > self.cap {
            let e = format!("blob is larger than {} bytes", self.cap);
            return std::task::Poll::Ready(Err(std::io::Error::other(e)));
        }
        self.buf.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A registry call that failed: not a verdict, reported and handled by the failure behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry {registry}: {message}")]
pub struct RegistryError {
    pub registry: String,
    pub message: String,
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
    /// The first envelope that verifies, else the first reason one was refused.
    fn judge(
        envelopes: &[Vec<u8>],
        verify: &impl Fn(&[u8]) -> Result<Attested, Rejection>,
    ) -> Self {
        let mut rejected = None;
        for e in envelopes {
            match verify(e) {
                Ok(a) => return Discovered::Attested(a),
                Err(reason) => {
                    rejected.get_or_insert_with(|| reason.to_string());
                }
            }
        }
        rejected.map_or(Discovered::Missing, Discovered::Rejected)
    }
}

/// An OCI registry client per set of credentials (oci-client keeps one login per host).
pub struct Registry {
    protocol: oci_client::client::ClientProtocol,
    call_timeout: Duration,
    clients: moka::sync::Cache<String, Arc<Client>>,
}

/// An attestation manifest, read for its layers.
#[derive(Deserialize)]
struct ManifestView {
    #[serde(default)]
    layers: Vec<oci_client::manifest::OciDescriptor>,
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
    /// `insecure` lists `host[:port]`s spoken to over plain HTTP.
    pub fn new(insecure: &[String], call_timeout: Duration) -> Self {
        let protocol = if insecure.is_empty() {
            oci_client::client::ClientProtocol::Https
        } else {
            oci_client::client::ClientProtocol::HttpsExcept(insecure.to_vec())
        };
        Self {
            protocol,
            call_timeout,
            clients: moka::sync::Cache::new(64),
        }
    }

    fn client(&self, auth: &RegistryAuth) -> Arc<Client> {
        let key = match auth {
            RegistryAuth::Anonymous => String::new(),
            RegistryAuth::Basic(u, p) => format!("basic:{u}:{p}"),
            RegistryAuth::Bearer(t) => format!("bearer:{t}"),
        };
        self.clients.get_with(key, || {
            Arc::new(Client::new(oci_client::client::ClientConfig {
                protocol: self.protocol.clone(),
                connect_timeout: Some(self.call_timeout),
                read_timeout: Some(self.call_timeout),
                user_agent: concat!("fipsgate/", env!("CARGO_PKG_VERSION")),
                ..Default::default()
            }))
        })
    }

    async fn call<T>(
        &self,
        registry: &str,
        fut: impl std::future::Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<Option<T>, RegistryError> {
        let err = |message: String| RegistryError {
            registry: registry.to_string(),
            message,
        };
        match tokio::time::timeout(self.call_timeout, fut).await {
            Err(_) => Err(err(format!(
                "no answer within {} ms",
                self.call_timeout.as_millis()
            ))),
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(e)) if not_found(&e) => Ok(None),
            Ok(Err(e)) => Err(err(e.to_string())),
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
        let reference = oci_reference(image);
        let client = self.client(auth);
        let Some((body, digest)) = self
            .call(
                image.registry(),
                client.pull_manifest_raw(&reference, auth, MANIFEST_TYPES),
            )
            .await?
        else {
            return Ok(None);
        };
        let refused = |why: String| RegistryError {
            registry: image.registry().to_string(),
            message: format!("manifest of {image} {why}"),
        };
        let doc: Document = serde_json::from_slice(&body)
            .map_err(|e| refused(format!("is not valid JSON: {e}")))?;
        let (index, platforms) = match doc.platforms().map_err(refused)? {
            Some(p) => (true, p),
            None => (false, Vec::new()),
        };
        Ok(Some(Resolved {
            digest,
            index,
            platforms,
        }))
    }

    /// The attestation of `digest` of the image's repository, found through the OCI 1.1
    /// referrers API and through cosign's `sha256-<hex>.att` tag and checked with `verify`.
    /// Both paths run at once and the first to bring an envelope that verifies wins, so a cold
    /// look-up costs the round trips of the faster path. Otherwise the first rejection is
    /// returned, or the error of a path that failed.
    pub async fn discover(
        &self,
        image: &ImageRef,
        digest: &str,
        auth: &RegistryAuth,
        verify: impl Fn(&[u8]) -> Result<Attested, Rejection>,
    ) -> Result<Discovered, RegistryError> {
        let client = self.client(auth);
        let (registry, repository) = (image.registry(), image.repository());
        let subject =
            Reference::with_digest(registry.into(), repository.into(), digest.to_string());
        let cosign = Reference::with_tag(
            registry.into(),
            repository.into(),
            format!("{}.att", digest.replace(':', "-")),
        );
        let referrers = std::pin::pin!(async {
            let Some(index) = self
                .call(registry, client.pull_referrers(&subject, None))
                .await?
            else {
                return Ok(Vec::new());
            };
            let fetches = index
                .manifests
                .iter()
                .take(MAX_ATTESTATIONS)
                .map(|m| subject.clone_with_digest(m.digest.clone()))
                .map(|r| async {
                    let layers = self.manifest_layers(registry, &client, &r, auth).await?;
                    Ok::<_, RegistryError>((r, layers))
                });
            let sources = futures::future::join_all(fetches)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            self.dsse_blobs(registry, &client, &sources).await
        });
        let by_tag = std::pin::pin!(async {
            let layers = self
                .manifest_layers(registry, &client, &cosign, auth)
                .await?;
            self.dsse_blobs(registry, &client, &[(cosign.clone(), layers)])
                .await
        });
        let judge = |found: Result<Vec<Vec<u8>>, RegistryError>| {
            found.map(|envelopes| Discovered::judge(&envelopes, &verify))
        };
        use futures::future::Either;
        let (first, other) = match futures::future::select(referrers, by_tag).await {
            Either::Left((first, other)) => (judge(first), Either::Left(other)),
            Either::Right((first, other)) => (judge(first), Either::Right(other)),
        };
        if let Ok(Discovered::Attested(_)) = first {
            return first;
        }
        let second = judge(other.await);
        if let Ok(Discovered::Attested(_)) = second {
            return second;
        }
        Ok(match (first?, second?) {
            (Discovered::Rejected(r), _) | (_, Discovered::Rejected(r)) => Discovered::Rejected(r),
            _ => Discovered::Missing,
        })
    }

    /// The DSSE layers of these manifests, fetched at once.
    async fn dsse_blobs(
        &self,
        registry: &str,
        client: &Client,
        sources: &[(Reference, Vec<oci_client::manifest::OciDescriptor>)],
    ) -> Result<Vec<Vec<u8>>, RegistryError> {
        let blobs = sources.iter().flat_map(|(r, layers)| {
            layers
                .iter()
                .filter(|l| l.media_type == DSSE_MEDIA_TYPE && l.size <= MAX_ENVELOPE_BYTES)
                .take(MAX_ENVELOPES_PER_MANIFEST)
                .map(move |l| async move {
                    // The declared size is the registry's word: the cap holds while reading.
                    let mut buf = Capped::new(MAX_ENVELOPE_BYTES as usize);
                    let got = self
                        .call(registry, client.pull_blob(r, l, &mut buf))
                        .await?;
                    Ok::<_, RegistryError>(got.map(|()| buf.into_inner()))
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

impl Registry {
    /// The layers of a manifest; none when it does not exist or is not a manifest.
    async fn manifest_layers(
        &self,
        registry: &str,
        client: &Client,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<Vec<oci_client::manifest::OciDescriptor>, RegistryError> {
        let Some((body, _)) = self
            .call(
                registry,
                client.pull_manifest_raw(reference, auth, MANIFEST_TYPES),
            )
            .await?
        else {
            return Ok(Vec::new());
        };
        Ok(serde_json::from_slice::<ManifestView>(&body)
            .map(|v| v.layers)
            .unwrap_or_default())
    }
}

fn not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code: 404, .. } => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

fn oci_reference(image: &ImageRef) -> Reference {
    let (reg, repo) = (image.registry().to_string(), image.repository().to_string());
    match (image.digest(), image.tag()) {
        (Some(d), _) => Reference::with_digest(reg, repo, d.to_string()),
        (None, Some(t)) => Reference::with_tag(reg, repo, t.to_string()),
        (None, None) => Reference::with_tag(reg, repo, "latest".into()),
    }
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

    #[tokio::test]
    async fn a_capped_buffer_refuses_what_is_past_its_cap() {
        use tokio::io::AsyncWriteExt as _;
        let mut b = Capped::new(8);
        b.write_all(b"12345678").await.unwrap();
        let e = b.write_all(b"9").await.unwrap_err();
        assert!(e.to_string().contains("larger than 8 bytes"), "{e}");
        assert_eq!(b.into_inner(), b"12345678");
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
