//! The plain-HTTP admin port: `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::app::namespaces::NamespaceStore;
use crate::telemetry::metrics::Metrics;

#[derive(Clone)]
pub struct AdminState {
    pub registry: Arc<Registry>,
    pub namespaces: Arc<NamespaceStore>,
    /// Set when shutdown starts.
    pub draining: Arc<AtomicBool>,
    pub metrics: Metrics,
    /// TLS runs with the AWS-LC FIPS module.
    pub fips: bool,
}

/// Serves the admin port until `done`.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, done: watch::Receiver<bool>) {
    let mut done = done;
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = done.wait_for(|v| *v).await;
        })
        .await;
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
