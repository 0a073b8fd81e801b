//! `fipsgate serve`: the HTTPS webhook, the plain-HTTP admin port, certificate reloads and
//! graceful shutdown. Wiring only; the decisions live in [`crate::engine`].

mod admin;
pub mod handler;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::namespaces::NamespaceStore;
use crate::domain::assessment::AttestationSource;
use crate::engine::Rules;
use crate::telemetry::metrics::Metrics;
pub use handler::AppState;
pub use tls::CertPaths;

fn duration(s: &str) -> Result<Duration, String> {
    crate::admission::parse_duration(s)
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `fipsgate serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address of the HTTPS webhook.
    #[arg(long, env = "FIPSGATE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP admin port (/healthz, /readyz, /metrics).
    #[arg(long, env = "FIPSGATE_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// PEM certificate chain of the webhook (reloaded when it changes).
    #[arg(long, env = "FIPSGATE_TLS_CERT", required_unless_present = "dev")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the webhook (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "FIPSGATE_TLS_KEY", required_unless_present = "dev")]
    pub tls_key: Option<PathBuf>,
    /// Configuration file (YAML).
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Deny nothing: denials become `[dry-run]` warnings (overrides the config's dryRun).
    #[arg(long, env = "FIPSGATE_DRY_RUN")]
    pub dry_run: bool,
    #[arg(long, env = "FIPSGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Development mode: self-signed certificate in certs/dev/, no cluster needed.
    #[arg(long)]
    pub dev: bool,
    /// Largest request body accepted.
    #[arg(long, env = "FIPSGATE_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Time a client has to send its request headers (slow clients are cut off).
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request body.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub body_read_timeout: Duration,
    /// Open connections at most; more are closed at once.
    #[arg(long, env = "FIPSGATE_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Requests decided at once; more are answered 503 at once.
    #[arg(long, env = "FIPSGATE_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,
    /// How often the certificate files are checked for changes.
    #[arg(long, value_parser = duration, default_value = "5s")]
    pub cert_reload_interval: Duration,
    /// After a stop signal, how long to keep serving while readiness is false (lets the
    /// Service stop routing here).
    #[arg(long, value_parser = duration, default_value = "3s")]
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight requests after the listener closes.
    #[arg(long, value_parser = duration, default_value = "20s")]
    pub drain_timeout: Duration,
    /// Refuse to start unless TLS runs with the AWS-LC FIPS module (a `fips` build).
    #[arg(long, env = "FIPSGATE_REQUIRE_FIPS")]
    pub require_fips: bool,
}

/// Everything a server needs, built by [`run`] or directly by tests.
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls: CertPaths,
    pub cert_reload_interval: Duration,
    pub rules: Rules,
    pub source: Arc<dyn AttestationSource>,
    pub namespaces: Arc<NamespaceStore>,
    /// Lists pods when a namespace's enforce level tightens.
    pub pods: Option<Arc<dyn crate::app::inventory::PodLister>>,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_requests: usize,
    pub shutdown_delay: Duration,
    pub drain_timeout: Duration,
    /// Metrics, and the registry `/metrics` exports them from.
    pub metrics: (Metrics, Arc<Registry>),
    /// Refuse to start unless TLS runs in FIPS mode.
    pub require_fips: bool,
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

/// The webhook router (`POST /validate`), usable without a socket. Body limits are the
/// handler's ([`handler::Limits`]).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(handler::validate))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Binds both ports and serves until [`Running::shutdown`].
pub async fn start(s: Settings) -> anyhow::Result<Running> {
    let provider = crate::infra::crypto::install();
    let cert = Arc::new(tls::ReloadingCert::load(s.tls.clone(), provider.clone())?);
    let tls_config = tls::server_config(cert.clone(), provider)?;
    let fips = tls_config.fips();
    if s.require_fips && !fips {
        anyhow::bail!(
            "--require-fips: the TLS configuration is not in FIPS mode (build with --features fips)"
        );
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));

    let (metrics, registry) = s.metrics;
    metrics.fips_mode.set(i64::from(fips));
    let listener = TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.listen))?;
    let admin_listener = TcpListener::bind(s.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.admin_listen))?;
    let addr = listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let draining = Arc::new(AtomicBool::new(false));
    let state = Arc::new(AppState {
        rules: s.rules,
        source: s.source,
        namespaces: s.namespaces.clone(),
        metrics: metrics.clone(),
        pods: s.pods,
        limits: handler::Limits::new(
            s.max_body_bytes,
            s.body_read_timeout,
            s.max_concurrent_requests,
        ),
    });
    let app = router(state);
    let connection_slots = Arc::new(tokio::sync::Semaphore::new(s.max_connections));
    let admin_app = admin::router(admin::AdminState {
        registry,
        namespaces: s.namespaces,
        draining: draining.clone(),
        metrics: metrics.clone(),
        fips,
    });
    let (stop, stop_rx) = watch::channel(false);
    let reload = tokio::spawn(cert.watch(s.cert_reload_interval, metrics.clone()));

    let header_timeout = s.header_read_timeout;
    let (delay, drain) = (s.shutdown_delay, s.drain_timeout);
    let mut admin_stop = stop_rx.clone();
    let (admin_done_tx, admin_done_rx) = watch::channel(false);
    let admin = tokio::spawn(async move {
        let mut done = admin_done_rx;
        let _ = axum::serve(admin_listener, admin_app)
            .with_graceful_shutdown(async move {
                let _ = admin_stop.wait_for(|v| *v).await;
                let _ = done.wait_for(|v| *v).await;
            })
            .await;
    });
    let conn_metrics = metrics.clone();
    let done = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        let connections = tokio_util::task::TaskTracker::new();
        let (drain_tx, drain_rx) = watch::channel(false);
        let spawn_conn = |tcp: tokio::net::TcpStream| {
            // Past the connection limit a new connection is closed at once, not queued.
            let Ok(slot) = connection_slots.clone().try_acquire_owned() else {
                conn_metrics.error("connection_limit");
                return;
            };
            let conn = serve_connection(
                tcp,
                acceptor.clone(),
                app.clone(),
                header_timeout,
                drain_rx.clone(),
            );
            connections.spawn(async move {
                conn.await;
                drop(slot);
            });
        };
        loop {
            tokio::select! {
                _ = stopped(&mut stop_rx) => break,
                Ok((tcp, _)) = listener.accept() => spawn_conn(tcp),
            }
        }
        // Stop signal: readiness false at once, keep serving through the delay (so the Service
        // stops routing here first), then close the listener and drain.
        draining.store(true, Ordering::Release);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "shutting down: readiness false"
        );
        let delay_end = tokio::time::sleep(delay);
        tokio::pin!(delay_end);
        loop {
            tokio::select! {
                _ = &mut delay_end => break,
                Ok((tcp, _)) = listener.accept() => spawn_conn(tcp),
            }
        }
        drop(listener);
        drain_tx.send_replace(true);
        connections.close();
        match tokio::time::timeout(drain, connections.wait()).await {
            Ok(()) => tracing::info!("all connections drained"),
            Err(_) => tracing::warn!(
                timeout_s = drain.as_secs(),
                "drain timed out; closing remaining connections"
            ),
        }
        reload.abort();
        admin_done_tx.send_replace(true);
        let _ = admin.await;
    });
    Ok(Running {
        addr,
        fips,
        admin_addr,
        metrics,
        stop,
        done,
    })
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
        builder.http2().timer(TokioTimer::new());
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

/// `fipsgate serve`: builds everything from the flags and runs until a signal.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    crate::infra::crypto::install();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = crate::cli::load_config(args.config.as_ref())?;
    config.dry_run |= args.dry_run;
    let rules = Rules::new(&config).context("exemptions.images")?;
    let catalog = Arc::new(crate::cli::load_catalog(&config)?);
    tracing::info!(
        components = catalog.components().len(),
        dry_run = rules.dry_run,
        defaults = %rules.defaults.summary(),
        attestations = config.attestations.enabled,
        "catalogue and policy loaded"
    );
    let tls = if args.dev {
        let dir = PathBuf::from("certs/dev");
        if crate::infra::certs::ensure_dev(&dir)? {
            tracing::info!(dir = %dir.display(), "generated a development certificate");
        }
        CertPaths {
            cert: args
                .tls_cert
                .clone()
                .unwrap_or(dir.join(crate::infra::certs::TLS_CERT)),
            key: args
                .tls_key
                .clone()
                .unwrap_or(dir.join(crate::infra::certs::TLS_KEY)),
        }
    } else {
        CertPaths {
            cert: args.tls_cert.clone().context("--tls-cert is required")?,
            key: args.tls_key.clone().context("--tls-key is required")?,
        }
    };
    let (namespaces, watch_task, kube) = if args.dev {
        tracing::warn!("development mode: no cluster; namespace labels fall back to the defaults");
        (
            Arc::new(NamespaceStore::standalone(config.defaults)),
            None,
            None,
        )
    } else {
        let client = kube::Client::try_default()
            .await
            .context("cannot configure the Kubernetes client (kubeconfig or in-cluster)")?;
        let store = Arc::new(NamespaceStore::new(
            config.defaults,
            Some(crate::app::namespaces::kube_fetch(client.clone())),
        ));
        let task = tokio::spawn(crate::app::namespaces::watch(client.clone(), store.clone()));
        (store, Some(task), Some(client))
    };
    let (metrics, registry) = Metrics::new();
    let kube_client = kube.clone();
    let source = crate::app::chain::Resolver::from_config(&config, catalog, metrics.clone(), kube)
        .map_err(|e| anyhow::anyhow!("attestations: {e}"))?;
    let mut signals = Signals::register().context("installing signal handlers")?;
    let running = start(Settings {
        listen: args.listen,
        admin_listen: args.admin_listen,
        tls,
        cert_reload_interval: args.cert_reload_interval,
        rules,
        source: Arc::new(source),
        pods: kube_client.map(|client| {
            Arc::new(crate::app::inventory::KubeInventory { client })
                as Arc<dyn crate::app::inventory::PodLister>
        }),
        namespaces,
        max_body_bytes: args.max_body_bytes,
        header_read_timeout: args.header_read_timeout,
        body_read_timeout: args.body_read_timeout,
        max_connections: args.max_connections,
        max_concurrent_requests: args.max_concurrent_requests,
        shutdown_delay: args.shutdown_delay,
        drain_timeout: args.drain_timeout,
        metrics: (metrics, Arc::new(registry)),
        require_fips: args.require_fips,
    })
    .await?;
    tracing::info!(
        listen = %running.addr,
        admin = %running.admin_addr,
        fips = running.fips,
        "fipsgate serving"
    );

    wait_for_signal(&mut signals).await;
    running.shutdown();
    tokio::spawn(async move {
        wait_for_signal(&mut signals).await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    running.wait().await;
    if let Some(t) = watch_task {
        t.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT, registered before serving starts so that no signal is missed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

async fn wait_for_signal(s: &mut Signals) {
    tokio::select! {
        _ = s.term.recv() => {}
        _ = s.int.recv() => {}
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // rustls warns for every client that sends an IP address as SNI: not fipsgate's news.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rustls=error"));
    // Colour only on a terminal: escape codes would litter collected container logs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
