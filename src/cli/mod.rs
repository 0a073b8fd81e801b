//! The composition root: the command line, the wiring of every command and exit codes.
//! Each command is an `Args` struct with a `run(self)` that opens by destructuring `self`, so an
//! unused flag is a compile error.

pub mod attest;
pub mod audit;
pub mod audit_scan;
pub mod catalog;
pub mod certs;
mod chain;
pub mod check;
mod cluster;
pub mod doctor;
pub mod explain;
pub mod output;
mod pull;
pub mod scan;
pub mod serve;
mod table;
pub mod version;
mod warm;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::domain::policy::Level;

/// Keeps non-FIPS container images out of Kubernetes clusters.
#[derive(Debug, Parser)]
#[command(name = "fipsgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the validating admission webhook.
    Serve(serve::ServeArgs),
    /// Check manifests (Pods and workloads) against the FIPS policy before they ship.
    Check(check::CheckArgs),
    /// Print the effective component catalogue.
    Catalog(catalog::CatalogArgs),
    /// What fipsgate knows about an image: its component, the evidence, its certificates, and
    /// what each policy level makes of it.
    Explain(explain::ExplainArgs),
    /// Judge the binaries of an image (in a registry, an OCI layout or a directory) for
    /// FIPS-validated cryptography.
    Scan(scan::ScanArgs),
    /// Scan an image (or take --scan-result FILE), sign what the scan found and store it with
    /// the image (cosign's .att tag and an OCI 1.1 referrer), for admission under
    /// evidence.minimum: scan.
    Attest(attest::AttestArgs),
    /// Evaluate what already runs in the cluster (pods, and workloads with --workloads).
    Audit(audit::AuditArgs),
    /// Turn an audit's JSON (`fipsgate audit -o json`) into a report: HTML, OSCAL, a table.
    Report(audit::ReportArgs),
    /// Check an installation: webhooks, caBundles, endpoints, certificates, readiness, FIPS
    /// mode, what an outage would block, namespace labels, the Kubernetes version.
    Doctor(doctor::DoctorArgs),
    /// Write a CA and a serving certificate for the webhook; prints the base64 caBundle.
    Certs(certs::CertsArgs),
    /// Print the version, the cryptographic module and its CMVP certificate status.
    Version(version::VersionArgs),
    /// Print a shell completion script: `fipsgate completions bash > /etc/bash_completion.d/fipsgate`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Runs the command; its exit code follows.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Serve(args) => args.run(),
            Command::Check(args) => args.run(),
            Command::Catalog(args) => args.run(),
            Command::Explain(args) => args.run(),
            Command::Scan(args) => args.run(),
            Command::Attest(args) => args.run(),
            Command::Audit(args) => args.run(),
            Command::Report(args) => args.run(),
            Command::Doctor(args) => args.run(),
            Command::Certs(args) => args.run().map(|()| ExitCode::SUCCESS),
            Command::Version(args) => args.run().map(|()| ExitCode::SUCCESS),
            Command::Completions { shell } => {
                let mut script = Vec::new();
                let mut command = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(shell, &mut command, "fipsgate", &mut script);
                emit(&String::from_utf8_lossy(&script)).map(|()| ExitCode::SUCCESS)
            }
        }
    }
}

/// A level on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Strict,
    Baseline,
    Off,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Strict => Level::Strict,
            LevelArg::Baseline => Level::Baseline,
            LevelArg::Off => Level::Off,
        }
    }
}

/// Runs the command line; errors print once, a line per cause, and exit 2.
pub fn main() -> ExitCode {
    Cli::parse().command.run().unwrap_or_else(|e| {
        let mut causes = causes(&e).into_iter();
        eprintln!("fipsgate: {}", causes.next().unwrap_or_default());
        for cause in causes {
            eprintln!("  caused by: {cause}");
        }
        ExitCode::from(2)
    })
}

/// The causes of `e`, outermost first, one line each. A cause the line before already says
/// (a wrapper that prints its source) is left out, and an API server status is its message,
/// code and reason, never its debug dump.
pub(crate) fn causes(e: &anyhow::Error) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for cause in e.chain() {
        // A Kubernetes client error is described with its own causes: the rest of the chain.
        let kube = cause.downcast_ref::<kube::Error>();
        let text = kube.map_or_else(|| cause.to_string(), crate::infra::kube::describe);
        let text = text.trim().to_string();
        if !text.is_empty() && !lines.last().is_some_and(|l| l.contains(&text)) {
            lines.push(text);
        }
        if kube.is_some() {
            break;
        }
    }
    lines
}

/// Writes `text` to stdout; a reader that went away (`| head`) ends the output quietly
/// instead of a panic.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_said_once_each() {
        let status = kube::core::Status {
            message: "namespaces is forbidden: User \"nobody\" cannot list namespaces".into(),
            reason: "Forbidden".into(),
            code: 403,
            ..Default::default()
        };
        let e =
            anyhow::Error::new(kube::Error::Api(Box::new(status))).context("listing namespaces");
        assert_eq!(
            causes(&e),
            [
                "listing namespaces",
                "namespaces is forbidden: User \"nobody\" cannot list namespaces (403 Forbidden)"
            ]
        );
        let io = std::io::Error::other("connection refused");
        let e = anyhow::Error::new(io)
            .context("reading x: connection refused")
            .context("start");
        assert_eq!(causes(&e), ["start", "reading x: connection refused"]);
    }
}
