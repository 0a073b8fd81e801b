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
    /// The namespace fipsgate is installed in: the certificate is for the Service
    /// `fipsgate.NAMESPACE.svc`.
    #[arg(short = 'n', long, default_value = "fipsgate-system")]
    pub namespace: String,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Keep the CA in --out and issue a new serving certificate from it.
    #[arg(long)]
    pub renew: bool,
    /// Replace the CA that --out already holds with a new one (every caBundle that trusts the
    /// old one, and the API server's client certificate, must then be updated).
    #[arg(long, conflicts_with = "renew")]
    pub renew_ca: bool,
    /// Validity of the serving certificate in days (the CA gets ten times as long).
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Also issue a client certificate with this name for the API server (client.crt,
    /// client.key), with the kubeconfig and AdmissionConfiguration that hand it to the API
    /// server; run fipsgate with `--client-ca ca.crt --client-name NAME`.
    #[arg(long)]
    pub client_name: Option<String>,
}

/// Where the generated AdmissionConfiguration expects the kubeconfig on the control plane.
pub const APISERVER_KUBECONFIG: &str = "/etc/kubernetes/fipsgate/apiserver-kubeconfig.yaml";

impl CertsArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let Self {
            out,
            namespace,
            hosts: extra,
            renew,
            renew_ca,
            days,
            client_name,
        } = self;
        if !renew && !renew_ca && out.join(certs::CA_KEY).exists() {
            anyhow::bail!(
                "{} already holds a CA: --renew issues new certificates from it, --renew-ca \
                 replaces it (then update every caBundle that trusts it)",
                out.display()
            );
        }
        let service = format!("fipsgate.{namespace}.svc");
        let mut hosts = vec![service.clone(), format!("{service}.cluster.local")];
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
        if let Some(name) = client_name {
            let (cert, key) = certs::client(&name, (&bundle.ca_cert, &bundle.ca_key), days)?;
            write_client(&out, &service, &name, &cert, &key)?;
        }
        use base64::Engine as _;
        let bundle64 = base64::engine::general_purpose::STANDARD.encode(bundle.ca_cert.as_bytes());
        super::emit(&format!("{bundle64}\n"))?;
        eprintln!(
            "wrote {}/{{ca.crt,ca.key,tls.crt,tls.key}} for {}",
            out.display(),
            hosts.join(", ")
        );
        Ok(())
    }
}

/// The API server's side: its client certificate, a kubeconfig that presents it to the
/// webhook's Service (the user is named after the Service's DNS name, which is how the API
/// server picks credentials), and the AdmissionConfiguration that points at that kubeconfig.
fn write_client(
    out: &std::path::Path,
    service: &str,
    name: &str,
    cert: &str,
    key: &str,
) -> anyhow::Result<()> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let kubeconfig = format!(
        "# Client credentials the API server presents to fipsgate (--client-name {name}).\n\
         apiVersion: v1\nkind: Config\nusers:\n  - name: {host}\n    user:\n      \
         client-certificate-data: {}\n      client-key-data: {}\n",
        b64(cert),
        b64(key),
        host = service,
    );
    let admission = format!(
        "# kube-apiserver --admission-control-config-file=<this file>; copy\n\
         # apiserver-kubeconfig.yaml to {APISERVER_KUBECONFIG} on every control-plane node.\n\
         apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
         {}{}",
        plugin("ValidatingAdmissionWebhook"),
        plugin("MutatingAdmissionWebhook"),
    );
    for (file, text, mode) in [
        ("client.crt", cert, 0o644),
        ("client.key", key, 0o600),
        ("apiserver-kubeconfig.yaml", &kubeconfig, 0o600),
        ("admission-configuration.yaml", &admission, 0o644),
    ] {
        let path = out.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    eprintln!(
        "wrote {0}/{{client.crt,client.key,apiserver-kubeconfig.yaml,admission-configuration.yaml}} for the API server as {name:?}",
        out.display()
    );
    Ok(())
}

fn plugin(name: &str) -> String {
    format!(
        "  - name: {name}\n    configuration:\n      apiVersion: apiserver.config.k8s.io/v1\n      \
         kind: WebhookAdmissionConfiguration\n      kubeConfigFile: {APISERVER_KUBECONFIG}\n"
    )
}
