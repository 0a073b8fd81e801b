//! Serving certificates: loaded and checked before binding, reloaded without restart when the
//! files change (including Kubernetes' atomic symlink swap of a Secret volume, since the files
//! are re-read by path, not watched by inode). A bad new pair keeps the old one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::telemetry::metrics::Metrics;

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("certificate {cert} and key {key} do not form a usable pair: {reason}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Where the serving certificate chain and key live.
#[derive(Clone, Debug)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Parses a PEM chain and key and checks that the key belongs to the leaf certificate.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    paths: &CertPaths,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path, e: rustls_pki_types::pem::Error| TlsError::Pem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(&paths.cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: paths.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem_err(&paths.key, e))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Pair {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
        reason: e.to_string(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Serves the current certificate and swaps in new ones as the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    paths: CertPaths,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The bytes the current key was loaded from, to notice changes.
    loaded: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl ReloadingCert {
    /// Loads the pair now; fails fast when it is unreadable or mismatched.
    pub fn load(paths: CertPaths, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let (c, k) = (read(&paths.cert)?, read(&paths.key)?);
        let key = certified_key(&c, &k, &paths, &provider)?;
        Ok(Self {
            paths,
            provider,
            current: RwLock::new(Arc::new(key)),
            loaded: Mutex::new((c, k)),
        })
    }

    /// Re-reads the files; returns `Ok(true)` when a new pair was installed. On error the old
    /// pair stays in use.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (c, k) = (read(&self.paths.cert)?, read(&self.paths.key)?);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.0 == c && loaded.1 == k {
            return Ok(false);
        }
        let key = certified_key(&c, &k, &self.paths, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        *loaded = (c, k);
        Ok(true)
    }

    /// Polls the files every `interval` until the task is dropped.
    pub async fn watch(self: Arc<Self>, interval: Duration, metrics: Metrics) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A rotation writes two files; an error is reported only when the next poll sees it
        // again, and then only once.
        let (mut pending, mut reported) = (String::new(), false);
        loop {
            tick.tick().await;
            let this = self.clone();
            let outcome = tokio::task::spawn_blocking(move || this.reload()).await;
            match outcome {
                Ok(Ok(changed)) => {
                    if changed {
                        self.record_expiry(&metrics);
                        tracing::info!(cert = %self.paths.cert.display(), "serving certificate reloaded");
                    }
                    (pending, reported) = (String::new(), false);
                }
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    if msg != pending {
                        (pending, reported) = (msg, false);
                    } else if !reported {
                        metrics.error("tls_reload");
                        tracing::warn!(error = %msg, "new serving certificate rejected; keeping the old one");
                        reported = true;
                    }
                }
                Err(e) => tracing::error!(error = %e, "certificate reload task failed"),
            }
        }
    }
}

impl ReloadingCert {
    /// When the serving certificate in use expires (Unix time).
    pub fn not_after(&self) -> Option<i64> {
        let key = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        not_after(key.cert.first()?)
    }

    /// Sets the serving certificate's expiry metric.
    pub fn record_expiry(&self, metrics: &Metrics) {
        if let Some(t) = self.not_after() {
            let labels = crate::telemetry::process::CertificateLabels {
                certificate: "serving",
            };
            metrics.ops.certificate_expiry.get_or_create(&labels).set(t);
        }
    }
}

/// When a DER certificate expires (Unix time).
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// A rustls server configuration: TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`; clients verified
/// by `clients` when given.
pub fn server_config(
    resolver: Arc<ReloadingCert>,
    provider: Arc<CryptoProvider>,
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match clients {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
