//! Signed attestations: DSSE envelopes verified over their PAE with the configured public keys
//! (ECDSA P-256/SHA-256 as cosign makes them, Ed25519), in-toto Statement v1 subjects bound to
//! the image digest, and the FIPS predicates fipsgate understands. Pure: no IO.

mod scan;
mod sign;

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};

use crate::domain::assessment::ScanFacts;
use crate::domain::fips::{CertificateStatus, CryptoModule, UNKNOWN_STANDARD};
use crate::domain::pattern::Pattern;

pub use scan::{
    AppliedException, FileCounts, SCAN_PREDICATE, ScanFinding, ScanPredicate, ScannedImage, Scanner,
};
pub use sign::{SigningKey, Statement as InTotoStatement, StatementSubject, envelope_digest};

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
    #[error(
        "attestation signature does not verify with any configured key (payload tampered or another key)"
    )]
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
    /// An unauthenticated hint: it orders the keys tried, never decides.
    #[serde(default)]
    keyid: Option<String>,
    sig: String,
}

/// At most this many signatures of one envelope are tried.
pub const MAX_SIGNATURES: usize = 16;

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

/// A configured key that verified a signature of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub key_id: String,
    /// What it may vouch for (`None`: anything).
    pub scope: Option<Arc<KeyScope>>,
}

/// What a verified attestation states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// Every configured key that verified it, the first to verify first; never empty.
    pub signers: Vec<Signer>,
    pub predicate_type: String,
    /// Catalogue component id (fipsgate predicate); DHI predicates name none.
    pub component: Option<String>,
    pub modules: Vec<CryptoModule>,
    pub exceptions: Vec<String>,
    /// What the scan found, for a scan attestation.
    pub scan: Option<Box<ScanFacts>>,
}

/// fipsgate's predicate (`https://fipsgate.io/attestation/fips/v1`). Unknown fields, here and
/// in its modules, are ignored (in-toto: consumers must ignore what they do not recognise).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FipsPredicate {
    pub component: String,
    #[serde(default)]
    pub build: Option<serde_json::Value>,
    #[serde(default)]
    pub modules: Vec<PredicateModule>,
    #[serde(default)]
    pub exceptions: Vec<String>,
}

/// A module of fipsgate's predicates: the fields of [`CryptoModule`], extensions ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PredicateModule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub standard: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    pub certificate_status: CertificateStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<jiff::civil::Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

impl From<CryptoModule> for PredicateModule {
    fn from(m: CryptoModule) -> Self {
        PredicateModule {
            name: m.name,
            version: m.version,
            standard: m.standard,
            certificate: m.certificate,
            certificate_status: m.certificate_status,
            sunset: m.sunset,
            build: m.build,
        }
    }
}

impl From<PredicateModule> for CryptoModule {
    fn from(m: PredicateModule) -> Self {
        CryptoModule {
            name: m.name,
            version: m.version,
            standard: m.standard,
            certificate: m.certificate,
            certificate_status: m.certificate_status,
            sunset: m.sunset,
            build: m.build,
            previous_certificates: Vec::new(),
        }
    }
}

/// One module of Docker Hardened Images' FIPS predicate; other fields are ignored.
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
    let signers = signers(&pae(&env.payload_type, &payload), &env.signatures, keys);
    if signers.is_empty() {
        return Err(Rejection::BadSignature);
    }
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
    let (component, modules, exceptions, scan) = match st.predicate_type.as_str() {
        FIPSGATE_PREDICATE => {
            let p: FipsPredicate = serde_json::from_value(st.predicate)
                .map_err(|e| Rejection::Statement(format!("{FIPSGATE_PREDICATE}: {e}")))?;
            let modules = p.modules.into_iter().map(CryptoModule::from).collect();
            (Some(p.component), modules, p.exceptions, None)
        }
        DHI_PREDICATE => (None, dhi_modules(st.predicate)?, Vec::new(), None),
        SCAN_PREDICATE => {
            let p: ScanPredicate = serde_json::from_value(st.predicate)
                .map_err(|e| Rejection::Statement(format!("{SCAN_PREDICATE}: {e}")))?;
            let (facts, modules, exceptions) = p.into_parts();
            (None, modules, exceptions, Some(Box::new(facts)))
        }
        other => return Err(Rejection::Predicate(other.to_string())),
    };
    Ok(Attested {
        signers,
        predicate_type: st.predicate_type,
        component,
        modules,
        exceptions,
        scan,
    })
}

/// The configured keys that verify a signature over `message`, in the order they verified
/// (keys sharing one public key together). A signature's `keyid` only puts the key it names
/// first: any configured key may verify any signature, whatever id it carries.
fn signers(message: &[u8], signatures: &[Signature], keys: &[PublicKey]) -> Vec<Signer> {
    let mut verified: Vec<&str> = Vec::new();
    for s in signatures.iter().take(MAX_SIGNATURES) {
        let Ok(sig) = B64.decode(s.sig.as_bytes()) else {
            continue;
        };
        let hint = s.keyid.as_deref().filter(|id| !id.is_empty());
        let (named, others): (Vec<&PublicKey>, Vec<&PublicKey>) =
            keys.iter().partition(|k| hint == Some(k.id.as_str()));
        // One signature verifies under one public key at most.
        if let Some(k) = named
            .into_iter()
            .chain(others)
            .filter(|k| !verified.contains(&k.id.as_str()))
            .find(|k| k.verify(message, &sig))
        {
            verified.push(&k.id);
        }
    }
    verified
        .iter()
        .flat_map(|id| keys.iter().filter(move |k| k.id == *id))
        .map(|k| Signer {
            key_id: k.id.clone(),
            scope: k.scope.clone(),
        })
        .collect()
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

    /// Why no verifying key may vouch for this attestation as `component`, if none may: the
    /// first signer's reason.
    pub fn refused_by_scope(&self, repository: &str, component: Option<&str>) -> Option<Rejection> {
        let mut first = None;
        for s in &self.signers {
            let what = s
                .scope
                .as_ref()?
                .refuses(&self.predicate_type, repository, component)?;
            first.get_or_insert(Rejection::OutOfScope {
                key: s.key_id.clone(),
                what,
            });
        }
        first
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
                standard: m.standard.unwrap_or_else(|| UNKNOWN_STANDARD.into()),
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
                Rejection::BadSignature,
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

    /// An envelope over `payload` with these `(key, keyid)` signatures; `None`: no `keyid`.
    fn signed_by(payload: &[u8], sigs: &[(&TestKey, Option<serde_json::Value>)]) -> Vec<u8> {
        let sigs: Vec<serde_json::Value> = sigs
            .iter()
            .map(|(k, id)| {
                let mut s = serde_json::json!({
                    "sig": B64.encode(k.sign(&pae(INTOTO_PAYLOAD_TYPE, payload)))
                });
                if let Some(id) = id {
                    s["keyid"] = id.clone();
                }
                s
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "payload": B64.encode(payload),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": sigs,
        }))
        .unwrap()
    }

    /// `keyid` orders the keys tried and never decides: a configured key's valid signature
    /// verifies whatever id it carries, and no id makes a foreign or broken signature verify.
    #[test]
    fn keyid_is_only_a_hint() {
        let (good, ed, stranger) = (TestKey::ecdsa(), TestKey::ed25519(), TestKey::ecdsa());
        let keys = vec![good.public(), ed.public()];
        let accepted = vec![FIPSGATE_PREDICATE.to_string()];
        let stmt = statement(DIGEST, FIPSGATE_PREDICATE, fips("coredns"));
        let id = |k: &PublicKey| Some(serde_json::Value::from(k.id.clone()));
        let json = |v: &str| Some(serde_json::Value::from(v));
        let sslib = json("2f6cf1fa3e0e1a7d2cfd1a1e8b0f3c4b5e6a7d8c9b0a1f2e3d4c5b6a7f8e9d0c");
        let mut tampered: serde_json::Value =
            serde_json::from_slice(&signed_by(&stmt, &[(&good, id(&keys[0]))])).unwrap();
        tampered["payload"] = B64
            .encode(statement(DIGEST, FIPSGATE_PREDICATE, fips("etcd")))
            .into();
        let tampered = serde_json::to_vec(&tampered).unwrap();
        let good_key = Ok(vec![keys[0].id.clone()]);
        type Want = Result<Vec<String>, Rejection>;
        let cases: Vec<(&str, Vec<u8>, Want)> = vec![
            (
                "own id",
                signed_by(&stmt, &[(&good, id(&keys[0]))]),
                good_key.clone(),
            ),
            (
                "foreign id",
                signed_by(&stmt, &[(&good, sslib.clone())]),
                good_key.clone(),
            ),
            (
                "another configured key's id",
                signed_by(&stmt, &[(&good, id(&keys[1]))]),
                good_key.clone(),
            ),
            (
                "empty id",
                signed_by(&stmt, &[(&good, json(""))]),
                good_key.clone(),
            ),
            (
                "no id",
                signed_by(&stmt, &[(&good, None)]),
                good_key.clone(),
            ),
            (
                "null id",
                signed_by(&stmt, &[(&good, Some(serde_json::Value::Null))]),
                good_key.clone(),
            ),
            (
                "ed25519, foreign id",
                signed_by(&stmt, &[(&ed, sslib.clone())]),
                Ok(vec![keys[1].id.clone()]),
            ),
            (
                "a stranger's signature first, then a configured key's",
                signed_by(&stmt, &[(&stranger, id(&keys[0])), (&good, sslib.clone())]),
                good_key.clone(),
            ),
            (
                "two configured keys",
                signed_by(&stmt, &[(&ed, None), (&good, id(&keys[1]))]),
                Ok(vec![keys[1].id.clone(), keys[0].id.clone()]),
            ),
            (
                "not configured, no id",
                signed_by(&stmt, &[(&stranger, None)]),
                Err(Rejection::BadSignature),
            ),
            (
                "not configured, own id",
                signed_by(&stmt, &[(&stranger, id(&stranger.public()))]),
                Err(Rejection::BadSignature),
            ),
            (
                "not configured, a configured key's id",
                signed_by(&stmt, &[(&stranger, id(&keys[0]))]),
                Err(Rejection::BadSignature),
            ),
            ("tampered payload", tampered, Err(Rejection::BadSignature)),
        ];
        for (name, env, want) in cases {
            let got = verify(&env, DIGEST, &keys, &accepted)
                .map(|a| a.signers.into_iter().map(|s| s.key_id).collect::<Vec<_>>());
            assert_eq!(got, want, "{name}");
        }
    }

    /// The first [`MAX_SIGNATURES`] signatures are tried, the rest ignored.
    #[test]
    fn signatures_past_the_bound_are_not_tried() {
        let (good, stranger) = (TestKey::ecdsa(), TestKey::ecdsa());
        let keys = vec![good.public()];
        let stmt = statement(DIGEST, FIPSGATE_PREDICATE, fips("coredns"));
        let mut sigs = vec![(&stranger, None); MAX_SIGNATURES - 1];
        sigs.push((&good, None));
        let accepted = [FIPSGATE_PREDICATE.to_string()];
        assert!(verify(&signed_by(&stmt, &sigs), DIGEST, &keys, &accepted).is_ok());
        sigs.insert(0, (&stranger, None));
        assert_eq!(
            verify(&signed_by(&stmt, &sigs), DIGEST, &keys, &accepted).unwrap_err(),
            Rejection::BadSignature
        );
    }

    /// Scopes survive any `keyid`: an attestation is within scope when one key that verified
    /// it may vouch for it, whichever signature comes first.
    #[test]
    fn every_signer_is_held_to_its_scope() {
        let (apps, infra) = (TestKey::ecdsa(), TestKey::ed25519());
        let scope = |repo: &str| KeyScope {
            repositories: vec![Pattern::new(repo).unwrap()],
            ..KeyScope::default()
        };
        let keys = vec![
            apps.public().scoped(scope("r.io/apps/**")),
            infra.public().scoped(scope("r.io/infra/**")),
        ];
        let accepted = [FIPSGATE_PREDICATE.to_string()];
        let stmt = statement(DIGEST, FIPSGATE_PREDICATE, fips("coredns"));
        let infra_id = Some(serde_json::Value::from(keys[1].id.clone()));
        // Signed by `apps` alone, whatever key the hint names: only `apps`' scope counts.
        let only_apps = signed_by(&stmt, &[(&apps, infra_id.clone())]);
        let a = verify(&only_apps, DIGEST, &keys, &accepted).unwrap();
        assert!(a.clone().within_scope("r.io/apps/dns").is_ok());
        assert_eq!(
            a.within_scope("r.io/infra/dns").unwrap_err(),
            Rejection::OutOfScope {
                key: keys[0].id.clone(),
                what: "repository r.io/infra/dns".into()
            }
        );
        // Signed by both: either scope admits it; neither admits a third repository.
        for sigs in [
            [(&apps, None), (&infra, None)],
            [(&infra, None), (&apps, infra_id)],
        ] {
            let a = verify(&signed_by(&stmt, &sigs), DIGEST, &keys, &accepted).unwrap();
            assert!(a.clone().within_scope("r.io/apps/dns").is_ok());
            assert!(a.clone().within_scope("r.io/infra/dns").is_ok());
            assert!(matches!(
                a.within_scope("r.io/evil/dns"),
                Err(Rejection::OutOfScope { .. })
            ));
        }
    }

    /// in-toto consumers ignore the fields they do not know, at every level.
    #[test]
    fn extension_fields_are_ignored() {
        let key = TestKey::ecdsa();
        let keys = vec![key.public()];
        let accepted = vec![FIPSGATE_PREDICATE.to_string(), DHI_PREDICATE.to_string()];
        let hex = DIGEST.strip_prefix("sha256:").unwrap();
        let module = serde_json::json!({"name": "BoringCrypto", "standard": "FIPS 140-3",
            "certificate": "4735", "certificateStatus": "active", "x-vendor": {"fipsMode": true}});
        let fips_ext = serde_json::json!({"component": "coredns", "modules": [module],
            "exceptions": [], "builder": {"id": "ci"}, "x-vendor": [1, 2]});
        let dhi_ext = serde_json::json!({"modules": [{"name": "OpenSSL FIPS Provider",
            "standard": "FIPS 140-3", "certification": "CMVP #4985", "vendor": "OpenSSL",
            "cves": []}], "generatedBy": "dhi"});
        let stmt = |kind: &str, predicate_type: &str, predicate: &serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({
                "_type": kind, "predicateType": predicate_type, "predicate": predicate,
                "subject": [{"name": "img", "digest": {"sha256": hex, "sha512": "00"},
                    "annotations": {"arch": "amd64"}, "uri": "oci://r.io/img"}],
                "createdBy": "an extension of the statement", "x-ext": {"n": 1},
            }))
            .unwrap()
        };
        let cases = [
            (
                "https://in-toto.io/Statement/v1",
                FIPSGATE_PREDICATE,
                &fips_ext,
                "4735",
            ),
            (
                "https://in-toto.io/Statement/v0.1",
                FIPSGATE_PREDICATE,
                &fips_ext,
                "4735",
            ),
            (
                "https://in-toto.io/Statement/v1",
                DHI_PREDICATE,
                &dhi_ext,
                "4985",
            ),
        ];
        for (kind, predicate_type, predicate, cert) in cases {
            let env = envelope(&key, "", &stmt(kind, predicate_type, predicate));
            let a = verify(&env, DIGEST, &keys, &accepted)
                .unwrap_or_else(|e| panic!("{kind} {predicate_type}: {e}"));
            assert_eq!(a.modules[0].certificate.as_deref(), Some(cert));
            assert_eq!(a.modules[0].standard, "FIPS 140-3");
        }
        // Ignoring extensions is not ignoring what is required.
        let no_component = serde_json::json!({"modules": [], "x-vendor": 1});
        let env = envelope(
            &key,
            "",
            &stmt(
                "https://in-toto.io/Statement/v1",
                FIPSGATE_PREDICATE,
                &no_component,
            ),
        );
        assert!(matches!(
            verify(&env, DIGEST, &keys, &accepted),
            Err(Rejection::Statement(e)) if e.contains("missing field `component`")
        ));
    }

    /// DHI modules: the standard is what the module says, else unknown.
    #[test]
    fn dhi_module_without_standard_is_unknown() {
        let key = TestKey::ecdsa();
        let keys = vec![key.public()];
        let pred = serde_json::json!([
            {"name": "A", "standard": "FIPS 140-2", "certification": "CMVP #4282"},
            {"name": "B", "certification": "CMVP #4985", "status": "active"},
            {"name": "C", "standard": null},
        ]);
        let stmt = statement(DIGEST, DHI_PREDICATE, pred);
        let a = verify(
            &envelope(&key, "", &stmt),
            DIGEST,
            &keys,
            &[DHI_PREDICATE.to_string()],
        )
        .unwrap();
        let got: Vec<(&str, String)> = a
            .modules
            .iter()
            .map(|m| (m.standard.as_str(), m.label()))
            .collect();
        assert_eq!(
            got,
            [
                ("FIPS 140-2", "#4282 (FIPS 140-2)".to_string()),
                (UNKNOWN_STANDARD, "#4985 (standard unknown)".to_string()),
                (
                    UNKNOWN_STANDARD,
                    "C (standard unknown, no certificate)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn keys_from_pem() {
        let bad =
            PublicKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        assert!(bad.is_err());
        assert!(PublicKey::from_pem(b"nothing").is_err());
    }
}
