//! A connection that must keep talking: the first byte within the header timeout, then no
//! silence longer than the idle timeout. HTTP/1's header timeout starts only with a request's
//! first byte, so without this a client that sends nothing holds a connection forever.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may stay silent once it has spoken: longer than any request's budget
/// (at most 24 s) and than the idle timeout of Go's HTTP clients (90 s), so the API server
/// closes its idle connections before fipsgate would; HTTP/2 pings (every 20 s) keep a live
/// peer talking anyway.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// `inner`, whose reads fail with `TimedOut` after too long a silence.
pub struct Talkative<T> {
    inner: T,
    silence: Pin<Box<Sleep>>,
    idle: Duration,
}

impl<T> Talkative<T> {
    /// The first byte must come within `first`, later ones within `idle` of the last.
    pub fn new(inner: T, first: Duration, idle: Duration) -> Self {
        Self {
            inner,
            silence: Box::pin(tokio::time::sleep(first)),
            idle,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Talkative<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + self.idle;
                    self.silence.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.silence.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection silent for too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Talkative<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn silence_ends_a_connection_and_bytes_keep_it() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = Talkative::new(server, Duration::from_secs(1), Duration::from_secs(5));
        let mut client = client;
        let mut buf = [0u8; 8];
        client.write_all(b"hi").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 2);
        tokio::time::advance(Duration::from_secs(4)).await;
        client.write_all(b"again").await.unwrap();
        assert_eq!(
            server.read(&mut buf).await.unwrap(),
            5,
            "within the idle timeout"
        );
        let e = server.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let (_quiet, silent) = tokio::io::duplex(64);
        let mut silent = Talkative::new(silent, Duration::from_secs(1), Duration::from_secs(5));
        let e = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "no first byte");
    }
}
