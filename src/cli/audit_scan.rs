//! `audit --scan`: the settings of the scans, and the [`ImageScanner`] that pulls each image
//! with the credentials its pods have (their pull secrets, else Docker's config.json) and
//! scans it with `fipsgate scan`'s rules, reading and keeping results by digest.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::app::ports::{BoxFuture, ImageScanner, ScanResult, ScanTarget};
use crate::domain::fips::Certificate;
use crate::domain::image::ImageRef;
use crate::infra::registry::{Credentials, PullSecrets, auth_for};
use crate::infra::scan_cache::ScanCache;
use crate::scan::{Limits, RULES_VERSION, Subject};

use super::pull::Pull;
use super::scan::{Common, ProfileArg, read_exceptions};

/// How `audit --scan` scans.
#[derive(Debug, Args)]
#[command(next_help_heading = "Scanning (--scan)")]
pub struct ScanSettings {
    /// Also pull and scan each distinct image (pinned to the digest its pods run) with the
    /// rules of `fipsgate scan`: which images would pass `evidence.minimum: scan`.
    #[arg(long)]
    pub scan: bool,
    /// Images pulled and scanned at once.
    #[arg(long, requires = "scan", value_name = "N", default_value_t = 2,
        value_parser = clap::value_parser!(u16).range(1..=16))]
    pub scan_concurrency: u16,
    /// Where scans are kept by digest, so an interrupted audit resumes and the next one reads
    /// what this one scanned (default: $XDG_CACHE_HOME/fipsgate/scans, ~/.cache/fipsgate/scans).
    #[arg(long, requires = "scan", value_name = "DIR")]
    pub scan_cache: Option<PathBuf>,
    /// Scan every image again (the results are still kept).
    #[arg(long, requires = "scan")]
    pub rescan: bool,
    /// Which link methods count.
    #[arg(long, requires = "scan", value_enum, default_value_t = ProfileArg::Any)]
    pub profile: ProfileArg,
    /// Accepted failures (the YAML of `fipsgate scan --exceptions`).
    #[arg(long, requires = "scan", value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
    /// A registry spoken to over plain HTTP (repeatable), such as one on loopback.
    #[arg(long, requires = "scan", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Registry credentials used when a pod's pull secrets have none for the registry
    /// (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json).
    #[arg(long, requires = "scan", value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Seconds a registry has to connect, to answer each read and to send each manifest.
    #[arg(long, requires = "scan", value_name = "SECONDS", default_value_t = 30)]
    pub registry_timeout: u64,
    /// Seconds one image (every platform, every layer) may take to pull: a registry that
    /// trickles bytes gives up here.
    #[arg(long, requires = "scan", value_name = "SECONDS", default_value_t = 900)]
    pub scan_timeout: u64,
    /// The most disk one scan's kept files may take, in MiB, in $TMPDIR.
    #[arg(long, requires = "scan", value_name = "MIB", default_value_t = 16384)]
    pub max_scratch_mib: u64,
}

/// Pulls and scans images from the cluster's registries.
pub struct ClusterScanner {
    pull: Arc<Pull>,
    common: Arc<Common>,
    docker: Credentials,
    pull_secrets: Option<Arc<dyn PullSecrets>>,
    cache: Option<ScanCache>,
    rescan: bool,
    deadline: Duration,
}

impl ClusterScanner {
    /// The scanner of these settings, judging certificates by `certificates` on `today`.
    pub fn new(
        settings: &ScanSettings,
        certificates: Vec<Certificate>,
        today: jiff::civil::Date,
        pull_secrets: Option<Arc<dyn PullSecrets>>,
    ) -> anyhow::Result<Self> {
        let common = Common {
            profile: settings.profile.into(),
            env: Vec::new(),
            certificates,
            exceptions: read_exceptions(settings.exceptions.as_deref())?,
            subject: Subject::default(),
            today,
            limits: Limits::default(),
        };
        let fingerprint = format!(
            "fipsgate {} rules {RULES_VERSION}\nprofile {}\nday {today}\nexceptions {:?}\ncertificates {:?}",
            env!("CARGO_PKG_VERSION"),
            common.profile.as_str(),
            common.exceptions,
            common.certificates,
        );
        let root = settings.scan_cache.clone().or_else(ScanCache::default_root);
        let pull = Pull {
            images: Vec::new(),
            oci_layout: None,
            platform: None,
            insecure_registry: settings.insecure_registry.clone(),
            docker_config: None,
            max_scratch_bytes: settings.max_scratch_mib.saturating_mul(1 << 20),
            timeout: Duration::from_secs(settings.registry_timeout),
        };
        crate::infra::crypto::install();
        Ok(Self {
            pull: Arc::new(pull),
            common: Arc::new(common),
            docker: super::pull::credentials(settings.docker_config.as_deref())?,
            pull_secrets,
            cache: root.map(|r| ScanCache::new(&r, &fingerprint)),
            rescan: settings.rescan,
            deadline: Duration::from_secs(settings.scan_timeout),
        })
    }

    /// The pod's pull secrets' credentials; none when they cannot be read (the scan then
    /// says what the registry answered).
    async fn pod_credentials(&self, target: &ScanTarget) -> Credentials {
        let ctx = &target.context;
        match &self.pull_secrets {
            Some(p) if !ctx.pull_secrets.is_empty() => p
                .credentials(&ctx.namespace, &ctx.pull_secrets)
                .await
                .unwrap_or_default(),
            _ => Credentials::default(),
        }
    }
}

impl ImageScanner for ClusterScanner {
    fn scan<'a>(&'a self, target: &'a ScanTarget) -> BoxFuture<'a, Result<ScanResult, String>> {
        Box::pin(async move {
            let image = ImageRef::parse(&target.reference).map_err(|e| e.to_string())?;
            let auth = auth_for(
                image.registry(),
                &self.pod_credentials(target).await,
                &self.docker,
            );
            let (pull, common) = (self.pull.clone(), self.common.clone());
            let cache = self.cache.clone();
            let (rescan, deadline) = (self.rescan, self.deadline);
            let scanned = tokio::task::spawn_blocking(move || {
                pull.scan_cached(image, auth, &common, cache.as_ref(), rescan, deadline)
            });
            match scanned.await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(super::causes(&e).join(": ")),
                Err(e) => Err(format!("the scan stopped: {e}")),
            }
        })
    }
}
