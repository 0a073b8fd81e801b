//! A tar stream, header by header, with every bound of its own: the `tar` crate parses the
//! fields of a header (octal and base-256 numbers, the ustar prefix), this walker reads the
//! stream. Extension headers (PAX `x`/`g`, GNU `L`/`K`) are read whole only up to a cap, a
//! header's checksum is checked, and a stream that ends inside an entry is an error.

use std::io::{self, Read};

const BLOCK: usize = 512;
/// A PAX header larger than this is refused (they carry paths and a few attributes).
const MAX_PAX: u64 = 1 << 20;
/// A GNU long name or link target larger than this is refused.
const MAX_LONG_NAME: u64 = 64 << 10;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    /// A hard link and the path it names (as stored).
    Hardlink(Vec<u8>),
    /// A symbolic link and its target (as stored).
    Symlink(Vec<u8>),
    Dir,
    /// Devices and fifos.
    Special,
    /// A sparse file: its data is a map, not the file.
    Sparse,
}

/// One entry's header, extensions applied.
#[derive(Debug)]
pub(super) struct Header {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    /// The bytes of data that follow.
    pub size: u64,
}

/// Why a tar stream could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum TarError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Format(String),
}

/// Reads a tar stream header by header; [`Walker::data`] reads the current entry's data,
/// and whatever is left of it is skipped by the next [`Walker::next`].
pub(super) struct Walker<R> {
    r: R,
    /// Data of the current entry not yet read, then its padding.
    left: u64,
    pad: u64,
    /// Where the stream is, for errors.
    offset: u64,
    done: bool,
}

/// The extensions gathered before an entry's own header.
#[derive(Default)]
struct Extensions {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    sparse: bool,
}

impl<R: Read> Walker<R> {
    pub fn new(r: R) -> Self {
        Self {
            r,
            left: 0,
            pad: 0,
            offset: 0,
            done: false,
        }
    }

    /// The next entry, `None` at the end of the archive (two zero blocks, or the stream's end
    /// between entries).
    pub fn next(&mut self) -> Result<Option<Header>, TarError> {
        self.skip_rest()?;
        let mut ext = Extensions::default();
        while !self.done {
            let at = self.offset;
            let Some(block) = self.block()? else {
                self.done = true;
                break;
            };
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                break;
            }
            let h = ::tar::Header::from_byte_slice(&block);
            check_sum(h, at)?;
            let size = h
                .entry_size()
                .map_err(|_| TarError::Format(format!("header at byte {at}: no size")))?;
            let typeflag = h.entry_type().as_byte();
            match typeflag {
                b'x' | b'g' => {
                    let data = self.extension(size, MAX_PAX, at)?;
                    if typeflag == b'x' {
                        pax(&data, &mut ext, at)?;
                    }
                }
                b'L' => ext.path = Some(trim_nul(self.extension(size, MAX_LONG_NAME, at)?)),
                b'K' => ext.link = Some(trim_nul(self.extension(size, MAX_LONG_NAME, at)?)),
                _ => return Ok(Some(self.entry(h, typeflag, size, ext))),
            }
        }
        Ok(None)
    }

    fn entry(&mut self, h: &::tar::Header, typeflag: u8, size: u64, ext: Extensions) -> Header {
        let size = ext.size.unwrap_or(size);
        self.left = size;
        self.pad = padding(size);
        let path = ext.path.unwrap_or_else(|| h.path_bytes().into_owned());
        let link = || {
            (ext.link.clone())
                .or_else(|| h.link_name_bytes().map(|l| l.into_owned()))
                .unwrap_or_default()
        };
        let kind = match typeflag {
            _ if ext.sparse => Kind::Sparse,
            b'0' | b'\0' | b'7' => Kind::File,
            b'1' => Kind::Hardlink(link()),
            b'2' => Kind::Symlink(link()),
            b'5' => Kind::Dir,
            b'3' | b'4' | b'6' => Kind::Special,
            b'S' => Kind::Sparse,
            // POSIX: an unknown type is read as a regular file.
            _ => Kind::File,
        };
        Header {
            path,
            kind,
            mode: h.mode().unwrap_or(0),
            size,
        }
    }

    /// The current entry's data (what is left of it).
    pub fn data(&mut self) -> Data<'_, R> {
        Data { w: self }
    }

    /// One block; `None` when the stream ends before it, an error when it ends inside it.
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>, TarError> {
        let mut block = [0u8; BLOCK];
        let mut n = 0;
        while n < BLOCK {
            match self.r.read(&mut block[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.offset += n as u64;
        match n {
            0 => Ok(None),
            BLOCK => Ok(Some(block)),
            _ => Err(truncated(self.offset, "inside a header")),
        }
    }

    /// An extension header's data, whole, refused past `cap`.
    fn extension(&mut self, size: u64, cap: u64, at: u64) -> Result<Vec<u8>, TarError> {
        if size > cap {
            return Err(TarError::Format(format!(
                "extension header at byte {at} declares {size} bytes (at most {cap})"
            )));
        }
        self.left = size;
        self.pad = padding(size);
        let mut data = Vec::with_capacity(size as usize);
        self.data().read_to_end(&mut data)?;
        self.skip_rest()?;
        Ok(data)
    }

    /// Skips what is left of the current entry's data and its padding.
    fn skip_rest(&mut self) -> Result<(), TarError> {
        let want = self.left + self.pad;
        if want == 0 {
            return Ok(());
        }
        let got = io::copy(&mut (&mut self.r).take(want), &mut io::sink())?;
        self.offset += got;
        if got < want {
            return Err(truncated(self.offset, "inside an entry's data"));
        }
        (self.left, self.pad) = (0, 0);
        Ok(())
    }
}

/// The data of the current entry: ends with it, and fails if the stream ends first.
pub(super) struct Data<'a, R> {
    w: &'a mut Walker<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.w.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.w.left).unwrap_or(usize::MAX));
        let n = self.w.r.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the layer ends at byte {} with {} bytes of an entry still to come",
                    self.w.offset, self.w.left
                ),
            ));
        }
        self.w.left -= n as u64;
        self.w.offset += n as u64;
        Ok(n)
    }
}

fn truncated(offset: u64, where_: &str) -> TarError {
    TarError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the layer ends at byte {offset}, {where_}"),
    ))
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(i) = v.iter().position(|&b| b == 0) {
        v.truncate(i);
    }
    v
}

/// The header's checksum: the sum of its bytes with the checksum field as spaces (unsigned, or
/// signed as some old writers made it).
fn check_sum(h: &::tar::Header, at: u64) -> Result<(), TarError> {
    let bytes = h.as_bytes();
    let field = 148..156;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in bytes.iter().enumerate() {
        let b = if field.contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    let stored = h
        .cksum()
        .map_err(|_| TarError::Format(format!("header at byte {at}: no checksum")))?;
    if u64::from(stored) == unsigned || i64::from(stored) == signed {
        Ok(())
    } else {
        Err(TarError::Format(format!(
            "header at byte {at}: checksum {stored} does not match its bytes ({unsigned})"
        )))
    }
}

/// The PAX records fipsgate uses: `path`, `linkpath`, `size`, and GNU's sparse markers.
fn pax(data: &[u8], ext: &mut Extensions, at: u64) -> Result<(), TarError> {
    for record in ::tar::PaxExtensions::new(data) {
        let record =
            record.map_err(|e| TarError::Format(format!("PAX header at byte {at}: {e}")))?;
        let key = record.key_bytes();
        match key {
            b"path" => ext.path = Some(record.value_bytes().to_vec()),
            b"linkpath" => ext.link = Some(record.value_bytes().to_vec()),
            b"size" => {
                let v = (record.value().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        TarError::Format(format!("PAX header at byte {at}: size is not a number"))
                    })?;
                ext.size = Some(v);
            }
            k if k.starts_with(b"GNU.sparse.") => ext.sparse = true,
            _ => {}
        }
    }
    Ok(())
}
