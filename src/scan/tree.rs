//! The filesystem a scan reads: a [`Tree`] of entries with absolute, `/`-separated paths, as an
//! image's merged layers or a directory present them. Symlinks are resolved here, inside the
//! tree (an absolute target starts at the tree's root, `..` stops there), never by the host.

use std::collections::BTreeMap;
use std::io::Read;

/// What an entry of a tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (hard links are regular files too).
    File {
        size: u64,
        executable: bool,
    },
    Dir,
    /// A symbolic link and its target as stored.
    Symlink(String),
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Absolute and normalised: `/usr/bin/openssl`.
    pub path: String,
    pub kind: EntryKind,
}

/// Why a tree could not be listed or a file read.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a regular file in the tree")]
    NotAFile { path: String },
}

/// A read-only filesystem the scanner walks: a directory, or an image's layers applied in
/// order (whiteouts, `.wh..wh..opq` and deleted parents removed; hard links as regular files).
/// Files are read sequentially, each once or twice; the scanner bounds how much.
pub trait Tree {
    /// Every entry, in any order. Special files (devices, sockets) may be left out.
    fn entries(&self) -> Result<Vec<Entry>, TreeError>;
    /// A regular file's contents. `path` is one of [`Tree::entries`]' files as [`normalize`]
    /// spells it (`/usr/bin/x` for a tar entry `./usr/bin/x`); implementations must not follow
    /// symlinks on the way (the scanner resolves them itself).
    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>, TreeError>;
}

/// A tree held in memory: tests, and small layers.
#[derive(Clone, Debug, Default)]
pub struct MemTree {
    entries: BTreeMap<String, (EntryKind, Vec<u8>)>,
}

impl MemTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regular file (and its parent directories).
    pub fn file(mut self, path: &str, executable: bool, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        let size = data.len() as u64;
        self.add(path, EntryKind::File { size, executable }, data);
        self
    }

    /// Adds a symbolic link (and its parent directories).
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.add(path, EntryKind::Symlink(target.into()), Vec::new());
        self
    }

    fn add(&mut self, path: &str, kind: EntryKind, data: Vec<u8>) {
        let path = normalize(path);
        let mut parent = parent(&path);
        while let Some(p) = parent {
            (self.entries)
                .entry(p.to_string())
                .or_insert((EntryKind::Dir, Vec::new()));
            parent = self::parent(p);
        }
        self.entries.insert(path, (kind, data));
    }
}

impl Tree for MemTree {
    fn entries(&self) -> Result<Vec<Entry>, TreeError> {
        Ok((self.entries.iter())
            .map(|(path, (kind, _))| Entry {
                path: path.clone(),
                kind: kind.clone(),
            })
            .collect())
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>, TreeError> {
        match self.entries.get(path) {
            Some((EntryKind::File { .. }, data)) => Ok(Box::new(data.as_slice())),
            _ => Err(TreeError::NotAFile { path: path.into() }),
        }
    }
}

/// `a//b/./c/../d` -> `/a/b/d`: absolute, no empty, `.` or `..` components (`..` stops at `/`).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The parent directory of an absolute path; none for `/`.
pub fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// An index of a tree's entries that resolves symlinks inside it.
#[derive(Debug, Default)]
pub struct Index {
    entries: BTreeMap<String, EntryKind>,
}

/// The most symlinks followed while resolving one path (as Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

impl Index {
    pub fn new(entries: Vec<Entry>) -> Self {
        let entries = (entries.into_iter())
            .map(|e| (normalize(&e.path), e.kind))
            .collect();
        Self { entries }
    }

    /// Every regular file, sorted by path, with its size and executable bit.
    pub fn files(&self) -> impl Iterator<Item = (&str, u64, bool)> {
        self.entries.iter().filter_map(|(p, k)| match k {
            EntryKind::File { size, executable } => Some((p.as_str(), *size, *executable)),
            _ => None,
        })
    }

    /// The regular files directly in a directory, sorted.
    pub fn files_in<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> {
        self.files()
            .map(|f| f.0)
            .filter(move |p| parent(p) == Some(dir))
    }

    /// The entry a path names, every symlink on the way (and at the end) followed inside the
    /// tree; none when it dangles, loops, or goes through a non-directory.
    pub fn resolve(&self, path: &str) -> Option<(String, &EntryKind)> {
        let mut pending: Vec<String> = normalize(path)
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let (mut at, mut links) = (String::from("/"), 0);
        while let Some(c) = pending.pop() {
            let next = if c == ".." {
                parent(&at).unwrap_or("/").to_string()
            } else {
                normalize(&format!("{at}/{c}"))
            };
            match self.entries.get(&next) {
                Some(EntryKind::Symlink(target)) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return None;
                    }
                    if target.starts_with('/') {
                        at = "/".into();
                    }
                    let rest = target.split('/').filter(|c| !c.is_empty() && *c != ".");
                    pending.extend(rest.rev().map(str::to_string));
                }
                Some(EntryKind::Dir) => at = next,
                Some(EntryKind::File { .. }) if pending.is_empty() => at = next,
                _ => return None,
            }
        }
        let kind = self.entries.get(&at)?;
        Some((at, kind))
    }

    /// The regular file a path resolves to.
    pub fn resolve_file(&self, path: &str) -> Option<String> {
        match self.resolve(path)? {
            (p, EntryKind::File { .. }) => Some(p),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_and_stop_at_the_root() {
        assert_eq!(normalize("a//b/./c/../d"), "/a/b/d");
        assert_eq!(normalize("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize(""), "/");
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
    }

    #[test]
    fn symlinks_resolve_inside_the_tree() {
        let tree = MemTree::new()
            .file("/etc/ssl/openssl.cnf", false, "x")
            .symlink("/usr/lib/ssl/openssl.cnf", "/etc/ssl/openssl.cnf")
            .symlink("/usr/lib/ssl/certs", "../../../etc/ssl")
            .symlink("/escape", "../../../../../etc/ssl/openssl.cnf")
            .symlink("/loop", "/loop")
            .symlink("/dangling", "/nowhere");
        let index = Index::new(tree.entries().unwrap());
        let file = |p| index.resolve_file(p);
        assert_eq!(
            file("/usr/lib/ssl/openssl.cnf").as_deref(),
            Some("/etc/ssl/openssl.cnf")
        );
        assert_eq!(
            file("/usr/lib/ssl/certs/openssl.cnf").as_deref(),
            Some("/etc/ssl/openssl.cnf")
        );
        // `..` past the root stays at the root, as in a container.
        assert_eq!(file("/escape").as_deref(), Some("/etc/ssl/openssl.cnf"));
        assert_eq!(file("/loop"), None);
        assert_eq!(file("/dangling"), None);
        assert_eq!(file("/etc/ssl/openssl.cnf/x"), None);
        assert_eq!(index.files().count(), 1);
    }
}
