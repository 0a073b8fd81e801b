//! An image in a registry, read through fipsgate's own client ([`Registry`]): manifests
//! capped and checked, blobs streamed and checked as they arrive. The scan is synchronous;
//! each call waits on the client's runtime.

use std::future::Future;
use std::io::{self, Read};
use std::time::Duration;

use crate::config::AllowedRegistries;
use crate::domain::image::ImageRef;
use crate::scan::oci::Descriptor;

use super::super::registry::{BlobError, BlobStream, Registry, RegistryAuth};
use super::{ImageError, Source};

/// An image reference in its registry, with the credentials to read it.
pub struct RemoteSource {
    image: ImageRef,
    auth: RegistryAuth,
    registry: Registry,
    runtime: tokio::runtime::Runtime,
    /// When every read gives up: a registry that trickles bytes within each read's timeout
    /// still ends here.
    deadline: Option<tokio::time::Instant>,
    /// The document the reference named, once read: a tag is resolved once per source, so
    /// every caller sees the same image.
    root: std::sync::Mutex<Option<(Vec<u8>, String)>>,
}

impl RemoteSource {
    /// `insecure` lists the `host[:port]`s spoken to over plain HTTP; `timeout` bounds each
    /// connection, each read and each manifest.
    pub fn new(
        image: ImageRef,
        auth: RegistryAuth,
        insecure: &[String],
        timeout: Duration,
    ) -> Result<Self, ImageError> {
        let refused = |e: String| ImageError::Refused(format!("registry client: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| refused(e.to_string()))?;
        // Every registry the user names may be read: the allow-list is admission's.
        let allowed = AllowedRegistries::new(&[]).map_err(refused)?;
        let registry = {
            let _guard = runtime.enter();
            Registry::new(insecure, allowed, timeout).map_err(refused)?
        };
        Ok(Self {
            image,
            auth,
            registry,
            runtime,
            deadline: None,
            root: std::sync::Mutex::new(None),
        })
    }

    /// Gives the whole image `total` from now: every read after that fails.
    pub fn with_deadline(mut self, total: Duration) -> Self {
        self.deadline = Some(tokio::time::Instant::now() + total);
        self
    }

    /// `f` on the runtime, within the deadline.
    fn wait<T, E>(&self, f: impl Future<Output = Result<T, E>>) -> Result<T, ImageError>
    where
        ImageError: From<E>,
    {
        match within(&self.runtime, self.deadline, f) {
            Some(r) => Ok(r?),
            None => Err(ImageError::Refused(format!(
                "{}: not read within the time given to the whole image",
                self.image
            ))),
        }
    }
}

/// `f` on `runtime`, `None` when `deadline` passes first.
fn within<T>(
    runtime: &tokio::runtime::Runtime,
    deadline: Option<tokio::time::Instant>,
    f: impl Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(d) => runtime.block_on(tokio::time::timeout_at(d, f)).ok(),
        None => Some(runtime.block_on(f)),
    }
}

impl Source for RemoteSource {
    fn reference(&self) -> String {
        self.image.to_string()
    }

    fn repository(&self) -> Option<String> {
        Some(self.image.name().to_string())
    }

    fn root(&self) -> Result<(Vec<u8>, String), ImageError> {
        let mut root = self.root.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(read) = root.as_ref() {
            return Ok(read.clone());
        }
        let reference = match (self.image.digest(), self.image.tag()) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        };
        let doc = self.registry.document(&self.image, &self.auth, reference);
        let read = self.wait(doc)?;
        *root = Some(read.clone());
        Ok(read)
    }

    fn manifest(&self, d: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let doc = self.registry.document(&self.image, &self.auth, &d.digest);
        Ok(self.wait(doc)?.0)
    }

    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + '_>, ImageError> {
        let open = self
            .registry
            .blob(&self.image, &self.auth, &d.digest, d.size);
        let stream = self.wait(open)?;
        Ok(Box::new(Blob {
            runtime: &self.runtime,
            deadline: self.deadline,
            stream,
            piece: bytes::Bytes::new(),
            done: false,
        }))
    }
}

/// A registry blob as a reader: each piece waited for on the runtime.
struct Blob<'a> {
    runtime: &'a tokio::runtime::Runtime,
    deadline: Option<tokio::time::Instant>,
    stream: BlobStream,
    piece: bytes::Bytes,
    done: bool,
}

impl Read for Blob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.piece.is_empty() && !self.done {
            let next = within(self.runtime, self.deadline, self.stream.chunk())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "not read within the time given to the whole image",
                    )
                })?
                .map_err(|e| match e {
                    BlobError::Registry(r) => io::Error::other(r),
                    e => io::Error::new(io::ErrorKind::InvalidData, e),
                })?;
            match next {
                Some(piece) => self.piece = piece,
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece[..n]);
        let _ = self.piece.split_to(n);
        Ok(n)
    }
}
