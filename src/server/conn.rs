//! Connections: the accept loop (a connection cap, then a drain on shutdown) and one
//! connection's life (bounded TLS handshake, HTTP/1.1 or HTTP/2 as ALPN chose).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::telemetry::metrics::Metrics;

use super::idle::{IDLE_TIMEOUT, Talkative};
use super::shares::{Shares, Short};

/// HTTP/2 streams a connection may have open at once.
pub const MAX_STREAMS: u32 = 32;
/// HTTP/2 pings: how often, and how long an answer may take before the connection is closed.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection past its age may take to finish its requests.
const AGE_GRACE: Duration = Duration::from_secs(30);

/// The address a request came from (the TCP peer), for per-source shares.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

/// What the accept loop serves with.
pub(super) struct Acceptor {
    pub listener: TcpListener,
    pub tls: tokio_rustls::TlsAcceptor,
    pub app: Router,
    pub header_timeout: Duration,
    /// A connection older than this is asked to close (HTTP/2 GOAWAY, HTTP/1 `Connection:
    /// close` after the request in flight): clients reconnect, which spreads them over new
    /// replicas and ends any connection an attacker keeps busy.
    pub max_age: Duration,
    /// Open connections, in all and per source address; past either a new connection is
    /// closed at once.
    pub connections: Arc<Shares>,
    pub metrics: Metrics,
}

/// How shutdown goes: readiness false at once, keep serving through `delay` (so the Service
/// stops routing here first), then close the listener and drain for at most `drain`.
pub(super) struct Shutdown {
    pub stop: watch::Receiver<bool>,
    pub draining: Arc<AtomicBool>,
    pub delay: Duration,
    pub drain: Duration,
}

impl Acceptor {
    /// Accepts until the stop signal, then shuts down as `shutdown` says.
    pub async fn run(self, mut shutdown: Shutdown) {
        let connections = tokio_util::task::TaskTracker::new();
        let (drain_tx, drain_rx) = watch::channel(false);
        let spawn = |tcp: tokio::net::TcpStream, peer: std::net::SocketAddr| {
            // Past a connection limit a new connection is closed at once, not queued.
            let slot = match self.connections.take(peer.ip(), 1) {
                Ok(slot) => slot,
                Err(Short::Source) => return self.metrics.error("source_connection_limit"),
                Err(Short::Total) => return self.metrics.error("connection_limit"),
            };
            let conn = serve_connection(
                tcp,
                self.tls.clone(),
                self.app.clone(),
                self.header_timeout,
                self.max_age,
                drain_rx.clone(),
            );
            connections.spawn(async move {
                conn.await;
                drop(slot);
            });
        };
        loop {
            tokio::select! {
                _ = stopped(&mut shutdown.stop) => break,
                Ok((tcp, peer)) = self.listener.accept() => spawn(tcp, peer),
            }
        }
        shutdown.draining.store(true, Ordering::Release);
        tracing::info!(
            delay_ms = shutdown.delay.as_millis() as u64,
            "shutting down: readiness false"
        );
        let delay_end = tokio::time::sleep(shutdown.delay);
        tokio::pin!(delay_end);
        loop {
            tokio::select! {
                _ = &mut delay_end => break,
                Ok((tcp, peer)) = self.listener.accept() => spawn(tcp, peer),
            }
        }
        drop(self.listener);
        drain_tx.send_replace(true);
        connections.close();
        match tokio::time::timeout(shutdown.drain, connections.wait()).await {
            Ok(()) => tracing::info!("all connections drained"),
            Err(_) => tracing::warn!(
                timeout_s = shutdown.drain.as_secs(),
                "drain timed out; closing remaining connections"
            ),
        }
    }
}

/// One connection: TLS handshake (bounded), then HTTP/1.1 or HTTP/2 as ALPN chose, until it
/// ends, reaches `max_age`, or `stop` asks it to finish its in-flight requests and
/// close.
pub async fn serve_connection(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    header_timeout: Duration,
    max_age: Duration,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let peer = Peer(
        tcp.peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
    );
    // A connection told to stop during its handshake just ends.
    let tls = tokio::select! {
        r = tokio::time::timeout(header_timeout, acceptor.accept(tcp)) => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!("TLS handshake timed out"),
        },
        _ = stopped(&mut shutdown_rx) => return,
    };
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let builder = http_builder(header_timeout, alpn.as_deref());
    // Each request knows its peer, for the per-source shares of bodies and decisions.
    let service = hyper::service::service_fn(move |mut req: axum::extract::Request<_>| {
        req.extensions_mut().insert(peer);
        tower::ServiceExt::oneshot(app.clone(), req.map(axum::body::Body::new))
    });
    let tls = Talkative::new(tls, header_timeout, IDLE_TIMEOUT);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let aged = tokio::time::sleep(max_age);
    tokio::pin!(aged);
    let grace = tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stopped(&mut shutdown_rx) => None,
        _ = &mut aged => Some(AGE_GRACE),
    };
    conn.as_mut().graceful_shutdown();
    // Draining on shutdown is bounded by the server's drain timeout; an aged connection by
    // its grace.
    let finish = async {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error while closing");
        }
    };
    match grace {
        None => finish.await,
        Some(grace) => {
            let _ = tokio::time::timeout(grace, finish).await;
        }
    }
}

/// HTTP/1.1 and HTTP/2 with their timeouts; the protocol ALPN chose, not a sniff of the first
/// bytes: a sniff waits, unbounded, for bytes an idle attacker never sends. Without ALPN the
/// first bytes decide (bounded by [`Talkative`]).
fn http_builder(
    header_timeout: Duration,
    alpn: Option<&[u8]>,
) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    // The API server sends one review per request; a handful of streams is plenty, and each
    // stream may hold a body being read. Pings find peers that went away.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
    match alpn {
        Some(b"h2") => builder.http2_only(),
        Some(b"http/1.1") => builder.http1_only(),
        _ => builder,
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
