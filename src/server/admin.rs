//! The plain-HTTP admin port: `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::app::namespaces::NamespaceStore;
use crate::domain::fips::OwnModule;
use crate::telemetry::metrics::Metrics;

use super::idle::{IDLE_TIMEOUT, Talkative};

#[derive(Clone)]
pub struct AdminState {
    pub registry: Arc<Registry>,
    pub namespaces: Arc<NamespaceStore>,
    /// Set when shutdown starts.
    pub draining: Arc<AtomicBool>,
    pub metrics: Metrics,
    /// TLS runs with the AWS-LC FIPS module.
    pub fips: bool,
    /// The cryptographic module and its CMVP standing.
    pub module: Arc<OwnModule>,
}

/// Admin connections at once: probes and a scraper need few; more are closed at once.
pub const MAX_ADMIN_CONNECTIONS: usize = 64;

/// Serves the admin port until `done`, with the webhook port's limits on slow and silent
/// clients: the kubelet's probes must get through whatever else connects here.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    mut done: watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_ADMIN_CONNECTIONS));
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        tokio::select! {
            _ = done.wait_for(|v| *v) => break,
            Ok((tcp, _)) = listener.accept() => {
                // Past the limit the connection is dropped, that is closed.
                let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let io = TokioIo::new(Talkative::new(tcp, header_timeout, IDLE_TIMEOUT));
                    // HTTP/1.1, or HTTP/2 with prior knowledge (h2c), as before.
                    let mut http = Builder::new(TokioExecutor::new());
                    http.http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout);
                    http.http2()
                        .timer(TokioTimer::new())
                        .max_concurrent_streams(super::MAX_STREAMS);
                    if let Err(e) = http.serve_connection(io, service).await {
                        tracing::debug!(error = %e, "admin connection ended with an error");
                    }
                    drop(slot);
                });
            }
        }
    }
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), connections.wait()).await;
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Ready when the certificate is loaded (always, once serving), the namespace watch has
/// synced, and shutdown has not started.
/// Whether the server is ready, and why; also keeps the `fipsgate_ready` gauge current.
fn readiness(s: &AdminState) -> (bool, bool, bool) {
    let synced = s.namespaces.is_synced();
    let draining = s.draining.load(Ordering::Acquire);
    let ready = synced && !draining;
    s.metrics.ready.set(i64::from(ready));
    (ready, synced, draining)
}

async fn readyz(State(s): State<AdminState>) -> Response {
    let (ready, synced, draining) = readiness(&s);
    let body = serde_json::json!({
        "ready": ready,
        "certificates": "loaded",
        "fips": s.fips,
        "crypto": s.module.as_ref(),
        "namespaces": if synced { "synced" } else { "syncing" },
        "shuttingDown": draining,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(s): State<AdminState>) -> Response {
    readiness(&s);
    s.metrics.ops.refresh();
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
