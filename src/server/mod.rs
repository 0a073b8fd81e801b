//! The inbound HTTPS edge: the webhook (`POST /validate`) over rustls, the plain-HTTP admin
//! port, certificate reloads and graceful shutdown. [`bind`] does everything that can fail
//! (TLS material, sockets); [`Bound::spawn`] cannot fail. The decisions are `app`'s.

mod admin;
mod callers;
mod conn;
mod handler;
mod idle;
mod read;
mod shares;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use prometheus_client::registry::Registry;
use rustls::crypto::CryptoProvider;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::admit::Admission;
use crate::app::relabel::Disclosure;
use crate::domain::fips::OwnModule;
use crate::telemetry::metrics::Metrics;

pub use admin::MAX_ADMIN_CONNECTIONS;
pub use callers::ClientAuth;
pub use conn::{MAX_STREAMS, serve_connection};
pub use handler::AppState;
pub use read::{Limits, Refusal};
pub use tls::CertPaths;

/// Everything a server needs, built by `fipsgate serve` or directly by tests.
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls: CertPaths,
    /// Require a client certificate of this CA (the API server's) on the webhook port.
    pub client_auth: Option<ClientAuth>,
    /// The process's crypto provider (the FIPS module in a `fips` build).
    pub provider: Arc<CryptoProvider>,
    pub cert_reload_interval: Duration,
    pub admission: Admission,
    pub limits: Limits,
    pub header_read_timeout: Duration,
    /// Connections older than this are asked to close (clients reconnect).
    pub max_connection_age: Duration,
    pub max_connections: usize,
    /// Open connections per source address at most.
    pub max_connections_per_source: usize,
    pub shutdown_delay: Duration,
    pub drain_timeout: Duration,
    /// Metrics, and the registry `/metrics` exports them from.
    pub metrics: (Metrics, Arc<Registry>),
    /// Refuse to start unless TLS runs in FIPS mode.
    pub require_fips: bool,
    /// The cryptographic module, reported by `/readyz`.
    pub module: OwnModule,
}

/// A started server.
pub struct Running {
    /// Where the webhook listens.
    pub addr: SocketAddr,
    /// TLS runs with the AWS-LC FIPS module.
    pub fips: bool,
    /// Where the admin port listens.
    pub admin_addr: SocketAddr,
    pub metrics: Metrics,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts the graceful shutdown: readiness false, delay, stop accepting, drain.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// The webhook router (`POST /validate`, and `POST /mutate` that pins references to their
/// verified digests), usable without a socket. Body limits are the
/// handler's ([`Limits`]).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(handler::validate))
        .route("/mutate", post(handler::mutate))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Binds both ports and serves until [`Running::shutdown`].
pub async fn start(s: Settings) -> anyhow::Result<Running> {
    Ok(bind(s).await?.spawn())
}

/// A server whose certificate is loaded and whose ports are bound, not yet serving.
pub struct Bound {
    settings: Settings,
    cert: Arc<tls::ReloadingCert>,
    tls: tokio_rustls::TlsAcceptor,
    fips: bool,
    /// When the earliest certificate of `--client-ca` expires.
    client_ca_expiry: Option<i64>,
    listener: TcpListener,
    admin_listener: TcpListener,
}

/// Loads and checks the serving certificate and binds both ports: every start-up failure
/// happens here.
pub async fn bind(s: Settings) -> anyhow::Result<Bound> {
    let provider = s.provider.clone();
    let cert = Arc::new(tls::ReloadingCert::load(s.tls.clone(), provider.clone())?);
    let clients = match &s.client_auth {
        Some(c) => Some(c.verifier(provider.clone())?),
        None => None,
    };
    let client_ca_expiry = s.client_auth.as_ref().and_then(ClientAuth::expiry);
    let tls_config = tls::server_config(cert.clone(), provider, clients)?;
    let fips = tls_config.fips();
    if s.require_fips && !fips {
        anyhow::bail!(
            "--require-fips: the TLS configuration is not in FIPS mode (build with --features fips)"
        );
    }
    let listener = TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.listen))?;
    let admin_listener = TcpListener::bind(s.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.admin_listen))?;
    Ok(Bound {
        settings: s,
        cert,
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls_config)),
        fips,
        client_ca_expiry,
        listener,
        admin_listener,
    })
}

/// Exports when each time-boxed exemption ends (open-ended ones have no series).
fn record_exemptions(metrics: &Metrics, exemptions: &crate::engine::Exemptions) {
    for (kind, grant) in exemptions.grants() {
        let end = (grant.expires)
            .and_then(|d| d.tomorrow().ok())
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok());
        let Some(end) = end else { continue };
        let labels = crate::telemetry::metrics::ExemptionLabels {
            kind: kind.as_str(),
            name: grant.name.clone(),
        };
        (metrics.exemption_expiry.get_or_create(&labels)).set(end.timestamp().as_second());
    }
}

impl Bound {
    /// Serves the webhook and the admin port, and watches the certificate files.
    pub fn spawn(self) -> Running {
        let Self {
            settings: s,
            cert,
            tls,
            fips,
            client_ca_expiry,
            listener,
            admin_listener,
        } = self;
        let (metrics, registry) = s.metrics;
        metrics.fips_mode.set(i64::from(fips));
        record_exemptions(&metrics, &s.admission.rules.exemptions);
        let build = crate::telemetry::process::BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            fips: if fips { "true" } else { "false" },
        };
        metrics.ops.build_info.get_or_create(&build).set(1);
        cert.record_expiry(&metrics);
        if let Some(t) = client_ca_expiry {
            let labels = crate::telemetry::process::CertificateLabels {
                certificate: "client_ca",
            };
            metrics.ops.certificate_expiry.get_or_create(&labels).set(t);
        }
        let addr = listener.local_addr().unwrap_or(s.listen);
        let admin_addr = admin_listener.local_addr().unwrap_or(s.admin_listen);
        let draining = Arc::new(AtomicBool::new(false));
        let admin_app = admin::router(admin::AdminState {
            registry,
            namespaces: s.admission.namespaces.clone(),
            draining: draining.clone(),
            metrics: metrics.clone(),
            fips,
            module: Arc::new(s.module),
        });
        let acceptor = conn::Acceptor {
            listener,
            tls,
            app: router(Arc::new(AppState {
                admission: s.admission,
                metrics: metrics.clone(),
                limits: s.limits,
                disclosure: match s.client_auth {
                    Some(_) => Disclosure::Names,
                    None => Disclosure::Counts,
                },
            })),
            header_timeout: s.header_read_timeout,
            max_age: s.max_connection_age,
            connections: shares::Shares::new(s.max_connections, s.max_connections_per_source),
            metrics: metrics.clone(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let reload = tokio::spawn(cert.watch(s.cert_reload_interval, metrics.clone()));
        // The admin port answers until the webhook has drained (readiness says false).
        let (admin_done, admin_done_rx) = watch::channel(false);
        let admin = tokio::spawn(admin::serve(
            admin_listener,
            admin_app,
            admin_done_rx,
            s.header_read_timeout,
        ));
        let shutdown = conn::Shutdown {
            stop: stop_rx,
            draining,
            delay: s.shutdown_delay,
            drain: s.drain_timeout,
        };
        let done = tokio::spawn(async move {
            acceptor.run(shutdown).await;
            reload.abort();
            admin_done.send_replace(true);
            let _ = admin.await;
        });
        Running {
            addr,
            fips,
            admin_addr,
            metrics,
            stop,
            done,
        }
    }
}
