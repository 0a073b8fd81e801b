//! `fipsgate serve`: the webhook wired from its flags, run until a stop signal. A first SIGTERM
//! or SIGINT drains; a second one stops at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::app::admit::Admission;
use crate::app::namespaces::NamespaceStore;
use crate::app::ports::{Inventory, PodLister};
use crate::config::{Config, Loaded, parse_duration};
use crate::infra::kube::{KubeInventory, KubePullSecrets, kube_fetch, watch};
use crate::infra::registry::PullSecrets;
use crate::infra::{certs, crypto};
use crate::server::{self, CertPaths, Limits, Settings};
use crate::telemetry::logging::{self, LogFormat};
use crate::telemetry::metrics::Metrics;

use super::warm::{WarmArgs, Warming};

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
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
    /// Require callers of the webhook port to present a client certificate issued by this CA
    /// (PEM): the API server, given one through its AdmissionConfiguration. Relabel warnings
    /// name other pods only then.
    #[arg(long, env = "FIPSGATE_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// With --client-ca: a name the client certificate must carry (common name or DNS SAN);
    /// repeatable. Without it, any certificate the CA issued is accepted.
    #[arg(long = "client-name", requires = "client_ca")]
    pub client_names: Vec<String>,
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
    /// Connections older than this are asked to close once their requests are answered
    /// (clients reconnect; a held connection does not outlive it).
    #[arg(long, value_parser = duration, default_value = "10m")]
    pub max_connection_age: Duration,
    /// Open connections at most; more are closed at once.
    #[arg(long, env = "FIPSGATE_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Open connections from one source address at most (one pod cannot take every slot).
    #[arg(
        long,
        env = "FIPSGATE_MAX_CONNECTIONS_PER_SOURCE",
        default_value_t = 256
    )]
    pub max_connections_per_source: usize,
    /// Requests decided at once; more are answered 503 at once. One source address may take a
    /// quarter.
    #[arg(long, env = "FIPSGATE_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,
    /// Request body bytes held at once (at least four largest bodies); more are answered 503
    /// at once. One source address may take a quarter.
    #[arg(long, env = "FIPSGATE_MAX_BUFFERED_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_buffered_bytes: usize,
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
    #[command(flatten)]
    pub warm: WarmArgs,
}

impl ServeArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let format = self.log_format;
        logging::init(format);
        crypto::install();
        let served = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(self.serve()));
        match served {
            // A log collector reads JSON: the reason fipsgate stopped is a JSON line too.
            Err(e) if format == LogFormat::Json => {
                let causes = super::causes(&e);
                let (error, rest) = causes.split_first().map_or(("", &[][..]), |(e, r)| (e, r));
                tracing::error!(error, caused_by = %rest.join("; "), "fipsgate stopped");
                Ok(ExitCode::from(2))
            }
            r => r,
        }
    }

    async fn serve(self) -> anyhow::Result<ExitCode> {
        let mut config = Config::from_file(self.config.as_deref())?;
        config.dry_run |= self.dry_run;
        let Loaded {
            config,
            rules,
            catalog,
        } = Loaded::new(config)?;
        tracing::info!(
            components = catalog.components().len(),
            dry_run = rules.dry_run,
            defaults = %rules.defaults.summary(),
            attestations = config.attestations.enabled,
            "catalogue and policy loaded"
        );
        let tls = self.cert_paths()?;
        let cluster = Cluster::connect(self.dev, &config).await?;
        let (metrics, registry) = Metrics::new();
        let source = crate::infra::source_chain(
            &config,
            Arc::new(catalog),
            metrics.clone(),
            cluster.pull_secrets(&config),
        )
        .map_err(|e| anyhow::anyhow!("attestations: {e}"))?;
        let source = Arc::new(source);
        let mut signals = Signals::register().context("installing signal handlers")?;
        let module = crypto::module();
        let running = server::start(Settings {
            listen: self.listen,
            admin_listen: self.admin_listen,
            tls,
            client_auth: self.client_ca.clone().map(|ca| server::ClientAuth {
                ca,
                names: self.client_names.clone(),
            }),
            provider: crypto::install(),
            cert_reload_interval: self.cert_reload_interval,
            admission: Admission {
                rules,
                source: source.clone(),
                namespaces: cluster.namespaces.clone(),
                pods: cluster.pods(),
            },
            limits: Limits::new(
                self.max_body_bytes,
                self.body_read_timeout,
                self.max_concurrent_requests,
                self.max_buffered_bytes,
            ),
            header_read_timeout: self.header_read_timeout,
            max_connection_age: self.max_connection_age,
            max_connections: self.max_connections,
            max_connections_per_source: self.max_connections_per_source,
            shutdown_delay: self.shutdown_delay,
            drain_timeout: self.drain_timeout,
            metrics: (metrics, Arc::new(registry)),
            require_fips: self.require_fips,
            module: module.clone(),
        })
        .await?;
        tracing::info!(
            listen = %running.addr,
            admin = %running.admin_addr,
            fips = running.fips,
            crypto = %module.module,
            crypto_crates = %module.crates,
            cmvp = %module.cmvp(),
            "fipsgate serving"
        );
        let warming = Warming::start(self.warm.clone(), source, cluster.inventory());
        signals.next().await;
        running.shutdown();
        let code = tokio::select! {
            () = running.wait() => ExitCode::SUCCESS,
            () = signals.next() => {
                tracing::warn!("second signal: exiting now");
                ExitCode::from(130)
            }
        };
        if let Some(t) = cluster.watch {
            t.abort();
        }
        warming.stop();
        tracing::info!("stopped");
        Ok(code)
    }

    /// The serving pair: the flags', or under `--dev` a generated one in `certs/dev`.
    fn cert_paths(&self) -> anyhow::Result<CertPaths> {
        if !self.dev {
            return Ok(CertPaths {
                cert: self.tls_cert.clone().context("--tls-cert is required")?,
                key: self.tls_key.clone().context("--tls-key is required")?,
            });
        }
        let dir = PathBuf::from("certs/dev");
        if certs::ensure_dev(&dir)? {
            tracing::info!(dir = %dir.display(), "generated a development certificate");
        }
        Ok(CertPaths {
            cert: self.tls_cert.clone().unwrap_or(dir.join(certs::TLS_CERT)),
            key: self.tls_key.clone().unwrap_or(dir.join(certs::TLS_KEY)),
        })
    }
}

/// The cluster the webhook serves: namespace policies fed by a watch, and the client for pods
/// and pull secrets. Under `--dev` there is none.
struct Cluster {
    namespaces: Arc<NamespaceStore>,
    watch: Option<tokio::task::JoinHandle<()>>,
    client: Option<kube::Client>,
}

impl Cluster {
    async fn connect(dev: bool, config: &Config) -> anyhow::Result<Self> {
        if dev {
            tracing::warn!(
                "development mode: no cluster; namespace labels fall back to the defaults"
            );
            return Ok(Self {
                namespaces: Arc::new(NamespaceStore::standalone(config.defaults)),
                watch: None,
                client: None,
            });
        }
        let client = kube::Client::try_default()
            .await
            .context("cannot configure the Kubernetes client (kubeconfig or in-cluster)")?;
        let store = Arc::new(NamespaceStore::new(
            config.defaults,
            Some(kube_fetch(client.clone())),
        ));
        let task = tokio::spawn(watch(client.clone(), store.clone()));
        Ok(Self {
            namespaces: store,
            watch: Some(task),
            client: Some(client),
        })
    }

    fn pods(&self) -> Option<Arc<dyn PodLister>> {
        let client = self.client.clone()?;
        Some(Arc::new(KubeInventory::new(client)))
    }

    fn inventory(&self) -> Option<Arc<dyn Inventory>> {
        let client = self.client.clone()?;
        Some(Arc::new(KubeInventory::new(client)))
    }

    fn pull_secrets(&self, config: &Config) -> Option<Arc<dyn PullSecrets>> {
        match (&self.client, config.attestations.pull_secrets) {
            (Some(client), true) => Some(Arc::new(KubePullSecrets {
                client: client.clone(),
            })),
            (None, true) => {
                tracing::warn!("attestations.pullSecrets needs a cluster; not reading them");
                None
            }
            (_, false) => None,
        }
    }
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

impl Signals {
    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
