"""Test identities for contract tests: real X.509 certificates with OUs and Fabric-CA attributes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmfuse.chaincode.contract.identity import ATTRIBUTES_OID
from swarmfuse.chaincode.stub import ClientIdentity


@cache
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def identity(
    mspid: str, cn: str = "Admin", ous: tuple[str, ...] = ("admin",), attrs: tuple[tuple[str, str], ...] = ()
) -> ClientIdentity:
    """A self-signed certificate for ``cn`` of ``mspid`` with the given OUs and CA attributes."""
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, mspid)]
    names += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    subject = x509.Name(names)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(_key().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
    )
    if attrs:
        payload = json.dumps({"attrs": dict(attrs)}).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(ATTRIBUTES_OID, payload), critical=False)
    cert = builder.sign(_key(), hashes.SHA256())
    return ClientIdentity(mspid, cert.public_bytes(serialization.Encoding.PEM))


DC1, DC2, DC3, DC4, DC5 = (identity(f"DC{i}MSP") for i in range(1, 6))
AUDITOR = identity("AuditorMSP")
DC1_AUDITOR_OU = identity("DC1MSP", cn="audit1", ous=("client", "auditor"))
DC1_AUDITOR_ATTR = identity("DC1MSP", cn="audit2", ous=("client",), attrs=(("auditor", "true"),))
OUTSIDER_AUDITOR_OU = identity("EvilMSP", cn="auditor", ous=("client", "auditor"))
OUTSIDER_AUDITOR_ATTR = identity("EvilMSP", cn="auditor2", ous=("client",), attrs=(("auditor", "true"),))
"""Self-issued auditor certificates of an org the task does not name."""
DC1_BAD_CERT = ClientIdentity("DC1MSP", b"-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n")
