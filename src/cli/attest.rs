//! `fipsgate attest IMAGE --key KEY`: signs what `fipsgate scan` found in an image (fipsgate's
//! scan predicate, in an in-toto statement about the exact digest scanned, in a DSSE envelope)
//! and stores it with the image: cosign's `sha256-<hex>.att` tag and an OCI 1.1 referrer. The
//! image is scanned here (every platform of an index, its layers pulled as `scan IMAGE` pulls
//! them) unless `--scan-result FILE` or `--rootfs DIR` says what a scan found. With
//! `--out FILE` the envelopes are written there instead. Exit 0 when everything was signed (and
//! stored), 2 on an error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::app::attest::{self as plan, AttestError};
use crate::attest::{SCAN_PREDICATE, SigningKey};
use crate::config::AllowedRegistries;
use crate::domain::fips::Status;
use crate::domain::image::ImageRef;
use crate::infra::registry::{
    Credentials, Descriptor, ReferrersVia, Registry, RegistryAuth, Stored, auth_for,
};
use crate::scan::{ImageScans, ImageSubject, Report, Subject};

use super::chain::block_on;
use super::output::{Output, document};
use super::pull::Pull;
use super::scan::{Common, ProfileArg, RootfsScan};
use super::table::render_table;

/// `fipsgate attest`
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The image the attestation is about and stored with (`registry/repository[:tag][@digest]`).
    pub image: String,
    /// The signing key: an unencrypted PEM private key, PKCS#8 (ECDSA P-256 or Ed25519) or SEC1
    /// (P-256), as `openssl genpkey` writes it; `cosign import-key-pair` takes the same key.
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// What `fipsgate scan -o json` (or `-o yaml`) wrote: the document of `scan IMAGE` or
    /// `--oci-layout` (each platform's report is attested), or the report of `scan --rootfs`;
    /// repeatable. Without it (or --rootfs), IMAGE is scanned here.
    #[arg(long = "scan-result", value_name = "FILE")]
    pub scan_results: Vec<PathBuf>,
    /// Scan this unpacked root filesystem instead of reading a report (the image manifest it
    /// was unpacked from: --digest, or the digest in IMAGE).
    #[arg(long, value_name = "DIR", conflicts_with = "scan_results")]
    pub rootfs: Option<PathBuf>,
    /// The digest of the image manifest scanned, when the report does not say (`--rootfs`,
    /// a `scan --rootfs` report).
    #[arg(long, value_name = "sha256:...")]
    pub digest: Option<String>,
    /// The platform scanned (`linux/amd64`), when the report does not say; when IMAGE is
    /// scanned here, only this platform of its index.
    #[arg(long)]
    pub platform: Option<String>,
    /// When scanning: which link methods count (as `fipsgate scan --profile`).
    #[arg(long, value_enum, default_value_t = ProfileArg::Any, conflicts_with = "scan_results")]
    pub profile: ProfileArg,
    /// When scanning: accepted failures (as `fipsgate scan --exceptions`).
    #[arg(long, value_name = "FILE", conflicts_with = "scan_results")]
    pub exceptions: Option<PathBuf>,
    /// When scanning: the image's environment, `KEY=VALUE` (as `fipsgate scan --env`); an
    /// image's own is read when IMAGE is scanned here.
    #[arg(
        long = "env",
        value_name = "KEY=VALUE",
        conflicts_with = "scan_results"
    )]
    pub env: Vec<String>,
    /// When scanning: the configuration whose catalogue files add certificates.
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Write the signed envelopes to FILE (one JSON document per line) instead of pushing.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Registry credentials: a Docker `config.json` (default: `$DOCKER_CONFIG/config.json`,
    /// else `~/.docker/config.json`, when there is one).
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// A registry (`host:port`) spoken to over plain HTTP (tests, air-gapped mirrors);
    /// repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// What was signed and where it was stored.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// One signed statement: the document `-o json` prints, one per report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signed {
    pub reference: String,
    pub platform: Option<String>,
    /// The scan's verdict.
    pub status: Status,
    pub predicate_type: &'static str,
    /// The statement's subjects: the platform manifest, and the index when the whole index
    /// passed.
    pub subjects: Vec<String>,
    /// The key that signed: the hex SHA-256 of its public key (the envelope's `keyid`).
    pub key_id: String,
    pub algorithm: &'static str,
    /// The envelope's digest.
    pub envelope: String,
    /// Where it was stored; empty with `--out`.
    pub stored: Vec<Stored>,
    /// Why the index is not a subject, when the report names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_note: Option<String>,
}

/// `-o json` and `-o yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestReport {
    /// Where the envelopes were written (`--out`), else none: they were pushed.
    pub out: Option<String>,
    pub signed: Vec<Signed>,
}

impl AttestArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let image = ImageRef::parse(&self.image)
            .map_err(|e| anyhow::anyhow!("image {:?}: {e}", self.image))?;
        let pem =
            std::fs::read(&self.key).with_context(|| format!("reading {}", self.key.display()))?;
        let key = SigningKey::from_pem(&pem).with_context(|| format!("{}", self.key.display()))?;
        let reports = self.reports(&image)?;
        let report = match &self.out {
            Some(out) => self.write(&image, &key, &reports, out)?,
            None => {
                crate::infra::crypto::install();
                block_on(self.push(&image, &key, &reports))??
            }
        };
        super::emit(&match self.output {
            Output::Json | Output::Yaml => document(&report, self.output)?,
            Output::Table | Output::Wide => table(&report, self.output == Output::Wide),
        })?;
        Ok(ExitCode::SUCCESS)
    }

    /// The reports to attest, each with the image it is of.
    fn reports(&self, image: &ImageRef) -> anyhow::Result<Vec<(Report, ImageSubject)>> {
        let given = image.digest().map(|d| d.as_str().to_string());
        if let (Some(g), Some(d)) = (&given, &self.digest)
            && g != d
        {
            anyhow::bail!("{} names {g}, but --digest is {d}", self.image);
        }
        let digest = self.digest.clone().or(given);
        if let Some(rootfs) = &self.rootfs {
            let report = RootfsScan {
                rootfs,
                profile: self.profile.into(),
                exceptions: self.exceptions.as_deref(),
                env: self.env.clone(),
                subject: Subject {
                    repository: Some(image.name().to_string()),
                    component: None,
                },
                config: self.config.as_deref(),
                date: None,
                max_file_mib: 512,
            }
            .run()?;
            let s = plan::subject_of(&report, &self.image, digest.as_deref(), None)?;
            return Ok(vec![(report, self.with_platform(s))]);
        }
        if self.scan_results.is_empty() {
            if self.digest.is_some() {
                anyhow::bail!(
                    "--digest is for --rootfs and --scan-result: a scan of {} knows its digest",
                    self.image
                );
            }
            return self.scan(image);
        }
        let mut read = Vec::new();
        for path in &self.scan_results {
            let reports = read_scan_result(path)?;
            read.extend(reports.into_iter().map(|r| (path, r)));
        }
        if read.len() > 1 && self.digest.is_some() {
            anyhow::bail!("--digest names one image: with several reports, each says its own");
        }
        let one = read.len() == 1;
        let mut out = Vec::new();
        for (path, report) in read {
            // A digest in IMAGE names the report's image, or the index its platform was picked
            // from; a directory's report takes it only when it is the one report.
            let d = match &report.image {
                Some(i) if i.index.is_some() && i.index == digest => None,
                Some(_) => digest.as_deref(),
                None if one => digest.as_deref(),
                None => None,
            };
            let s = plan::subject_of(&report, &self.image, d, None)
                .map_err(|e: AttestError| anyhow::anyhow!("{}: {e}", path.display()))?;
            out.push((report, self.with_platform(s)));
        }
        Ok(out)
    }

    /// IMAGE scanned here as `scan IMAGE` scans it: every platform of an index (or
    /// --platform), each a report about its own digest.
    fn scan(&self, image: &ImageRef) -> anyhow::Result<Vec<(Report, ImageSubject)>> {
        let common = Common::load(
            self.profile.into(),
            self.exceptions.as_deref(),
            self.env.clone(),
            Subject {
                repository: Some(image.name().to_string()),
                component: None,
            },
            self.config.as_deref(),
            None,
            512,
        )?;
        let pull = Pull {
            images: vec![self.image.clone()],
            oci_layout: None,
            platform: self.platform.clone(),
            insecure_registry: self.insecure_registries.clone(),
            docker_config: self.docker_config.clone(),
            max_scratch_bytes: 16384 << 20,
            timeout: std::time::Duration::from_secs(30),
        };
        let scans = pull.scan(&common)?;
        let mut out = Vec::new();
        for report in scans.images.into_iter().flat_map(|i| i.reports) {
            let s = plan::subject_of(&report, &self.image, None, None)?;
            out.push((report, s));
        }
        Ok(out)
    }

    fn with_platform(&self, mut s: ImageSubject) -> ImageSubject {
        if s.platform.is_none() {
            s.platform = self.platform.clone();
        }
        s
    }

    /// Signs every report and writes the envelopes to `out`, one per line.
    fn write(
        &self,
        image: &ImageRef,
        key: &SigningKey,
        reports: &[(Report, ImageSubject)],
        out: &std::path::Path,
    ) -> anyhow::Result<AttestReport> {
        let mut lines = Vec::new();
        let mut signed = Vec::new();
        for (report, subject) in reports {
            let (envelope, s) = sign(image, key, report, subject, None)?;
            lines.push(String::from_utf8_lossy(&envelope).into_owned());
            signed.push(Signed {
                index_note: subject.index.as_ref().map(|_| {
                    "the index is not a subject: --out does not ask the registry whether every \
                     platform was scanned"
                        .into()
                }),
                ..s
            });
        }
        std::fs::write(out, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        Ok(AttestReport {
            out: Some(out.display().to_string()),
            signed,
        })
    }

    /// Signs every report and stores each envelope with each of its subjects.
    async fn push(
        &self,
        image: &ImageRef,
        key: &SigningKey,
        reports: &[(Report, ImageSubject)],
    ) -> anyhow::Result<AttestReport> {
        let registry = Registry::new(
            &self.insecure_registries,
            AllowedRegistries::default(),
            std::time::Duration::from_secs(30),
        )
        .map_err(anyhow::Error::msg)?;
        let auth = self.auth(image)?;
        let statuses: Vec<(&ImageSubject, Status)> =
            reports.iter().map(|(r, s)| (s, r.status)).collect();
        let mut signed = Vec::new();
        for (report, subject) in reports {
            let found = describe(&registry, image, &subject.digest, &auth).await?;
            let (index, note) = match &subject.index {
                Some(ix) => whole_index(&registry, image, ix, &statuses, &auth).await?,
                None => (None, None),
            };
            let (envelope, mut s) = sign(image, key, report, subject, index.as_ref())?;
            for target in std::iter::once(&found).chain(index.as_ref()) {
                let stored = registry
                    .attach(image, target, &envelope, SCAN_PREDICATE, &auth)
                    .await
                    .with_context(|| format!("storing the attestation of {}", target.digest))?;
                s.stored.push(stored);
            }
            s.index_note = note;
            signed.push(s);
        }
        Ok(AttestReport { out: None, signed })
    }

    /// Who fipsgate is to the image's registry: the Docker config's credentials, if any.
    fn auth(&self, image: &ImageRef) -> anyhow::Result<RegistryAuth> {
        let path = self.docker_config.clone().or_else(|| {
            let dir = std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
            Some(dir.join("config.json")).filter(|p| p.is_file())
        });
        let creds = match path {
            Some(p) => {
                let bytes =
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                Credentials::from_docker_config(&bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            }
            None => Credentials::default(),
        };
        Ok(auth_for(image.registry(), &creds, &Credentials::default()))
    }
}

/// The reports in what `fipsgate scan -o json` (or `-o yaml`) wrote: every platform's of a
/// `scan IMAGE` / `--oci-layout` document, or the one of `scan --rootfs`.
fn read_scan_result(path: &std::path::Path) -> anyhow::Result<Vec<Report>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(json) => serde_saphyr::from_str(&text).map_err(|yaml| {
            anyhow::anyhow!(
                "{}: not a fipsgate scan report (as JSON: {json}; as YAML: {yaml})",
                path.display()
            )
        })?,
    };
    let not_a_scan = |e: serde_json::Error| {
        anyhow::anyhow!("{}: not a fipsgate scan report: {e}", path.display())
    };
    if value.get("images").is_none() {
        return Ok(vec![serde_json::from_value(value).map_err(not_a_scan)?]);
    }
    let scans: ImageScans = serde_json::from_value(value).map_err(not_a_scan)?;
    let reports: Vec<Report> = (scans.images.into_iter()).flat_map(|i| i.reports).collect();
    if reports.is_empty() {
        anyhow::bail!("{}: the scan holds no report", path.display());
    }
    Ok(reports)
}

/// The envelope of `report`'s statement (about its digest, and `index` when given), and what
/// was signed.
fn sign(
    image: &ImageRef,
    key: &SigningKey,
    report: &Report,
    subject: &ImageSubject,
    index: Option<&Descriptor>,
) -> anyhow::Result<(Vec<u8>, Signed)> {
    let predicate = plan::predicate(report, subject)?;
    let mut digests = vec![subject.digest.as_str()];
    digests.extend(index.map(|d| d.digest.as_str()));
    let statement = plan::statement(image.name(), &digests, predicate);
    let envelope = key.envelope(&statement)?;
    let signed = Signed {
        reference: subject.reference.clone(),
        platform: subject.platform.clone(),
        status: report.status,
        predicate_type: SCAN_PREDICATE,
        subjects: digests.iter().map(|d| d.to_string()).collect(),
        key_id: key.key_id().to_string(),
        algorithm: key.algorithm(),
        envelope: crate::attest::envelope_digest(&envelope),
        stored: Vec::new(),
        index_note: None,
    };
    Ok((envelope, signed))
}

/// The manifest `digest` in the image's repository: it must be there.
async fn describe(
    registry: &Registry,
    image: &ImageRef,
    digest: &str,
    auth: &RegistryAuth,
) -> anyhow::Result<Descriptor> {
    registry
        .describe(image, digest, auth)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}@{digest} is not in the registry: push the image before attesting it",
                image.name()
            )
        })
}

/// The index as a subject when the whole index passed (every runnable platform scanned and
/// `full`); else why not.
async fn whole_index(
    registry: &Registry,
    image: &ImageRef,
    index: &str,
    statuses: &[(&ImageSubject, Status)],
    auth: &RegistryAuth,
) -> anyhow::Result<(Option<Descriptor>, Option<String>)> {
    let at = ImageRef::parse(&format!("{}@{index}", image.name()))?;
    let resolved = registry.resolve(&at, auth).await?;
    let platforms = match resolved {
        Some(r) if r.index => r.platforms,
        Some(_) => return Ok((None, Some(format!("{index} is not an index")))),
        None => anyhow::bail!("{}@{index} is not in the registry", image.name()),
    };
    if !plan::index_passed(statuses, &platforms) {
        let names: Vec<&str> = platforms.iter().map(|p| p.name.as_str()).collect();
        let note = format!(
            "the index {index} is not a subject: not every platform it lists ({}) was scanned full here",
            names.join(", ")
        );
        return Ok((None, Some(note)));
    }
    Ok((Some(describe(registry, image, index, auth).await?), None))
}

/// One row per subject stored (or per envelope written); `wide` spells every digest and tag
/// out and adds the envelope and the key.
fn table(report: &AttestReport, wide: bool) -> String {
    let mut head = vec!["SUBJECT", "PLATFORM", "STATUS", "COSIGN TAG", "REFERRER"];
    if wide {
        head.extend(["ENVELOPE", "KEY ID"]);
    }
    let cut = |s: &str| if wide { s.to_string() } else { short(s) };
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    for s in &report.signed {
        let platform = s.platform.clone().unwrap_or_else(|| "-".into());
        let stored: Vec<Option<&Stored>> = if s.stored.is_empty() {
            s.subjects.iter().map(|_| None).collect()
        } else {
            s.stored.iter().map(Some).collect()
        };
        for (subject, st) in s.subjects.iter().zip(stored) {
            let mut row = vec![
                cut(subject),
                platform.clone(),
                s.status.to_string(),
                st.map_or("-".into(), |t| {
                    let tag = match wide {
                        true => t.cosign_tag.clone(),
                        false => format!("{}.att", short(&t.subject.replace(':', "-"))),
                    };
                    match t.cosign_layers {
                        1 if wide => format!("{tag} (1 envelope)"),
                        n if wide => format!("{tag} ({n} envelopes)"),
                        _ => tag,
                    }
                }),
                st.map_or("-".into(), |t| match t.referrers_via {
                    ReferrersVia::ReferrersApi => format!("{} (referrers API)", cut(&t.referrer)),
                    ReferrersVia::TagSchema => format!(
                        "{} (no referrers API: in the {} index)",
                        cut(&t.referrer),
                        cut(&t.subject.replace(':', "-"))
                    ),
                }),
            ];
            if wide {
                row.extend([s.envelope.clone(), s.key_id.clone()]);
            }
            rows.push(row);
        }
    }
    let mut out = render_table(&rows);
    for s in &report.signed {
        if let Some(n) = &s.index_note {
            out.push_str(&format!("note: {n}\n"));
        }
    }
    let n = report.signed.len();
    let (what, them) = if n == 1 {
        ("statement", "it")
    } else {
        ("statements", "them")
    };
    out.push_str(&match &report.out {
        Some(f) => format!("signed {n} {what} ({SCAN_PREDICATE}); envelopes written to {f}\n"),
        None => {
            format!("signed {n} {what} ({SCAN_PREDICATE}) and stored {them} with the image\n")
        }
    });
    out
}

/// `sha256:0c6f4f7e8d4b…` (`sha256-…` alike) for a table.
fn short(digest: &str) -> String {
    match digest.char_indices().nth(19) {
        Some((i, _)) => format!("{}…", &digest[..i]),
        None => digest.to_string(),
    }
}
