//! Probes of a running webhook for `doctor`: the certificate its URL serves (a real TLS
//! handshake), whether a caBundle verifies it, certificate files, and the admin port's
//! `/readyz` and `/metrics`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::app::doctor::{Certificate, ClientAuth, Probe, Readyz};

/// What a TLS handshake with a webhook URL showed.
#[derive(Debug)]
pub struct Handshake {
    /// The certificate chain the server presented, its own first.
    pub chain: Vec<CertificateDer<'static>>,
    pub client_auth: ClientAuth,
}

/// The host a URL names (without an IPv6 address's brackets) and its port.
pub fn host_port(url: &str) -> Result<(String, u16), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = u.host_str().ok_or(format!("{url}: no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = u.port_or_known_default().unwrap_or(443);
    Ok((host, port))
}

/// Connects to `url` and runs a TLS handshake as far as the server's certificate, which is
/// kept whatever it is; a server that then wants a client certificate is noted, not an error.
pub async fn handshake(
    url: &str,
    provider: Arc<CryptoProvider>,
    timeout: Duration,
) -> Result<Handshake, String> {
    let (host, port) = host_port(url)?;
    let name = ServerName::try_from(host.clone()).map_err(|e| format!("{host}: {e}"))?;
    let capture = Arc::new(Capture {
        provider: provider.clone(),
        chain: Mutex::new(Vec::new()),
    });
    let asked = Arc::new(Asked(Mutex::new(None)));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_client_cert_resolver(asked.clone());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| format!("no connection to {host}:{port} within {timeout:?}"))?
    .map_err(|e| format!("{host}:{port}: {}", io_reason(&e)))?;
    let done = tokio::time::timeout(timeout, connector.connect(name, tcp)).await;
    let chain = std::mem::take(&mut *capture.chain.lock().unwrap_or_else(|p| p.into_inner()));
    if chain.is_empty() {
        return Err(match done {
            Err(_) => format!("no TLS handshake with {host}:{port} within {timeout:?}"),
            Ok(Err(e)) => format!("TLS handshake with {host}:{port}: {e}"),
            Ok(Ok(_)) => format!("{host}:{port} presented no certificate"),
        });
    }
    let client_auth = match asked.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
        None => ClientAuth::NotAsked,
        Some(hints) => ClientAuth::Asked {
            authorities: hints.iter().filter_map(|h| dn(h)).collect(),
        },
    };
    Ok(Handshake { chain, client_auth })
}

/// `connection refused`, without Rust's `(os error 111)`.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

/// Keeps the server's chain and accepts it; the handshake's signatures are still verified.
#[derive(Debug)]
struct Capture {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        (self.provider.signature_verification_algorithms).supported_schemes()
    }
}

/// Notes that the server asked for a client certificate (and the CAs it named); offers none.
#[derive(Debug)]
struct Asked(Mutex<Option<Vec<Vec<u8>>>>);

impl ResolvesClientCert for Asked {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let hints = root_hint_subjects.iter().map(|h| h.to_vec()).collect();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(hints);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A DER distinguished name (with or without its outer SEQUENCE), RFC 4514.
fn dn(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer as _;
    if let Ok((_, name)) = x509_parser::x509::X509Name::from_der(der) {
        return Some(name.to_string());
    }
    let mut wrapped = vec![0x30];
    match der.len() {
        n if n < 0x80 => wrapped.push(n as u8),
        n if n < 0x100 => wrapped.extend([0x81, n as u8]),
        n => wrapped.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    wrapped.extend_from_slice(der);
    let (_, name) = x509_parser::x509::X509Name::from_der(&wrapped).ok()?;
    Some(name.to_string())
}

/// Whether the PEM `ca_bundle` verifies `chain` for `host` at `now`, as the API server checks
/// it; the reason when not.
pub fn verify(
    chain: &[CertificateDer<'static>],
    ca_bundle: &[u8],
    host: &str,
    provider: Arc<CryptoProvider>,
    now: Timestamp,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_bundle) {
        let c = c.map_err(|e| format!("the caBundle is not PEM: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("the caBundle holds an unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the caBundle holds no PEM certificate".into());
    }
    let (leaf, rest) = chain.split_first().ok_or("no certificate was presented")?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(now.as_second().max(0) as u64));
    match verifier.verify_server_cert(leaf, rest, &name, &[], at) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(e)) => Err(why_invalid(&e, leaf, host)),
        Err(e) => Err(e.to_string()),
    }
}

fn why_invalid(e: &CertificateError, leaf: &CertificateDer<'_>, host: &str) -> String {
    let issuer = describe(leaf, "").map(|c| c.issuer).unwrap_or_default();
    match e {
        CertificateError::UnknownIssuer => {
            format!("it was issued by {issuer}, which the caBundle does not hold")
        }
        CertificateError::BadSignature => {
            format!("the caBundle holds a CA named {issuer}, but not the one that signed it")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "it is not valid for {host} (it names {})",
                names(leaf).join(", ")
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".into()
        }
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The DNS names and IP addresses a certificate names.
fn names(der: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    (san.value.general_names.iter())
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A DER certificate as `doctor` reports it.
pub fn describe(der: &[u8], source: &str) -> Option<Certificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(Certificate {
        source: source.to_string(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: Timestamp::from_second(cert.validity().not_after.timestamp()).ok()?,
    })
}

/// The certificates of a PEM text.
pub fn pem_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    match chain.is_empty() {
        true => Err("no PEM certificate".into()),
        false => Ok(chain),
    }
}

/// The client certificates of `path`: a PEM certificate (`client.crt`), or a kubeconfig
/// whose users carry `client-certificate-data` (`apiserver-kubeconfig.yaml`).
pub fn client_certificates(path: &std::path::Path) -> Result<Vec<Certificate>, String> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| format!("{shown}: {}", io_reason(&e)))?;
    if let Ok(chain) = pem_chain(&text) {
        let c = describe(&chain[0], &shown).ok_or(format!("{shown}: not an X.509 certificate"))?;
        return Ok(vec![c]);
    }
    let config = kube::config::Kubeconfig::read_from(path)
        .map_err(|_| format!("{shown}: neither a PEM certificate nor a kubeconfig"))?;
    let mut found = Vec::new();
    for user in &config.auth_infos {
        let Some(data) = user
            .auth_info
            .as_ref()
            .and_then(|a| a.client_certificate_data.as_ref())
        else {
            continue;
        };
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| format!("{shown}: user {}: {e}", user.name))?;
        let chain = pem_chain(&pem).map_err(|e| format!("{shown}: user {}: {e}", user.name))?;
        let source = format!("{shown} (user {})", user.name);
        found.extend(describe(&chain[0], &source));
    }
    match found.is_empty() {
        true => Err(format!("{shown}: no user with client-certificate-data")),
        false => Ok(found),
    }
}

/// `/readyz`'s answer; the reason when it is not one (an error page, a proxy's refusal).
pub fn readyz(status: u16, body: &str) -> Result<Readyz, String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(ready) = v.get("ready").and_then(|r| r.as_bool()) {
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        return Ok(Readyz {
            ready,
            fips: v.get("fips").and_then(|x| x.as_bool()).unwrap_or(false),
            module: (v.pointer("/crypto/module").and_then(|x| x.as_str()))
                .unwrap_or("unknown module")
                .to_string(),
            namespaces: text("namespaces"),
            shutting_down: v.get("shuttingDown").and_then(|x| x.as_bool()) == Some(true),
        });
    }
    // A Kubernetes Status (the API server's proxy refusing), else the first line.
    let message = (v
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_string))
    .unwrap_or_else(|| body.lines().next().unwrap_or("").trim().to_string());
    Err(match message.is_empty() {
        true => format!("HTTP {status}"),
        false => format!("HTTP {status}: {message}"),
    })
}

/// From `/metrics`: when the serving certificate and the `--client-ca` expire.
pub fn expiries(metrics: &str) -> (Option<Timestamp>, Option<Timestamp>) {
    let value = |which: &str| {
        let key =
            format!("fipsgate_certificate_expiry_timestamp_seconds{{certificate=\"{which}\"}}");
        metrics.lines().find_map(|l| {
            let rest = l.strip_prefix(&key)?;
            let secs: f64 = rest.trim().parse().ok()?;
            Timestamp::from_second(secs as i64).ok()
        })
    };
    (value("serving"), value("client_ca"))
}

/// The most of an admin answer (`/readyz`, `/metrics`) read: fipsgate's are a few KiB.
pub const MAX_ADMIN_BODY: usize = 1 << 20;

/// Asks the admin port at `base` (`http://host:8080`) for `/readyz` and `/metrics`.
pub async fn admin(base: &str, timeout: Duration) -> Probe {
    let base = base.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build();
    let get = |client: &reqwest::Client, path: &str| {
        let req = client.get(format!("{base}{path}"));
        let path = path.to_string();
        async move {
            let resp = req.send().await.map_err(|e| reqwest_reason(&e))?;
            let status = resp.status().as_u16();
            let mut resp = resp;
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| reqwest_reason(&e))? {
                if body.len() + chunk.len() > MAX_ADMIN_BODY {
                    return Err(format!("{path}: answer larger than {MAX_ADMIN_BODY} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
        }
    };
    let mut probe = Probe {
        target: base.to_string(),
        readyz: Err("not asked".into()),
        serving_expiry: None,
        client_ca_expiry: None,
        metrics: false,
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            probe.readyz = Err(reqwest_reason(&e));
            return probe;
        }
    };
    probe.readyz = get(&client, "/readyz")
        .await
        .and_then(|(status, body)| readyz(status, &body));
    if let Ok((200, text)) = get(&client, "/metrics").await {
        (probe.serving_expiry, probe.client_ca_expiry) = expiries(&text);
        probe.metrics = true;
    }
    probe
}

/// A reqwest error and its causes, on one line, each said once.
fn reqwest_reason(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readyz_bodies() {
        let r = readyz(
            200,
            r#"{"ready":true,"certificates":"loaded","fips":false,"crypto":{"module":"AWS-LC (non-FIPS) 5.12.0"},"namespaces":"synced","shuttingDown":false}"#,
        )
        .unwrap();
        assert!(r.ready && !r.fips && !r.shutting_down);
        assert_eq!(r.module, "AWS-LC (non-FIPS) 5.12.0");
        let r = readyz(
            503,
            r#"{"ready":false,"fips":true,"namespaces":"syncing","shuttingDown":true}"#,
        )
        .unwrap();
        assert!(!r.ready && r.fips && r.shutting_down);
        assert_eq!(
            readyz(
                503,
                r#"{"kind":"Status","message":"no endpoints available for service \"fipsgate\""}"#
            ),
            Err("HTTP 503: no endpoints available for service \"fipsgate\"".into())
        );
        assert_eq!(
            readyz(404, "404 page not found\n"),
            Err("HTTP 404: 404 page not found".into())
        );
    }

    #[test]
    fn expiries_from_metrics() {
        let text = "# HELP x\nfipsgate_certificate_expiry_timestamp_seconds{certificate=\"serving\"} 1800000000\n\
                    fipsgate_certificate_expiry_timestamp_seconds{certificate=\"client_ca\"} 1900000000.0\n";
        let (s, c) = expiries(text);
        assert_eq!(s.unwrap().as_second(), 1_800_000_000);
        assert_eq!(c.unwrap().as_second(), 1_900_000_000);
        assert_eq!(expiries(""), (None, None));
    }

    #[test]
    fn urls() {
        assert_eq!(
            host_port("https://127.0.0.1:8443/validate").unwrap(),
            ("127.0.0.1".into(), 8443)
        );
        assert_eq!(
            host_port("https://[::1]/validate").unwrap(),
            ("::1".into(), 443)
        );
        assert_eq!(
            host_port("https://gate.example/x").unwrap(),
            ("gate.example".into(), 443)
        );
        assert!(host_port("not a url").is_err());
    }

    /// A caBundle verifies the certificate its CA issued for the host, and says why it does
    /// not otherwise: another CA, another name.
    #[test]
    fn ca_bundles_verify_what_their_ca_issued() {
        let provider = Arc::new(crate::infra::crypto::provider());
        let hosts = [
            "127.0.0.1".to_string(),
            "fipsgate.fipsgate-system.svc".to_string(),
        ];
        let a = crate::infra::certs::generate(&hosts, None, 30).unwrap();
        let b = crate::infra::certs::generate(&hosts, None, 30).unwrap();
        let chain = pem_chain(a.cert.as_bytes()).unwrap();
        let now = Timestamp::now();
        let ok = |ca: &str, host: &str| verify(&chain, ca.as_bytes(), host, provider.clone(), now);
        assert_eq!(ok(&a.ca_cert, "127.0.0.1"), Ok(()));
        assert_eq!(ok(&a.ca_cert, "fipsgate.fipsgate-system.svc"), Ok(()));
        let other = ok(&b.ca_cert, "127.0.0.1").unwrap_err();
        // Both CAs are named `fipsgate CA`: the name matches, the key does not.
        let want = "the caBundle holds a CA named CN=fipsgate CA, but not the one that signed it";
        assert_eq!(other, want);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "other CA");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let stranger = p.self_signed(&key).unwrap().pem();
        assert_eq!(
            ok(&stranger, "127.0.0.1"),
            Err("it was issued by CN=fipsgate CA, which the caBundle does not hold".into())
        );
        let name = ok(&a.ca_cert, "gate.example").unwrap_err();
        assert!(
            name.starts_with("it is not valid for gate.example (it names 127.0.0.1, fipsgate."),
            "{name}"
        );
        assert_eq!(
            ok("junk", "127.0.0.1"),
            Err("the caBundle holds no PEM certificate".into())
        );
        let later = now + jiff::SignedDuration::from_hours(24 * 40);
        let expired = verify(&chain, a.ca_cert.as_bytes(), "127.0.0.1", provider, later);
        assert_eq!(expired, Err("it has expired".into()));
    }

    /// Serves one TLS handshake on a free port with a certificate for 127.0.0.1, asking for a
    /// client certificate when `client_ca` is given; returns the URL and the CA.
    async fn server(client_ca: bool) -> (String, String) {
        let provider = Arc::new(crate::infra::crypto::provider());
        let b = crate::infra::certs::generate(&["127.0.0.1".to_string()], None, 30).unwrap();
        let chain = pem_chain(b.cert.as_bytes()).unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(b.key.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            false => builder.with_no_client_auth(),
            true => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(pem_chain(b.ca_cert.as_bytes()).unwrap().remove(0))
                    .unwrap();
                let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(v)
            }
        };
        let config = builder.with_single_cert(chain, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(tcp).await;
        });
        (format!("https://127.0.0.1:{port}/validate"), b.ca_cert)
    }

    #[tokio::test]
    async fn handshakes_see_the_certificate_and_a_request_for_a_client_one() {
        let provider = Arc::new(crate::infra::crypto::provider());
        let t = Duration::from_secs(5);
        let (url, ca) = server(false).await;
        let h = handshake(&url, provider.clone(), t).await.unwrap();
        assert_eq!(h.client_auth, ClientAuth::NotAsked);
        let now = Timestamp::now();
        assert_eq!(
            verify(&h.chain, ca.as_bytes(), "127.0.0.1", provider.clone(), now),
            Ok(())
        );
        let (url, _) = server(true).await;
        let h = handshake(&url, provider.clone(), t).await.unwrap();
        assert_eq!(
            h.client_auth,
            ClientAuth::Asked {
                authorities: vec!["CN=fipsgate CA".into()]
            }
        );
        let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let refused = handshake(&format!("https://127.0.0.1:{port}/validate"), provider, t).await;
        assert_eq!(
            refused.unwrap_err(),
            format!("127.0.0.1:{port}: connection refused")
        );
    }

    #[test]
    fn client_certificates_from_pem_or_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let a = crate::infra::certs::generate(&["h".to_string()], None, 30).unwrap();
        let (cert, _) =
            crate::infra::certs::client("kube-apiserver", (&a.ca_cert, &a.ca_key), 30).unwrap();
        let pem = dir.path().join("client.crt");
        std::fs::write(&pem, &cert).unwrap();
        let got = client_certificates(&pem).unwrap();
        assert_eq!(got[0].subject, "CN=kube-apiserver");
        assert_eq!(got[0].issuer, "CN=fipsgate CA");
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(&cert);
        let kc = dir.path().join("apiserver-kubeconfig.yaml");
        std::fs::write(
            &kc,
            format!("apiVersion: v1\nkind: Config\nusers:\n  - name: gate.svc\n    user:\n      client-certificate-data: {data}\n"),
        )
        .unwrap();
        let got = client_certificates(&kc).unwrap();
        assert!(
            got[0].source.ends_with("(user gate.svc)"),
            "{}",
            got[0].source
        );
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hello").unwrap();
        assert!(
            client_certificates(&junk)
                .unwrap_err()
                .contains("neither a PEM certificate nor a kubeconfig")
        );
        assert!(
            client_certificates(&dir.path().join("none"))
                .unwrap_err()
                .contains("no such file")
        );
    }
}
