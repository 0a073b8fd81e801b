//! `fipsgate scan IMAGE...`, `--oci-layout DIR[:TAG]` or `--rootfs DIR`: judges the binaries
//! of an image's filesystem for FIPS-validated cryptography (images are pulled by
//! [`super::pull`]). Exit 0 when every image is `full`, 1 when one is not (`partial`, `none`,
//! `unknown`), 2 on an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::app::today_utc;
use crate::config::Loaded;
use crate::domain::fips::{CryptoModule, Status};
use crate::infra::rootfs::DirTree;
use crate::scan::{
    self, Exceptions, Finding, Limits, Profile, Report, ScanInput, Subject, Verdict,
};

use super::output::{Output, document};
use super::table::render_table;

/// `-o` of `scan`: the shared formats and `markdown` (for pull requests and issues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ScanOutput {
    /// One row per file with cryptography, then the image's verdict.
    #[default]
    Table,
    /// Every judged file (N/A too) with kind, architecture, Go version, link and reason.
    Wide,
    Json,
    Yaml,
    /// A Markdown table and the verdict.
    Markdown,
}

/// A link-method policy.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileArg {
    /// Any validated module, however linked.
    Any,
    /// Go binaries static with BoringCrypto (the vendor's fips-validate).
    VendorStaticBoring,
    /// Dynamic OpenSSL, golang-fips or Go's own module (Red Hat's check-payload).
    RedhatDynamicOpenssl,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Any => Profile::Any,
            ProfileArg::VendorStaticBoring => Profile::VendorStaticBoring,
            ProfileArg::RedhatDynamicOpenssl => Profile::RedhatDynamicOpenssl,
        }
    }
}

/// `fipsgate scan`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(false)
    .args(["images", "rootfs", "oci_layout"])))]
pub struct ScanArgs {
    /// Images in registries (`registry/repository:tag`, `...@sha256:...`): every platform of
    /// an index is scanned, its layers streamed and checked against their digests.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// An image's root filesystem, unpacked in a directory (symlinks stay inside it).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// An OCI image layout directory (index.json, blobs/sha256), and the tag of an image in it.
    #[arg(long, value_name = "DIR[:TAG]")]
    pub oci_layout: Option<String>,
    /// Only this platform of an index (`linux/arm64`, `linux/arm/v7`).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// A registry spoken to over plain HTTP (repeatable), such as one on loopback.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Registry credentials, a Docker config.json (default: $DOCKER_CONFIG/config.json, else
    /// ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// The most disk the files kept from layers (ELF files, jars, configuration) may take,
    /// in MiB, in $TMPDIR.
    #[arg(long, value_name = "MIB", default_value_t = 16384)]
    pub max_scratch_mib: u64,
    /// Seconds a registry has to connect, to answer each read and to send each manifest.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub registry_timeout: u64,
    /// Which link methods count.
    #[arg(long, value_enum, default_value_t = ProfileArg::Any)]
    pub profile: ProfileArg,
    /// Accepted failures (YAML: `exceptions: [{paths, error, reason, repository, component}]`).
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
    /// Print exceptions that would accept what keeps the image from `full`, instead of the
    /// report (review them before use).
    #[arg(long)]
    pub print_exceptions: bool,
    /// The image's environment, `KEY=VALUE` (repeatable): GODEBUG, GOFIPS, OPENSSL_CONF and
    /// OPENSSL_MODULES can override FIPS at run time. An image's own (its config's `Env`) is
    /// read; these are added after it.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The image's repository, for exceptions that name one (an image's own by default).
    #[arg(long)]
    pub repository: Option<String>,
    /// The image's catalogue component, for exceptions that name one.
    #[arg(long)]
    pub component: Option<String>,
    /// Configuration file (its catalogue files add certificates).
    #[arg(long, env = "FIPSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The day certificate statuses are evaluated on (YYYY-MM-DD; default today, UTC).
    #[arg(long)]
    pub date: Option<jiff::civil::Date>,
    /// The largest file read, in MiB; a larger ELF file or jar is UNKNOWN (TooLarge).
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    pub max_file_mib: u64,
    #[arg(short, long, value_enum, default_value_t = ScanOutput::Table)]
    pub output: ScanOutput,
}

/// What every scan of one run shares.
pub(super) struct Common {
    pub profile: Profile,
    pub env: Vec<String>,
    pub certificates: Vec<crate::domain::fips::Certificate>,
    pub exceptions: Exceptions,
    pub subject: Subject,
    pub today: jiff::civil::Date,
    pub limits: Limits,
}

impl Common {
    /// The settings as the command line gives them: `env` checked, the exceptions file read,
    /// the configuration's catalogue loaded for its certificates.
    pub fn load(
        profile: Profile,
        exceptions: Option<&Path>,
        env: Vec<String>,
        subject: Subject,
        config: Option<&Path>,
        date: Option<jiff::civil::Date>,
        max_file_mib: u64,
    ) -> anyhow::Result<Self> {
        if let Some(bad) = env.iter().find(|kv| !kv.contains('=')) {
            anyhow::bail!("--env {bad:?}: expected KEY=VALUE");
        }
        let exceptions = read_exceptions(exceptions)?;
        let Loaded { catalog, .. } = Loaded::from_file(config)?;
        Ok(Self {
            profile,
            env,
            certificates: catalog.certificates().to_vec(),
            exceptions,
            subject,
            today: date.unwrap_or_else(today_utc),
            limits: Limits {
                max_file_bytes: max_file_mib.saturating_mul(1 << 20),
            },
        })
    }

    /// The scan of `tree` with this environment and subject, stamped with the time it was
    /// made: every report (a directory's, each platform's of an image) is made here.
    pub fn scan(
        &self,
        tree: &dyn scan::tree::Tree,
        env: Vec<String>,
        subject: Subject,
    ) -> Result<Report, scan::ScanError> {
        let input = ScanInput {
            profile: self.profile,
            env,
            certificates: &self.certificates,
            exceptions: &self.exceptions,
            subject,
            today: self.today,
            limits: self.limits,
        };
        let mut report = scan::scan(tree, &input)?;
        report.scanned_at = Some(jiff::Timestamp::now());
        Ok(report)
    }

    /// The scan of an unpacked root filesystem.
    pub fn rootfs(&self, rootfs: &Path) -> anyhow::Result<Report> {
        let tree = DirTree::new(rootfs)?;
        self.scan(&tree, self.env.clone(), self.subject.clone())
            .with_context(|| format!("scanning {}", rootfs.display()))
    }
}

impl ScanArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Self {
            images,
            rootfs,
            oci_layout,
            platform,
            insecure_registry,
            docker_config,
            max_scratch_mib,
            registry_timeout,
            profile,
            exceptions,
            print_exceptions,
            env,
            repository,
            component,
            config,
            date,
            max_file_mib,
            output,
        } = self;
        let common = Common::load(
            profile.into(),
            exceptions.as_deref(),
            env,
            Subject {
                repository,
                component,
            },
            config.as_deref(),
            date,
            max_file_mib,
        )?;
        let Some(rootfs) = rootfs else {
            let pull = super::pull::Pull {
                images,
                oci_layout,
                platform,
                insecure_registry,
                docker_config,
                max_scratch_bytes: max_scratch_mib.saturating_mul(1 << 20),
                timeout: std::time::Duration::from_secs(registry_timeout),
            };
            let scans = pull.scan(&common)?;
            let text = if print_exceptions {
                let reports: Vec<&Report> = scans.images.iter().flat_map(|i| &i.reports).collect();
                suggestions(&reports, &common.subject)?
            } else {
                super::pull::render(&scans, output)?
            };
            super::emit(&text)?;
            return Ok(exit(scans.status));
        };
        let report = common.rootfs(&rootfs)?;
        let text = if print_exceptions {
            suggestions(&[&report], &common.subject)?
        } else {
            render(&report, &rootfs.display().to_string(), output)?
        };
        super::emit(&text)?;
        Ok(exit(report.status))
    }
}

/// A scan of an unpacked root filesystem, as `scan --rootfs` and `attest --rootfs` make it.
pub struct RootfsScan<'a> {
    pub rootfs: &'a Path,
    pub profile: Profile,
    /// An exceptions file.
    pub exceptions: Option<&'a Path>,
    pub env: Vec<String>,
    pub subject: Subject,
    /// The configuration whose catalogue files add certificates.
    pub config: Option<&'a Path>,
    pub date: Option<jiff::civil::Date>,
    pub max_file_mib: u64,
}

impl RootfsScan<'_> {
    /// The report, stamped with the time it was made.
    pub fn run(self) -> anyhow::Result<Report> {
        Common::load(
            self.profile,
            self.exceptions,
            self.env,
            self.subject,
            self.config,
            self.date,
            self.max_file_mib,
        )?
        .rootfs(self.rootfs)
    }
}

/// An exceptions file, read and checked; none is no exception.
pub(super) fn read_exceptions(path: Option<&Path>) -> anyhow::Result<Exceptions> {
    let Some(path) = path else {
        return Ok(Exceptions::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Exceptions::from_yaml(&text).with_context(|| format!("{}", path.display()))
}

fn exit(status: Status) -> ExitCode {
    match status {
        Status::Full => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// The ready-to-paste exceptions of these reports, as YAML (one entry per error name).
fn suggestions(reports: &[&Report], subject: &Subject) -> anyhow::Result<String> {
    let mut entries = Exceptions::default();
    for report in reports {
        let subject = match (&subject.repository, &report.image) {
            (None, Some(image)) => Subject {
                repository: image_repository(&image.reference),
                component: subject.component.clone(),
            },
            _ => subject.clone(),
        };
        for e in scan::suggest(report, &subject).exceptions {
            match (entries.exceptions.iter_mut())
                .find(|k| k.error == e.error && k.repository == e.repository)
            {
                Some(k) => {
                    for p in e.paths {
                        if !k.paths.contains(&p) {
                            k.paths.push(p);
                        }
                    }
                }
                None => entries.exceptions.push(e),
            }
        }
    }
    if entries.exceptions.is_empty() {
        return Ok("# nothing to accept: no FAIL, WARN or UNKNOWN outside exceptions\n".into());
    }
    let body = document(&entries, Output::Yaml)?;
    Ok(format!(
        "# Review each entry: an exception accepts a failure, it does not fix it.\n{body}"
    ))
}

/// The repository of an image reference (`registry/repository`), for exceptions.
pub(super) fn image_repository(reference: &str) -> Option<String> {
    crate::domain::image::ImageRef::parse(reference)
        .ok()
        .map(|r| r.name().to_string())
}

/// The report in the format asked for.
pub fn render(report: &Report, root: &str, output: ScanOutput) -> anyhow::Result<String> {
    Ok(match output {
        ScanOutput::Json => document(report, Output::Json)?,
        ScanOutput::Yaml => document(report, Output::Yaml)?,
        ScanOutput::Markdown => markdown(report, root),
        ScanOutput::Table | ScanOutput::Wide => table(report, root, output == ScanOutput::Wide),
    })
}

fn module_cell(m: Option<&CryptoModule>) -> String {
    match m {
        Some(CryptoModule {
            name,
            certificate: Some(c),
            ..
        }) => format!("{name} #{c}"),
        Some(m) => m.name.clone(),
        None => "-".into(),
    }
}

fn verdict_cell(f: &Finding) -> String {
    match &f.exception {
        Some(_) => format!("{} (excepted)", f.verdict),
        None => f.verdict.to_string(),
    }
}

fn error_cell(f: &Finding) -> String {
    f.error.map_or_else(|| "-".into(), |e| e.as_str())
}

fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

pub(super) fn table(report: &Report, root: &str, wide: bool) -> String {
    let shown: Vec<&Finding> = (report.findings.iter())
        .filter(|f| wide || f.verdict != Verdict::NotApplicable)
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    if wide {
        let head = [
            "PATH", "KIND", "ARCH", "GO", "LINK", "CRYPTO", "RULE", "VERDICT", "ERROR", "MODULE",
            "REASON",
        ];
        rows.push(head.map(str::to_string).to_vec());
        for f in &shown {
            rows.push(vec![
                f.path.clone(),
                f.kind.as_str().into(),
                or_dash(f.arch.as_deref()),
                or_dash(f.go_version.as_deref()),
                or_dash(f.link.map(|l| l.as_str())),
                f.crypto.clone(),
                f.rule.as_str().into(),
                verdict_cell(f),
                error_cell(f),
                module_cell(f.module.as_ref()),
                f.exception.as_ref().map_or(f.reason.clone(), |e| {
                    format!("{} [exception: {e}]", f.reason)
                }),
            ]);
        }
    } else {
        rows.push(
            ["PATH", "VERDICT", "RULE", "ERROR", "CRYPTO", "MODULE"]
                .map(str::to_string)
                .to_vec(),
        );
        for f in &shown {
            let cells = [
                f.path.clone(),
                verdict_cell(f),
                f.rule.as_str().into(),
                error_cell(f),
                f.crypto.clone(),
                module_cell(f.module.as_ref()),
            ];
            rows.push(cells.to_vec());
        }
    }
    let mut out = if shown.is_empty() {
        String::new()
    } else {
        render_table(&rows)
    };
    if !shown.is_empty() {
        out.push('\n');
    }
    out.push_str(&summary(report, root));
    let hidden = report.counts.not_applicable;
    if !wide && hidden > 0 {
        out.push_str(&format!(
            "not shown: {} without cryptography (N/A; -o wide lists them)\n",
            plural(hidden, "file")
        ));
    }
    out
}

/// `image ROOT: none (profile any; 9 files scanned, 6 judged: 4 WARN, 1 FAIL, 1 N/A)` and
/// the modules.
fn summary(report: &Report, root: &str) -> String {
    let c = &report.counts;
    let counts: Vec<String> = [
        (c.pass, "PASS"),
        (c.warn, "WARN"),
        (c.fail, "FAIL"),
        (c.unknown, "UNKNOWN"),
        (c.not_applicable, "N/A"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, v)| format!("{n} {v}"))
    .collect();
    let mut out = format!(
        "image {root}: {} (profile {}; {} scanned, {} judged",
        report.status,
        report.profile.as_str(),
        plural(report.files_scanned, "file"),
        report.findings.len(),
    );
    if !counts.is_empty() {
        out.push_str(&format!(": {}", counts.join(", ")));
    }
    if c.excepted > 0 {
        out.push_str(&format!("; {} accepted by exceptions", c.excepted));
    }
    out.push_str(")\n");
    for m in &report.modules {
        out.push_str(&format!("module: {} {}\n", m.name, m.label()));
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

pub(super) fn markdown(report: &Report, root: &str) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = format!(
        "### fipsgate scan: `{}`\n\n**{}** (profile `{}`, {} files scanned)\n\n",
        esc(root),
        report.status,
        report.profile.as_str(),
        report.files_scanned
    );
    out.push_str(
        "| Path | Kind | Go | Link | Crypto | Rule | Verdict | Error | Module | Reason |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for f in &report.findings {
        let cells = [
            format!("`{}`", esc(&f.path)),
            f.kind.as_str().into(),
            or_dash(f.go_version.as_deref()),
            or_dash(f.link.map(|l| l.as_str())),
            esc(&f.crypto),
            f.rule.as_str().into(),
            verdict_cell(f),
            error_cell(f),
            esc(&module_cell(f.module.as_ref())),
            esc(&f.reason),
        ];
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if !report.modules.is_empty() {
        out.push('\n');
        for m in &report.modules {
            out.push_str(&format!("- module: {} {}\n", esc(&m.name), m.label()));
        }
    }
    out
}
