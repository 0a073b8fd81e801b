//! OCI images built in Rust for `fipsgate scan`: tar layers (from a directory, or entry by
//! entry, whiteouts too), gzip or zstd, configs with an environment, manifests, indexes, and
//! OCI layout directories. Used by the integration tests and `benches/scan.rs`.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};

pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

pub fn sha256(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A layer's tar stream, built entry by entry.
pub struct Layer(tar::Builder<Vec<u8>>);

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Deterministic);
        Self(b)
    }

    pub fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A whiteout: `path` of the layers below is deleted.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, 0o644, b"")
    }

    /// Everything under `root` (symlinks as symlinks), at the same paths.
    pub fn dir(mut self, root: &Path) -> Self {
        self.0.append_dir_all(".", root).unwrap();
        self
    }

    pub fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// An image: its blobs (config, then layers), its manifest, and the descriptor an index lists.
pub struct Image {
    pub blobs: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub digest: String,
    pub descriptor: Value,
}

/// An image of `os/arch` with these `(blob, media type)` layers and environment.
pub fn image(platform: &str, layers: &[(Vec<u8>, &str)], env: &[&str]) -> Image {
    let (os, arch) = platform.split_once('/').unwrap();
    let config = serde_json::to_vec(&json!({
        "os": os, "architecture": arch,
        "config": {"Env": env},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    let descriptors: Vec<Value> = (layers.iter())
        .map(|(b, t)| json!({"mediaType": t, "digest": sha256(b), "size": b.len()}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": sha256(&config), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let descriptor = json!({"mediaType": MANIFEST, "digest": digest, "size": manifest.len(),
        "platform": {"os": os, "architecture": arch}});
    let mut blobs = vec![config];
    blobs.extend(layers.iter().map(|(b, _)| b.clone()));
    Image {
        blobs,
        manifest,
        digest,
        descriptor,
    }
}

/// An index of these images: its bytes and digest.
pub fn index(images: &[&Image]) -> (Vec<u8>, String) {
    let manifests: Vec<&Value> = images.iter().map(|i| &i.descriptor).collect();
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": INDEX, "manifests": manifests,
    }))
    .unwrap();
    let digest = sha256(&bytes);
    (bytes, digest)
}

/// An OCI image layout directory being written.
pub struct Layout<'a> {
    pub dir: &'a Path,
    entries: Vec<Value>,
}

impl<'a> Layout<'a> {
    pub fn new(dir: &'a Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self {
            dir,
            entries: Vec::new(),
        }
    }

    /// Writes a blob; returns its digest.
    pub fn blob(&self, data: &[u8]) -> String {
        let d = sha256(data);
        let path = self.blob_path(&d);
        std::fs::write(path, data).unwrap();
        d
    }

    pub fn blob_path(&self, digest: &str) -> std::path::PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.join("blobs/sha256").join(hex)
    }

    /// An image's blobs and manifest, tagged `tag` in index.json.
    pub fn image(&mut self, tag: &str, image: &Image) {
        for b in &image.blobs {
            self.blob(b);
        }
        self.blob(&image.manifest);
        self.tag(tag, &image.descriptor);
    }

    /// An index and its images, tagged `tag`.
    pub fn index(&mut self, tag: &str, images: &[&Image]) -> String {
        for i in images {
            for b in &i.blobs {
                self.blob(b);
            }
            self.blob(&i.manifest);
        }
        let (bytes, digest) = index(images);
        self.blob(&bytes);
        self.tag(
            tag,
            &json!({"mediaType": INDEX, "digest": digest, "size": bytes.len()}),
        );
        digest
    }

    fn tag(&mut self, tag: &str, descriptor: &Value) {
        let mut d = descriptor.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.entries.push(d);
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": self.entries});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}
