//! Scans kept on disk by image digest, so `audit --scan` resumes where it stopped and a
//! second audit reads what the first scanned. An entry is written whole (a temporary file
//! renamed into place) and read only under the fingerprint of the settings that made it
//! (fipsgate's version, the rule set, the profile, the exceptions, the certificate table, the
//! day), so a change of any of them scans again.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::domain::image::Digest;
use crate::scan::ImageScan;

/// The largest entry read back; a larger file is ignored (scanned again).
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;

/// A directory of scans: `DIR/<fingerprint>/<algorithm>-<hex>.json`.
#[derive(Clone, Debug)]
pub struct ScanCache {
    dir: PathBuf,
}

impl ScanCache {
    /// The cache under `root` for scans made with `settings` (any text that changes when a
    /// scan of the same image could come out differently).
    pub fn new(root: &Path, settings: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, settings.as_bytes());
        let fingerprint: String = (digest.as_ref()[..8].iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            dir: root.join(fingerprint),
        }
    }

    /// `$XDG_CACHE_HOME/fipsgate/scans`, else `~/.cache/fipsgate/scans`.
    pub fn default_root() -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("fipsgate").join("scans"))
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let d = Digest::parse(digest).ok()?;
        Some(
            self.dir
                .join(format!("{}.json", d.as_str().replace(':', "-"))),
        )
    }

    /// The scan of `digest`, if one was kept and reads back whole.
    pub fn get(&self, digest: &str) -> Option<ImageScan> {
        let file = std::fs::File::open(self.path(digest)?).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return None;
        }
        let scan: ImageScan = serde_json::from_slice(&bytes).ok()?;
        (scan.digest == digest).then_some(scan)
    }

    /// Keeps `scan` under its digest.
    pub fn put(&self, scan: &ImageScan) -> std::io::Result<()> {
        let path = self
            .path(&scan.digest)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a digest"))?;
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(&serde_json::to_vec(scan).map_err(std::io::Error::other)?)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fips::Status;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn scan(digest: &str) -> ImageScan {
        ImageScan {
            reference: "reg.example/app:v1".into(),
            digest: digest.into(),
            index: false,
            status: Status::Full,
            reports: Vec::new(),
        }
    }

    #[test]
    fn entries_are_kept_by_digest_under_their_settings() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::new(dir.path(), "profile any");
        assert!(cache.get(D).is_none());
        cache.put(&scan(D)).unwrap();
        assert_eq!(cache.get(D).unwrap().digest, D);
        // Other settings, another cache.
        assert!(
            ScanCache::new(dir.path(), "profile vendor-static-boring")
                .get(D)
                .is_none()
        );
        // Not a digest: nothing is read or written outside the cache.
        assert!(cache.get("../../etc/passwd").is_none());
        assert!(cache.put(&scan("sha256:../x")).is_err());
        // A torn, foreign or oversized entry is scanned again.
        let path = cache.path(D).unwrap();
        std::fs::write(&path, b"{\"reference\":").unwrap();
        assert!(cache.get(D).is_none());
        let other = D.replace("0123", "4567");
        std::fs::write(&path, serde_json::to_vec(&scan(&other)).unwrap()).unwrap();
        assert!(cache.get(D).is_none());
        let big = std::fs::File::create(&path).unwrap();
        big.set_len(MAX_ENTRY_BYTES + 1).unwrap();
        assert!(cache.get(D).is_none());
    }
}
