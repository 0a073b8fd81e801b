//! Signing: in-toto Statement v1 payloads in DSSE envelopes, signed over the PAE with a private
//! key (ECDSA P-256/SHA-256 as cosign makes them, or Ed25519) through aws-lc-rs, so a FIPS build
//! signs with its FIPS module. The envelope is the one [`super::verify`] reads.

use std::collections::BTreeMap;

use aws_lc_rs::encoding::{AsDer as _, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::pem::{PemObject as _, SectionKind};
use serde::Serialize;

use super::{INTOTO_PAYLOAD_TYPE, KeyError, PublicKey, pae};

/// The in-toto statement type written.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// An in-toto Statement v1.
#[derive(Debug, Clone, Serialize)]
pub struct Statement<P: Serialize> {
    #[serde(rename = "_type")]
    pub kind: &'static str,
    pub subject: Vec<StatementSubject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: P,
}

/// A subject: a name and its digests (`{"sha256": "<hex>"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementSubject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl StatementSubject {
    /// `name` at `digest` (`sha256:<hex>`).
    pub fn new(name: &str, digest: &str) -> Self {
        let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        Self {
            name: name.to_string(),
            digest: BTreeMap::from([(alg.to_string(), hex.to_string())]),
        }
    }
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key attestations are signed with.
pub struct SigningKey {
    pair: Pair,
    public: PublicKey,
    spki: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public.id)
    }
}

impl SigningKey {
    /// Reads an unencrypted PEM private key: PKCS#8 (`PRIVATE KEY`, ECDSA P-256 or Ed25519, as
    /// `openssl genpkey` writes) or SEC1 (`EC PRIVATE KEY`, P-256). An encrypted key is refused
    /// with how to decrypt it.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
            || text.contains("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----")
        {
            return Err(KeyError(
                "an encrypted cosign key: fipsgate reads an unencrypted PKCS#8 key (make one with \
                 `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`; \
                 `cosign import-key-pair --key KEY` gives cosign the same key)"
                    .into(),
            ));
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(KeyError(
                "an encrypted PKCS#8 key: decrypt it first (`openssl pkcs8 -in KEY -out PLAIN`) \
                 and keep the plain key where only the signer reads it"
                    .into(),
            ));
        }
        let mut found = None;
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let (kind, der) = section.map_err(|e| KeyError(format!("not PEM: {e}")))?;
            if matches!(kind, SectionKind::PrivateKey | SectionKind::EcPrivateKey) {
                found = Some(der);
                break;
            }
        }
        let der = found.ok_or_else(|| KeyError("no PRIVATE KEY or EC PRIVATE KEY in it".into()))?;
        let pair = match EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, &der) {
            Ok(k) => Pair::Ecdsa(k),
            Err(ec) => match Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                Ok(k) => Pair::Ed25519(k),
                Err(_) => {
                    return Err(KeyError(format!(
                        "not an ECDSA P-256 or Ed25519 private key ({ec})"
                    )));
                }
            },
        };
        let spki = match &pair {
            Pair::Ecdsa(k) => k.public_key().as_der(),
            Pair::Ed25519(k) => k.public_key().as_der(),
        }
        .map(|d: PublicKeyX509Der<'static>| d.as_ref().to_vec())
        .map_err(|e| KeyError(format!("public key: {e}")))?;
        let public = PublicKey::from_spki(&spki)?;
        Ok(Self { pair, public, spki })
    }

    /// The key id written into signatures: the hex SHA-256 of the public key's
    /// SubjectPublicKeyInfo, the id [`super::verify`] tries first.
    pub fn key_id(&self) -> &str {
        &self.public.id
    }

    /// `ecdsa-p256` or `ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self.pair {
            Pair::Ecdsa(_) => "ecdsa-p256-sha256",
            Pair::Ed25519(_) => "ed25519",
        }
    }

    /// The public key that verifies this key's signatures.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The public key as a PEM `PUBLIC KEY`, as `attestations.keys` reads it.
    pub fn public_pem(&self) -> String {
        let b64 = B64.encode(&self.spki);
        let lines: Vec<&str> = (b64.as_bytes().chunks(64))
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ecdsa(k) => k
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError("ECDSA signing failed".into())),
            Pair::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    /// A DSSE envelope of `statement` (serialised once: the bytes signed are the payload),
    /// signed over its PAE.
    pub fn envelope<P: Serialize>(&self, statement: &Statement<P>) -> Result<Vec<u8>, KeyError> {
        let payload =
            serde_json::to_vec(statement).map_err(|e| KeyError(format!("statement: {e}")))?;
        self.envelope_of(&payload)
    }

    /// A DSSE envelope of an in-toto `payload`.
    pub fn envelope_of(&self, payload: &[u8]) -> Result<Vec<u8>, KeyError> {
        let sig = self.sign(&pae(INTOTO_PAYLOAD_TYPE, payload))?;
        let envelope = serde_json::json!({
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "payload": B64.encode(payload),
            "signatures": [{"keyid": self.key_id(), "sig": B64.encode(sig)}],
        });
        serde_json::to_vec(&envelope).map_err(|e| KeyError(format!("envelope: {e}")))
    }
}

/// The `sha256:<hex>` digest of bytes (an envelope's, as stored in a registry).
pub fn envelope_digest(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("sha256:{}", super::hex(d.as_ref()))
}

impl<P: Serialize> Statement<P> {
    /// A Statement v1 about `subject`.
    pub fn new(subject: Vec<StatementSubject>, predicate_type: &str, predicate: P) -> Self {
        Self {
            kind: STATEMENT_V1,
            subject,
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::{FIPSGATE_PREDICATE, Rejection, verify};

    const DIGEST: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    fn pem(label: &str, der: &[u8]) -> Vec<u8> {
        let b64 = B64.encode(der);
        let lines: Vec<&str> = (b64.as_bytes().chunks(64))
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
        .into_bytes()
    }

    fn ecdsa_pkcs8() -> Vec<u8> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        pem("PRIVATE KEY", doc.as_ref())
    }

    /// Every key form `openssl genpkey` and `openssl ecparam` write signs envelopes that the
    /// verifier admission uses accepts, under the key id it tries first.
    #[test]
    fn signed_envelopes_verify_with_the_public_key() {
        use aws_lc_rs::encoding::AsDer as _;
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let sec1 = ec.private_key().as_der().unwrap();
        let ed = Ed25519KeyPair::generate().unwrap();
        let keys = [
            ("pkcs8 ecdsa", ecdsa_pkcs8()),
            ("sec1 ecdsa", pem("EC PRIVATE KEY", sec1.as_ref())),
            (
                "pkcs8 v1 ed25519",
                pem("PRIVATE KEY", ed.to_pkcs8v1().unwrap().as_ref()),
            ),
            (
                "pkcs8 v2 ed25519",
                pem("PRIVATE KEY", ed.to_pkcs8().unwrap().as_ref()),
            ),
        ];
        let predicate = serde_json::json!({"component": "coredns", "modules": []});
        for (name, pem) in keys {
            let key = SigningKey::from_pem(&pem).unwrap_or_else(|e| panic!("{name}: {e}"));
            let statement = Statement::new(
                vec![StatementSubject::new("r.io/dns", DIGEST)],
                FIPSGATE_PREDICATE,
                predicate.clone(),
            );
            let env = key.envelope(&statement).unwrap();
            let public = PublicKey::from_pem(key.public_pem().as_bytes()).unwrap();
            assert_eq!(public.id, key.key_id(), "{name}");
            let a = verify(&env, DIGEST, &[public], &[FIPSGATE_PREDICATE.into()])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.signers[0].key_id, key.key_id(), "{name}");
            assert_eq!(a.component.as_deref(), Some("coredns"));
            let doc: serde_json::Value = serde_json::from_slice(&env).unwrap();
            assert_eq!(doc["signatures"][0]["keyid"], key.key_id(), "{name}");
            assert_eq!(doc["payloadType"], INTOTO_PAYLOAD_TYPE);
        }
    }

    /// A signature covers the payload: an altered payload, or another key, is refused.
    #[test]
    fn tampering_and_other_keys_are_refused() {
        let key = SigningKey::from_pem(&ecdsa_pkcs8()).unwrap();
        let other = SigningKey::from_pem(&ecdsa_pkcs8()).unwrap();
        let accepted = [FIPSGATE_PREDICATE.to_string()];
        let stmt = |c: &str| {
            Statement::new(
                vec![StatementSubject::new("r.io/dns", DIGEST)],
                FIPSGATE_PREDICATE,
                serde_json::json!({"component": c}),
            )
        };
        let env = key.envelope(&stmt("coredns")).unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&env).unwrap();
        doc["payload"] = B64
            .encode(serde_json::to_vec(&stmt("etcd")).unwrap())
            .into();
        let tampered = serde_json::to_vec(&doc).unwrap();
        let keys = [key.public().clone()];
        assert_eq!(
            verify(&tampered, DIGEST, &keys, &accepted).unwrap_err(),
            Rejection::BadSignature
        );
        assert_eq!(
            verify(&env, DIGEST, &[other.public().clone()], &accepted).unwrap_err(),
            Rejection::BadSignature
        );
        let elsewhere = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        assert_eq!(
            verify(&env, elsewhere, &keys, &accepted).unwrap_err(),
            Rejection::WrongSubject(elsewhere.into())
        );
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 4] = [
            (
                b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
                "an encrypted cosign key",
            ),
            (
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "an encrypted PKCS#8 key",
            ),
            (b"nothing", "no PRIVATE KEY"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not an ECDSA P-256 or Ed25519 private key",
            ),
        ];
        for (pem, want) in cases {
            let e = SigningKey::from_pem(pem).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
