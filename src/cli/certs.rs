//! `fipsgate certs`: a CA and a serving certificate for the webhook.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::infra::certs;

/// `fipsgate certs`
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory for ca.crt, ca.key, tls.crt and tls.key (created 0700; keys 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Keep the CA in --out and issue a new serving certificate from it.
    #[arg(long)]
    pub renew: bool,
    /// Validity of the serving certificate in days (the CA gets ten times as long).
    #[arg(long, default_value_t = 365)]
    pub days: i64,
}

impl CertsArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let Self {
            out,
            hosts: extra,
            renew,
            days,
        } = self;
        let mut hosts = vec![
            certs::SERVICE_HOST.to_string(),
            "fipsgate.fipsgate-system.svc.cluster.local".to_string(),
        ];
        hosts.extend(extra);
        let ca = if renew {
            let read = |name: &str| {
                let p = out.join(name);
                std::fs::read_to_string(&p)
                    .with_context(|| format!("--renew needs {}", p.display()))
            };
            Some((read(certs::CA_CERT)?, read(certs::CA_KEY)?))
        } else {
            None
        };
        let bundle = certs::generate(
            &hosts,
            ca.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
            days,
        )?;
        certs::write(&out, &bundle)?;
        use base64::Engine as _;
        println!(
            "{}",
            base64::engine::general_purpose::STANDARD.encode(bundle.ca_cert.as_bytes())
        );
        eprintln!(
            "wrote {}/{{ca.crt,ca.key,tls.crt,tls.key}} for {}",
            out.display(),
            hosts.join(", ")
        );
        Ok(())
    }
}
