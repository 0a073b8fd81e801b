//! Who may call the webhook port: with `--client-ca`, only a client with a certificate that CA
//! issued completes the TLS handshake (the API server, configured through an
//! `AdmissionConfiguration` kubeconfig), and with `--client-name`, only one whose certificate
//! names one of those (common name or DNS subject alternative name).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, UnixTime};

use super::tls::TlsError;

/// Client authentication: the CA that issues callers' certificates, and the names accepted.
#[derive(Clone, Debug)]
pub struct ClientAuth {
    pub ca: PathBuf,
    /// Names a caller's certificate must carry one of; empty accepts any the CA issued.
    pub names: Vec<String>,
}

impl ClientAuth {
    /// When the earliest certificate of the CA file expires (Unix time).
    pub fn expiry(&self) -> Option<i64> {
        let pem = std::fs::read(&self.ca).ok()?;
        (CertificateDer::pem_slice_iter(&pem))
            .filter_map(|c| super::tls::not_after(c.ok()?.as_ref()))
            .min()
    }

    /// The verifier the TLS configuration uses; fails on a CA file without a usable certificate.
    pub fn verifier(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let bad = |reason: String| TlsError::Pem {
            path: self.ca.clone(),
            reason,
        };
        let pem = std::fs::read(&self.ca).map_err(|source| TlsError::Read {
            path: self.ca.clone(),
            source,
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.ca.clone(),
            });
        }
        let inner =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad(e.to_string()))?;
        Ok(Arc::new(Named {
            inner,
            names: self.names.clone(),
        }))
    }
}

/// The CA's verification, then the name check.
#[derive(Debug)]
struct Named {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

/// The common names and DNS subject alternative names of a DER certificate.
fn names_of(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = (cert.subject().iter_common_name())
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                names.push(n.to_string());
            }
        }
    }
    names
}

impl ClientCertVerifier for Named {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.names.is_empty() || names_of(end_entity).iter().any(|n| self.names.contains(n)) {
            return Ok(verified);
        }
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
