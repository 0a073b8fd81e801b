//! Connections: the accept loop (a connection cap, then a drain on shutdown) and one
//! connection's life (bounded TLS handshake, HTTP/1.1 or HTTP/2 as ALPN chose).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::telemetry::metrics::Metrics;

use super::idle::{IDLE_TIMEOUT, Talkative};

/// HTTP/2 streams a connection may have open at once.
pub const MAX_STREAMS: u32 = 32;
/// HTTP/2 pings: how often, and how long an answer may take before the connection is closed.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the accept loop serves with.
pub(super) struct Acceptor {
    pub listener: TcpListener,
    pub tls: tokio_rustls::TlsAcceptor,
    pub app: Router,
    pub header_timeout: Duration,
    /// Open connections at most; more are closed at once.
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Open connections per source address at most: one pod cannot take every slot.
    pub per_source: PerSource,
    pub metrics: Metrics,
}

/// Connections open per source address, bounded.
#[derive(Clone)]
pub(super) struct PerSource {
    open: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
    max: usize,
}

/// One connection counted against its source; released when dropped.
pub(super) struct SourceSlot {
    open: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerSource {
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::default(),
            max,
        }
    }

    /// A slot for `ip`, unless it has `max` connections open already.
    fn take(&self, ip: IpAddr) -> Option<SourceSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            open: self.open.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
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
            let Some(source) = self.per_source.take(peer.ip()) else {
                self.metrics.error("source_connection_limit");
                return;
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                self.metrics.error("connection_limit");
                return;
            };
            let conn = serve_connection(
                tcp,
                self.tls.clone(),
                self.app.clone(),
                self.header_timeout,
                drain_rx.clone(),
            );
            connections.spawn(async move {
                conn.await;
                drop((slot, source));
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
/// ends or `stop` asks it to finish its in-flight requests and close.
pub async fn serve_connection(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    header_timeout: Duration,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    {
        let _ = tcp.set_nodelay(true);
        // A connection told to stop during its handshake just ends.
        let tls = tokio::select! {
            r = tokio::time::timeout(header_timeout, acceptor.accept(tcp)) => match r {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            },
            _ = stopped(&mut shutdown_rx) => return,
        };
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        // The API server sends one review per request; a handful of streams is plenty, and
        // each stream may hold a body being read. Pings find peers that went away.
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
        // The protocol ALPN chose, not a sniff of the first bytes: a sniff waits, unbounded,
        // for bytes an idle attacker never sends. Without ALPN the first bytes decide.
        let tls = Talkative::new(tls, header_timeout, IDLE_TIMEOUT);
        let builder = match tls.get_ref().get_ref().1.alpn_protocol() {
            Some(b"h2") => builder.http2_only(),
            Some(b"http/1.1") => builder.http1_only(),
            _ => builder,
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(app));
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            },
            _ = stopped(&mut shutdown_rx) => {
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error while draining");
                }
            }
        }
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
