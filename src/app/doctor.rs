//! `doctor`: judges an installation from [`Facts`] gathered beforehand (the webhook
//! configuration, namespaces and their labels, the webhook's endpoints and certificates, the
//! server version, `/readyz`). No IO and no clock: the time is one of the facts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration,
};
use kube::core::{Selector, SelectorExt as _};
use serde::Serialize;

use crate::domain::policy::{LABEL_PREFIX, Levels, Mode, NamespacePolicy};

/// The webhooks `deploy/base/webhook.yaml` registers, and whether pods depend on them: a
/// missing pod webhook fails, a missing warnings-only one warns.
pub const WEBHOOKS: [(&str, bool); 4] = [
    ("pods.fipsgate.io", true),
    ("pods-default.fipsgate.io", true),
    ("workloads.fipsgate.io", false),
    ("namespaces.fipsgate.io", false),
];

/// The path fipsgate answers reviews on.
pub const REVIEW_PATH: &str = "/validate";

/// The oldest Kubernetes the manifests as shipped are for: `deploy/base/pdb.yaml` is a
/// `policy/v1` PodDisruptionBudget (served from 1.21), and from 1.21 the API server labels
/// every namespace `kubernetes.io/metadata.name`, by which the webhooks' namespaceSelector
/// excludes kube-system and fipsgate-system. An older cluster only warns: it works with the
/// PDB as `policy/v1beta1` and those labels set by hand (as the end-to-end suite does).
pub const MIN_KUBERNETES: (u32, u32) = (1, 21);

/// Below this there is no `admissionregistration.k8s.io/v1` (1.16), which the webhook
/// configuration is written in: fipsgate cannot be registered at all.
pub const WEBHOOK_API: (u32, u32) = (1, 16);

/// A certificate closer than this to its end warns (the `FipsgateCertificateExpiring` alert's
/// horizon too).
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// The label the API server sets to each namespace's name (from 1.21).
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The Secret holding the serving certificate of a Service install.
pub const TLS_SECRET: &str = "fipsgate-tls";

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// `[ok]`, `[warn]`, `[fail]`.
    pub fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ok]",
            Status::Warn => "[warn]",
            Status::Fail => "[fail]",
        }
    }
}

/// One line of the report: what was checked, how it came out, and for a warning or a
/// failure what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

/// How many checks came out each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

/// Every check, in order, and their counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub summary: Summary,
}

impl Report {
    /// True when no check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.summary.fail == 0
    }
}

/// The result of reading one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read<T> {
    Found(T),
    Missing,
    /// Could not be read (forbidden, unreachable): why, in one line.
    Failed(String),
}

/// The API server's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    /// `v1.20.2`, as the server says it.
    pub git: String,
}

impl Version {
    fn below(&self, (major, minor): (u32, u32)) -> bool {
        (self.major, self.minor) < (major, minor)
    }
}

/// A namespace and its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Where a webhook's reviews go.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Url(String),
    Service {
        namespace: String,
        name: String,
        port: i32,
        path: String,
    },
}

impl Target {
    /// The target of a webhook's `clientConfig`; none when it names neither.
    pub fn of(webhook: &ValidatingWebhook) -> Option<Target> {
        let c = &webhook.client_config;
        if let Some(url) = &c.url {
            return Some(Target::Url(url.clone()));
        }
        let s = c.service.as_ref()?;
        Some(Target::Service {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            port: s.port.unwrap_or(443),
            path: s.path.clone().unwrap_or_default(),
        })
    }

    /// The path reviews are posted to.
    fn path(&self) -> String {
        match self {
            Target::Url(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let path = rest.find('/').map_or("", |i| &rest[i..]);
                path.split(['?', '#']).next().unwrap_or("").to_string()
            }
            Target::Service { path, .. } => path.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Url(url) => f.write_str(url),
            Target::Service {
                namespace,
                name,
                port,
                ..
            } => write!(f, "Service {namespace}/{name}:{port}"),
        }
    }
}

/// Whether the API server can reach a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// A URL: a TLS handshake got as far as the server's certificate.
    Answered,
    /// A URL that could not be reached: why.
    Unreachable(String),
    /// A Service: the addresses (pod names where known) of its endpoints.
    Endpoints {
        ready: Vec<String>,
        not_ready: Vec<String>,
    },
    /// A Service that does not exist.
    NoService,
    /// A Service whose endpoints could not be read: why.
    Unknown(String),
}

/// A certificate as far as the checks need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Where it was read: `https://…` or `Secret fipsgate-system/fipsgate-tls`.
    pub source: String,
    /// Subject and issuer, RFC 4514.
    pub subject: String,
    pub issuer: String,
    pub not_after: Timestamp,
}

/// Whether the webhook asks its callers for a client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NotAsked,
    /// Asked, naming the CAs it accepts (RFC 4514).
    Asked {
        authorities: Vec<String>,
    },
}

/// One target and what was found there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub target: Target,
    pub reach: Reach,
    /// The serving certificate: seen in the handshake (a URL), or the Secret `fipsgate-tls`
    /// (a Service).
    pub certificate: Read<Certificate>,
    /// Known for a URL that answered.
    pub client_auth: Option<ClientAuth>,
}

/// A webhook's caBundle against the certificate its target serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The certificate chains to the caBundle and names the host the API server calls.
    Verified,
    /// It does not: why.
    Rejected(String),
    /// The webhook has no caBundle: the API server trusts its own system roots.
    NoBundle,
    /// The certificate could not be had: why.
    Unchecked(String),
}

/// What `/readyz` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readyz {
    pub ready: bool,
    pub fips: bool,
    /// The cryptographic module, `AWS-LC FIPS 4.2.0`.
    pub module: String,
    /// `synced` or `syncing`.
    pub namespaces: String,
    pub shutting_down: bool,
}

/// One running fipsgate asked for `/readyz` (and `/metrics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// `http://127.0.0.1:8080` or `pod fipsgate-system/fipsgate-6d…`.
    pub target: String,
    pub readyz: Result<Readyz, String>,
    /// From `/metrics`: when the certificate it serves with, and the `--client-ca` it
    /// trusts, expire.
    pub serving_expiry: Option<Timestamp>,
    pub client_ca_expiry: Option<Timestamp>,
    /// `/metrics` was read (so no `client_ca_expiry` means no `--client-ca`).
    pub metrics: bool,
}

/// Whether the running fipsgate could be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admin {
    /// Not asked: why (a URL install without `--admin-url`).
    Skipped(String),
    Probes(Vec<Probe>),
}

/// Everything the checks judge.
#[derive(Clone, Debug)]
pub struct Facts {
    pub now: Timestamp,
    /// Where fipsgate is installed (`-n`).
    pub namespace: String,
    pub config_name: String,
    pub version: Version,
    pub config: Read<ValidatingWebhookConfiguration>,
    pub namespaces: Read<Vec<Namespace>>,
    /// One per distinct target of the configuration's webhooks.
    pub backends: Vec<Backend>,
    /// Per webhook name.
    pub trust: BTreeMap<String, Trust>,
    /// The API server's client certificates from `--client-cert`, when given.
    pub client_certificates: Option<Result<Vec<Certificate>, String>>,
    pub admin: Admin,
}

/// Judges the facts; `limit` caps the names listed in one line (0: no cap).
pub fn evaluate(f: &Facts, limit: usize) -> Report {
    let mut checks = vec![kubernetes_version(f)];
    checks.push(webhook_configuration(f));
    checks.extend(ca_bundles(f));
    checks.extend(endpoints(f));
    checks.push(serving_certificate(f));
    checks.push(client_certificate(f));
    checks.extend(running(f));
    checks.push(failure_policy(f, limit));
    checks.push(namespace_labels(f, limit));
    checks.push(excluded_namespaces(f));
    let mut summary = Summary::default();
    for c in &checks {
        match c.status {
            Status::Ok => summary.ok += 1,
            Status::Warn => summary.warn += 1,
            Status::Fail => summary.fail += 1,
        }
    }
    Report { checks, summary }
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        hint: None,
    }
}

impl Check {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// `a, b, c`, or the first `limit` and how many more (0: all).
fn list(names: &[String], limit: usize) -> String {
    joined(names, limit, ", ")
}

fn joined(items: &[String], limit: usize, sep: &str) -> String {
    if limit == 0 || items.len() <= limit {
        return items.join(sep);
    }
    format!(
        "{}{sep}… and {} more (-o wide lists all)",
        items[..limit].join(sep),
        items.len() - limit
    )
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The configuration's webhooks; none when it could not be read.
fn webhooks(f: &Facts) -> &[ValidatingWebhook] {
    match &f.config {
        Read::Found(c) => c.webhooks.as_deref().unwrap_or_default(),
        _ => &[],
    }
}

fn failure_policy_of(w: &ValidatingWebhook) -> &str {
    // `Fail` is the v1 default.
    w.failure_policy.as_deref().unwrap_or("Fail")
}

fn kubernetes_version(f: &Facts) -> Check {
    let v = &f.version;
    let (major, minor) = MIN_KUBERNETES;
    if v.below(WEBHOOK_API) {
        return check(
            "kubernetes-version",
            Status::Fail,
            format!(
                "Kubernetes {}: no admissionregistration.k8s.io/v1 (1.16 or later), so the \
                 webhook configuration cannot be registered",
                v.git
            ),
        )
        .hint(format!("upgrade the cluster to {major}.{minor} or later"));
    }
    if v.below(MIN_KUBERNETES) {
        return check(
            "kubernetes-version",
            Status::Warn,
            format!(
                "Kubernetes {}: older than {major}.{minor}, which the manifests as shipped need \
                 (policy/v1 PodDisruptionBudget; the automatic {NAME_LABEL} label)",
                v.git
            ),
        )
        .hint(format!(
            "apply deploy/base/pdb.yaml as policy/v1beta1, label kube-system and the \
             install namespace {NAME_LABEL}=<name> by hand, or upgrade to {major}.{minor}"
        ));
    }
    check(
        "kubernetes-version",
        Status::Ok,
        format!(
            "Kubernetes {} ({major}.{minor} or later, as the manifests need)",
            v.git
        ),
    )
}

fn webhook_configuration(f: &Facts) -> Check {
    let name = &f.config_name;
    let c = match &f.config {
        Read::Found(c) => c,
        Read::Missing => {
            return check(
                "webhook-configuration",
                Status::Fail,
                format!("ValidatingWebhookConfiguration {name} not found: nothing is checked"),
            )
            .hint(
                "install fipsgate (kubectl apply -k deploy/overlays/cert-manager, or another \
                 overlay), or name the configuration with --webhook-config",
            );
        }
        Read::Failed(why) => {
            return check(
                "webhook-configuration",
                Status::Fail,
                format!("cannot read ValidatingWebhookConfiguration {name}: {why}"),
            )
            .hint("run doctor as a user who may get validatingwebhookconfigurations");
        }
    };
    let present: Vec<&ValidatingWebhook> = c.webhooks.iter().flatten().collect();
    let names: BTreeSet<&str> = present.iter().map(|w| w.name.as_str()).collect();
    let missing = |required: bool| -> Vec<String> {
        (WEBHOOKS.iter())
            .filter(|(n, r)| *r == required && !names.contains(n))
            .map(|(n, _)| n.to_string())
            .collect()
    };
    let (missing_pods, missing_other) = (missing(true), missing(false));
    let wrong_path: Vec<String> = (present.iter())
        .filter_map(|w| {
            let path = Target::of(w).map(|t| t.path()).unwrap_or_default();
            (path != REVIEW_PATH).then(|| format!("{} posts to {path:?}", w.name))
        })
        .collect();
    let listed: Vec<String> = (present.iter())
        .map(|w| format!("{} ({})", w.name, failure_policy_of(w)))
        .collect();
    let mut detail = format!("{name}: {}", listed.join(", "));
    let mut status = Status::Ok;
    let mut hints = Vec::new();
    if !missing_pods.is_empty() || !wrong_path.is_empty() {
        status = Status::Fail;
    } else if !missing_other.is_empty() {
        status = Status::Warn;
    }
    if !missing_pods.is_empty() || !missing_other.is_empty() {
        let all: Vec<String> = [missing_pods, missing_other].concat();
        detail.push_str(&format!("; missing {}", all.join(", ")));
        hints.push("re-apply the overlay: its webhook.yaml registers all four webhooks");
    }
    if !wrong_path.is_empty() {
        detail.push_str(&format!(
            "; {} (fipsgate answers on {REVIEW_PATH})",
            wrong_path.join(", ")
        ));
        hints.push("set each webhook's clientConfig path to /validate");
    }
    let c = check("webhook-configuration", status, detail);
    match hints.is_empty() {
        true => c,
        false => c.hint(hints.join("; ")),
    }
}

/// One line per outcome: webhooks with the same outcome share it.
fn ca_bundles(f: &Facts) -> Vec<Check> {
    let mut groups: Vec<(Status, String, Option<String>, Vec<String>)> = Vec::new();
    for w in webhooks(f) {
        let target = Target::of(w);
        let shown = target
            .as_ref()
            .map_or("no clientConfig".into(), |t| t.to_string());
        let (status, what, hint) = match f.trust.get(&w.name) {
            Some(Trust::Verified) => (
                Status::Ok,
                format!("the caBundle verifies the certificate of {shown}"),
                None,
            ),
            Some(Trust::Rejected(why)) => (
                Status::Fail,
                format!("the caBundle does not verify the certificate of {shown}: {why}"),
                Some(
                    "set clientConfig.caBundle to the base64 PEM of the CA that issued the \
                     serving certificate (the Secret's ca.crt; `fipsgate certs` prints it), or \
                     reissue the certificate for the name the API server calls"
                        .to_string(),
                ),
            ),
            Some(Trust::NoBundle) => (
                Status::Warn,
                format!("no caBundle: the API server trusts its own roots for {shown}"),
                Some(
                    "set clientConfig.caBundle to the CA that issued fipsgate's certificate".into(),
                ),
            ),
            Some(Trust::Unchecked(why)) => (
                Status::Warn,
                format!("could not be checked against {shown}: {why}"),
                Some(unchecked_hint(target.as_ref())),
            ),
            None => (
                Status::Warn,
                format!("could not be checked against {shown}"),
                None,
            ),
        };
        match groups.iter_mut().find(|g| g.0 == status && g.1 == what) {
            Some(g) => g.3.push(w.name.clone()),
            None => groups.push((status, what, hint, vec![w.name.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|(status, what, hint, names)| Check {
            name: "ca-bundle",
            status,
            detail: format!("{}: {what}", names.join(", ")),
            hint,
        })
        .collect()
}

fn unchecked_hint(target: Option<&Target>) -> String {
    match target {
        Some(Target::Service { namespace, .. }) => format!(
            "the certificate is read from the Secret {TLS_SECRET} in {namespace}: create it \
             there (deploy/overlays/), or run doctor as a user who may get secrets there"
        ),
        _ => "make the URL reachable from here, or run doctor where it is".into(),
    }
}

fn endpoints(f: &Facts) -> Vec<Check> {
    f.backends
        .iter()
        .map(|b| {
            let t = &b.target;
            match &b.reach {
                Reach::Answered => check("endpoints", Status::Ok, format!("{t} answers (TLS)")),
                Reach::Unreachable(why) => check(
                    "endpoints",
                    Status::Fail,
                    format!("{t} cannot be reached: {why}"),
                )
                .hint("start fipsgate there, or point clientConfig.url at where it runs"),
                Reach::Endpoints { ready, not_ready } if ready.is_empty() => check(
                    "endpoints",
                    Status::Fail,
                    format!(
                        "{t} has no ready endpoints ({} not ready): the API server cannot reach \
                         fipsgate",
                        not_ready.len()
                    ),
                )
                .hint(service_hint(t)),
                Reach::Endpoints { ready, not_ready } => check(
                    "endpoints",
                    Status::Ok,
                    format!(
                        "{t}: {} ready{}",
                        ready.join(", "),
                        match not_ready.len() {
                            0 => String::new(),
                            n => format!(", {n} not ready"),
                        }
                    ),
                ),
                Reach::NoService => check("endpoints", Status::Fail, format!("{t} does not exist"))
                    .hint("re-apply the overlay (deploy/base/service.yaml)"),
                Reach::Unknown(why) => check(
                    "endpoints",
                    Status::Warn,
                    format!("{t}: endpoints could not be read: {why}"),
                )
                .hint("run doctor as a user who may get services and endpoints there"),
            }
        })
        .collect()
}

fn service_hint(t: &Target) -> String {
    match t {
        Target::Service { namespace, .. } => format!(
            "kubectl -n {namespace} get pods -l app.kubernetes.io/name=fipsgate; kubectl -n \
             {namespace} describe deployment fipsgate"
        ),
        Target::Url(_) => String::new(),
    }
}

/// Days left (negative: expired), rounded down.
fn days_left(now: Timestamp, not_after: Timestamp) -> i64 {
    (not_after.as_second() - now.as_second()).div_euclid(86_400)
}

fn date(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// How an expiry date fares: the status and `expires 2027-01-01 (in 30 days)`.
fn expiry(now: Timestamp, not_after: Timestamp) -> (Status, String) {
    let days = days_left(now, not_after);
    if not_after <= now {
        (Status::Fail, format!("expired {}", date(not_after)))
    } else if days < EXPIRY_WARNING_DAYS {
        (
            Status::Warn,
            format!(
                "expires {} (in {})",
                date(not_after),
                plural(days as usize, "day", "days")
            ),
        )
    } else {
        (
            Status::Ok,
            format!("expires {} (in {days} days)", date(not_after)),
        )
    }
}

fn serving_certificate(f: &Facts) -> Check {
    let mut seen: Vec<(Status, String)> = Vec::new();
    let mut unknown = Vec::new();
    for b in &f.backends {
        match &b.certificate {
            Read::Found(c) => {
                let (s, e) = expiry(f.now, c.not_after);
                seen.push((s, format!("{} ({}) {e}", c.source, c.subject)));
            }
            Read::Missing => unknown.push(match &b.target {
                Target::Service { namespace, .. } => {
                    format!("Secret {namespace}/{TLS_SECRET} not found")
                }
                Target::Url(url) => format!("{url}: no certificate"),
            }),
            Read::Failed(why) => unknown.push(format!("{}: {why}", b.target)),
        }
    }
    if let Admin::Probes(probes) = &f.admin {
        for p in probes {
            if let Some(t) = p.serving_expiry {
                let (s, e) = expiry(f.now, t);
                seen.push((s, format!("{} serves one that {e}", p.target)));
            }
        }
    }
    let worst = seen.iter().map(|(s, _)| *s).max().unwrap_or(Status::Ok);
    let mut parts: Vec<String> = seen.into_iter().map(|(_, d)| d).collect();
    if parts.is_empty() {
        let why = match unknown.is_empty() {
            true => "no webhook of the configuration to find it by".to_string(),
            false => unknown.join("; "),
        };
        return check(
            "serving-certificate",
            Status::Warn,
            format!("could not be checked: {why}"),
        )
        .hint(
            "run doctor as a user who may get the Secret fipsgate-tls, or pass --admin-url so \
             fipsgate's /metrics says when its certificate expires",
        );
    }
    parts.extend(unknown.into_iter().map(|u| format!("not checked: {u}")));
    let c = check("serving-certificate", worst, parts.join("; "));
    match worst {
        Status::Ok => c,
        _ => c.hint(
            "renew it: cert-manager renews by itself; `fipsgate certs --out DIR --renew` keeps \
             the CA, so the caBundle stays valid; fipsgate reloads it without a restart",
        ),
    }
}

/// Whether the webhook requires client certificates, as far as known.
enum Required {
    /// Yes, from these CAs (RFC 4514; empty when only `/metrics` said so).
    Yes(Vec<String>),
    No,
    Unknown,
}

fn client_auth(f: &Facts) -> Required {
    let asked = f.backends.iter().find_map(|b| match &b.client_auth {
        Some(ClientAuth::Asked { authorities }) => Some(authorities.clone()),
        _ => None,
    });
    let probes = match &f.admin {
        Admin::Probes(p) => p.as_slice(),
        Admin::Skipped(_) => &[],
    };
    if let Some(authorities) = asked {
        return Required::Yes(authorities);
    }
    if probes.iter().any(|p| p.client_ca_expiry.is_some()) {
        return Required::Yes(Vec::new());
    }
    let not_asked = (f.backends.iter()).any(|b| b.client_auth == Some(ClientAuth::NotAsked));
    match not_asked || probes.iter().any(|p| p.metrics) {
        true => Required::No,
        false => Required::Unknown,
    }
}

fn client_certificate(f: &Facts) -> Check {
    let name = "client-certificate";
    let authorities = match client_auth(f) {
        Required::Yes(authorities) => authorities,
        Required::No => {
            let given = match &f.client_certificates {
                Some(_) => " (--client-cert not checked)",
                None => "",
            };
            return check(
                name,
                Status::Ok,
                format!("fipsgate does not ask for a client certificate (no --client-ca){given}"),
            );
        }
        Required::Unknown if f.client_certificates.is_none() => {
            return check(
                name,
                Status::Warn,
                "not checked: whether fipsgate requires a client certificate is unknown (no \
                 handshake with it, no /metrics read)",
            )
            .hint(
                "pass --admin-url, or --client-cert with the API server's client certificate \
                 if fipsgate runs with --client-ca",
            );
        }
        Required::Unknown => Vec::new(),
    };
    let mut seen: Vec<(Status, String)> = Vec::new();
    if let Admin::Probes(probes) = &f.admin {
        for p in probes {
            if let Some(t) = p.client_ca_expiry {
                let (s, e) = expiry(f.now, t);
                seen.push((s, format!("{}: its --client-ca {e}", p.target)));
            }
        }
    }
    match &f.client_certificates {
        None => seen.push((
            Status::Warn,
            "fipsgate requires a client certificate; the API server's was not checked".into(),
        )),
        Some(Err(why)) => seen.push((Status::Fail, format!("--client-cert: {why}"))),
        Some(Ok(certs)) => {
            for c in certs {
                let (mut s, mut e) = expiry(f.now, c.not_after);
                if !authorities.is_empty() && !authorities.contains(&c.issuer) {
                    s = Status::Fail;
                    e = format!(
                        "{e}, issued by {} but fipsgate accepts {}",
                        c.issuer,
                        authorities.join(", ")
                    );
                }
                seen.push((s, format!("{} ({}) {e}", c.source, c.subject)));
            }
        }
    }
    let worst = seen.iter().map(|(s, _)| *s).max().unwrap_or(Status::Ok);
    let detail: Vec<String> = seen.into_iter().map(|(_, d)| d).collect();
    let c = check(name, worst, detail.join("; "));
    match (worst, &f.client_certificates) {
        (Status::Ok, _) => c,
        (_, None) => c.hint(
            "pass --client-cert with the API server's client.crt or apiserver-kubeconfig.yaml \
             (from `fipsgate certs --client-name`)",
        ),
        _ => c.hint(
            "renew with `fipsgate certs --out DIR --renew --client-name NAME` and hand the API \
             server its new apiserver-kubeconfig.yaml",
        ),
    }
}

/// Readiness and FIPS mode, from `/readyz`.
fn running(f: &Facts) -> Vec<Check> {
    let probes = match &f.admin {
        Admin::Skipped(why) => {
            let c = check("fips-mode", Status::Warn, format!("not checked: {why}"))
                .hint("pass --admin-url http://HOST:PORT (fipsgate serve --admin-listen)");
            return vec![c];
        }
        Admin::Probes(p) if p.is_empty() => {
            let c = check(
                "fips-mode",
                Status::Warn,
                "not checked: no ready fipsgate pod to ask",
            )
            .hint("once a pod is ready (see endpoints), doctor asks it through the API server");
            return vec![c];
        }
        Admin::Probes(p) => p,
    };
    let mut ready = Vec::new();
    let mut fips = Vec::new();
    for p in probes {
        match &p.readyz {
            Err(why) => ready.push((Status::Warn, format!("{}: /readyz: {why}", p.target))),
            Ok(r) => {
                ready.push(match r.ready {
                    true => (Status::Ok, format!("{} is ready", p.target)),
                    false if r.shutting_down => {
                        (Status::Fail, format!("{} is shutting down", p.target))
                    }
                    false => (
                        Status::Fail,
                        format!("{} is not ready (namespaces {})", p.target, r.namespaces),
                    ),
                });
                fips.push(match r.fips {
                    true => (Status::Ok, format!("{}: FIPS mode, {}", p.target, r.module)),
                    false => (
                        Status::Warn,
                        format!("{}: not in FIPS mode, {}", p.target, r.module),
                    ),
                });
            }
        }
    }
    let fold = |name: &'static str, items: Vec<(Status, String)>, hint: &str| {
        let worst = items.iter().map(|(s, _)| *s).max().unwrap_or(Status::Ok);
        let detail: Vec<String> = items.into_iter().map(|(_, d)| d).collect();
        let c = check(name, worst, detail.join("; "));
        match worst {
            Status::Ok => c,
            _ => c.hint(hint),
        }
    };
    let mut out = vec![fold(
        "readiness",
        ready,
        "read fipsgate's log; it is ready once its namespace watch has synced (RBAC: list and \
         watch namespaces)",
    )];
    if !fips.is_empty() {
        out.push(fold(
            "fips-mode",
            fips,
            "run the FIPS build (cargo build --features fips; deploy/Dockerfile builds it) with \
             --require-fips",
        ));
    }
    out
}

/// The webhooks that judge pod creation.
fn pod_webhooks(f: &Facts) -> Vec<&ValidatingWebhook> {
    let has = |v: &Option<Vec<String>>, want: &str| {
        v.iter()
            .flatten()
            .any(|x| x == want || x == "*" || x == "*/*")
    };
    webhooks(f)
        .iter()
        .filter(|w| {
            w.rules.iter().flatten().any(|r| {
                has(&r.api_groups, "") && has(&r.resources, "pods") && has(&r.operations, "CREATE")
            })
        })
        .collect()
}

/// Whether the webhook's namespaceSelector selects these labels (none selects all).
fn selects(w: &ValidatingWebhook, labels: &BTreeMap<String, String>) -> bool {
    match &w.namespace_selector {
        None => true,
        Some(s) => Selector::try_from(s.clone()).is_ok_and(|s| s.matches(labels)),
    }
}

/// Per namespace: the pod webhooks that match it.
fn coverage<'a>(
    f: &'a Facts,
    ns: &'a [Namespace],
) -> Vec<(&'a Namespace, Vec<&'a ValidatingWebhook>)> {
    let pods = pod_webhooks(f);
    ns.iter()
        .map(|n| {
            let matched = pods
                .iter()
                .copied()
                .filter(|w| selects(w, &n.labels))
                .collect();
            (n, matched)
        })
        .collect()
}

fn fails_closed(matched: &[&ValidatingWebhook]) -> bool {
    matched.iter().any(|w| failure_policy_of(w) == "Fail")
}

fn failure_policy(f: &Facts, limit: usize) -> Check {
    let name = "failure-policy";
    let ns = match &f.namespaces {
        Read::Found(ns) => ns,
        Read::Missing => return check(name, Status::Warn, "no namespaces listed"),
        Read::Failed(why) => {
            return check(name, Status::Warn, format!("cannot list namespaces: {why}"))
                .hint("run doctor as a user who may list namespaces");
        }
    };
    let (mut closed, mut open, mut none) = (Vec::new(), Vec::new(), Vec::new());
    for (n, matched) in coverage(f, ns) {
        let bucket = match matched.is_empty() {
            true => &mut none,
            false if fails_closed(&matched) => &mut closed,
            false => &mut open,
        };
        bucket.push(n.name.clone());
    }
    let mut detail = match closed.is_empty() {
        true => "no namespace fails closed".to_string(),
        false => format!(
            "{} closed (pod creation there stops while fipsgate is down): {}",
            plural(closed.len(), "namespace fails", "namespaces fail"),
            list(&closed, limit)
        ),
    };
    detail.push_str(&format!("; {} open", plural(open.len(), "fails", "fail")));
    if !none.is_empty() {
        detail.push_str(&format!(
            "; {} not judged: {}",
            none.len(),
            list(&none, limit)
        ));
    }
    let down = f.backends.iter().any(|b| {
        matches!(&b.reach, Reach::Unreachable(_) | Reach::NoService)
            || matches!(&b.reach, Reach::Endpoints { ready, .. } if ready.is_empty())
    });
    let single = f
        .backends
        .iter()
        .any(|b| matches!(&b.reach, Reach::Endpoints { ready, .. } if ready.len() == 1));
    if !closed.is_empty() && down {
        return check(
            name,
            Status::Fail,
            format!("fipsgate cannot be reached: pod creation is blocked now; {detail}"),
        )
        .hint("bring fipsgate back (see endpoints); break-glass: kubectl delete validatingwebhookconfiguration with its name");
    }
    if !closed.is_empty() && single {
        return check(name, Status::Warn, format!("one ready replica; {detail}")).hint(
            "run at least two replicas: restarting the only one blocks pod creation where it \
             fails closed",
        );
    }
    check(name, Status::Ok, detail)
}

fn namespace_labels(f: &Facts, limit: usize) -> Check {
    let name = "namespace-labels";
    let ns = match &f.namespaces {
        Read::Found(ns) => ns,
        Read::Missing => return check(name, Status::Warn, "no namespaces listed"),
        Read::Failed(why) => {
            return check(name, Status::Warn, format!("cannot list namespaces: {why}"))
                .hint("run doctor as a user who may list namespaces");
        }
    };
    let known: Vec<&str> = Mode::ALL.iter().map(|m| m.label()).collect();
    let coverage = coverage(f, ns);
    let mut found = Vec::new();
    for (n, matched) in &coverage {
        let policy = NamespacePolicy::from_label_map(&n.labels, &Levels::default());
        for e in &policy.errors {
            let open =
                e.contains(Mode::Enforce.label()) && !matched.is_empty() && !fails_closed(matched);
            let note = match open {
                true => " (and fails open while fipsgate is down)",
                false => "",
            };
            found.push(format!("{}: {e}{note}", n.name));
        }
        for key in n.labels.keys() {
            if key.starts_with(LABEL_PREFIX) && !known.contains(&key.as_str()) {
                found.push(format!("{}: unknown label {key}", n.name));
            }
        }
    }
    if found.is_empty() {
        let labelled = ns
            .iter()
            .filter(|n| n.labels.keys().any(|k| k.starts_with(LABEL_PREFIX)))
            .count();
        let detail = match labelled {
            0 => "no namespace has fipsgate.io/ labels".to_string(),
            n => format!(
                "{} with fipsgate.io/ labels, every one valid",
                plural(n, "namespace", "namespaces")
            ),
        };
        return check(name, Status::Ok, detail);
    }
    check(name, Status::Warn, joined(&found, limit, "; ")).hint(format!(
        "fipsgate reads {}, each strict, baseline or off: kubectl label ns NAME KEY=VALUE \
         --overwrite, or KEY- to remove one",
        known.join(", ")
    ))
}

/// The namespaces meant never to be matched: kube-system, the install namespace, and those a
/// selector excludes by name.
fn meant_excluded(f: &Facts) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["kube-system".to_string(), f.namespace.clone()].into();
    for w in webhooks(f) {
        let exprs = w
            .namespace_selector
            .iter()
            .flat_map(|s| s.match_expressions.iter().flatten());
        for e in exprs.filter(|e| e.key == NAME_LABEL && e.operator == "NotIn") {
            names.extend(e.values.iter().flatten().cloned());
        }
    }
    names
}

fn excluded_namespaces(f: &Facts) -> Check {
    let name = "excluded-namespaces";
    let ns = match &f.namespaces {
        Read::Found(ns) => ns,
        Read::Missing => return check(name, Status::Warn, "no namespaces listed"),
        Read::Failed(why) => {
            return check(name, Status::Warn, format!("cannot list namespaces: {why}"))
                .hint("run doctor as a user who may list namespaces");
        }
    };
    let old = f.version.below(MIN_KUBERNETES);
    let (mut status, mut parts, mut hints) = (Status::Ok, Vec::new(), Vec::new());
    for want in meant_excluded(f) {
        let Some(n) = ns.iter().find(|n| n.name == want) else {
            parts.push(format!("{want}: does not exist"));
            continue;
        };
        let labelled = n.labels.get(NAME_LABEL) == Some(&n.name);
        let matched: Vec<&ValidatingWebhook> = webhooks(f)
            .iter()
            .filter(|w| selects(w, &n.labels))
            .collect();
        if matched.is_empty() {
            let how = match (labelled, old) {
                (true, true) => format!(
                    " ({NAME_LABEL} set by hand: Kubernetes {} does not set it)",
                    f.version.git
                ),
                _ => String::new(),
            };
            parts.push(format!("{want}: matched by no webhook{how}"));
            continue;
        }
        let closed = matched.iter().any(|w| {
            failure_policy_of(w) == "Fail" && pod_webhooks(f).iter().any(|p| p.name == w.name)
        });
        status = status.max(if closed { Status::Fail } else { Status::Warn });
        let names: Vec<&str> = matched.iter().map(|w| w.name.as_str()).collect();
        let why = match (labelled, old) {
            (false, true) => format!(
                ": it lacks {NAME_LABEL}={want}, which Kubernetes {} does not set",
                f.version.git
            ),
            (false, false) => format!(": it lacks {NAME_LABEL}={want}"),
            (true, _) => ": no namespaceSelector excludes it".to_string(),
        };
        let effect = match closed {
            true => {
                " (fails closed: while fipsgate is down no pod starts there, fipsgate's own included)"
            }
            false => "",
        };
        parts.push(format!(
            "{want}: matched by {}{why}{effect}",
            names.join(", ")
        ));
        hints.push(match labelled {
            false => format!("kubectl label ns {want} {NAME_LABEL}={want}"),
            true => format!("add {want} to the webhooks' {NAME_LABEL} NotIn list"),
        });
    }
    let c = check(name, status, parts.join("; "));
    match hints.is_empty() {
        true => c,
        false => c.hint(hints.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = include_str!("../../deploy/base/webhook.yaml");

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ns(name: &str, labels: &[(&str, &str)]) -> Namespace {
        let mut l: BTreeMap<String, String> = [(NAME_LABEL.to_string(), name.to_string())].into();
        l.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Namespace {
            name: name.into(),
            labels: l,
        }
    }

    /// The base's webhooks as kustomize renders them into fipsgate-system (the var is the
    /// namespace the install ends up in).
    fn base() -> ValidatingWebhookConfiguration {
        serde_saphyr::from_str(&BASE.replace("$(FIPSGATE_NAMESPACE)", "fipsgate-system")).unwrap()
    }

    fn service() -> Target {
        Target::Service {
            namespace: "fipsgate-system".into(),
            name: "fipsgate".into(),
            port: 443,
            path: "/validate".into(),
        }
    }

    fn cert(source: &str, not_after: &str) -> Certificate {
        Certificate {
            source: source.into(),
            subject: "CN=fipsgate.fipsgate-system.svc".into(),
            issuer: "CN=fipsgate CA".into(),
            not_after: ts(not_after),
        }
    }

    fn probe(name: &str) -> Probe {
        Probe {
            target: name.into(),
            readyz: Ok(Readyz {
                ready: true,
                fips: true,
                module: "AWS-LC FIPS 4.2.0".into(),
                namespaces: "synced".into(),
                shutting_down: false,
            }),
            serving_expiry: Some(ts("2027-06-01T00:00:00Z")),
            client_ca_expiry: None,
            metrics: true,
        }
    }

    /// A healthy Service install of the base on 1.21.
    fn healthy() -> Facts {
        let config = base();
        let trust = (config.webhooks.iter().flatten())
            .map(|w| (w.name.clone(), Trust::Verified))
            .collect();
        Facts {
            now: ts("2026-11-28T00:00:00Z"),
            namespace: "fipsgate-system".into(),
            config_name: "fipsgate".into(),
            version: Version {
                major: 1,
                minor: 21,
                git: "v1.21.3".into(),
            },
            config: Read::Found(config),
            namespaces: Read::Found(vec![
                ns("default", &[]),
                ns("kube-system", &[]),
                ns("fipsgate-system", &[]),
                ns("payments", &[("fipsgate.io/enforce", "strict")]),
                ns("shop", &[("fipsgate.io/enforce", "baseline")]),
                ns(
                    "dev",
                    &[
                        ("fipsgate.io/enforce", "off"),
                        ("fipsgate.io/warn", "strict"),
                    ],
                ),
            ]),
            backends: vec![Backend {
                target: service(),
                reach: Reach::Endpoints {
                    ready: vec!["fipsgate-a".into(), "fipsgate-b".into()],
                    not_ready: vec![],
                },
                certificate: Read::Found(cert(
                    "Secret fipsgate-system/fipsgate-tls",
                    "2027-11-01T00:00:00Z",
                )),
                client_auth: None,
            }],
            trust,
            client_certificates: None,
            admin: Admin::Probes(vec![probe("pod fipsgate-a"), probe("pod fipsgate-b")]),
        }
    }

    fn to_url(f: &mut Facts, url: &str) {
        if let Read::Found(c) = &mut f.config {
            for w in c.webhooks.iter_mut().flatten() {
                w.client_config.service = None;
                w.client_config.url = Some(url.into());
            }
        }
        f.backends = vec![Backend {
            target: Target::Url(url.into()),
            reach: Reach::Answered,
            certificate: Read::Found(cert(url, "2027-11-01T00:00:00Z")),
            client_auth: Some(ClientAuth::NotAsked),
        }];
    }

    fn webhook<'a>(f: &'a mut Facts, name: &str) -> &'a mut ValidatingWebhook {
        let Read::Found(c) = &mut f.config else {
            panic!("no config")
        };
        c.webhooks
            .iter_mut()
            .flatten()
            .find(|w| w.name == name)
            .unwrap()
    }

    fn namespaces(f: &mut Facts) -> &mut Vec<Namespace> {
        let Read::Found(n) = &mut f.namespaces else {
            panic!("no namespaces")
        };
        n
    }

    /// The checks named `name`, as (status, detail, hint).
    fn outcome(f: &Facts, name: &str) -> Vec<(Status, String, Option<String>)> {
        evaluate(f, 0)
            .checks
            .into_iter()
            .filter(|c| c.name == name)
            .map(|c| (c.status, c.detail, c.hint))
            .collect()
    }

    type Case = (
        &'static str,
        fn(&mut Facts),
        &'static str,
        Status,
        &'static str,
    );

    /// Each case: what it is, how the healthy facts are changed, the check, its worst status,
    /// and a phrase its details must hold.
    fn run(cases: &[Case]) {
        for (what, change, name, status, phrase) in cases {
            let mut f = healthy();
            change(&mut f);
            let found = outcome(&f, name);
            let worst = found.iter().map(|c| c.0).max();
            assert_eq!(worst, Some(*status), "{what}: {found:#?}");
            assert!(
                found.iter().any(|c| c.1.contains(phrase)),
                "{what}: no {phrase:?} in {found:#?}"
            );
            if *status != Status::Ok {
                let bad = found.iter().filter(|c| c.0 == *status);
                assert!(
                    bad.clone().all(|c| c.2.is_some()),
                    "{what}: no hint: {found:#?}"
                );
            }
        }
    }

    #[test]
    fn a_healthy_install_passes_every_check() {
        let report = evaluate(&healthy(), 0);
        let bad: Vec<&Check> = report
            .checks
            .iter()
            .filter(|c| c.status != Status::Ok)
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(report.passed());
        assert_eq!(report.summary.fail + report.summary.warn, 0);
        let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "kubernetes-version",
                "webhook-configuration",
                "ca-bundle",
                "endpoints",
                "serving-certificate",
                "client-certificate",
                "readiness",
                "fips-mode",
                "failure-policy",
                "namespace-labels",
                "excluded-namespaces",
            ]
        );
    }

    /// The base is what the constants describe: its webhooks, its path, and kube-system and
    /// fipsgate-system excluded by `kubernetes.io/metadata.name`.
    #[test]
    fn the_constants_match_deploy_base() {
        let c = base();
        let names: Vec<&str> = c
            .webhooks
            .iter()
            .flatten()
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(names, WEBHOOKS.map(|(n, _)| n));
        let mut f = healthy();
        f.namespace = "fipsgate-system".into();
        assert_eq!(
            meant_excluded(&f),
            ["fipsgate-system", "kube-system"].map(String::from).into()
        );
        for w in c.webhooks.iter().flatten() {
            assert_eq!(Target::of(w).unwrap().path(), REVIEW_PATH);
        }
    }

    #[test]
    fn kubernetes_version() {
        fn v(f: &mut Facts, minor: u32) {
            f.version = Version {
                major: 1,
                minor,
                git: format!("v1.{minor}.0"),
            };
        }
        run(&[
            (
                "1.33",
                |f| v(f, 33),
                "kubernetes-version",
                Status::Ok,
                "v1.33.0 (1.21 or later",
            ),
            (
                "1.20",
                |f| v(f, 20),
                "kubernetes-version",
                Status::Warn,
                "older than 1.21",
            ),
            (
                "1.15",
                |f| v(f, 15),
                "kubernetes-version",
                Status::Fail,
                "no admissionregistration.k8s.io/v1",
            ),
        ]);
    }

    #[test]
    fn webhook_configuration() {
        run(&[
            (
                "healthy",
                |_| {},
                "webhook-configuration",
                Status::Ok,
                "pods.fipsgate.io (Fail), pods-default.fipsgate.io (Ignore)",
            ),
            (
                "not found",
                |f| f.config = Read::Missing,
                "webhook-configuration",
                Status::Fail,
                "fipsgate not found",
            ),
            (
                "forbidden",
                |f| f.config = Read::Failed("forbidden".into()),
                "webhook-configuration",
                Status::Fail,
                "cannot read ValidatingWebhookConfiguration fipsgate: forbidden",
            ),
            (
                "a pod webhook missing",
                |f| {
                    let Read::Found(c) = &mut f.config else {
                        return;
                    };
                    c.webhooks
                        .as_mut()
                        .unwrap()
                        .retain(|w| w.name != "pods.fipsgate.io");
                },
                "webhook-configuration",
                Status::Fail,
                "missing pods.fipsgate.io",
            ),
            (
                "a warnings-only webhook missing",
                |f| {
                    let Read::Found(c) = &mut f.config else {
                        return;
                    };
                    c.webhooks
                        .as_mut()
                        .unwrap()
                        .retain(|w| w.name != "workloads.fipsgate.io");
                },
                "webhook-configuration",
                Status::Warn,
                "missing workloads.fipsgate.io",
            ),
            (
                "a wrong path",
                |f| {
                    let s = webhook(f, "pods.fipsgate.io")
                        .client_config
                        .service
                        .as_mut()
                        .unwrap();
                    s.path = Some("/mutate".into());
                },
                "webhook-configuration",
                Status::Fail,
                "pods.fipsgate.io posts to \"/mutate\"",
            ),
            (
                "a URL with the right path",
                |f| to_url(f, "https://10.0.0.1:8443/validate?x=1"),
                "webhook-configuration",
                Status::Ok,
                "namespaces.fipsgate.io (Ignore)",
            ),
        ]);
    }

    #[test]
    fn ca_bundle() {
        run(&[
            (
                "verified",
                |_| {},
                "ca-bundle",
                Status::Ok,
                "pods.fipsgate.io, pods-default.fipsgate.io, workloads.fipsgate.io, namespaces.fipsgate.io: the caBundle verifies the certificate of Service fipsgate-system/fipsgate:443",
            ),
            (
                "one rejected",
                |f| {
                    f.trust.insert(
                        "workloads.fipsgate.io".into(),
                        Trust::Rejected("issued by an unknown CA".into()),
                    );
                },
                "ca-bundle",
                Status::Fail,
                "workloads.fipsgate.io: the caBundle does not verify the certificate of Service fipsgate-system/fipsgate:443: issued by an unknown CA",
            ),
            (
                "the Secret unreadable",
                |f| {
                    for t in f.trust.values_mut() {
                        *t = Trust::Unchecked(
                            "cannot read Secret fipsgate-system/fipsgate-tls: forbidden".into(),
                        );
                    }
                },
                "ca-bundle",
                Status::Warn,
                "could not be checked against Service fipsgate-system/fipsgate:443: cannot read Secret",
            ),
            (
                "no caBundle",
                |f| {
                    f.trust.insert("pods.fipsgate.io".into(), Trust::NoBundle);
                },
                "ca-bundle",
                Status::Warn,
                "pods.fipsgate.io: no caBundle",
            ),
        ]);
    }

    #[test]
    fn endpoints() {
        fn reach(f: &mut Facts, r: Reach) {
            f.backends[0].reach = r;
        }
        run(&[
            (
                "two ready",
                |_| {},
                "endpoints",
                Status::Ok,
                "Service fipsgate-system/fipsgate:443: fipsgate-a, fipsgate-b ready",
            ),
            (
                "none ready",
                |f| {
                    reach(
                        f,
                        Reach::Endpoints {
                            ready: vec![],
                            not_ready: vec!["fipsgate-a".into()],
                        },
                    )
                },
                "endpoints",
                Status::Fail,
                "has no ready endpoints (1 not ready)",
            ),
            (
                "no Service",
                |f| reach(f, Reach::NoService),
                "endpoints",
                Status::Fail,
                "Service fipsgate-system/fipsgate:443 does not exist",
            ),
            (
                "forbidden",
                |f| reach(f, Reach::Unknown("forbidden".into())),
                "endpoints",
                Status::Warn,
                "endpoints could not be read: forbidden",
            ),
            (
                "a URL that answers",
                |f| to_url(f, "https://127.0.0.1:8443/validate"),
                "endpoints",
                Status::Ok,
                "https://127.0.0.1:8443/validate answers (TLS)",
            ),
            (
                "a URL that does not",
                |f| {
                    to_url(f, "https://127.0.0.1:8443/validate");
                    reach(f, Reach::Unreachable("connection refused".into()));
                },
                "endpoints",
                Status::Fail,
                "cannot be reached: connection refused",
            ),
        ]);
    }

    #[test]
    fn serving_certificate() {
        fn expires(f: &mut Facts, at: &str) {
            f.backends[0].certificate =
                Read::Found(cert("Secret fipsgate-system/fipsgate-tls", at));
        }
        run(&[
            (
                "a year left",
                |_| {},
                "serving-certificate",
                Status::Ok,
                "expires 2027-11-01 (in 338 days)",
            ),
            (
                "ten days left",
                |f| expires(f, "2026-12-08T12:00:00Z"),
                "serving-certificate",
                Status::Warn,
                "expires 2026-12-08 (in 10 days)",
            ),
            (
                "expired",
                |f| expires(f, "2026-11-27T00:00:00Z"),
                "serving-certificate",
                Status::Fail,
                "expired 2026-11-27",
            ),
            (
                "a pod serving an older one",
                |f| {
                    let Admin::Probes(p) = &mut f.admin else {
                        return;
                    };
                    p[1].serving_expiry = Some(ts("2026-11-20T00:00:00Z"));
                },
                "serving-certificate",
                Status::Fail,
                "pod fipsgate-b serves one that expired 2026-11-20",
            ),
            (
                "the Secret unreadable, the pods' known",
                |f| {
                    f.backends[0].certificate = Read::Failed(
                        "cannot read Secret fipsgate-system/fipsgate-tls: forbidden".into(),
                    )
                },
                "serving-certificate",
                Status::Ok,
                "not checked: Service fipsgate-system/fipsgate:443: cannot read Secret",
            ),
            (
                "nothing known",
                |f| {
                    f.backends[0].certificate = Read::Missing;
                    f.admin = Admin::Probes(vec![]);
                },
                "serving-certificate",
                Status::Warn,
                "could not be checked: Secret fipsgate-system/fipsgate-tls not found",
            ),
        ]);
    }

    fn asked(f: &mut Facts) {
        to_url(f, "https://127.0.0.1:8443/validate");
        f.backends[0].client_auth = Some(ClientAuth::Asked {
            authorities: vec!["CN=fipsgate CA".into()],
        });
    }

    fn client(f: &mut Facts, issuer: &str, not_after: &str) {
        asked(f);
        let mut c = cert("client.crt", not_after);
        c.subject = "CN=kube-apiserver".into();
        c.issuer = issuer.into();
        f.client_certificates = Some(Ok(vec![c]));
    }

    #[test]
    fn client_certificate() {
        run(&[
            (
                "not asked",
                |f| to_url(f, "https://127.0.0.1:8443/validate"),
                "client-certificate",
                Status::Ok,
                "does not ask for a client certificate",
            ),
            (
                "asked, none given",
                asked,
                "client-certificate",
                Status::Warn,
                "the API server's was not checked",
            ),
            (
                "asked, given, valid",
                |f| client(f, "CN=fipsgate CA", "2027-11-01T00:00:00Z"),
                "client-certificate",
                Status::Ok,
                "client.crt (CN=kube-apiserver) expires 2027-11-01",
            ),
            (
                "asked, given, expiring",
                |f| client(f, "CN=fipsgate CA", "2026-12-01T00:00:00Z"),
                "client-certificate",
                Status::Warn,
                "expires 2026-12-01 (in 3 days)",
            ),
            (
                "asked, given, expired",
                |f| client(f, "CN=fipsgate CA", "2026-11-01T00:00:00Z"),
                "client-certificate",
                Status::Fail,
                "expired 2026-11-01",
            ),
            (
                "asked, given, another CA's",
                |f| client(f, "CN=other CA", "2027-11-01T00:00:00Z"),
                "client-certificate",
                Status::Fail,
                "issued by CN=other CA but fipsgate accepts CN=fipsgate CA",
            ),
            (
                "unreadable --client-cert",
                |f| {
                    asked(f);
                    f.client_certificates = Some(Err("no certificate in client.key".into()));
                },
                "client-certificate",
                Status::Fail,
                "--client-cert: no certificate in client.key",
            ),
            (
                "a Service install whose /metrics said no --client-ca",
                |_| {},
                "client-certificate",
                Status::Ok,
                "does not ask for a client certificate",
            ),
            (
                "a Service install whose /metrics could not be read",
                |f| {
                    let Admin::Probes(p) = &mut f.admin else {
                        return;
                    };
                    p.iter_mut().for_each(|p| p.metrics = false);
                },
                "client-certificate",
                Status::Warn,
                "not checked: whether fipsgate requires a client certificate is unknown",
            ),
            (
                "a Service install whose client CA expires soon",
                |f| {
                    let Admin::Probes(p) = &mut f.admin else {
                        return;
                    };
                    p[0].client_ca_expiry = Some(ts("2026-12-01T00:00:00Z"));
                    f.client_certificates = Some(Ok(vec![]));
                },
                "client-certificate",
                Status::Warn,
                "pod fipsgate-a: its --client-ca expires 2026-12-01",
            ),
        ]);
    }

    #[test]
    fn readiness_and_fips_mode() {
        fn readyz(f: &mut Facts, r: Result<Readyz, String>) {
            let Admin::Probes(p) = &mut f.admin else {
                return;
            };
            p[1].readyz = r;
        }
        fn not(fips: bool, ready: bool, down: bool) -> Result<Readyz, String> {
            Ok(Readyz {
                ready,
                fips,
                module: if fips {
                    "AWS-LC FIPS 4.2.0"
                } else {
                    "AWS-LC (non-FIPS) 5.12.0"
                }
                .into(),
                namespaces: if ready { "synced" } else { "syncing" }.into(),
                shutting_down: down,
            })
        }
        run(&[
            (
                "fips",
                |_| {},
                "fips-mode",
                Status::Ok,
                "pod fipsgate-a: FIPS mode, AWS-LC FIPS 4.2.0",
            ),
            (
                "ready",
                |_| {},
                "readiness",
                Status::Ok,
                "pod fipsgate-b is ready",
            ),
            (
                "not fips",
                |f| readyz(f, not(false, true, false)),
                "fips-mode",
                Status::Warn,
                "pod fipsgate-b: not in FIPS mode, AWS-LC (non-FIPS) 5.12.0",
            ),
            (
                "syncing",
                |f| readyz(f, not(true, false, false)),
                "readiness",
                Status::Fail,
                "pod fipsgate-b is not ready (namespaces syncing)",
            ),
            (
                "draining",
                |f| readyz(f, not(true, false, true)),
                "readiness",
                Status::Fail,
                "pod fipsgate-b is shutting down",
            ),
            (
                "unreachable",
                |f| readyz(f, Err("connection refused".into())),
                "readiness",
                Status::Warn,
                "pod fipsgate-b: /readyz: connection refused",
            ),
            (
                "a URL install without --admin-url",
                |f| {
                    f.admin = Admin::Skipped(
                        "the webhook is registered by URL and no --admin-url was given".into(),
                    )
                },
                "fips-mode",
                Status::Warn,
                "not checked: the webhook is registered by URL",
            ),
            (
                "no pod",
                |f| f.admin = Admin::Probes(vec![]),
                "fips-mode",
                Status::Warn,
                "no ready fipsgate pod",
            ),
        ]);
    }

    #[test]
    fn failure_policy() {
        run(&[
            (
                "the base",
                |_| {},
                "failure-policy",
                Status::Ok,
                "2 namespaces fail closed (pod creation there stops while fipsgate is down): payments, shop; 2 fail open; 2 not judged: kube-system, fipsgate-system",
            ),
            (
                "enforce=bogus fails open",
                |f| namespaces(f).push(ns("typo", &[("fipsgate.io/enforce", "bogus")])),
                "failure-policy",
                Status::Ok,
                "3 fail open",
            ),
            (
                "the default webhook made Fail",
                |f| webhook(f, "pods-default.fipsgate.io").failure_policy = Some("Fail".into()),
                "failure-policy",
                Status::Ok,
                "4 namespaces fail closed (pod creation there stops while fipsgate is down): default, payments, shop, dev; 0 fail open",
            ),
            (
                "an unset policy is Fail",
                |f| webhook(f, "pods-default.fipsgate.io").failure_policy = None,
                "failure-policy",
                Status::Ok,
                "4 namespaces fail closed",
            ),
            (
                "one replica",
                |f| {
                    f.backends[0].reach = Reach::Endpoints {
                        ready: vec!["fipsgate-a".into()],
                        not_ready: vec![],
                    }
                },
                "failure-policy",
                Status::Warn,
                "one ready replica; 2 namespaces fail closed",
            ),
            (
                "down",
                |f| {
                    f.backends[0].reach = Reach::Endpoints {
                        ready: vec![],
                        not_ready: vec![],
                    }
                },
                "failure-policy",
                Status::Fail,
                "pod creation is blocked now; 2 namespaces fail closed",
            ),
            (
                "down, nothing fails closed",
                |f| {
                    f.backends[0].reach = Reach::NoService;
                    namespaces(f).retain(|n| {
                        !n.labels.contains_key("fipsgate.io/enforce") || n.name == "dev"
                    });
                },
                "failure-policy",
                Status::Ok,
                "no namespace fails closed; 2 fail open",
            ),
            (
                "namespaces unreadable",
                |f| f.namespaces = Read::Failed("forbidden".into()),
                "failure-policy",
                Status::Warn,
                "cannot list namespaces: forbidden",
            ),
        ]);
    }

    #[test]
    fn failure_policy_lists_are_capped() {
        let mut f = healthy();
        for i in 0..12 {
            namespaces(&mut f).push(ns(
                &format!("t{i:02}"),
                &[("fipsgate.io/enforce", "strict")],
            ));
        }
        let capped = evaluate(&f, 10);
        let c = capped
            .checks
            .iter()
            .find(|c| c.name == "failure-policy")
            .unwrap();
        assert!(
            c.detail.contains("14 namespaces fail closed"),
            "{}",
            c.detail
        );
        assert!(
            c.detail.contains(", … and 4 more (-o wide lists all)"),
            "{}",
            c.detail
        );
        let all = evaluate(&f, 0);
        let c = all
            .checks
            .iter()
            .find(|c| c.name == "failure-policy")
            .unwrap();
        assert!(c.detail.contains("t11"), "{}", c.detail);
    }

    #[test]
    fn namespace_labels() {
        run(&[
            (
                "valid",
                |_| {},
                "namespace-labels",
                Status::Ok,
                "3 namespaces with fipsgate.io/ labels, every one valid",
            ),
            (
                "an invalid enforce value",
                |f| namespaces(f).push(ns("typo", &[("fipsgate.io/enforce", "bogus")])),
                "namespace-labels",
                Status::Warn,
                "typo: invalid value \"bogus\" for label fipsgate.io/enforce: evaluated as strict (and fails open while fipsgate is down)",
            ),
            (
                "an invalid warn value",
                |f| namespaces(f).push(ns("typo", &[("fipsgate.io/warn", "loud")])),
                "namespace-labels",
                Status::Warn,
                "typo: invalid value \"loud\" for label fipsgate.io/warn: evaluated as strict",
            ),
            (
                "an unknown key",
                |f| namespaces(f).push(ns("typo", &[("fipsgate.io/enfroce", "strict")])),
                "namespace-labels",
                Status::Warn,
                "typo: unknown label fipsgate.io/enfroce",
            ),
            (
                "unreadable",
                |f| f.namespaces = Read::Failed("forbidden".into()),
                "namespace-labels",
                Status::Warn,
                "cannot list namespaces",
            ),
        ]);
    }

    fn old(f: &mut Facts) {
        f.version = Version {
            major: 1,
            minor: 20,
            git: "v1.20.2".into(),
        };
    }

    fn unlabel(f: &mut Facts, name: &str) {
        let n = namespaces(f).iter_mut().find(|n| n.name == name).unwrap();
        n.labels.remove(NAME_LABEL);
    }

    #[test]
    fn excluded_namespaces() {
        run(&[
            (
                "1.21: labelled by the API server",
                |_| {},
                "excluded-namespaces",
                Status::Ok,
                "fipsgate-system: matched by no webhook; kube-system: matched by no webhook",
            ),
            (
                "1.20, labelled by hand",
                old,
                "excluded-namespaces",
                Status::Ok,
                "kube-system: matched by no webhook (kubernetes.io/metadata.name set by hand: Kubernetes v1.20.2 does not set it)",
            ),
            (
                "1.20, kube-system unlabelled",
                |f| {
                    old(f);
                    unlabel(f, "kube-system");
                },
                "excluded-namespaces",
                Status::Warn,
                "kube-system: matched by pods-default.fipsgate.io, workloads.fipsgate.io, namespaces.fipsgate.io: it lacks kubernetes.io/metadata.name=kube-system, which Kubernetes v1.20.2 does not set",
            ),
            (
                "1.20, kube-system unlabelled and enforced",
                |f| {
                    old(f);
                    unlabel(f, "kube-system");
                    let n = namespaces(f)
                        .iter_mut()
                        .find(|n| n.name == "kube-system")
                        .unwrap();
                    n.labels
                        .insert("fipsgate.io/enforce".into(), "strict".into());
                },
                "excluded-namespaces",
                Status::Fail,
                "kube-system: matched by pods.fipsgate.io, workloads.fipsgate.io, namespaces.fipsgate.io: it lacks kubernetes.io/metadata.name=kube-system, which Kubernetes v1.20.2 does not set (fails closed",
            ),
            (
                "a selector without the exclusion",
                |f| {
                    for w in [
                        "pods-default.fipsgate.io",
                        "workloads.fipsgate.io",
                        "namespaces.fipsgate.io",
                    ] {
                        webhook(f, w).namespace_selector = None;
                    }
                },
                "excluded-namespaces",
                Status::Warn,
                "kube-system: matched by pods-default.fipsgate.io, workloads.fipsgate.io, namespaces.fipsgate.io: no namespaceSelector excludes it",
            ),
            (
                "the install namespace elsewhere",
                |f| {
                    f.namespace = "gate".into();
                    namespaces(f).push(ns("gate", &[]));
                },
                "excluded-namespaces",
                Status::Warn,
                "gate: matched by pods-default.fipsgate.io",
            ),
            (
                "a namespace that does not exist",
                |f| namespaces(f).retain(|n| n.name != "fipsgate-system"),
                "excluded-namespaces",
                Status::Ok,
                "fipsgate-system: does not exist",
            ),
        ]);
    }

    #[test]
    fn json_has_checks_and_a_summary() {
        let mut f = healthy();
        f.trust.insert(
            "pods.fipsgate.io".into(),
            Trust::Rejected("issued by an unknown CA".into()),
        );
        let report = evaluate(&f, 0);
        assert!(!report.passed());
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["summary"]["fail"], 1);
        let failed: Vec<&serde_json::Value> = (v["checks"].as_array().unwrap().iter())
            .filter(|c| c["status"] == "fail")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["name"], "ca-bundle");
        assert!(failed[0]["hint"].is_string());
        assert!(v["checks"][0]["hint"].is_null());
    }

    #[test]
    fn url_paths() {
        for (url, path) in [
            ("https://h:1/validate", "/validate"),
            ("https://h/validate?timeout=5s", "/validate"),
            ("https://h:1", ""),
            ("https://h/x/validate", "/x/validate"),
        ] {
            assert_eq!(Target::Url(url.into()).path(), path, "{url}");
        }
    }
}
