"""Signs in-toto statements with securesystemslib, a DSSE implementation other than fipsgate's.

Usage: sign.py OUT_DIR FIPS_DIGEST DHI_DIGEST

Generates an ECDSA P-256 key (securesystemslib computes its own key id, not fipsgate's) and
writes OUT_DIR/key.pub (PEM SubjectPublicKeyInfo), OUT_DIR/keyid, and two DSSE envelopes:
fips.dsse.json (fipsgate's predicate for `coredns` about FIPS_DIGEST) and dhi.dsse.json (a
Docker Hardened Images predicate about DHI_DIGEST whose module names no standard). Both carry
extension fields in the statement, the subject, the predicate and its modules.
"""

import json
import sys
from pathlib import Path

from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def statement(digest: str, predicate_type: str, predicate) -> bytes:
    algorithm, hex_digest = digest.split(":", 1)
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {
                    "name": "image",
                    "digest": {algorithm: hex_digest},
                    "annotations": {"signedWith": "securesystemslib"},
                }
            ],
            "predicateType": predicate_type,
            "predicate": predicate,
            "x-interop": {"producer": "securesystemslib"},
        }
    ).encode()


def fips_predicate() -> dict:
    return {
        "component": "coredns",
        "build": {"method": "go-boringcrypto"},
        "modules": [
            {
                "name": "BoringCrypto",
                "version": "fips-20220613",
                "standard": "FIPS 140-3",
                "certificate": "4735",
                "certificateStatus": "active",
                "operationalEnvironment": "linux/amd64",
            }
        ],
        "exceptions": [],
        "buildInvocationId": "interop-1",
        "vendorExtension": {"reviewed": True},
    }


def dhi_predicate() -> list:
    return [
        {
            "name": "OpenSSL FIPS Provider",
            "package": "pkg:generic/openssl@3.1.2",
            "version": "3.1.2",
            "status": "active",
            "certification": "CMVP #4985",
            "certificationUrl": "https://csrc.nist.gov/projects/cryptographic-module-validation-program/certificate/4985",
            "sunsetDate": "2030-03-10",
            "vendorNote": "no standard given",
        }
    ]


def sign(signer: CryptoSigner, payload: bytes) -> dict:
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    envelope.sign(signer)
    return envelope.to_dict()


def main() -> None:
    out, fips_digest, dhi_digest = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    signer = CryptoSigner.generate_ecdsa()
    key = signer.public_key
    (out / "key.pub").write_text(key.keyval["public"])
    (out / "keyid").write_text(key.keyid)
    fips = statement(fips_digest, "https://fipsgate.io/attestation/fips/v1", fips_predicate())
    dhi = statement(dhi_digest, "https://docker.com/dhi/fips/v0.1", dhi_predicate())
    for name, payload in (("fips", fips), ("dhi", dhi)):
        envelope = sign(signer, payload)
        # The producer's own check: the envelope verifies under securesystemslib too.
        Envelope.from_dict(json.loads(json.dumps(envelope))).verify([key], 1)
        (out / f"{name}.dsse.json").write_text(json.dumps(envelope))


if __name__ == "__main__":
    main()
