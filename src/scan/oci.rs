//! OCI and Docker image documents, read for a scan: an index's platforms, a manifest's config
//! and layers, the config's platform and environment. Pure: the bytes come verified from a
//! registry or an OCI layout. A document that is both an index and a manifest, a media type
//! that is not an image's, an invalid digest or size, or more layers or platforms than are
//! read is refused with its reason.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::domain::image::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The layer media types whose blobs are filesystem changesets (compression is told by the
/// bytes).
pub const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];
/// At most this many layers per image (Docker's own limit is 127).
pub const MAX_LAYERS: usize = 256;
/// At most this many platforms per index.
pub const MAX_PLATFORMS: usize = 64;
/// An image config larger than this is refused.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OciError(pub String);

/// A platform as indexes and configs name it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match self.variant.as_deref() {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

impl Platform {
    /// `os/arch[/variant]`, as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Self, OciError> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: os.into(),
                architecture: arch.into(),
                variant: parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string()),
            }),
            _ => Err(OciError(format!(
                "platform {s:?}: expected os/arch[/variant]"
            ))),
        }
    }

    /// Whether `self`, as asked for, is `other`: a variant not asked for matches any.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }

    /// Buildx's attestation manifests ride in indexes as `unknown/unknown`: not runnable.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

/// What a document points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    #[serde(default, rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    fn check(&self, what: &str) -> Result<(), OciError> {
        Digest::parse(&self.digest)
            .map(|_| ())
            .map_err(|_| OciError(format!("{what} has an invalid digest {:?}", self.digest)))
    }
}

/// An image manifest: its config and layers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A resolved document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// The runnable platforms an index lists (attestation manifests left out).
    Index(Vec<Descriptor>),
    Manifest(Manifest),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
}

/// Reads an index or an image manifest. A document that carries both shapes is refused, as
/// a client would not know which it is (CVE-2021-41190).
pub fn document(bytes: &[u8]) -> Result<Document, OciError> {
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| OciError(format!("is not an image manifest or index: {e}")))?;
    let image_parts = raw.config.is_some() || raw.layers.is_some();
    let listed = raw.manifests.is_some();
    let ambiguous =
        || OciError("has both manifests and config/layers: refused as ambiguous".into());
    let index = match raw.media_type.as_deref() {
        _ if listed && image_parts => return Err(ambiguous()),
        Some(OCI_INDEX | DOCKER_LIST) if image_parts => return Err(ambiguous()),
        Some(OCI_MANIFEST | DOCKER_MANIFEST) if listed => return Err(ambiguous()),
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(t) => return Err(OciError(format!("has media type {t:?}, not an image"))),
        None if listed => true,
        None if image_parts => false,
        None => return Err(OciError("is neither an image manifest nor an index".into())),
    };
    if index {
        let runnable: Vec<Descriptor> = (raw.manifests.unwrap_or_default().into_iter())
            .filter(|d| !d.platform.as_ref().is_some_and(Platform::is_unknown))
            .collect();
        if runnable.len() > MAX_PLATFORMS {
            return Err(OciError(format!(
                "lists {} platforms; at most {MAX_PLATFORMS} are read",
                runnable.len()
            )));
        }
        for d in &runnable {
            d.check("a listed manifest")?;
        }
        return Ok(Document::Index(runnable));
    }
    let config = raw
        .config
        .ok_or_else(|| OciError("is an image manifest without a config".into()))?;
    config.check("the config")?;
    let layers = raw.layers.unwrap_or_default();
    if layers.len() > MAX_LAYERS {
        return Err(OciError(format!(
            "has {} layers; at most {MAX_LAYERS} are read",
            layers.len()
        )));
    }
    for l in &layers {
        l.check("a layer")?;
        if !LAYER_TYPES.contains(&l.media_type.as_str()) {
            return Err(OciError(format!(
                "has a layer {} of media type {:?}, not a filesystem layer",
                l.digest, l.media_type
            )));
        }
    }
    Ok(Document::Manifest(Manifest { config, layers }))
}

/// What a scan needs of an image's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    pub platform: Platform,
    /// `KEY=VALUE`, as the image runs with.
    pub env: Vec<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RawRuntime>,
}

#[derive(Deserialize)]
struct RawRuntime {
    #[serde(default, rename = "Env")]
    env: Option<Vec<String>>,
}

/// Reads an image config (`application/vnd.oci.image.config.v1+json`).
pub fn config(bytes: &[u8]) -> Result<ImageConfig, OciError> {
    let raw: RawConfig = serde_json::from_slice(bytes)
        .map_err(|e| OciError(format!("is not an image config: {e}")))?;
    Ok(ImageConfig {
        platform: Platform {
            os: raw.os,
            architecture: raw.architecture,
            variant: raw.variant,
        },
        env: raw.config.and_then(|c| c.env).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn documents_are_what_they_say_and_never_both() {
        let layer = json!({"mediaType": LAYER_TYPES[1], "digest": d(2), "size": 3});
        let cfg = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(1), "size": 2});
        let m = json!({"mediaType": OCI_MANIFEST, "config": cfg, "layers": [layer]});
        let Document::Manifest(m) = document(m.to_string().as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!((m.config.size, m.layers.len()), (2, 1));
        let entry = |n, os: &str, arch: &str| json!({"mediaType": OCI_MANIFEST, "digest": d(n), "size": 1, "platform": {"os": os, "architecture": arch}});
        let index = json!({"mediaType": OCI_INDEX, "manifests": [entry(1, "linux", "amd64"), entry(2, "unknown", "unknown"), entry(3, "linux", "arm64")]});
        let Document::Index(list) = document(index.to_string().as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[1].platform.as_ref().unwrap().to_string(),
            "linux/arm64"
        );
        let refused = [
            (
                json!({"mediaType": OCI_MANIFEST, "config": cfg, "layers": [], "manifests": []}),
                "ambiguous",
            ),
            (
                json!({"mediaType": OCI_INDEX, "manifests": [], "layers": []}),
                "ambiguous",
            ),
            (
                json!({"mediaType": "application/vnd.cncf.helm.config.v1+json", "config": cfg}),
                "not an image",
            ),
            (
                json!({"mediaType": OCI_MANIFEST, "config": cfg, "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": d(2), "size": 1}]}),
                "not a filesystem layer",
            ),
            (
                json!({"mediaType": OCI_MANIFEST, "config": cfg, "layers": [{"mediaType": LAYER_TYPES[0], "digest": "sha256:../../x", "size": 1}]}),
                "invalid digest",
            ),
            (
                json!({"mediaType": OCI_MANIFEST, "config": cfg, "layers": [{"mediaType": LAYER_TYPES[0], "digest": d(2), "size": -1}]}),
                "not an image manifest",
            ),
            (
                json!({"mediaType": OCI_MANIFEST, "layers": []}),
                "without a config",
            ),
            (json!({}), "neither"),
        ];
        for (doc, why) in refused {
            let e = document(doc.to_string().as_bytes()).unwrap_err();
            assert!(e.0.contains(why), "{doc}: {e}");
        }
        let many: Vec<_> = (0..=MAX_LAYERS).map(|_| layer.clone()).collect();
        let e = document(
            json!({"config": cfg, "layers": many})
                .to_string()
                .as_bytes(),
        );
        assert!(e.unwrap_err().0.contains("at most 256"));
    }

    #[test]
    fn platforms_and_configs() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        let any_arm = Platform::parse("linux/arm").unwrap();
        assert!(any_arm.matches(&p) && !p.matches(&any_arm));
        assert!(Platform::parse("linux").is_err() && Platform::parse("/amd64").is_err());
        let c = config(br#"{"os":"linux","architecture":"amd64","config":{"Env":["PATH=/bin","GODEBUG=fips140=on"]}}"#).unwrap();
        assert_eq!(c.platform.to_string(), "linux/amd64");
        assert_eq!(c.env, ["PATH=/bin", "GODEBUG=fips140=on"]);
        assert_eq!(config(b"{}").unwrap().env, Vec::<String>::new());
        assert!(config(b"\"text\"").is_err());
    }
}
