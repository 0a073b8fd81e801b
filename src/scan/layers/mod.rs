//! An image's layers applied in order, as the [`Tree`] a scan reads, without holding a layer in
//! memory. Each layer is streamed once ([`Merged::apply`]): its compression is told by its
//! first bytes, its tar entries build the merged index (path → what is there, and which layer
//! put it there), whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) remove what
//! lower layers put there, a hard link becomes a regular file with its target's content, and a
//! symlink stays a symlink (the scanner resolves it inside the tree).
//!
//! File contents are not kept in memory. What the scanner reads beyond a file's first bytes is
//! decided by a sniff while streaming ([`Keep`]): ELF files and jars (up to the scan's file
//! limit) and OpenSSL and package configuration (by name, the first MiB) are copied into a
//! [`Store`] (on disk in `fipsgate scan`: infra's scratch file), and every other file keeps
//! only its first four bytes, which is all the scanner reads of it. Memory is the index (a
//! bounded number of entries) and the decoders' buffers, whatever the image's size.
//!
//! Paths follow overlayfs: an entry replaces what is at its path, a directory an entry needs
//! replaces a non-directory in its way, a non-directory replaces a directory and everything
//! under it. A path with a `..` component, a hard link to nothing, more than
//! [`MAX_ENTRIES`] entries (or [`MAX_NAME_BYTES`] of their names) or a broken stream is an
//! error, never skipped.

mod decode;
mod walk;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};

use super::tree::{Entry, EntryKind, Tree, TreeError};

pub use decode::Compression;
use walk::{Kind, Walker};

/// The most entries a merged image may hold.
pub const MAX_ENTRIES: usize = 500_000;
/// The most bytes of paths and symlink targets a merged image may hold.
pub const MAX_NAME_BYTES: usize = 48 << 20;
/// The longest path accepted (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// Configuration files are read up to this much (the scanner's bound).
const MAX_TEXT: u64 = super::run::MAX_CONFIG;
const ELF_MAGIC: &[u8] = b"\x7fELF";
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// Buffer between the decoder and the tar walker.
const BUFFER: usize = 256 << 10;

/// Where kept contents are: an offset and a length in a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    pub offset: u64,
    pub len: u64,
}

/// Where kept file contents go while layers are applied, and are read from by the scan.
pub trait Store {
    /// Keeps `head` and then everything `rest` yields, as one content.
    fn keep(&mut self, head: &[u8], rest: &mut dyn Read) -> io::Result<Kept>;
    /// A kept content.
    fn open(&self, kept: Kept) -> io::Result<Box<dyn Read + '_>>;
}

/// A store in memory: tests, and small images.
#[derive(Debug, Default)]
pub struct MemStore {
    bytes: Vec<u8>,
}

impl Store for MemStore {
    fn keep(&mut self, head: &[u8], rest: &mut dyn Read) -> io::Result<Kept> {
        let offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(head);
        rest.read_to_end(&mut self.bytes)?;
        Ok(Kept {
            offset,
            len: self.bytes.len() as u64 - offset,
        })
    }

    fn open(&self, kept: Kept) -> io::Result<Box<dyn Read + '_>> {
        let range = kept.offset as usize..(kept.offset + kept.len) as usize;
        let data = self
            .bytes
            .get(range)
            .ok_or_else(|| io::Error::other("no such content"))?;
        Ok(Box::new(data))
    }
}

/// Which files' contents are kept.
#[derive(Clone, Debug)]
pub struct Keep {
    /// ELF files and jars up to this size (the scan's [`super::Limits::max_file_bytes`]).
    pub max_file_bytes: u64,
    /// Paths kept as configuration besides those kept by name (`OPENSSL_CONF`'s).
    pub paths: Vec<String>,
}

impl Keep {
    /// Configuration the scanner may read: OpenSSL's (`*.cnf`, `*.conf`, `*.config`, anything
    /// under a directory named `ssl`, `tls`, `pki` or `crypto-policies`) and dpkg's database.
    fn text(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        let by_name = [".cnf", ".conf", ".config"]
            .iter()
            .any(|e| name.ends_with(e));
        let dirs = ["ssl", "tls", "pki", "crypto-policies"];
        let in_dir = (path.split('/').rev().skip(1)).any(|c| dirs.contains(&c));
        by_name || in_dir || path == "/var/lib/dpkg/status" || self.paths.iter().any(|p| p == path)
    }
}

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{0}")]
    Read(#[from] io::Error),
    #[error("not a tar archive: {0}")]
    Tar(String),
    #[error("entry {path:?}: {why}")]
    Entry { path: String, why: String },
    #[error("more than {MAX_ENTRIES} entries, or {} MiB of paths: refused", MAX_NAME_BYTES >> 20)]
    TooManyEntries,
}

impl From<walk::TarError> for LayerError {
    fn from(e: walk::TarError) -> Self {
        match e {
            walk::TarError::Io(e) => LayerError::Read(e),
            walk::TarError::Format(s) => LayerError::Tar(s),
        }
    }
}

/// What a regular file's contents are, for the scan.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Content {
    /// Only the first bytes (the whole file when it is that short).
    Head {
        bytes: [u8; 4],
        len: u8,
    },
    Kept(Kept),
    /// Cannot be read, and why.
    Unavailable(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File {
        size: u64,
        executable: bool,
        content: Content,
    },
    Symlink(String),
    /// Devices and fifos: they hide what is below, and are not listed.
    Special,
}

impl Node {
    fn name_bytes(&self) -> usize {
        match self {
            Node::Symlink(t) => t.len(),
            _ => 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Slot {
    /// The layer (from 1) that put it there.
    layer: u32,
    node: Node,
}

/// What one layer brought.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub compression: Option<Compression>,
    pub entries: u64,
    pub kept_bytes: u64,
}

/// The merged view of the layers applied so far.
#[derive(Debug)]
pub struct Merged {
    nodes: BTreeMap<String, Slot>,
    /// Bytes of paths and symlink targets held.
    name_bytes: usize,
    applied: u32,
    /// [`MAX_ENTRIES`] and [`MAX_NAME_BYTES`] (smaller in tests).
    bounds: (usize, usize),
}

impl Default for Merged {
    fn default() -> Self {
        Self::new()
    }
}

impl Merged {
    pub fn new() -> Self {
        Self {
            nodes: BTreeMap::new(),
            name_bytes: 0,
            applied: 0,
            bounds: (MAX_ENTRIES, MAX_NAME_BYTES),
        }
    }

    /// Applies the next layer from its blob's bytes (compressed or not), keeping contents in
    /// `store` as `keep` says. The blob is read to its end, so that a reader below that checks
    /// a digest sees all of it.
    pub fn apply(
        &mut self,
        blob: &mut dyn Read,
        keep: &Keep,
        store: &mut dyn Store,
    ) -> Result<LayerStats, LayerError> {
        self.applied += 1;
        let layer = self.applied;
        let mut head = Vec::with_capacity(4);
        (&mut *blob).take(4).read_to_end(&mut head)?;
        let compression = Compression::sniff(&head);
        let mut stats = LayerStats {
            compression: Some(compression),
            ..LayerStats::default()
        };
        {
            let src = BufReader::with_capacity(BUFFER, head.as_slice().chain(&mut *blob));
            let tar = BufReader::with_capacity(BUFFER, decode::decoder(compression, src));
            let mut walker = Walker::new(tar);
            while let Some(h) = walker.next()? {
                stats.entries += 1;
                self.entry(layer, h, &mut walker, keep, store, &mut stats)?;
            }
        }
        // The rest of the blob after the archive's end: read, not decompressed.
        io::copy(blob, &mut io::sink())?;
        Ok(stats)
    }

    fn entry<R: Read>(
        &mut self,
        layer: u32,
        h: walk::Header,
        walker: &mut Walker<R>,
        keep: &Keep,
        store: &mut dyn Store,
        stats: &mut LayerStats,
    ) -> Result<(), LayerError> {
        let shown = || String::from_utf8_lossy(&h.path).into_owned();
        let bad = |why: &str| LayerError::Entry {
            path: shown(),
            why: why.to_string(),
        };
        let Some(path) = entry_path(&h.path).map_err(|why| bad(&why))? else {
            return Ok(()); // the root itself
        };
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let dir = if dir.is_empty() { "/" } else { dir };
        if let Some(hidden) = name.strip_prefix(".wh.") {
            match hidden {
                ".wh..opq" => self.opaque(dir, layer),
                // aufs' own bookkeeping (`.wh..wh.plnk`): nothing of the image.
                h if h.starts_with(".wh.") => {}
                "" => return Err(bad("a whiteout without a name")),
                h => self.whiteout(&join(dir, h), layer),
            }
            return Ok(());
        }
        let node = match h.kind {
            Kind::Dir => Node::Dir,
            Kind::Special => Node::Special,
            Kind::Symlink(target) if target.len() > MAX_PATH => {
                return Err(bad(&format!(
                    "a symlink target longer than {MAX_PATH} bytes: refused"
                )));
            }
            Kind::Symlink(target) => Node::Symlink(String::from_utf8_lossy(&target).into_owned()),
            Kind::Hardlink(target) => {
                let target = entry_path(&target)
                    .map_err(|why| bad(&format!("hard link target: {why}")))?
                    .unwrap_or_else(|| "/".into());
                match self.nodes.get(&target) {
                    Some(Slot {
                        node: n @ Node::File { .. },
                        ..
                    }) => n.clone(),
                    _ => {
                        return Err(bad(&format!(
                            "hard link to {target}, which is not a file of the layers so far"
                        )));
                    }
                }
            }
            Kind::Sparse => Node::File {
                size: h.size,
                executable: h.mode & 0o111 != 0,
                content: Content::Unavailable("a sparse file in the layer: not read"),
            },
            Kind::File => {
                let content = file_content(&path, h.size, walker, keep, store)
                    .map_err(|e| bad(&e.to_string()))?;
                if let Content::Kept(k) = &content {
                    stats.kept_bytes += k.len;
                }
                Node::File {
                    size: h.size,
                    executable: h.mode & 0o111 != 0,
                    content,
                }
            }
        };
        self.put(path, node, layer)
    }

    /// Puts `node` at `path`, over what was there: directories on the way replace
    /// non-directories, and a non-directory replaces a directory with all it held.
    fn put(&mut self, path: String, node: Node, layer: u32) -> Result<(), LayerError> {
        let mut at = 0;
        while let Some(i) = path[at + 1..].find('/') {
            at += 1 + i;
            let ancestor = &path[..at];
            let is_dir = matches!(
                self.nodes.get(ancestor),
                Some(Slot {
                    node: Node::Dir,
                    ..
                })
            );
            if !is_dir {
                self.insert(ancestor.to_string(), Node::Dir, layer)?;
            }
        }
        let was_dir = matches!(
            self.nodes.get(&path),
            Some(Slot {
                node: Node::Dir,
                ..
            })
        );
        if was_dir && node != Node::Dir {
            self.remove_under(&path, |_| true);
        }
        self.insert(path, node, layer)
    }

    fn insert(&mut self, path: String, node: Node, layer: u32) -> Result<(), LayerError> {
        let added = path.len() + node.name_bytes();
        let old = self
            .nodes
            .get(&path)
            .map(|s| path.len() + s.node.name_bytes());
        let bytes = self.name_bytes + added - old.unwrap_or(0);
        let (max_entries, max_bytes) = self.bounds;
        if (old.is_none() && self.nodes.len() >= max_entries) || bytes > max_bytes {
            return Err(LayerError::TooManyEntries);
        }
        self.name_bytes = bytes;
        self.nodes.insert(path, Slot { layer, node });
        Ok(())
    }

    fn remove(&mut self, path: &str) {
        if let Some(s) = self.nodes.remove(path) {
            self.name_bytes -= path.len() + s.node.name_bytes();
        }
    }

    /// `.wh.NAME`: what lower layers put at `path`, and under it, is gone.
    fn whiteout(&mut self, path: &str, layer: u32) {
        if self.nodes.get(path).is_some_and(|s| s.layer < layer) {
            self.remove(path);
        }
        self.remove_under(path, |s| s.layer < layer);
    }

    /// `.wh..wh..opq`: what lower layers put under `dir` is gone; the directory stays.
    fn opaque(&mut self, dir: &str, layer: u32) {
        self.remove_under(dir, |s| s.layer < layer);
    }

    /// Removes the entries under `dir` (not `dir` itself) that `which` picks.
    fn remove_under(&mut self, dir: &str, which: impl Fn(&Slot) -> bool) {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let gone: Vec<String> = (self.nodes.range(prefix.clone()..))
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(_, s)| which(s))
            .map(|(p, _)| p.clone())
            .collect();
        for p in gone {
            self.remove(&p);
        }
    }

    /// Entries of the merged view.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The merged view as a tree whose kept contents are read from `store`.
    pub fn tree<'s>(self, store: &'s dyn Store) -> LayeredTree<'s> {
        LayeredTree {
            merged: self,
            store,
            missed: RefCell::default(),
        }
    }
}

/// A regular file's content as `keep` says: whole (ELF, jar), its first MiB (configuration),
/// else its first bytes.
fn file_content<R: Read>(
    path: &str,
    size: u64,
    walker: &mut Walker<R>,
    keep: &Keep,
    store: &mut dyn Store,
) -> io::Result<Content> {
    let mut data = walker.data();
    let mut head = Vec::with_capacity(4);
    (&mut data).take(4).read_to_end(&mut head)?;
    let elf = head == ELF_MAGIC;
    let jar = super::run::is_jar(path) && head == ZIP_MAGIC;
    let kept = if (elf || jar) && size <= keep.max_file_bytes {
        store.keep(&head, &mut data)?
    } else if keep.text(path) {
        let rest = MAX_TEXT.saturating_sub(head.len() as u64);
        store.keep(&head, &mut (&mut data).take(rest))?
    } else {
        let mut bytes = [0u8; 4];
        bytes[..head.len()].copy_from_slice(&head);
        return Ok(Content::Head {
            bytes,
            len: head.len() as u8,
        });
    };
    Ok(Content::Kept(kept))
}

/// A tar entry's path as the tree spells it (`./usr/bin/x` → `/usr/bin/x`); `None` for the
/// root. A `..` component, or a path longer than [`MAX_PATH`], is refused.
fn entry_path(raw: &[u8]) -> Result<Option<String>, String> {
    let s = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("a path with a \"..\" component: refused".into()),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let path = format!("/{}", parts.join("/"));
    if path.len() > MAX_PATH {
        return Err(format!("a path longer than {MAX_PATH} bytes: refused"));
    }
    Ok(Some(path))
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The merged layers as a [`Tree`].
pub struct LayeredTree<'s> {
    merged: Merged,
    store: &'s dyn Store,
    missed: RefCell<Vec<String>>,
}

impl LayeredTree<'_> {
    /// Files the scan wanted more of than was kept (none, unless a configuration file has a
    /// name [`Keep`] does not know).
    pub fn missed(&self) -> Vec<String> {
        self.missed.borrow().clone()
    }
}

impl Tree for LayeredTree<'_> {
    fn entries(&self) -> Result<Vec<Entry>, TreeError> {
        Ok((self.merged.nodes.iter())
            .filter_map(|(path, slot)| {
                let kind = match &slot.node {
                    Node::Dir => EntryKind::Dir,
                    Node::File {
                        size, executable, ..
                    } => EntryKind::File {
                        size: *size,
                        executable: *executable,
                    },
                    Node::Symlink(t) => EntryKind::Symlink(t.clone()),
                    Node::Special => return None,
                };
                Some(Entry {
                    path: path.clone(),
                    kind,
                })
            })
            .collect())
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>, TreeError> {
        let Some((
            key,
            Slot {
                node: Node::File { size, content, .. },
                ..
            },
        )) = self.merged.nodes.get_key_value(path)
        else {
            return Err(TreeError::NotAFile { path: path.into() });
        };
        let io = |source| TreeError::Io {
            path: path.into(),
            source,
        };
        match content {
            Content::Kept(k) => self.store.open(*k).map_err(io),
            Content::Unavailable(why) => Err(io(io::Error::other(*why))),
            Content::Head { bytes, len } => {
                let head = &bytes[..usize::from(*len)];
                if *size <= u64::from(*len) {
                    return Ok(Box::new(head));
                }
                Ok(Box::new(head.chain(NotKept {
                    path: key,
                    missed: &self.missed,
                })))
            }
        }
    }
}

/// What follows a file's first bytes when only those were kept: an error, noted.
struct NotKept<'a> {
    path: &'a str,
    missed: &'a RefCell<Vec<String>>,
}

impl Read for NotKept<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut missed = self.missed.borrow_mut();
        if !missed.iter().any(|p| p == self.path) {
            missed.push(self.path.to_string());
        }
        Err(io::Error::other(
            "only the first bytes of this file were kept from the layers",
        ))
    }
}

#[cfg(test)]
mod tests;
