//! The composition root: the command line, the wiring of every command and exit codes.
//! Each command is an `Args` struct with a `run(self)` that opens by destructuring `self`, so an
//! unused flag is a compile error.

pub mod audit;
pub mod catalog;
pub mod certs;
pub mod check;
mod cluster;
pub mod doctor;
pub mod output;
pub mod serve;
mod table;
pub mod version;

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
    /// Evaluate what already runs in the cluster (pods, and workloads with --workloads).
    Audit(audit::AuditArgs),
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
            Command::Audit(args) => args.run(),
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

/// Runs the command line; errors print once and exit 2.
pub fn main() -> ExitCode {
    Cli::parse().command.run().unwrap_or_else(|e| {
        eprintln!("fipsgate: {e:#}");
        ExitCode::from(2)
    })
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
