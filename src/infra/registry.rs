//! OCI registry access (IO edge) through oci-client: tag → digest resolution, platform digests
//! of multi-arch indexes, attestation discovery (OCI 1.1 referrers, then cosign's
//! `sha256-<hex>.att` tag) and credentials (Docker `config.json`, pull secrets).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;

use crate::attest::DSSE_MEDIA_TYPE;
use crate::domain::image::ImageRef;

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

/// A registry call that failed: not a verdict, reported and handled by the failure behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry {registry}: {message}")]
pub struct RegistryError {
    pub registry: String,
    pub message: String,
}

/// The digests an image reference stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The manifest (or index) digest.
    pub digest: String,
    /// Platform manifest digests when `digest` is a multi-arch index.
    pub platforms: Vec<String>,
}

/// Registry credentials from a Docker `config.json` (`auths`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    by_host: HashMap<String, (String, String)>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl Credentials {
    /// Parses `{"auths": {"host": {"auth": base64(user:pass)} | {"username", "password"}}}`.
    pub fn from_docker_config(json: &[u8]) -> Result<Self, String> {
        let cfg: DockerConfig =
            serde_json::from_slice(json).map_err(|e| format!("invalid docker config: {e}"))?;
        let mut by_host = HashMap::new();
        for (key, a) in cfg.auths {
            let pair = match (a.auth, a.username, a.password) {
                (Some(b64), _, _) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| format!("auths.{key}.auth: {e}"))?;
                    let s = String::from_utf8(raw).map_err(|e| format!("auths.{key}.auth: {e}"))?;
                    let (u, p) = s
                        .split_once(':')
                        .ok_or_else(|| format!("auths.{key}.auth is not user:password"))?;
                    (u.to_string(), p.to_string())
                }
                (None, Some(u), Some(p)) => (u, p),
                _ => continue,
            };
            by_host.insert(normalise_host(&key), pair);
        }
        Ok(Self { by_host })
    }

    /// Adds `other`'s entries, keeping ours where both have a host.
    pub fn merge(&mut self, other: &Credentials) {
        for (k, v) in &other.by_host {
            self.by_host.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    /// The credentials for a registry host, if any.
    pub fn for_registry(&self, registry: &str) -> Option<&(String, String)> {
        self.by_host.get(&normalise_host(registry))
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

/// `https://index.docker.io/v1/` → `docker.io`, `https://r.io:5000/` → `r.io:5000`.
fn normalise_host(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// An OCI registry client per set of credentials (oci-client keeps one login per host).
pub struct Registry {
    protocol: oci_client::client::ClientProtocol,
    call_timeout: Duration,
    clients: moka::sync::Cache<String, Arc<Client>>,
}

#[derive(Deserialize)]
struct ManifestView {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<DescriptorView>,
    #[serde(default)]
    layers: Vec<oci_client::manifest::OciDescriptor>,
}

#[derive(Deserialize)]
struct DescriptorView {
    digest: String,
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

    /// The digest the reference names (its own digest, or the tag's), and the platform
    /// digests when it is an index. `Ok(None)` when the registry has no such manifest.
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
        let view: ManifestView = serde_json::from_slice(&body).map_err(|e| RegistryError {
            registry: image.registry().to_string(),
            message: format!("manifest of {image} is not valid JSON: {e}"),
        })?;
        let is_index = view
            .media_type
            .as_deref()
            .is_some_and(|m| m.contains("index") || m.contains("list"))
            || !view.manifests.is_empty();
        let platforms = if is_index {
            view.manifests
                .into_iter()
                .take(MAX_PLATFORMS)
                .map(|d| d.digest)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Some(Resolved { digest, platforms }))
    }

    /// DSSE envelopes attached to `digest` of the image's repository, found through the OCI 1.1
    /// referrers API and through cosign's `sha256-<hex>.att` tag. Both paths run at once and
    /// the first to bring an envelope that `accept`s wins, so a cold look-up costs the round
    /// trips of the faster path; otherwise every envelope found is returned (for the reasons of
    /// their rejection), or the error of a path that failed.
    pub async fn envelopes(
        &self,
        image: &ImageRef,
        digest: &str,
        auth: &RegistryAuth,
        accept: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<Vec<u8>>, RegistryError> {
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
        let accepted = |r: &Result<Vec<Vec<u8>>, RegistryError>| {
            r.as_ref().is_ok_and(|e| e.iter().any(|e| accept(e)))
        };
        use futures::future::Either;
        let (first, other) = match futures::future::select(referrers, by_tag).await {
            Either::Left((first, other)) => (first, Either::Left(other)),
            Either::Right((first, other)) => (first, Either::Right(other)),
        };
        if accepted(&first) {
            return first;
        }
        let second = other.await;
        if accepted(&second) {
            return second;
        }
        let mut all = first?;
        all.extend(second?);
        Ok(all)
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
                .map(move |l| async move {
                    let mut buf: Vec<u8> = Vec::new();
                    let got = self
                        .call(registry, client.pull_blob(r, l, &mut buf))
                        .await?;
                    Ok::<_, RegistryError>(got.map(|()| buf))
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

/// The credentials to use for `registry`: a pull secret's, else the mounted config's.
pub fn auth_for(registry: &str, pull: &Credentials, mounted: &Credentials) -> RegistryAuth {
    match pull
        .for_registry(registry)
        .or_else(|| mounted.for_registry(registry))
    {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => RegistryAuth::Anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config() {
        let json = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "registry.example.com:5000": {"username": "a", "password": "b:c"},
            "ignored.io": {}
        }}"#;
        let c = Credentials::from_docker_config(json).unwrap();
        assert_eq!(
            c.for_registry("docker.io"),
            Some(&("user".into(), "pass".into()))
        );
        assert_eq!(
            c.for_registry("registry.example.com:5000"),
            Some(&("a".into(), "b:c".into()))
        );
        assert_eq!(c.for_registry("ignored.io"), None);
        assert!(Credentials::from_docker_config(b"{").is_err());
        assert!(Credentials::from_docker_config(br#"{"auths": {"x": {"auth": "!!"}}}"#).is_err());
    }
}
