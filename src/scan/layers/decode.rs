//! A layer's compression, told by its first bytes (as containerd does, whatever the media type
//! says): gzip (`flate2`, members one after another), zstd (`ruzstd`, frames one after another,
//! skippable frames skipped), else a plain tar.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// A zstd frame may ask for at most this window (the decoder holds one window).
pub(super) const MAX_ZSTD_WINDOW: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// By magic number.
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The decompressed stream of `src`.
pub(super) fn decoder<'a>(kind: Compression, src: impl BufRead + 'a) -> Box<dyn Read + 'a> {
    match kind {
        Compression::None => Box::new(src),
        Compression::Gzip => Box::new(Named {
            name: "gzip",
            inner: flate2::bufread::MultiGzDecoder::new(src),
        }),
        Compression::Zstd => Box::new(Zstd {
            src,
            dec: FrameDecoder::new(),
            active: false,
        }),
    }
}

/// A decoder whose errors say what was being decoded.
struct Named<R> {
    name: &'static str,
    inner: R,
}

impl<R: Read> Read for Named<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (self.inner.read(buf)).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.name)))
    }
}

/// Zstd frames one after another.
struct Zstd<R> {
    src: R,
    dec: FrameDecoder,
    /// A frame is being decoded.
    active: bool,
}

fn zstd_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Zstd<R> {
    /// Starts the next frame, skipping skippable ones; false at the end of the stream.
    fn start(&mut self) -> io::Result<bool> {
        loop {
            if self.src.fill_buf()?.is_empty() {
                return Ok(false);
            }
            self.dec.set_max_window_size(MAX_ZSTD_WINDOW);
            match self.dec.reset(&mut self.src) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let got = io::copy(&mut (&mut self.src).take(want), &mut io::sink())?;
                    if got < want {
                        return Err(zstd_error("the stream ends inside a skippable frame"));
                    }
                }
                Err(e) => return Err(zstd_error(e)),
            }
        }
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.active {
                if !self.start()? {
                    return Ok(0);
                }
                self.active = true;
            }
            while self.dec.can_collect() == 0 && !self.dec.is_finished() {
                (self.dec)
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(zstd_error)?;
            }
            let n = self.dec.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.dec.is_finished() && self.dec.can_collect() == 0 {
                self.active = false;
            }
        }
    }
}
