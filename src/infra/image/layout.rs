//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), as
//! `skopeo copy ... oci:DIR:TAG`, `buildx --output type=oci` or `crane` write it. `DIR:TAG`
//! picks the `index.json` entry whose `org.opencontainers.image.ref.name` is `TAG`; without a
//! tag, the only entry, or `index.json` itself when it lists platforms without names. Every
//! blob is checked against its digest as it is read, like a registry's.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::domain::image::Digest;
use crate::scan::oci::Descriptor;

use super::{Checked, ImageError, Source, blob_error};

/// `index.json` and manifests larger than this are refused.
const MAX_DOCUMENT: u64 = 4 << 20;
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image of an OCI layout directory.
#[derive(Debug, Clone)]
pub struct LayoutSource {
    dir: PathBuf,
    tag: Option<String>,
}

#[derive(serde::Deserialize)]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

impl LayoutSource {
    /// `DIR` or `DIR:TAG`; `DIR` must hold an `oci-layout` file.
    pub fn parse(arg: &str) -> Result<Self, ImageError> {
        let (dir, tag) = match arg.rsplit_once(':') {
            _ if Path::new(arg).is_dir() => (arg, None),
            Some((dir, tag)) if !tag.contains('/') && Path::new(dir).is_dir() => (dir, Some(tag)),
            _ => return Err(ImageError::Refused(format!("{arg}: no such directory"))),
        };
        let dir = PathBuf::from(dir);
        if !dir.join("oci-layout").is_file() {
            return Err(ImageError::Refused(format!(
                "{}: not an OCI image layout (no oci-layout file)",
                dir.display()
            )));
        }
        Ok(Self {
            dir,
            tag: tag.map(str::to_string),
        })
    }

    fn read_capped(&self, path: &Path, what: &str) -> Result<Vec<u8>, ImageError> {
        let io = |source| ImageError::Io {
            what: format!("{what} ({})", path.display()),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_DOCUMENT {
            return Err(ImageError::Refused(format!(
                "{what} is larger than {MAX_DOCUMENT} bytes"
            )));
        }
        Ok(bytes)
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Digest::parse(digest)
            .map_err(|_| ImageError::Refused(format!("invalid digest {digest:?}")))?;
        let (alg, hex) = digest.split_once(':').unwrap_or_default();
        Ok(self.dir.join("blobs").join(alg).join(hex))
    }

    /// The `index.json` entry the tag names (or the only one); `None` when `index.json`
    /// itself is the index to read.
    fn pick(&self, entries: Vec<Descriptor>) -> Result<Option<Descriptor>, ImageError> {
        let name = |d: &Descriptor| d.annotations.get(REF_NAME).cloned();
        let names: Vec<String> = entries.iter().filter_map(name).collect();
        let shown = self.dir.display();
        match &self.tag {
            Some(tag) => match entries.into_iter().find(|d| name(d).as_ref() == Some(tag)) {
                Some(d) => Ok(Some(d)),
                None => Err(ImageError::Refused(format!(
                    "{shown} has no image tagged {tag:?} (tags: {})",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ))),
            },
            None if entries.len() == 1 => Ok(entries.into_iter().next()),
            None if names.is_empty() => Ok(None),
            None => Err(ImageError::Refused(format!(
                "{shown} holds {} images: name one as {shown}:TAG (tags: {})",
                entries.len(),
                names.join(", ")
            ))),
        }
    }
}

impl Source for LayoutSource {
    fn reference(&self) -> String {
        match &self.tag {
            Some(t) => format!("oci:{}:{t}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }

    fn repository(&self) -> Option<String> {
        None
    }

    fn root(&self) -> Result<(Vec<u8>, String), ImageError> {
        let index_json = self.read_capped(&self.dir.join("index.json"), "index.json")?;
        let index: IndexJson = serde_json::from_slice(&index_json)
            .map_err(|e| ImageError::Refused(format!("{}/index.json: {e}", self.dir.display())))?;
        match self.pick(index.manifests)? {
            Some(d) => Ok((self.manifest(&d)?, d.digest)),
            None => {
                let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &index_json);
                let digest = format!("sha256:{}", crate::attest::hex(d.as_ref()));
                Ok((index_json, digest))
            }
        }
    }

    fn manifest(&self, d: &Descriptor) -> Result<Vec<u8>, ImageError> {
        if d.size > MAX_DOCUMENT {
            return Err(ImageError::Refused(format!(
                "manifest {} declares {} bytes (at most {MAX_DOCUMENT})",
                d.digest, d.size
            )));
        }
        let mut bytes = Vec::new();
        let what = format!("manifest {}", d.digest);
        (self.blob(d)?)
            .read_to_end(&mut bytes)
            .map_err(|e| match blob_error(e) {
                Ok(b) => ImageError::Blob(b),
                Err(source) => ImageError::Io { what, source },
            })?;
        Ok(bytes)
    }

    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + '_>, ImageError> {
        let path = self.blob_path(&d.digest)?;
        let file = File::open(&path).map_err(|source| ImageError::Io {
            what: format!("blob {} ({})", d.digest, path.display()),
            source,
        })?;
        Ok(Box::new(Checked::new(file, d)?))
    }
}
