//! Storing attestations (`fipsgate attest`): a DSSE envelope attached to an image digest the way
//! cosign stores attestations (the `sha256-<hex>.att` tag, one layer per envelope, its
//! annotations; earlier layers kept), and as an OCI 1.1 referrer (`subject`, `artifactType`),
//! through the referrers API where the registry has one, else through the referrers tag schema
//! (the `sha256-<hex>` index), as the distribution spec says to fall back.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::attest::{DSSE_MEDIA_TYPE, envelope_digest};
use crate::domain::image::ImageRef;

use super::http::{Answer, FetchError, MAX_MANIFEST_BYTES, Outgoing, Repo};
use super::{MANIFEST_TYPES, Registry, RegistryAuth, RegistryError};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI 1.1 empty descriptor: the config of an artifact that has none.
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The layer annotation cosign puts on every signature and attestation layer.
const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";

/// A manifest as a descriptor names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

/// How a referrer was made findable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersVia {
    /// The registry processed the `subject` (it answered `OCI-Subject`): its referrers API
    /// lists it.
    ReferrersApi,
    /// The registry has no referrers API: the `sha256-<hex>` index lists it.
    TagSchema,
}

/// What was stored for one subject digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    /// The digest the envelope is attached to.
    pub subject: String,
    /// The envelope's blob digest.
    pub envelope: String,
    /// cosign's tag (`sha256-<hex>.att`) and the manifest now under it.
    pub cosign_tag: String,
    pub cosign_manifest: String,
    /// Envelopes under the tag, this one included.
    pub cosign_layers: usize,
    /// The OCI 1.1 referrer manifest.
    pub referrer: String,
    pub referrers_via: ReferrersVia,
}

impl Registry {
    fn push_repo<'a>(
        &self,
        image: &'a ImageRef,
        auth: &'a RegistryAuth,
    ) -> Result<Repo<'a>, RegistryError> {
        let mut repo = self.repo(image, auth)?;
        repo.push = true;
        Ok(repo)
    }

    /// The manifest `digest` of the image's repository, as a descriptor; `None` when the
    /// registry does not have it.
    pub async fn describe(
        &self,
        image: &ImageRef,
        digest: &str,
        auth: &RegistryAuth,
    ) -> Result<Option<Descriptor>, RegistryError> {
        let repo = self.push_repo(image, auth)?;
        let what = || format!("manifest {}@{digest}", image.name());
        let Some((body, digest)) = self.manifest(&repo, digest, &what).await? else {
            return Ok(None);
        };
        Ok(Some(Descriptor {
            media_type: media_type_of(&body),
            digest,
            size: body.len(),
        }))
    }

    /// Attaches `envelope` (a DSSE envelope of `predicate_type`) to `subject`: cosign's tag
    /// and an OCI 1.1 referrer.
    pub async fn attach(
        &self,
        image: &ImageRef,
        subject: &Descriptor,
        envelope: &[u8],
        predicate_type: &str,
        auth: &RegistryAuth,
    ) -> Result<Stored, RegistryError> {
        let repo = self.push_repo(image, auth)?;
        let err = |m: String| Self::error(image.registry(), m);
        let env_digest = self.push_blob(&repo, envelope).await.map_err(&err)?;
        let layer = json!({
            "mediaType": DSSE_MEDIA_TYPE, "digest": env_digest, "size": envelope.len(),
            "annotations": {COSIGN_SIGNATURE: "", "predicateType": predicate_type},
        });
        let (cosign_tag, cosign_manifest, cosign_layers) = self
            .cosign_tag(&repo, &subject.digest, layer.clone())
            .await?;
        let (referrer, referrers_via) = self.referrer(&repo, subject, layer).await?;
        Ok(Stored {
            subject: subject.digest.clone(),
            envelope: env_digest,
            cosign_tag,
            cosign_manifest,
            cosign_layers,
            referrer,
            referrers_via,
        })
    }

    /// cosign's `sha256-<hex>.att`: the manifest there, its layers kept, with `layer` added
    /// (once).
    async fn cosign_tag(
        &self,
        repo: &Repo<'_>,
        subject: &str,
        layer: Value,
    ) -> Result<(String, String, usize), RegistryError> {
        let tag = format!("{}.att", subject.replace(':', "-"));
        let mut layers = self.existing(repo, &tag, "layers").await?;
        if !layers.iter().any(|l| l["digest"] == layer["digest"]) {
            layers.push(layer);
        }
        // cosign's attestation image config: its layers as the root filesystem.
        let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "", "os": "", "config": {},
            "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap_or_default();
        let err = |m: String| Self::error(repo.registry, m);
        let config_digest = self.push_blob(repo, &config).await.map_err(err)?;
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": layers,
        });
        let n = layers_len(&manifest);
        let digest = self
            .put_manifest(repo, &tag, OCI_MANIFEST, &manifest)
            .await?;
        Ok((tag, digest, n))
    }

    /// The OCI 1.1 referrer of `subject` carrying `layer`, and how it is listed.
    async fn referrer(
        &self,
        repo: &Repo<'_>,
        subject: &Descriptor,
        layer: Value,
    ) -> Result<(String, ReferrersVia), RegistryError> {
        let err = |m: String| Self::error(repo.registry, m);
        let empty = self.push_blob(repo, b"{}").await.map_err(err)?;
        let created = jiff::Timestamp::now().to_string();
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": DSSE_MEDIA_TYPE,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [layer],
            "subject": subject,
            "annotations": {"org.opencontainers.image.created": created},
        });
        let body = serde_json::to_vec(&manifest).unwrap_or_default();
        let digest = envelope_digest(&body);
        let answer = self
            .put(repo, &format!("manifests/{digest}"), OCI_MANIFEST, &body)
            .await?;
        if answer.header("oci-subject") == Some(subject.digest.as_str()) {
            return Ok((digest, ReferrersVia::ReferrersApi));
        }
        // No referrers API: the referrers tag schema's index lists it.
        let tag = subject.digest.replace(':', "-");
        let mut listed = self.existing(repo, &tag, "manifests").await?;
        if !listed.iter().any(|m| m["digest"] == digest.as_str()) {
            listed.push(json!({
                "mediaType": OCI_MANIFEST, "digest": digest, "size": body.len(),
                "artifactType": DSSE_MEDIA_TYPE,
                "annotations": {"org.opencontainers.image.created": manifest["annotations"]["org.opencontainers.image.created"]},
            }));
        }
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed});
        self.put_manifest(repo, &tag, OCI_INDEX, &index).await?;
        Ok((digest, ReferrersVia::TagSchema))
    }

    /// The `field` list (`layers`, `manifests`) of the manifest under `tag`; empty when there
    /// is none.
    async fn existing(
        &self,
        repo: &Repo<'_>,
        tag: &str,
        field: &str,
    ) -> Result<Vec<Value>, RegistryError> {
        let what = || format!("manifest {}:{tag}", repo.repository);
        let Some((body, _)) = self.manifest(repo, tag, &what).await? else {
            return Ok(Vec::new());
        };
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| Self::error(repo.registry, format!("{} is not JSON: {e}", what())))?;
        Ok(doc[field].as_array().cloned().unwrap_or_default())
    }

    async fn put_manifest(
        &self,
        repo: &Repo<'_>,
        reference: &str,
        media_type: &str,
        manifest: &Value,
    ) -> Result<String, RegistryError> {
        let body = serde_json::to_vec(manifest).unwrap_or_default();
        if body.len() > MAX_MANIFEST_BYTES {
            let m = format!("manifest {reference} would be larger than {MAX_MANIFEST_BYTES} bytes");
            return Err(Self::error(repo.registry, m));
        }
        self.put(repo, &format!("manifests/{reference}"), media_type, &body)
            .await?;
        Ok(envelope_digest(&body))
    }

    async fn put(
        &self,
        repo: &Repo<'_>,
        path: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<Answer, RegistryError> {
        let fail = |e: FetchError| Self::error(repo.registry, e.to_string());
        let url = self.http.url_of(repo, path).map_err(fail)?;
        let out = Outgoing {
            method: Method::PUT,
            url: &url,
            accept: None,
            content_type: Some(media_type),
            body: Some(body),
        };
        let answer = self.http.write(repo, &out).await.map_err(fail)?;
        if answer.status != StatusCode::CREATED {
            let m = format!("PUT {url}: {} {}", answer.status, answer.detail());
            return Err(Self::error(repo.registry, m));
        }
        Ok(answer)
    }

    /// Uploads `data` unless the repository has it (a monolithic upload: POST, then PUT with
    /// the digest); its digest.
    async fn push_blob(&self, repo: &Repo<'_>, data: &[u8]) -> Result<String, String> {
        let digest = envelope_digest(data);
        let send =
            |method, url, content_type, body| self.send(repo, method, url, content_type, body);
        let blob = self.http.url_of(repo, &format!("blobs/{digest}"));
        let blob = blob.map_err(|e| e.to_string())?;
        if send(Method::HEAD, &blob, None, None).await?.status == StatusCode::OK {
            return Ok(digest);
        }
        let start = self.http.url_of(repo, "blobs/uploads/");
        let start = start.map_err(|e| e.to_string())?;
        let a = send(Method::POST, &start, None, None).await?;
        let location = match (a.status, a.header("location")) {
            (StatusCode::ACCEPTED, Some(l)) => l.to_string(),
            (s, _) => return Err(format!("POST {start}: {s} {}", a.detail())),
        };
        let mut url = self
            .http
            .url_of(repo, &location)
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut().append_pair("digest", &digest);
        let octets = Some("application/octet-stream");
        let a = send(Method::PUT, &url, octets, Some(data)).await?;
        if a.status != StatusCode::CREATED {
            return Err(format!("PUT {url}: {} {}", a.status, a.detail()));
        }
        Ok(digest)
    }
}

impl Registry {
    async fn send(
        &self,
        repo: &Repo<'_>,
        method: Method,
        url: &reqwest::Url,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        let out = Outgoing {
            method,
            url,
            accept: None,
            content_type,
            body,
        };
        self.http.write(repo, &out).await.map_err(|e| e.to_string())
    }
}

fn layers_len(manifest: &Value) -> usize {
    manifest["layers"].as_array().map_or(0, Vec::len)
}

/// A manifest's media type: the one it states, else what its shape says.
fn media_type_of(body: &[u8]) -> String {
    let doc: Value = serde_json::from_slice(body).unwrap_or_default();
    match doc["mediaType"].as_str() {
        Some(t) if MANIFEST_TYPES.contains(&t) => t.to_string(),
        _ if doc.get("manifests").is_some() => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    }
}
