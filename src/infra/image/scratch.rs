//! The scratch file where the contents a scan reads are kept while layers are applied: one
//! unnamed temporary file (gone when fipsgate exits, however it exits), appended to and read
//! at offsets, within a byte bound.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;

use crate::scan::layers::{Kept, Store};

/// Contents kept on disk, at most `cap` bytes in all.
#[derive(Debug)]
pub struct Scratch {
    file: File,
    len: u64,
    cap: u64,
}

impl Scratch {
    /// A new scratch file in `$TMPDIR`.
    pub fn new(cap: u64) -> io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile()?,
            len: 0,
            cap,
        })
    }

    /// Bytes kept so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.len + bytes.len() as u64 > self.cap {
            return Err(io::Error::other(format!(
                "the scratch space for kept files is full ({} MiB; --max-scratch-mib)",
                self.cap >> 20
            )));
        }
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

impl Store for Scratch {
    fn keep(&mut self, head: &[u8], rest: &mut dyn Read) -> io::Result<Kept> {
        let offset = self.len;
        self.append(head)?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match rest.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.append(&buf[..n])?;
        }
        Ok(Kept {
            offset,
            len: self.len - offset,
        })
    }

    fn open(&self, kept: Kept) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(At {
            file: &self.file,
            at: kept.offset,
            end: kept.offset + kept.len,
        }))
    }
}

/// A range of the scratch file, read at its offsets (readers never share a position).
struct At<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the scratch file is shorter than what was kept",
            ));
        }
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_contents_read_back_and_the_bound_holds() {
        let mut s = Scratch::new(16).unwrap();
        let a = s.keep(b"ab", &mut &b"cdef"[..]).unwrap();
        let b = s.keep(b"", &mut &b"xyz"[..]).unwrap();
        let read = |k| {
            let mut out = Vec::new();
            s.open(k).unwrap().read_to_end(&mut out).unwrap();
            out
        };
        assert_eq!((read(a), read(b)), (b"abcdef".to_vec(), b"xyz".to_vec()));
        let e = s.keep(b"", &mut &[0u8; 8][..]).unwrap_err();
        assert!(e.to_string().contains("scratch space"), "{e}");
        assert_eq!(s.len(), 9);
    }
}
