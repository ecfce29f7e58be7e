"""Test helper shared by the engine and audit tests: org CAs issuing NodeOU certificates (as cryptogen
does), an outsider CA, signers (low S, and a high-S variant), the channel definition of the engine tests and
an in-memory ledger, and a channel opened on a fresh ledger of that definition."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.msp.identities_pb2 import SerializedIdentity

from swarmfuse.network.embedded.channel import Channel, create_ledger, open_channel
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.identity import P256_ORDER, ECDSASigner
from swarmfuse.network.protocol.model import (
    ChaincodeDefinition,
    ChannelDefinition,
    OrgDefinition,
    OrgKind,
    Version,
    VersionedValue,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CHANNEL = "task1"
CHAINCODE = "swarmfuse"
POLICY = "OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')"


def clock() -> datetime:
    return NOW


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Member:
    """An identity with its key: serialized form and signing."""

    mspid: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def serialized(self) -> bytes:
        return SerializedIdentity(mspid=self.mspid, id_bytes=self.pem).SerializeToString()

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA over SHA-256 of ``message``, low S (as Fabric's signers)."""
        return ECDSASigner(self.key).sign(hashlib.sha256(message).digest())

    def sign_high_s(self, message: bytes) -> bytes:
        """The same signature with S replaced by n - S (mathematically valid, refused by Fabric)."""
        r, s = decode_dss_signature(self.sign(message))
        return encode_dss_signature(r, P256_ORDER - s)


@dataclass
class OrgCA:
    """An org's signing CA (subject like cryptogen's ``ca.<domain>``)."""

    name: str
    mspid: str
    kind: OrgKind
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{self.name.lower()}.example"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{self.name.lower()}.example"),
        ])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=365)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def definition(self) -> OrgDefinition:
        return OrgDefinition(self.name, self.mspid, self.kind, (_pem(self.cert),), (_pem(self.cert),))

    def issue(
        self,
        cn: str,
        ous: tuple[str, ...] = ("client",),
        *,
        not_before: datetime = NOW - timedelta(days=1),
        not_after: datetime = NOW + timedelta(days=365),
        ca: bool = False,
        key: ec.EllipticCurvePrivateKey | None = None,
        mspid: str | None = None,
        extended: tuple[x509.ObjectIdentifier, ...] = (),
    ) -> Member:
        """A certificate for ``cn`` with these OUs, signed by this CA (``mspid`` overrides the claimed MSP;
        ``extended``: extended key usages, none by default as in cryptogen's signing certificates)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        names = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]
        names += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
        names.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(names)).issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended)), critical=False)
        return Member(mspid or self.mspid, builder.sign(self.key, hashes.SHA256()), key)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pki:
    dc1: OrgCA
    dc2: OrgCA
    dc3: OrgCA
    auditor: OrgCA
    orderer: OrgCA
    outsider: OrgCA

    def channel(self, policy: str = POLICY) -> ChannelDefinition:
        return ChannelDefinition(
            name=CHANNEL,
            orgs=(self.dc1.definition(), self.dc2.definition(), self.dc3.definition(), self.auditor.definition()),
            orderer_org=self.orderer.definition(),
            chaincode=ChaincodeDefinition(CHAINCODE, "1.0", 1, policy),
        )


@cache
def pki() -> Pki:
    return Pki(
        dc1=OrgCA("DC1", "DC1MSP", "member"),
        dc2=OrgCA("DC2", "DC2MSP", "member"),
        dc3=OrgCA("DC3", "DC3MSP", "member"),
        auditor=OrgCA("Auditor", "AuditorMSP", "auditor"),
        orderer=OrgCA("Orderer", "OrdererMSP", "orderer"),
        outsider=OrgCA("Outsider", "OutsiderMSP", "member"),
    )


@cache
def member(org: str, role: str, cn: str = "") -> Member:
    """One cached identity per (org attribute of :class:`Pki`, role)."""
    ca: OrgCA = getattr(pki(), org)
    return ca.issue(cn or f"{role}.{ca.name.lower()}", (role,))


def genesis_channel(path: Path, orderer: Member) -> Channel:
    """The channel of :meth:`Pki.channel` on a new ledger at ``path`` that holds its genesis block (signed by
    ``orderer``, who signs the blocks to come), opened but not started: no chaincode defined yet."""
    definition = pki().channel()
    assert definition.chaincode is not None
    create_ledger(path, blockfmt.config_block(definition, orderer.sign, orderer.serialized), definition.chaincode).close()
    return open_channel(path, orderer.sign, orderer.serialized)


class MemoryLedger:
    """Committed state and tx IDs, enough for the validator and the proposal checks."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], VersionedValue] = {}
        self.tx_ids: set[str] = set()
        self.height = 1

    def put(self, namespace: str, key: str, value: bytes, version: Version, metadata: bytes = b"") -> None:
        self.values[(namespace, key)] = VersionedValue(value, version, metadata)

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        return self.values.get((namespace, key))

    def get_state_range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        keys = sorted(k for ns, k in self.values if ns == namespace and k >= start and (not end or k < end))
        for key in keys:
            yield key, self.values[(namespace, key)]

    def get_history(self, namespace: str, key: str) -> list:  # type: ignore[type-arg]
        return []

    def tx_location(self, tx_id: str) -> object | None:
        return (0, 0) if tx_id in self.tx_ids else None
