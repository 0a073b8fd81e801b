"""Verifies a DSSE envelope with securesystemslib, a DSSE implementation other than fipsgate's.

Usage: verify.py ENVELOPE PUBLIC_KEY_PEM

ENVELOPE is one DSSE envelope (JSON) as `fipsgate attest --out` writes it, PUBLIC_KEY_PEM the
signer's public key. The envelope's key id must be the hex SHA-256 of the key's DER
SubjectPublicKeyInfo (what fipsgate writes); the signature must verify over the DSSE PAE.
Prints the verified statement's predicate type and subject digests as JSON; exits non-zero
(with the reason on stderr) when anything does not hold.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main() -> None:
    envelope_path, key_path = Path(sys.argv[1]), Path(sys.argv[2])
    document = json.loads(envelope_path.read_text())
    public = serialization.load_pem_public_key(key_path.read_bytes())
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keyid = hashlib.sha256(spki).hexdigest()
    written = [s.get("keyid") for s in document["signatures"]]
    if keyid not in written:
        sys.exit(f"no signature carries the key id {keyid} (found {written})")
    envelope = Envelope.from_dict(document)
    # Raises VerificationError unless the signature verifies over the PAE.
    envelope.verify([SSlibKey.from_crypto(public, keyid=keyid)], 1)
    statement = json.loads(base64.b64decode(document["payload"]))
    print(
        json.dumps(
            {
                "payloadType": envelope.payload_type,
                "type": statement["_type"],
                "predicateType": statement["predicateType"],
                "subjects": [s["digest"]["sha256"] for s in statement["subject"]],
                "status": statement["predicate"]["status"],
            }
        )
    )


if __name__ == "__main__":
    main()
