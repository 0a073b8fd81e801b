//! `fipsgate scan IMAGE...` and `--oci-layout DIR[:TAG]`: each image resolved to its platforms
//! (every platform of an index, or `--platform`), each platform's layers streamed into a
//! merged tree with a progress bar on a terminal, its config's `Env` given to the scan, and a
//! report per platform with the index's verdict, the worst of them.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::app::ports::ScanResult;
use crate::domain::image::ImageRef;
use crate::infra::image::{self, LayoutSource, Progress, RemoteSource, Scratch, Source};
use crate::infra::registry::{Credentials, RegistryAuth, auth_for};
use crate::infra::scan_cache::ScanCache;
use crate::scan::layers::Keep;
use crate::scan::oci::Platform;
use crate::scan::{self, ImageScan, ImageScans, Report, Subject};

use super::output::{Output, document};
use super::scan::{Common, ScanOutput, markdown, table};

/// Where the images come from, and how they are read.
pub(super) struct Pull {
    pub images: Vec<String>,
    pub oci_layout: Option<String>,
    pub platform: Option<String>,
    pub insecure_registry: Vec<String>,
    pub docker_config: Option<PathBuf>,
    pub max_scratch_bytes: u64,
    pub timeout: Duration,
}

impl Pull {
    /// Every image's scans, in the order named.
    pub fn scan(self, common: &Common) -> anyhow::Result<ImageScans> {
        let platform = (self.platform.as_deref())
            .map(Platform::parse)
            .transpose()
            .context("--platform")?;
        let mut sources: Vec<Box<dyn Source>> = Vec::new();
        if let Some(arg) = &self.oci_layout {
            sources.push(Box::new(LayoutSource::parse(arg).context("--oci-layout")?));
        }
        if !self.images.is_empty() {
            crate::infra::crypto::install();
            let credentials = credentials(self.docker_config.as_deref())?;
            for arg in &self.images {
                let image = ImageRef::parse(arg).with_context(|| format!("image {arg:?}"))?;
                let auth = auth_for(image.registry(), &Credentials::default(), &credentials);
                let source = RemoteSource::new(image, auth, &self.insecure_registry, self.timeout)?;
                sources.push(Box::new(source));
            }
        }
        let mut images = Vec::new();
        for source in &sources {
            let reference = source.reference();
            let scanned = self
                .image(source.as_ref(), platform.as_ref(), common)
                .with_context(|| format!("scanning {reference}"))?;
            images.push(scanned);
        }
        Ok(ImageScans {
            status: scan::worst(images.iter().map(|i| i.status)),
            images,
        })
    }

    /// `image` in its registry (every platform), read from `cache` when its digest was
    /// scanned before with the same settings (unless `rescan`), kept there when scanned now;
    /// the registry has `deadline` to give all of it.
    pub fn scan_cached(
        &self,
        image: ImageRef,
        auth: RegistryAuth,
        common: &Common,
        cache: Option<&ScanCache>,
        rescan: bool,
        deadline: Duration,
    ) -> anyhow::Result<ScanResult> {
        let reference = image.to_string();
        let pinned = image.digest().map(|d| d.as_str().to_string());
        let source = RemoteSource::new(image, auth, &self.insecure_registry, self.timeout)?
            .with_deadline(deadline);
        if let Some(cache) = cache.filter(|_| !rescan) {
            let digest = match pinned {
                Some(d) => d,
                None => source.root()?.1,
            };
            if let Some(mut scan) = cache.get(&digest) {
                scan.reference = reference;
                return Ok(ScanResult { scan, cached: true });
            }
        }
        let scan = self.image(&source, None, common)?;
        if let Some(Err(e)) = cache.map(|c| c.put(&scan)) {
            eprintln!("fipsgate: the scan of {reference} is not cached: {e}");
        }
        Ok(ScanResult {
            scan,
            cached: false,
        })
    }

    /// One image: each of its platforms pulled and scanned in turn (one scratch file at a
    /// time).
    fn image(
        &self,
        source: &dyn Source,
        platform: Option<&Platform>,
        common: &Common,
    ) -> anyhow::Result<ImageScan> {
        let reference = source.reference();
        let resolved = image::targets(source, platform)?;
        let mut reports = Vec::new();
        for target in &resolved.targets {
            let config = image::config(source, target)?;
            let subject = image::subject(&reference, target, &config);
            if let Some(want) = platform.filter(|p| !p.matches(&config.platform)) {
                anyhow::bail!("{reference} is {}, not {want}", config.platform);
            }
            let mut env = config.env.clone();
            env.extend(common.env.iter().cloned());
            let keep = Keep {
                max_file_bytes: common.limits.max_file_bytes,
                paths: (env.iter())
                    .filter_map(|kv| kv.strip_prefix("OPENSSL_CONF="))
                    .map(scan::tree::normalize)
                    .collect(),
            };
            let mut scratch =
                Scratch::new(self.max_scratch_bytes).context("creating the scratch file")?;
            let total = target.manifest.layers.iter().map(|l| l.size).sum();
            let platform = subject.platform.clone().unwrap_or_default();
            let bar = Bar::new(total, format!("{reference} {platform}"));
            let merged = image::pull(source, target, &keep, &mut scratch, &mut |p| bar.show(p))?;
            drop(bar);
            let tree = merged.tree(&scratch);
            let who = Subject {
                repository: (common.subject.repository.clone()).or_else(|| source.repository()),
                component: common.subject.component.clone(),
            };
            let mut report = common.scan(&tree, env, who)?;
            for path in tree.missed() {
                eprintln!(
                    "fipsgate: {reference} {platform}: {path}: only its first bytes were kept from the layers, so it was not read as a configuration file"
                );
            }
            report.image = Some(subject);
            reports.push(report);
        }
        Ok(ImageScan {
            reference,
            digest: resolved.digest,
            index: resolved.index,
            status: scan::worst(reports.iter().map(|r| r.status)),
            reports,
        })
    }
}

/// Docker's `config.json`: the one named, else `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; none is anonymous.
pub(super) fn credentials(named: Option<&std::path::Path>) -> anyhow::Result<Credentials> {
    let path = match named {
        Some(p) => p.to_path_buf(),
        None => {
            let dir = (std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
            match dir.map(|d| d.join("config.json")).filter(|p| p.is_file()) {
                Some(p) => p,
                None => return Ok(Credentials::default()),
            }
        }
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Credentials::from_docker_config(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A progress bar over a platform's compressed layer bytes, on a terminal only.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    label: String,
}

impl Bar {
    fn new(total: u64, label: String) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let p = indicatif::ProgressBar::new(total);
            p.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            p.set_message(label.clone());
            p
        });
        Self { bar, label }
    }

    fn show(&self, event: Progress<'_>) {
        let Some(bar) = &self.bar else {
            return;
        };
        match event {
            Progress::Layer { index, count, .. } => {
                bar.set_message(format!("{} layer {index}/{count}", self.label));
            }
            Progress::Read(n) => bar.inc(n),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// How a platform's report is titled: `REFERENCE PLATFORM (DIGEST)`.
fn title(report: &Report) -> String {
    match &report.image {
        Some(i) => format!(
            "{} {} ({})",
            i.reference,
            i.platform.as_deref().unwrap_or("-"),
            i.digest
        ),
        None => "-".into(),
    }
}

/// The index line: its verdict and each platform's.
fn index_line(image: &ImageScan) -> String {
    let each: Vec<String> = (image.reports.iter())
        .filter_map(|r| {
            r.image
                .as_ref()
                .map(|i| format!("{} {}", i.platform.as_deref().unwrap_or("-"), r.status))
        })
        .collect();
    format!(
        "index {} ({}): {} ({})\n",
        image.reference,
        image.digest,
        image.status,
        each.join(", ")
    )
}

/// The scans in the format asked for: one table (or Markdown section) per platform and a
/// line per index; JSON and YAML are the [`ImageScans`] document.
pub(super) fn render(scans: &ImageScans, output: ScanOutput) -> anyhow::Result<String> {
    let mut out = String::new();
    match output {
        ScanOutput::Json => return document(scans, Output::Json),
        ScanOutput::Yaml => return document(scans, Output::Yaml),
        ScanOutput::Markdown => {
            for image in &scans.images {
                for r in &image.reports {
                    out.push_str(&markdown(r, &title(r)));
                    out.push('\n');
                }
                if image.index {
                    out.push_str(&format!("**{}**\n\n", index_line(image).trim_end()));
                }
            }
        }
        ScanOutput::Table | ScanOutput::Wide => {
            for image in &scans.images {
                for r in &image.reports {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&table(r, &title(r), output == ScanOutput::Wide));
                }
                if image.index {
                    out.push_str(&index_line(image));
                }
            }
        }
    }
    Ok(out)
}
