//! Shared helpers: the webhook router in process ([`TestConfig::app`], no socket) with pod and
//! review builders; certificates, a real server on 127.0.0.1:0 and real HTTPS clients for what
//! only a socket shows.
#![allow(dead_code)]

pub mod oci;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, header};
use fipsgate::app::admit::Admission;
use fipsgate::app::namespaces::{Fetch, Labels, NamespaceStore};
use fipsgate::app::ports::{AssessmentSource, BoxFuture, LookupContext, PodLister};
use fipsgate::catalog::Catalog;
use fipsgate::config::{CertificateAction, Config};
use fipsgate::domain::assessment::Assessment;
use fipsgate::domain::image::ImageRef;
use fipsgate::server::{self, AppState, CertPaths, Limits, Running, Settings};
use fipsgate::telemetry::metrics::Metrics;
use prometheus_client::registry::Registry;
use tower::ServiceExt as _;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// An image the embedded catalogue knows as FIPS-compliant.
pub const FIPS_API: &str = "us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4";

/// `tests/fixtures/real-paths.tsv`: the vendor's real FIPS paths, twins and look-alikes, each
/// with the component it is, and whether `strict` admits it (a full component does; a partial
/// one and a non-component do not).
pub fn real_paths() -> Vec<(String, Option<String>, bool)> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/real-paths.tsv")).unwrap();
    (text.lines())
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (image, id) = l.split_once('\t').unwrap();
            let id = (id != "-").then(|| id.to_string());
            let admitted = id.as_deref().is_some_and(|i| i != "longhorn-manager");
            (image.to_string(), id, admitted)
        })
        .collect()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/admission-reviews/{name}")).unwrap()
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// The default configuration without the historical-certificate warnings: what most tests
/// want, so that only the finding under test speaks.
pub fn quiet_config() -> Config {
    let mut c = Config::default();
    c.certificates.historical = CertificateAction::Ignore;
    c
}

/// What an in-process webhook is built from ([`TestConfig::app`]).
pub struct TestConfig {
    pub config: Config,
    /// The embedded catalogue when `None`.
    pub source: Option<Arc<dyn AssessmentSource>>,
    pub pods: Option<Arc<dyn PodLister>>,
    pub max_body_bytes: usize,
    /// Answers for namespaces not labelled through [`InProcess::label`] (the live look-up of
    /// a namespace the watch has not delivered); none: the defaults, as without a cluster.
    pub fetch: Option<Fetch>,
    /// What relabel warnings may say (names: as behind client authentication).
    pub disclosure: fipsgate::app::relabel::Disclosure,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            config: quiet_config(),
            source: None,
            pods: None,
            max_body_bytes: 8 << 20,
            fetch: None,
            disclosure: fipsgate::app::relabel::Disclosure::Names,
        }
    }
}

impl TestConfig {
    /// The webhook route as `server::start` builds it, without a socket.
    pub fn app(&self) -> InProcess {
        let namespaces = Arc::new(match &self.fetch {
            None => NamespaceStore::standalone(self.config.defaults),
            Some(f) => NamespaceStore::new(self.config.defaults, Some(f.clone())),
        });
        let (metrics, registry) = Metrics::new();
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| Arc::new(Catalog::embedded()));
        let router = server::router(Arc::new(AppState {
            admission: Admission {
                rules: self.config.rules().unwrap(),
                source,
                namespaces: namespaces.clone(),
                pods: self.pods.clone(),
            },
            metrics: metrics.clone(),
            limits: Limits::new(self.max_body_bytes, Duration::from_secs(2), 1024, 0),
            disclosure: self.disclosure,
        }));
        InProcess {
            router,
            namespaces,
            metrics,
            registry,
        }
    }
}

/// The webhook router in process: requests go through `oneshot`, no socket.
pub struct InProcess {
    pub router: axum::Router,
    pub namespaces: Arc<NamespaceStore>,
    pub metrics: Metrics,
    pub registry: Registry,
}

impl InProcess {
    /// Posts a JSON body; returns the HTTP status and the JSON answer.
    pub async fn post(&self, uri: &str, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
        self.send(uri, "application/json", body).await
    }

    /// Posts a body with this content type; returns the HTTP status and the JSON answer.
    pub async fn send(
        &self,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let req = axum::http::Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(axum::body::Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body:?}"));
        (status, json)
    }

    /// Sets a namespace's labels through the interface the cluster watch feeds.
    pub fn label(&self, namespace: &str, labels: &[(&str, &str)]) {
        label(&self.namespaces, namespace, labels);
    }

    /// The metrics as `/metrics` exports them.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
}

fn label(store: &NamespaceStore, namespace: &str, labels: &[(&str, &str)]) {
    let l: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    store.apply(namespace, &l);
}

/// A Pod with these `(container, image)` pairs.
pub fn mk_pod(name: &str, containers: &[(&str, &str)]) -> serde_json::Value {
    let containers: Vec<_> = containers
        .iter()
        .map(|(n, i)| serde_json::json!({"name": n, "image": i}))
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": containers},
    })
}

/// An `admission.k8s.io/v1` AdmissionReview of `object` (and `old`), its `kind` and `resource`
/// those of the object.
pub fn mk_review(
    uid: &str,
    namespace: &str,
    operation: &str,
    object: serde_json::Value,
    old: Option<serde_json::Value>,
) -> serde_json::Value {
    let kind = object["kind"].as_str().unwrap().to_string();
    let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let resource = format!("{}s", kind.to_lowercase());
    let gvk = serde_json::json!({"group": group, "version": version, "kind": kind});
    let gvr = serde_json::json!({"group": group, "version": version, "resource": resource});
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": object["metadata"]["name"],
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
        },
    })
}

/// An attestation source that takes its time, to exercise deadlines and draining.
pub struct Slow {
    delay: Duration,
    /// Look-ups started.
    pub calls: AtomicUsize,
    inner: Catalog,
}

impl AssessmentSource for Slow {
    fn assess<'a>(
        &'a self,
        image: &'a ImageRef,
        _: &'a LookupContext,
    ) -> BoxFuture<'a, Assessment> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.inner.lookup(image)
        })
    }
}

pub fn slow(delay: Duration) -> Arc<Slow> {
    Arc::new(Slow {
        delay,
        calls: AtomicUsize::new(0),
        inner: Catalog::embedded(),
    })
}

/// A CA and a serving certificate for localhost in a temporary directory.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let b = fipsgate::infra::certs::generate(&hosts(), None, 1).unwrap();
        fipsgate::infra::certs::write(dir.path(), &b).unwrap();
        Self { dir }
    }

    /// Issues a new serving pair from the same CA, replacing the files atomically.
    pub fn rotate(&self) {
        let ca = std::fs::read_to_string(self.path("ca.crt")).unwrap();
        let key = std::fs::read_to_string(self.path("ca.key")).unwrap();
        let b = fipsgate::infra::certs::generate(&hosts(), Some((&ca, &key)), 1).unwrap();
        fipsgate::infra::certs::write(self.dir.path(), &b).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn paths(&self) -> CertPaths {
        CertPaths {
            cert: self.path("tls.crt"),
            key: self.path("tls.key"),
        }
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.crt")).unwrap()
    }
}

fn hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}

/// A running in-process server and what it was started with.
pub struct TestServer {
    pub running: Running,
    pub certs: Certs,
    pub namespaces: Arc<NamespaceStore>,
}

pub struct Options {
    pub config: Config,
    pub source: Option<Arc<dyn AssessmentSource>>,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub max_connection_age: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    pub max_concurrent_requests: usize,
    pub max_buffered_bytes: usize,
    pub client_auth: Option<fipsgate::server::ClientAuth>,
    pub drain_timeout: Duration,
    pub shutdown_delay: Duration,
    pub pods: Option<Arc<dyn PodLister>>,
    /// Metrics shared with the attestation source, when it has any.
    pub metrics: Option<(
        fipsgate::telemetry::metrics::Metrics,
        Arc<prometheus_client::registry::Registry>,
    )>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: Config::default(),
            source: None,
            max_body_bytes: 8 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(2),
            max_connection_age: Duration::from_secs(600),
            body_read_timeout: Duration::from_secs(2),
            max_connections: 4096,
            max_connections_per_source: 256,
            max_concurrent_requests: 1024,
            max_buffered_bytes: 64 * 1024 * 1024,
            client_auth: None,
            drain_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            pods: None,
            metrics: None,
        }
    }
}

pub fn install_provider() {
    fipsgate::infra::crypto::install();
}

impl TestServer {
    pub async fn start(opts: Options) -> Self {
        Self::start_with_certs(opts, Certs::new()).await
    }

    /// Starts with these certificates (a client CA among them, say).
    pub async fn start_with_certs(opts: Options, certs: Certs) -> Self {
        Self::try_start_with_certs(opts, certs).await.unwrap()
    }

    /// Starts, or says why the server refused to.
    pub async fn try_start_with_certs(opts: Options, certs: Certs) -> Result<Self, String> {
        let provider = fipsgate::infra::crypto::install();
        let rules = opts.config.rules().unwrap();
        let namespaces = Arc::new(NamespaceStore::standalone(opts.config.defaults));
        let source = opts.source.unwrap_or_else(|| Arc::new(Catalog::embedded()));
        let running = server::start(Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            tls: certs.paths(),
            client_auth: opts.client_auth.clone(),
            provider,
            cert_reload_interval: Duration::from_millis(100),
            admission: Admission {
                rules,
                source,
                namespaces: namespaces.clone(),
                pods: opts.pods,
            },
            limits: Limits::new(
                opts.max_body_bytes,
                opts.body_read_timeout,
                opts.max_concurrent_requests,
                opts.max_buffered_bytes,
            ),
            header_read_timeout: opts.header_read_timeout,
            max_connection_age: opts.max_connection_age,
            max_connections: opts.max_connections,
            max_connections_per_source: opts.max_connections_per_source,
            shutdown_delay: opts.shutdown_delay,
            drain_timeout: opts.drain_timeout,
            require_fips: false,
            module: fipsgate::infra::crypto::module(),
            metrics: opts.metrics.unwrap_or_else(|| {
                let (m, r) = fipsgate::telemetry::metrics::Metrics::new();
                (m, Arc::new(r))
            }),
        })
        .await
        .map_err(|e| format!("{e:#}"))?;
        Ok(Self {
            running,
            certs,
            namespaces,
        })
    }

    /// Sets a namespace's labels through the interface the cluster watch feeds.
    pub fn label(&self, namespace: &str, labels: &[(&str, &str)]) {
        label(&self.namespaces, namespace, labels);
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.running.addr.port())
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.running.admin_addr.port())
    }

    pub fn client(&self, version: HttpVersion) -> reqwest::Client {
        client(&self.certs.ca_pem(), version)
    }

    /// `/metrics` of the admin port, as text.
    pub async fn metrics(&self) -> String {
        let r = reqwest::get(self.admin_url("/metrics")).await.unwrap();
        r.text().await.unwrap()
    }

    /// A raw TLS connection to the webhook port offering `alpn`.
    pub async fn tls(&self, alpn: &[u8]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let connector = tls_connector(&self.certs.ca_pem(), &[alpn]);
        let tcp = tokio::net::TcpStream::connect(self.running.addr)
            .await
            .unwrap();
        (connector.connect("localhost".try_into().unwrap(), tcp))
            .await
            .unwrap()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    H1,
    H2,
}

/// A real HTTPS client trusting `ca_pem`, speaking only the given HTTP version.
pub fn client(ca_pem: &[u8], version: HttpVersion) -> reqwest::Client {
    client_from(ca_pem, version, [127, 0, 0, 1].into())
}

/// [`client`] connecting from `source` (any 127.0.0.0/8 address: another "pod").
pub fn client_from(
    ca_pem: &[u8],
    version: HttpVersion,
    source: std::net::IpAddr,
) -> reqwest::Client {
    install_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem).unwrap();
    let b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .local_address(source)
        .timeout(Duration::from_secs(10));
    let b = match version {
        HttpVersion::H1 => b.http1_only(),
        HttpVersion::H2 => b.http2_prior_knowledge(),
    };
    b.build().unwrap()
}

/// A raw TLS client trusting `ca_pem`, for tests below HTTP (handshakes, slow clients).
pub fn tls_connector(ca_pem: &[u8], alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject as _;
    install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// Posts a review; returns the HTTP status and the JSON body.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> (reqwest::StatusCode, reqwest::Version, serde_json::Value) {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let version = resp.version();
    let json = resp.json().await.unwrap();
    (status, version, json)
}

/// The request's object made into a pod with these `(container, image)` pairs.
pub fn pod_review(uid: &str, namespace: &str, images: &[(&str, &str)]) -> serde_json::Value {
    let mut review = fixture_json("pod-create-init-and-containers.json");
    let containers: Vec<_> = images
        .iter()
        .map(|(n, i)| serde_json::json!({"name": n, "image": i}))
        .collect();
    review["request"]["uid"] = uid.into();
    review["request"]["namespace"] = namespace.into();
    review["request"]["object"]["spec"]["initContainers"] = serde_json::json!([]);
    review["request"]["object"]["spec"]["containers"] = containers.into();
    review
}

pub fn bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

pub fn manifest(name: &str) -> PathBuf {
    Path::new(FIXTURES).join("manifests").join(name)
}
