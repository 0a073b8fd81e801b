//! Signed attestations: DSSE envelopes verified over their PAE with the configured public keys
//! (ECDSA P-256/SHA-256 as cosign makes them, Ed25519), in-toto Statement v1 subjects bound to
//! the image digest, and the FIPS predicates fipsgate understands. Pure: no IO.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;

use crate::domain::fips::{CertificateStatus, CryptoModule};
use crate::domain::pattern::Pattern;

/// fipsgate's own predicate type.
pub const FIPSGATE_PREDICATE: &str = "https://fipsgate.io/attestation/fips/v1";
/// Docker Hardened Images' FIPS predicate type.
pub const DHI_PREDICATE: &str = "https://docker.com/dhi/fips/v0.1";
/// The payload type of in-toto statements in DSSE.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Media type of a DSSE envelope layer.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A public key attestations may be signed with.
#[derive(Clone)]
pub struct PublicKey {
    /// Hex SHA-256 of the SubjectPublicKeyInfo: matched against an envelope's `keyid`.
    pub id: String,
    alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    key: Vec<u8>,
    /// What the key may vouch for; `None`: anything (a key configured by bare path).
    pub scope: Option<Arc<KeyScope>>,
}

/// What one key may vouch for, the way an authority of sigstore's policy-controller is bound
/// to image globs: an attestation signed outside its key's scope is refused. An empty list
/// does not restrict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyScope {
    /// Catalogue component ids.
    pub components: Vec<String>,
    /// Repository patterns (`registry.example.com/team/**`).
    pub repositories: Vec<Pattern>,
    pub predicate_types: Vec<String>,
}

impl KeyScope {
    /// Why an attestation of `repository` as `component` (when known) with this predicate
    /// type is outside the scope, if it is.
    pub fn refuses(
        &self,
        predicate_type: &str,
        repository: &str,
        component: Option<&str>,
    ) -> Option<String> {
        if !self.predicate_types.is_empty()
            && !self.predicate_types.iter().any(|p| p == predicate_type)
        {
            return Some(format!("predicate type {predicate_type:?}"));
        }
        if !self.repositories.is_empty() && !self.repositories.iter().any(|p| p.matches(repository))
        {
            return Some(format!("repository {repository}"));
        }
        match component {
            Some(c) if !self.components.is_empty() && !self.components.iter().any(|x| x == c) => {
                Some(format!("component {c:?}"))
            }
            _ => None,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("public key: {0}")]
pub struct KeyError(pub String);

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo): ECDSA P-256 or Ed25519.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let spki = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|e| KeyError(format!("not a PEM PUBLIC KEY: {e}")))?;
        Self::from_spki(spki.as_ref())
    }

    /// From DER SubjectPublicKeyInfo.
    pub fn from_spki(der: &[u8]) -> Result<Self, KeyError> {
        use x509_parser::prelude::FromDer as _;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| KeyError(format!("invalid SubjectPublicKeyInfo: {e}")))?;
        let oid = &spki.algorithm.algorithm;
        let (alg, key): (
            &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
            Vec<u8>,
        ) = if *oid == x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
            (&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1, der.to_vec())
        } else if *oid == x509_parser::oid_registry::OID_SIG_ED25519 {
            (
                &aws_lc_rs::signature::ED25519,
                spki.subject_public_key.data.to_vec(),
            )
        } else {
            return Err(KeyError(format!(
                "unsupported key algorithm {oid} (ECDSA P-256 or Ed25519)"
            )));
        };
        let id = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref());
        Ok(Self {
            id,
            alg,
            key,
            scope: None,
        })
    }

    /// The same key, bound to `scope`.
    pub fn scoped(mut self, scope: KeyScope) -> Self {
        self.scope = Some(Arc::new(scope));
        self
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        aws_lc_rs::signature::UnparsedPublicKey::new(self.alg, &self.key)
            .verify(message, sig)
            .is_ok()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why an attestation was refused; each reason is distinct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed attestation envelope: {0}")]
    Malformed(String),
    #[error("attestation payload type {0:?} is not in-toto")]
    PayloadType(String),
    #[error("attestation is not signed")]
    Unsigned,
    #[error("attestation is signed by an unknown key (keyid {0})")]
    UnknownKey(String),
    #[error("attestation signature does not verify (payload tampered or wrong key)")]
    BadSignature,
    #[error("attestation subject does not match image digest {0}")]
    WrongSubject(String),
    #[error("attestation predicate type {0:?} is not accepted")]
    Predicate(String),
    #[error("malformed attestation statement: {0}")]
    Statement(String),
    #[error(
        "attestation signed by key {key} outside its scope: {what} is not among what it may vouch for"
    )]
    OutOfScope { key: String, what: String },
}

#[derive(Deserialize)]
struct Envelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    #[serde(default)]
    signatures: Vec<Signature>,
}

#[derive(Deserialize)]
struct Signature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// DSSE's pre-authentication encoding: what the signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    #[serde(default)]
    predicate: serde_json::Value,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// What a verified attestation states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// The scope of the key that verified it (`None`: unscoped).
    pub scope: Option<Arc<KeyScope>>,
    pub predicate_type: String,
    /// Catalogue component id (fipsgate predicate); DHI predicates name none.
    pub component: Option<String>,
    pub modules: Vec<CryptoModule>,
    pub exceptions: Vec<String>,
    /// Which key verified it.
    pub key_id: String,
}

/// fipsgate's predicate (`https://fipsgate.io/attestation/fips/v1`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FipsPredicate {
    pub component: String,
    #[serde(default)]
    pub build: Option<serde_json::Value>,
    #[serde(default)]
    pub modules: Vec<CryptoModule>,
    #[serde(default)]
    pub exceptions: Vec<String>,
}

/// One module of Docker Hardened Images' FIPS predicate.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DhiModule {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    standard: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// e.g. `CMVP #4985`
    #[serde(default)]
    certification: Option<String>,
    #[serde(default)]
    sunset_date: Option<jiff::civil::Date>,
}

/// Verifies one DSSE envelope for `digest` (`sha256:...`) and reads its predicate.
pub fn verify(
    envelope: &[u8],
    digest: &str,
    keys: &[PublicKey],
    accepted: &[String],
) -> Result<Attested, Rejection> {
    let env: Envelope =
        serde_json::from_slice(envelope).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if env.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(Rejection::PayloadType(env.payload_type));
    }
    let payload = B64
        .decode(env.payload.as_bytes())
        .map_err(|e| Rejection::Malformed(format!("payload is not base64: {e}")))?;
    if env.signatures.is_empty() {
        return Err(Rejection::Unsigned);
    }
    let message = pae(&env.payload_type, &payload);
    let (mut key_id, mut known_key, mut unknown) = (None::<&PublicKey>, false, None);
    for s in &env.signatures {
        let Ok(sig) = B64.decode(s.sig.as_bytes()) else {
            continue;
        };
        let mut candidates = keys
            .iter()
            .filter(|k| s.keyid.is_empty() || k.id == s.keyid)
            .peekable();
        if candidates.peek().is_none() {
            unknown = Some(s.keyid.clone());
            continue;
        }
        known_key = true;
        if let Some(k) = candidates.find(|k| k.verify(&message, &sig)) {
            key_id = Some(k);
            break;
        }
    }
    let key = match (key_id, known_key, unknown) {
        (Some(k), _, _) => k,
        (None, false, Some(id)) => return Err(Rejection::UnknownKey(id)),
        _ => return Err(Rejection::BadSignature),
    };
    // Only what the signature covers is read from here on.
    let st: Statement =
        serde_json::from_slice(&payload).map_err(|e| Rejection::Statement(e.to_string()))?;
    if !matches!(
        st.kind.as_str(),
        "https://in-toto.io/Statement/v1" | "https://in-toto.io/Statement/v0.1"
    ) {
        return Err(Rejection::Statement(format!("unknown _type {:?}", st.kind)));
    }
    let (alg, hex_digest) = digest.split_once(':').unwrap_or(("sha256", digest));
    if !st
        .subject
        .iter()
        .any(|s| s.digest.get(alg).is_some_and(|d| d == hex_digest))
    {
        return Err(Rejection::WrongSubject(digest.to_string()));
    }
    if !accepted.contains(&st.predicate_type) {
        return Err(Rejection::Predicate(st.predicate_type));
    }
    let (component, modules, exceptions) = match st.predicate_type.as_str() {
        FIPSGATE_PREDICATE => {
            let p: FipsPredicate = serde_json::from_value(st.predicate)
                .map_err(|e| Rejection::Statement(format!("{FIPSGATE_PREDICATE}: {e}")))?;
            (Some(p.component), p.modules, p.exceptions)
        }
        DHI_PREDICATE => (None, dhi_modules(st.predicate)?, Vec::new()),
        other => return Err(Rejection::Predicate(other.to_string())),
    };
    Ok(Attested {
        scope: key.scope.clone(),
        predicate_type: st.predicate_type,
        component,
        modules,
        exceptions,
        key_id: key.id.clone(),
    })
}

impl Attested {
    /// Refused when the verifying key may not vouch for this attestation of `repository`:
    /// its predicate type, the repository, and the component when it is known (the one the
    /// attestation names; for predicates that name none, the caller checks the catalogue's).
    pub fn within_scope(self, repository: &str) -> Result<Self, Rejection> {
        match self.refused_by_scope(repository, self.component.as_deref()) {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// Why the key's scope refuses this attestation as `component`, if it does.
    pub fn refused_by_scope(&self, repository: &str, component: Option<&str>) -> Option<Rejection> {
        let scope = self.scope.as_ref()?;
        let what = scope.refuses(&self.predicate_type, repository, component)?;
        Some(Rejection::OutOfScope {
            key: self.key_id.clone(),
            what,
        })
    }
}

/// Reads DHI modules from `[...]` or `{"modules": [...]}`.
fn dhi_modules(predicate: serde_json::Value) -> Result<Vec<CryptoModule>, Rejection> {
    let list = match predicate {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) => match o.remove("modules") {
            Some(serde_json::Value::Array(a)) => a,
            _ => {
                return Err(Rejection::Statement(format!(
                    "{DHI_PREDICATE}: no modules list"
                )));
            }
        },
        _ => return Err(Rejection::Statement(format!("{DHI_PREDICATE}: not a list"))),
    };
    list.into_iter()
        .map(|v| {
            let m: DhiModule = serde_json::from_value(v)
                .map_err(|e| Rejection::Statement(format!("{DHI_PREDICATE}: {e}")))?;
            let certificate = m.certification.as_deref().and_then(|c| {
                let digits: String = c.chars().filter(char::is_ascii_digit).collect();
                (!digits.is_empty()).then_some(digits)
            });
            let certificate_status =
                match m.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("historical") => CertificateStatus::Historical,
                    Some("revoked") => CertificateStatus::Revoked,
                    Some("in-process" | "in process" | "pending") => CertificateStatus::InProcess,
                    _ if certificate.is_none() => CertificateStatus::InProcess,
                    _ => CertificateStatus::Active,
                };
            Ok(CryptoModule {
                name: m.name,
                version: m.version,
                standard: m.standard.unwrap_or_else(|| "FIPS 140-3".into()),
                certificate,
                certificate_status,
                sunset: m.sunset_date,
                build: None,
                previous_certificates: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

    pub const DIGEST: &str =
        "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    /// A signing key for tests, with its PEM public key.
    pub enum TestKey {
        Ecdsa(EcdsaKeyPair),
        Ed(Ed25519KeyPair),
    }

    impl TestKey {
        pub fn ecdsa() -> Self {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &SystemRandom::new(),
            )
            .unwrap();
            Self::Ecdsa(
                EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    pkcs8.as_ref(),
                )
                .unwrap(),
            )
        }

        pub fn ed25519() -> Self {
            Self::Ed(Ed25519KeyPair::generate().unwrap())
        }

        pub fn public(&self) -> PublicKey {
            let spki =
                match self {
                    Self::Ecdsa(k) => aws_lc_rs::encoding::AsDer::<
                        aws_lc_rs::encoding::PublicKeyX509Der,
                    >::as_der(k.public_key())
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                    Self::Ed(k) => aws_lc_rs::encoding::AsDer::<
                        aws_lc_rs::encoding::PublicKeyX509Der,
                    >::as_der(k.public_key())
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                };
            PublicKey::from_spki(&spki).unwrap()
        }

        pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
            match self {
                Self::Ecdsa(k) => k.sign(&SystemRandom::new(), msg).unwrap().as_ref().to_vec(),
                Self::Ed(k) => k.sign(msg).as_ref().to_vec(),
            }
        }
    }

    pub fn statement(digest: &str, predicate_type: &str, predicate: serde_json::Value) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").unwrap();
        serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "img", "digest": {"sha256": hex}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }))
        .unwrap()
    }

    pub fn envelope(key: &TestKey, keyid: &str, payload: &[u8]) -> Vec<u8> {
        let sig = key.sign(&pae(INTOTO_PAYLOAD_TYPE, payload));
        serde_json::to_vec(&serde_json::json!({
            "payload": B64.encode(payload),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"keyid": keyid, "sig": B64.encode(sig)}],
        }))
        .unwrap()
    }

    fn fips(component: &str) -> serde_json::Value {
        serde_json::json!({"component": component, "build": {"method": "go-boringcrypto"},
            "modules": [{"name": "BoringCrypto", "standard": "FIPS 140-3", "certificate": "4735", "certificateStatus": "active", "sunset": "2029-01-01"}],
            "exceptions": []})
    }

    #[test]
    fn verdicts() {
        let good = TestKey::ecdsa();
        let ed = TestKey::ed25519();
        let other = TestKey::ecdsa();
        let keys = vec![good.public(), ed.public()];
        let accepted = vec![FIPSGATE_PREDICATE.to_string(), DHI_PREDICATE.to_string()];
        let stmt = statement(DIGEST, FIPSGATE_PREDICATE, fips("coredns"));
        let ok = verify(&envelope(&good, "", &stmt), DIGEST, &keys, &accepted).unwrap();
        assert_eq!(ok.component.as_deref(), Some("coredns"));
        assert_eq!(ok.modules[0].certificate.as_deref(), Some("4735"));
        assert!(verify(&envelope(&ed, &keys[1].id, &stmt), DIGEST, &keys, &accepted).is_ok());

        let mut tampered: serde_json::Value =
            serde_json::from_slice(&envelope(&good, &keys[0].id, &stmt)).unwrap();
        tampered["payload"] = B64
            .encode(statement(DIGEST, FIPSGATE_PREDICATE, fips("etcd")))
            .into();
        let wrong_subject = statement(
            "sha256:1111111111111111111111111111111111111111111111111111111111111111",
            FIPSGATE_PREDICATE,
            fips("coredns"),
        );
        let cases: Vec<(Vec<u8>, Rejection)> = vec![
            (
                envelope(&other, &other.public().id, &stmt),
                Rejection::UnknownKey(other.public().id),
            ),
            (envelope(&other, "", &stmt), Rejection::BadSignature),
            (
                serde_json::to_vec(&tampered).unwrap(),
                Rejection::BadSignature,
            ),
            (
                envelope(&good, "", &wrong_subject),
                Rejection::WrongSubject(DIGEST.into()),
            ),
            (
                envelope(
                    &good,
                    "",
                    &statement(
                        DIGEST,
                        "https://slsa.dev/provenance/v1",
                        serde_json::json!({}),
                    ),
                ),
                Rejection::Predicate("https://slsa.dev/provenance/v1".into()),
            ),
            (
                b"{\"payload\": 1}".to_vec(),
                Rejection::Malformed(
                    "invalid type: integer `1`, expected a string at line 1 column 13".into(),
                ),
            ),
        ];
        for (env, want) in cases {
            assert_eq!(verify(&env, DIGEST, &keys, &accepted).unwrap_err(), want);
        }
        let unsigned = serde_json::json!({"payload": B64.encode(&stmt), "payloadType": INTOTO_PAYLOAD_TYPE, "signatures": []});
        assert_eq!(
            verify(
                &serde_json::to_vec(&unsigned).unwrap(),
                DIGEST,
                &keys,
                &accepted
            )
            .unwrap_err(),
            Rejection::Unsigned
        );
        let not_intoto = serde_json::json!({"payload": B64.encode(&stmt), "payloadType": "text/plain", "signatures": []});
        assert!(matches!(
            verify(
                &serde_json::to_vec(&not_intoto).unwrap(),
                DIGEST,
                &keys,
                &accepted
            )
            .unwrap_err(),
            Rejection::PayloadType(_)
        ));
    }

    #[test]
    fn dhi_predicate() {
        let key = TestKey::ecdsa();
        let keys = vec![key.public()];
        let pred = serde_json::json!([{"name": "OpenSSL FIPS Provider", "package": "openssl", "version": "3.1.2",
            "standard": "FIPS 140-3", "status": "active", "certification": "CMVP #4985", "sunsetDate": "2030-03-10"}]);
        let stmt = statement(DIGEST, DHI_PREDICATE, pred);
        let a = verify(
            &envelope(&key, "", &stmt),
            DIGEST,
            &keys,
            &[DHI_PREDICATE.to_string()],
        )
        .unwrap();
        assert_eq!(a.component, None);
        assert_eq!(a.modules[0].certificate.as_deref(), Some("4985"));
        assert_eq!(a.modules[0].certificate_status, CertificateStatus::Active);
        assert_eq!(a.modules[0].sunset, Some(jiff::civil::date(2030, 3, 10)));
        // Not accepted when not configured.
        assert!(matches!(
            verify(
                &envelope(&key, "", &stmt),
                DIGEST,
                &keys,
                &[FIPSGATE_PREDICATE.to_string()]
            ),
            Err(Rejection::Predicate(_))
        ));
    }

    #[test]
    fn keys_from_pem() {
        let bad =
            PublicKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        assert!(bad.is_err());
        assert!(PublicKey::from_pem(b"nothing").is_err());
    }
}
