//! `fipsgate doctor`: checks an installation against the current cluster, one line per check;
//! exit 0 when none failed (warnings allowed), 1 when one did, 2 when the cluster cannot be
//! asked.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::app::doctor::{Report, evaluate};
use crate::config::parse_duration;
use crate::infra::kube::doctor::Gather;

use super::cluster::kube_config;
use super::output::{Output, document};

/// Names listed in one table line before `… and N more` (`-o wide` lists all).
const TABLE_LIST_LIMIT: usize = 10;

/// `fipsgate doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// The namespace fipsgate is installed in.
    #[arg(short = 'n', long, default_value = "fipsgate-system")]
    pub namespace: String,
    /// The ValidatingWebhookConfiguration that registers fipsgate.
    #[arg(long, default_value = "fipsgate")]
    pub webhook_config: String,
    /// fipsgate's admin port (`http://HOST:8080`, `serve --admin-listen`), asked for /readyz and
    /// /metrics. Without it a Service install is asked through the API server's proxy; a URL
    /// install is not asked (a warning).
    #[arg(long)]
    pub admin_url: Option<String>,
    /// The API server's client certificate, when fipsgate runs with --client-ca: client.crt,
    /// or apiserver-kubeconfig.yaml (both from `fipsgate certs --client-name`).
    #[arg(long)]
    pub client_cert: Option<PathBuf>,
    /// Bound on each connection and request.
    #[arg(long, default_value = "10s", value_parser = timeout)]
    pub timeout: Duration,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn timeout(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

impl DoctorArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(self.doctor())
    }

    async fn doctor(self) -> anyhow::Result<ExitCode> {
        let Self {
            kubeconfig,
            context,
            namespace,
            webhook_config,
            admin_url,
            client_cert,
            timeout,
            output,
        } = self;
        let provider = crate::infra::crypto::install();
        let mut config = kube_config(kubeconfig, context).await?;
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        // A 503 from /readyz through the proxy is an answer, not something to retry.
        config.default_retry = false;
        let url = config.cluster_url.to_string();
        let gather = Gather {
            client: kube::Client::try_from(config)?,
            url: url.trim_end_matches('/').to_string(),
            namespace,
            config_name: webhook_config,
            admin_url,
            client_cert,
            provider,
            timeout,
        };
        let facts = gather.facts(jiff::Timestamp::now()).await?;
        let limit = match output {
            Output::Table => TABLE_LIST_LIMIT,
            _ => 0,
        };
        let report = evaluate(&facts, limit);
        super::emit(&match output {
            Output::Table | Output::Wide => lines(&report),
            Output::Json | Output::Yaml => document(&report, output)?,
        })?;
        Ok(match report.passed() {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(1),
        })
    }
}

/// One line per check (`[ok]   name  detail`), a hint under each warning and failure, and the
/// counts.
pub fn lines(report: &Report) -> String {
    let width = (report.checks.iter())
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &report.checks {
        out.push_str(&format!(
            "{:<6} {:<width$}  {}\n",
            c.status.tag(),
            c.name,
            c.detail
        ));
        if let Some(hint) = &c.hint {
            out.push_str(&format!("{:<6} {:<width$}  hint: {hint}\n", "", ""));
        }
    }
    let s = report.summary;
    out.push_str(&format!(
        "doctor: {} ok, {} warn, {} fail\n",
        s.ok, s.warn, s.fail
    ));
    out
}
