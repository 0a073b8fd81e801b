//! A directory as the filesystem of an image (`fipsgate scan --rootfs DIR`). Nothing is
//! followed out of it: symlinks are listed as symlinks (the scanner resolves them inside the
//! tree), and a file is opened only when no component of its path is a symlink on disk.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::scan::tree::{Entry, EntryKind, Tree, TreeError};

/// A root filesystem unpacked in a directory.
#[derive(Clone, Debug)]
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    /// The tree under `root`, which must be a directory.
    pub fn new(root: &Path) -> Result<Self, TreeError> {
        let io = |source| TreeError::Io {
            path: root.display().to_string(),
            source,
        };
        let meta = fs::metadata(root).map_err(io)?;
        if !meta.is_dir() {
            let e = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
            return Err(io(e));
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn on_disk(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

impl Tree for DirTree {
    fn entries(&self) -> Result<Vec<Entry>, TreeError> {
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            let on_disk = self.on_disk(&dir);
            let io = |source| TreeError::Io {
                path: on_disk.display().to_string(),
                source,
            };
            for entry in fs::read_dir(&on_disk).map_err(io)? {
                let entry = entry.map_err(io)?;
                let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
                // DirEntry::metadata does not follow symlinks.
                let meta = entry.metadata().map_err(io)?;
                let kind = if meta.file_type().is_symlink() {
                    let target = fs::read_link(entry.path()).map_err(io)?;
                    EntryKind::Symlink(target.to_string_lossy().into_owned())
                } else if meta.is_dir() {
                    pending.push(path.clone());
                    EntryKind::Dir
                } else if meta.is_file() {
                    let executable = meta.permissions().mode() & 0o111 != 0;
                    EntryKind::File {
                        size: meta.len(),
                        executable,
                    }
                } else {
                    continue; // devices, sockets, fifos
                };
                out.push(Entry { path, kind });
            }
        }
        Ok(out)
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>, TreeError> {
        let not_a_file = || TreeError::NotAFile {
            path: path.to_string(),
        };
        let mut at = self.root.clone();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            if matches!(component, "." | "..") {
                return Err(not_a_file());
            }
            at.push(component);
            let meta = fs::symlink_metadata(&at).map_err(|source| TreeError::Io {
                path: at.display().to_string(),
                source,
            })?;
            if meta.file_type().is_symlink() {
                return Err(not_a_file());
            }
        }
        if !fs::symlink_metadata(&at).is_ok_and(|m| m.is_file()) {
            return Err(not_a_file());
        }
        let file = fs::File::open(&at).map_err(|source| TreeError::Io {
            path: at.display().to_string(),
            source,
        })?;
        Ok(Box::new(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_listed_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "outside").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(root.join("usr/bin/tool"), "\x7fELF").unwrap();
        fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/tool", root.join("link")).unwrap();
        let tree = DirTree::new(root).unwrap();
        let mut entries = tree.entries().unwrap();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let outside_target = outside.path().to_string_lossy().into_owned();
        assert_eq!(
            entries,
            [
                Entry {
                    path: "/escape".into(),
                    kind: EntryKind::Symlink(outside_target)
                },
                Entry {
                    path: "/link".into(),
                    kind: EntryKind::Symlink("/usr/bin/tool".into())
                },
                Entry {
                    path: "/usr".into(),
                    kind: EntryKind::Dir
                },
                Entry {
                    path: "/usr/bin".into(),
                    kind: EntryKind::Dir
                },
                Entry {
                    path: "/usr/bin/tool".into(),
                    kind: EntryKind::File {
                        size: 4,
                        executable: true
                    }
                },
            ]
        );
        let mut text = String::new();
        tree.open("/usr/bin/tool")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "\x7fELF");
        assert!(
            tree.open("/escape/secret").is_err(),
            "through a symlink out of the root"
        );
        assert!(tree.open("/link").is_err(), "a symlink itself");
        assert!(tree.open("/usr/../escape/secret").is_err());
        assert!(DirTree::new(&root.join("usr/bin/tool")).is_err());
    }
}
