//! What `doctor` judges, read from the cluster: the API server's version, the webhook
//! configuration, namespaces, the webhooks' Services, endpoints and serving Secret, the
//! certificate a URL serves, and `/readyz` of the running fipsgate (its admin URL, or each
//! ready pod through the API server's proxy).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Endpoints, Namespace as KubeNamespace, Secret, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;

use crate::app::doctor::{
    Admin, Backend, Facts, Namespace, Probe, Reach, Read, TLS_SECRET, Target, Trust, Version,
};
use crate::infra::probe;

/// Why nothing could be judged: the API server cannot be asked at all.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("cannot reach the Kubernetes API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// It answered, refusing (bad credentials).
    #[error("the Kubernetes API at {url} refused doctor: {reason}")]
    Refused { url: String, reason: String },
}

/// Where to look, and how.
pub struct Gather {
    /// The cluster, as the user's kubeconfig reaches it.
    pub client: kube::Client,
    /// The API server, for messages.
    pub url: String,
    /// Where fipsgate is installed.
    pub namespace: String,
    /// The ValidatingWebhookConfiguration's name.
    pub config_name: String,
    /// fipsgate's admin port (`http://host:8080`), asked directly when given.
    pub admin_url: Option<String>,
    /// The API server's client certificate (PEM or kubeconfig).
    pub client_cert: Option<PathBuf>,
    pub provider: Arc<CryptoProvider>,
    /// For each connection and request doctor makes itself.
    pub timeout: Duration,
}

/// A kube error and its causes on one line, each said once (an API status by its message).
pub fn reason(e: &kube::Error) -> String {
    if let kube::Error::Api(s) = e {
        let text = match (s.message.is_empty(), s.reason.is_empty()) {
            (false, _) => s.message.clone(),
            (true, false) => s.reason.clone(),
            (true, true) => format!("HTTP {}", s.code),
        };
        return text;
    }
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        let text = plain(&err.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// An error's text without kube's variant names and the OS error number.
fn plain(text: &str) -> String {
    let mut t = text;
    for prefix in ["ServiceError: ", "HyperError: ", "HttpError: "] {
        t = t.strip_prefix(prefix).unwrap_or(t);
    }
    match t.find(" (os error ") {
        Some(i) => t[..i].to_string(),
        None => t.to_string(),
    }
}

async fn read<T>(r: impl Future<Output = Result<Option<T>, kube::Error>>) -> Read<T> {
    match r.await {
        Ok(Some(v)) => Read::Found(v),
        Ok(None) => Read::Missing,
        Err(e) => Read::Failed(reason(&e)),
    }
}

impl Gather {
    /// Gathers every fact; `now` is what certificates are verified at.
    pub async fn facts(&self, now: Timestamp) -> Result<Facts, DoctorError> {
        let version = self.version().await?;
        let configs: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        let config = read(configs.get_opt(&self.config_name)).await;
        let webhooks: Vec<ValidatingWebhook> = match &config {
            Read::Found(c) => c.webhooks.clone().unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut targets: Vec<Target> = webhooks.iter().filter_map(Target::of).collect();
        targets.sort();
        targets.dedup();
        let mut backends = Vec::new();
        let mut chains = BTreeMap::new();
        for t in &targets {
            let (backend, chain) = self.backend(t).await;
            backends.push(backend);
            chains.insert(t.clone(), chain);
        }
        let trust = webhooks
            .iter()
            .map(|w| (w.name.clone(), self.trust(w, &chains, now)))
            .collect();
        let admin = self.admin(&targets, &backends).await;
        Ok(Facts {
            now,
            namespace: self.namespace.clone(),
            config_name: self.config_name.clone(),
            version,
            config,
            namespaces: self.namespaces().await,
            backends,
            trust,
            client_certificates: (self.client_cert.as_deref()).map(probe::client_certificates),
            admin,
        })
    }

    async fn version(&self) -> Result<Version, DoctorError> {
        let info = self.client.apiserver_version().await.map_err(|e| {
            let (url, reason) = (self.url.clone(), reason(&e));
            match e {
                kube::Error::Api(_) => DoctorError::Refused { url, reason },
                _ => DoctorError::Unreachable { url, reason },
            }
        })?;
        let number = |s: &str| {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or(0)
        };
        Ok(Version {
            major: number(&info.major),
            minor: number(&info.minor),
            git: info.git_version,
        })
    }

    async fn namespaces(&self) -> Read<Vec<Namespace>> {
        let api: Api<KubeNamespace> = Api::all(self.client.clone());
        let mut out = Vec::new();
        let mut params = kube::api::ListParams::default().limit(500);
        loop {
            let page = match api.list_metadata(&params).await {
                Ok(p) => p,
                Err(e) => return Read::Failed(reason(&e)),
            };
            out.extend(page.items.into_iter().map(|n| Namespace {
                name: n.metadata.name.unwrap_or_default(),
                labels: n.metadata.labels.unwrap_or_default(),
            }));
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => return Read::Found(out),
            }
        }
    }

    /// The target's reachability and certificate, and the chain its caBundle is checked
    /// against (or why there is none).
    async fn backend(&self, t: &Target) -> (Backend, Result<Vec<CertificateDer<'static>>, String>) {
        match t {
            Target::Url(url) => {
                match probe::handshake(url, self.provider.clone(), self.timeout).await {
                    Ok(h) => {
                        let certificate = match probe::describe(&h.chain[0], url) {
                            Some(c) => Read::Found(c),
                            None => Read::Failed("the certificate cannot be parsed".into()),
                        };
                        let backend = Backend {
                            target: t.clone(),
                            reach: Reach::Answered,
                            certificate,
                            client_auth: Some(h.client_auth),
                        };
                        (backend, Ok(h.chain))
                    }
                    Err(why) => {
                        let backend = Backend {
                            target: t.clone(),
                            reach: Reach::Unreachable(why.clone()),
                            certificate: Read::Failed(why.clone()),
                            client_auth: None,
                        };
                        (backend, Err(why))
                    }
                }
            }
            Target::Service {
                namespace, name, ..
            } => self.service(t, namespace, name).await,
        }
    }

    async fn service(
        &self,
        t: &Target,
        namespace: &str,
        name: &str,
    ) -> (Backend, Result<Vec<CertificateDer<'static>>, String>) {
        let services: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let endpoints: Api<Endpoints> = Api::namespaced(self.client.clone(), namespace);
        let reach = match read(services.get_opt(name)).await {
            Read::Missing => Reach::NoService,
            Read::Failed(why) => Reach::Unknown(why),
            Read::Found(_) => match read(endpoints.get_opt(name)).await {
                Read::Found(e) => addresses(&e),
                Read::Missing => Reach::Endpoints {
                    ready: Vec::new(),
                    not_ready: Vec::new(),
                },
                Read::Failed(why) => Reach::Unknown(why),
            },
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let source = format!("Secret {namespace}/{TLS_SECRET}");
        let (certificate, chain) = match read(secrets.get_opt(TLS_SECRET)).await {
            Read::Found(s) => {
                let pem = (s.data.as_ref())
                    .and_then(|d| d.get("tls.crt"))
                    .map(|b| b.0.clone());
                match probe::pem_chain(&pem.unwrap_or_default()) {
                    Ok(chain) => match probe::describe(&chain[0], &source) {
                        Some(c) => (Read::Found(c), Ok(chain)),
                        None => {
                            let why = format!("{source}: tls.crt cannot be parsed");
                            (Read::Failed(why.clone()), Err(why))
                        }
                    },
                    Err(e) => {
                        let why = format!("{source}: tls.crt: {e}");
                        (Read::Failed(why.clone()), Err(why))
                    }
                }
            }
            Read::Missing => (Read::Missing, Err(format!("{source} not found"))),
            Read::Failed(e) => {
                let why = format!("cannot read {source}: {e}");
                (Read::Failed(why.clone()), Err(why))
            }
        };
        let backend = Backend {
            target: t.clone(),
            reach,
            certificate,
            client_auth: None,
        };
        (backend, chain)
    }

    fn trust(
        &self,
        w: &ValidatingWebhook,
        chains: &BTreeMap<Target, Result<Vec<CertificateDer<'static>>, String>>,
        now: Timestamp,
    ) -> Trust {
        let Some(target) = Target::of(w) else {
            return Trust::Unchecked("no clientConfig".into());
        };
        let bundle = w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice());
        let Some(bundle) = bundle.filter(|b| !b.is_empty()) else {
            return Trust::NoBundle;
        };
        let chain = match chains.get(&target) {
            Some(Ok(chain)) => chain,
            Some(Err(why)) => return Trust::Unchecked(why.clone()),
            None => return Trust::Unchecked("not fetched".into()),
        };
        // The name the API server verifies: the URL's host, or the Service's DNS name.
        let host = match &target {
            Target::Url(url) => match probe::host_port(url) {
                Ok((host, _)) => host,
                Err(why) => return Trust::Unchecked(why),
            },
            Target::Service {
                namespace, name, ..
            } => format!("{name}.{namespace}.svc"),
        };
        match probe::verify(chain, bundle, &host, self.provider.clone(), now) {
            Ok(()) => Trust::Verified,
            Err(why) => Trust::Rejected(why),
        }
    }

    /// `/readyz` of the running fipsgate: the admin URL when given, else each ready pod of the
    /// first Service target through the API server's proxy.
    async fn admin(&self, targets: &[Target], backends: &[Backend]) -> Admin {
        if let Some(url) = &self.admin_url {
            return Admin::Probes(vec![probe::admin(url, self.timeout).await]);
        }
        let service = targets.iter().zip(backends).find_map(|(t, b)| match t {
            Target::Service {
                namespace, name, ..
            } => Some((namespace, name, b)),
            Target::Url(_) => None,
        });
        let Some((namespace, name, backend)) = service else {
            return Admin::Skipped(match targets.is_empty() {
                true => "no webhook to find fipsgate by, and no --admin-url".into(),
                false => "the webhook is registered by URL and no --admin-url was given".into(),
            });
        };
        match &backend.reach {
            Reach::Endpoints { ready, .. } if ready.is_empty() => return Admin::Probes(Vec::new()),
            Reach::Endpoints { .. } => {}
            _ => {
                return Admin::Skipped(format!(
                    "no endpoints of Service {namespace}/{name} to ask"
                ));
            }
        }
        self.through_proxy(namespace, name).await
    }

    async fn through_proxy(&self, namespace: &str, name: &str) -> Admin {
        let services: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let endpoints: Api<Endpoints> = Api::namespaced(self.client.clone(), namespace);
        let (Ok(Some(service)), Ok(Some(ep))) =
            (services.get_opt(name).await, endpoints.get_opt(name).await)
        else {
            return Admin::Probes(Vec::new());
        };
        let Some(port) = admin_port(&service) else {
            return Admin::Skipped(format!(
                "Service {namespace}/{name} has no admin port (targetPort admin)"
            ));
        };
        let mut probes = Vec::new();
        for subset in ep.subsets.iter().flatten() {
            let number = (subset.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(port.as_str()))
                .map(|p| p.port);
            for a in subset.addresses.iter().flatten() {
                let pod = a.target_ref.as_ref().and_then(|r| r.name.clone());
                let (Some(pod), Some(number)) = (pod, number) else {
                    continue;
                };
                let path = format!("/api/v1/namespaces/{namespace}/pods/http:{pod}:{number}/proxy");
                probes.push(
                    self.proxy_probe(&format!("pod {namespace}/{pod}"), &path)
                        .await,
                );
            }
        }
        if probes.iter().all(|p| p.readyz.is_err()) {
            // No pod addresses, or none answered (no rights to pods/proxy): one pod through
            // the Service, if that answers.
            let path = format!("/api/v1/namespaces/{namespace}/services/http:{name}:{port}/proxy");
            let target = format!("Service {namespace}/{name} (one of its pods)");
            let through = self.proxy_probe(&target, &path).await;
            if through.readyz.is_ok() || probes.is_empty() {
                probes = vec![through];
            }
        }
        Admin::Probes(probes)
    }

    async fn proxy_probe(&self, target: &str, base: &str) -> Probe {
        let mut p = Probe {
            target: target.to_string(),
            readyz: Err("not asked".into()),
            serving_expiry: None,
            client_ca_expiry: None,
            metrics: false,
        };
        p.readyz = match self.get(&format!("{base}/readyz")).await {
            Ok((status, body)) => probe::readyz(status, &body),
            Err(why) => Err(why),
        };
        if let Ok((200, text)) = self.get(&format!("{base}/metrics")).await {
            (p.serving_expiry, p.client_ca_expiry) = probe::expiries(&text);
            p.metrics = true;
        }
        p
    }

    /// A GET through the API server: status and body, whatever the status.
    async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let request = http::Request::get(path)
            .body(kube::client::Body::empty())
            .map_err(|e| e.to_string())?;
        let call = async {
            let response = self.client.send(request).await.map_err(|e| reason(&e))?;
            let status = response.status().as_u16();
            let limited = http_body_util::Limited::new(response.into_body(), probe::MAX_ADMIN_BODY);
            let body = (limited.collect().await)
                .map_err(|e| format!("{path}: {e}"))?
                .to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)))
    }
}

/// Ready and not-ready addresses, by pod name where known.
fn addresses(e: &Endpoints) -> Reach {
    let name = |a: &k8s_openapi::api::core::v1::EndpointAddress| {
        (a.target_ref.as_ref().and_then(|r| r.name.clone())).unwrap_or_else(|| a.ip.clone())
    };
    let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
    for s in e.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(name));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(name));
    }
    Reach::Endpoints { ready, not_ready }
}

/// The name of the Service port that leads to fipsgate's admin port (`targetPort: admin`, or
/// a port named `admin` or `metrics`).
fn admin_port(s: &Service) -> Option<String> {
    let ports = s.spec.as_ref()?.ports.as_ref()?;
    let to_admin = |p: &&k8s_openapi::api::core::v1::ServicePort| matches!(&p.target_port, Some(IntOrString::String(t)) if t == "admin");
    let named = |p: &&k8s_openapi::api::core::v1::ServicePort| {
        matches!(p.name.as_deref(), Some("admin" | "metrics"))
    };
    (ports
        .iter()
        .find(to_admin)
        .or_else(|| ports.iter().find(named)))
    .and_then(|p| p.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_service_leads_to_the_admin_port() {
        let yaml = include_str!("../../../deploy/base/service.yaml");
        let s: Service = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(admin_port(&s).as_deref(), Some("metrics"));
    }

    #[test]
    fn api_statuses_are_said_by_their_message() {
        let status =
            kube::core::Status::failure("secrets \"x\" is forbidden", "Forbidden").with_code(403);
        let e = kube::Error::Api(status.boxed());
        assert_eq!(reason(&e), "secrets \"x\" is forbidden");
    }
}
