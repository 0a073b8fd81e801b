//! Images as `fipsgate scan` reads them: from a registry ([`RemoteSource`], fipsgate's own
//! client) or an OCI image layout directory ([`LayoutSource`]). A reference resolves to the
//! platform manifests to scan ([`targets`]: every platform of an index, or those asked for);
//! each is pulled by streaming its layers in order into [`Merged`] ([`pull`]), every blob
//! checked against its digest as it passes, the contents the scan reads kept in a
//! [`Scratch`] file on disk. Nothing holds a layer in memory.

mod layout;
mod remote;
mod scratch;

use std::collections::BTreeSet;
use std::io::{self, Read};

use crate::scan::ImageSubject;
use crate::scan::layers::{Keep, LayerError, Merged, Store};
use crate::scan::oci::{self, Descriptor, Document, ImageConfig, Manifest, OciError, Platform};

use super::registry::{BlobError, RegistryError};

pub use layout::LayoutSource;
pub use remote::RemoteSource;
pub use scratch::Scratch;

/// Indexes nested deeper than this are refused.
const MAX_DEPTH: usize = 4;
/// After a layer fails, this much more of its blob is read to learn whether the blob itself
/// was wrong (then the digest is the error to report).
const DRAIN_ON_ERROR: u64 = 64 << 20;

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{what} {source}")]
    Document { what: String, source: OciError },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {index} of {count} ({digest}): {source}")]
    Layer {
        index: usize,
        count: usize,
        digest: String,
        #[source]
        source: LayerError,
    },
    #[error("{0}")]
    Refused(String),
}

/// Where an image's documents and blobs come from.
pub trait Source {
    /// The reference as it names the image (`registry/repo:tag`, `oci:DIR:TAG`).
    fn reference(&self) -> String;
    /// The repository, for exceptions that name one.
    fn repository(&self) -> Option<String>;
    /// What the reference names: the document and its digest (checked).
    fn root(&self) -> Result<(Vec<u8>, String), ImageError>;
    /// A manifest or index by its descriptor, checked against its digest.
    fn manifest(&self, d: &Descriptor) -> Result<Vec<u8>, ImageError>;
    /// A blob as it arrives; its reader fails with a [`BlobError`] (inside the
    /// `io::Error`) when the bytes are not the descriptor's.
    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + '_>, ImageError>;
}

/// One platform manifest to scan.
#[derive(Debug, Clone)]
pub struct Target {
    pub manifest: Manifest,
    pub digest: String,
    /// As the index says; an image manifest's comes from its config.
    pub platform: Option<Platform>,
    /// The index (the reference's) it was listed in.
    pub index: Option<String>,
}

/// What the reference resolved to, and the platforms to scan.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub digest: String,
    pub index: bool,
    pub targets: Vec<Target>,
}

fn document(what: impl Fn() -> String, bytes: &[u8]) -> Result<Document, ImageError> {
    oci::document(bytes).map_err(|source| ImageError::Document {
        what: what(),
        source,
    })
}

/// The platform manifests the source's reference names: itself when it is an image manifest,
/// else every runnable platform of its index (nested indexes followed, at most [`MAX_DEPTH`]
/// deep, each manifest once) that `platform` matches. None matching is an error.
pub fn targets(source: &dyn Source, platform: Option<&Platform>) -> Result<Resolved, ImageError> {
    let (bytes, digest) = source.root()?;
    let reference = source.reference();
    let what = || format!("{reference} ({digest})");
    match document(what, &bytes)? {
        Document::Manifest(manifest) => Ok(Resolved {
            digest: digest.clone(),
            index: false,
            targets: vec![Target {
                manifest,
                digest,
                platform: None,
                index: None,
            }],
        }),
        Document::Index(list) => {
            let mut walk = Walk {
                source,
                root: &digest,
                platform,
                seen: BTreeSet::from([digest.clone()]),
                found: Vec::new(),
                listed: Vec::new(),
            };
            walk.list(&list, 1)?;
            if walk.found.is_empty() {
                return Err(ImageError::Refused(match platform {
                    Some(p) => format!(
                        "{reference} has no platform {p} (it has: {})",
                        walk.listed.join(", ")
                    ),
                    None => format!("{reference} is an index without runnable platforms"),
                }));
            }
            let targets = walk.found;
            Ok(Resolved {
                digest,
                index: true,
                targets,
            })
        }
    }
}

/// A walk through an index and the indexes it lists.
struct Walk<'a> {
    source: &'a dyn Source,
    /// The reference's index.
    root: &'a str,
    platform: Option<&'a Platform>,
    seen: BTreeSet<String>,
    found: Vec<Target>,
    /// Every platform listed, for the error when none matches.
    listed: Vec<String>,
}

impl Walk<'_> {
    fn list(&mut self, list: &[Descriptor], depth: usize) -> Result<(), ImageError> {
        let root = self.root;
        for d in list {
            if !self.seen.insert(d.digest.clone()) {
                if d.is_index() {
                    return Err(ImageError::Refused(format!(
                        "index {} is listed again inside itself: a manifest loop, refused",
                        d.digest
                    )));
                }
                continue; // the same manifest listed twice: scanned once
            }
            let what = || format!("manifest {} listed by {root}", d.digest);
            if d.is_index() {
                if depth >= MAX_DEPTH {
                    return Err(ImageError::Refused(format!(
                        "indexes nested more than {MAX_DEPTH} deep under {root}: refused"
                    )));
                }
                let Document::Index(inner) = document(what, &self.source.manifest(d)?)? else {
                    return Err(ImageError::Refused(format!("{} is not an index", what())));
                };
                self.list(&inner, depth + 1)?;
                continue;
            }
            if let Some(p) = &d.platform {
                self.listed.push(p.to_string());
            }
            let wanted = match (self.platform, &d.platform) {
                (None, _) => true,
                (Some(want), Some(p)) => want.matches(p),
                (Some(_), None) => false,
            };
            if !wanted {
                continue;
            }
            let Document::Manifest(manifest) = document(what, &self.source.manifest(d)?)? else {
                return Err(ImageError::Refused(format!(
                    "{} is an index, listed as an image manifest",
                    what()
                )));
            };
            self.found.push(Target {
                manifest,
                digest: d.digest.clone(),
                platform: d.platform.clone(),
                index: Some(root.to_string()),
            });
        }
        Ok(())
    }
}

/// A platform's config: its platform and environment.
pub fn config(source: &dyn Source, target: &Target) -> Result<ImageConfig, ImageError> {
    let d = &target.manifest.config;
    if d.size > oci::MAX_CONFIG_BYTES {
        return Err(ImageError::Refused(format!(
            "config {} declares {} bytes (at most {})",
            d.digest,
            d.size,
            oci::MAX_CONFIG_BYTES
        )));
    }
    let mut bytes = Vec::new();
    let io = |source| ImageError::Io {
        what: format!("config {}", d.digest),
        source,
    };
    (source.blob(d)?)
        .read_to_end(&mut bytes)
        .map_err(|e| blob_error(e).map_or_else(io, ImageError::Blob))?;
    oci::config(&bytes).map_err(|source| ImageError::Document {
        what: format!("config {}", d.digest),
        source,
    })
}

/// The subject of a target's scan.
pub fn subject(reference: &str, target: &Target, config: &ImageConfig) -> ImageSubject {
    ImageSubject {
        reference: reference.to_string(),
        digest: target.digest.clone(),
        platform: Some(
            (target.platform.as_ref())
                .unwrap_or(&config.platform)
                .to_string(),
        ),
        index: target.index.clone(),
    }
}

/// What a pull is at, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Layer `index` (from 1) of `count` starts: its digest and compressed size.
    Layer {
        index: usize,
        count: usize,
        digest: &'a str,
        size: u64,
    },
    /// This many more compressed bytes were read.
    Read(u64),
}

/// Applies a platform's layers in order, each streamed once from its blob.
pub fn pull(
    source: &dyn Source,
    target: &Target,
    keep: &Keep,
    store: &mut dyn Store,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Merged, ImageError> {
    let mut merged = Merged::new();
    let count = target.manifest.layers.len();
    for (i, d) in target.manifest.layers.iter().enumerate() {
        progress(Progress::Layer {
            index: i + 1,
            count,
            digest: &d.digest,
            size: d.size,
        });
        let mut blob = Counted {
            inner: source.blob(d)?,
            progress: &mut *progress,
        };
        let applied = merged.apply(&mut blob, keep, store);
        if let Err(source) = applied {
            // A blob that is not the one named explains any error it caused.
            let drained = io::copy(&mut (&mut blob).take(DRAIN_ON_ERROR), &mut io::sink());
            let from_blob = match &source {
                LayerError::Read(e) => blob_error_ref(e),
                _ => None,
            };
            if let Some(e) = from_blob.or_else(|| drained.err().as_ref().and_then(blob_error_ref)) {
                return Err(ImageError::Blob(e));
            }
            return Err(ImageError::Layer {
                index: i + 1,
                count,
                digest: d.digest.clone(),
                source,
            });
        }
    }
    Ok(merged)
}

/// The blob's own refusal inside an IO error, if that is what it is.
fn blob_error(e: io::Error) -> Result<BlobError, io::Error> {
    blob_error_ref(&e).ok_or(e)
}

fn blob_error_ref(e: &io::Error) -> Option<BlobError> {
    (e.get_ref())
        .and_then(|inner| inner.downcast_ref::<BlobError>())
        .cloned()
}

/// A reader that tells how much it read.
struct Counted<'a, 'p> {
    inner: Box<dyn Read + 'a>,
    progress: &'p mut dyn FnMut(Progress<'_>),
}

impl Read for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(Progress::Read(n as u64));
        Ok(n)
    }
}

/// A blob's bytes as a reader, checked as they pass: a [`BlobError`] (inside the
/// `io::Error`) when they are not the descriptor's.
pub(crate) struct Checked<R> {
    inner: R,
    check: super::registry::DigestCheck,
}

impl<R: Read> Checked<R> {
    pub fn new(inner: R, d: &Descriptor) -> Result<Self, BlobError> {
        Ok(Self {
            inner,
            check: super::registry::DigestCheck::new(&d.digest, d.size)?,
        })
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let invalid = |e: BlobError| io::Error::new(io::ErrorKind::InvalidData, e);
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check.finish().map_err(invalid)?;
        } else {
            self.check.update(&buf[..n]).map_err(invalid)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
