"""Client identity (MSP ID + X.509 certificate) and signers (ECDSA P-256 / SHA-256, low-S)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature, encode_dss_signature
from fabric_protos.msp.identities_pb2 import SerializedIdentity

from swarmfuse.client.gateway.errors import IdentityError

# Order of the P-256 group: a signature's S must be at most half of it (Fabric rejects high-S signatures).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def digest(message: bytes) -> bytes:
    """SHA-256, the hash every signable object's digest uses."""
    return hashlib.sha256(message).digest()


@dataclass(frozen=True)
class Identity:
    """An MSP member: its MSP ID and PEM certificate."""

    msp_id: str
    credentials: bytes

    def serialize(self) -> bytes:
        """The ``SerializedIdentity`` bytes used as a creator in headers and requests."""
        return SerializedIdentity(mspid=self.msp_id, id_bytes=self.credentials).SerializeToString()

    @classmethod
    def from_pem_file(cls, msp_id: str, path: Path) -> Identity:
        pem = _read(path, "certificate")
        try:
            x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise IdentityError(f"{path} is not a PEM X.509 certificate: {exc}") from exc
        return cls(msp_id, pem)


class Signer(Protocol):
    """Signs a SHA-256 digest; a hardware module can implement this as well."""

    def sign(self, digest: bytes) -> bytes: ...


class ECDSASigner:
    """ECDSA P-256 signer returning DER signatures normalised to low S."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise IdentityError(f"only P-256 keys are supported, got {private_key.curve.name}")
        self._key = private_key

    @classmethod
    def from_pem_file(cls, path: Path) -> ECDSASigner:
        try:
            key = serialization.load_pem_private_key(_read(path, "private key"), password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IdentityError(f"{path} is not an EC private key")
        return cls(key)

    def sign(self, digest: bytes) -> bytes:
        der = self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        if s > P256_ORDER // 2:
            s = P256_ORDER - s
        return encode_dss_signature(r, s)


@dataclass(frozen=True)
class PeerEndpoint:
    """Where a gateway peer listens and how to trust its TLS certificate."""

    endpoint: str
    tls_root_cert: bytes
    host_override: str | None = None


@dataclass(frozen=True)
class TlsClientCert:
    """A client TLS certificate chain and key (PEM) for mutual TLS with the gateway peer."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert_hash(self) -> bytes:
        """SHA-256 of the leaf certificate's DER: what Deliver requests carry as ``tls_cert_hash``."""
        return tls_cert_hash(self.cert_pem)

    @classmethod
    def from_pem_files(cls, cert: Path, key: Path) -> TlsClientCert:
        pair = cls(_read(cert, "client TLS certificate"), _read(key, "client TLS key"))
        tls_cert_hash(pair.cert_pem)  # IdentityError unless a PEM certificate
        try:
            serialization.load_pem_private_key(pair.key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"client TLS key {key} is not an unencrypted PEM private key: {exc}") from exc
        return pair


def tls_cert_hash(cert_pem: bytes) -> bytes:
    """SHA-256 of the DER of the first certificate in ``cert_pem`` (Fabric's TLS binding hash)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise IdentityError(f"the client TLS certificate is not a PEM X.509 certificate: {exc}") from exc
    return digest(cert.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True)
class ProfileCredentials:
    """What an org's connection profile gives a client: peer endpoint, identity, signer and, when the
    profile has one, the identity's client TLS pair."""

    peer: PeerEndpoint
    identity: Identity
    signer: ECDSASigner
    tls_client: TlsClientCert | None = None


def load_profile(path: Path, user: str = "user") -> ProfileCredentials:
    """Load ``user``'s identity and signer and the org's peer from a connection profile JSON file.

    The client TLS pair is ``identities.<user>.tls_client`` ({cert, key} paths), else the profile's
    top-level ``tls_client`` (one pair for every identity), else none (server-authenticated TLS only)."""
    try:
        profile = json.loads(_read(path, "connection profile"))
        peer, pair, msp_id = profile["peer"], profile["identities"][user], profile["mspid"]
        endpoint = PeerEndpoint(
            endpoint=peer["endpoint"],
            tls_root_cert=_read(Path(peer["tls_ca_cert"]), "peer TLS CA certificate"),
            host_override=peer.get("host_override") or None,
        )
        tls_pair = pair.get("tls_client") or profile.get("tls_client")
        return ProfileCredentials(
            peer=endpoint,
            identity=Identity.from_pem_file(msp_id, Path(pair["cert"])),
            signer=ECDSASigner.from_pem_file(Path(pair["key"])),
            tls_client=TlsClientCert.from_pem_files(Path(tls_pair["cert"]), Path(tls_pair["key"])) if tls_pair else None,
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise IdentityError(f"connection profile {path} is malformed or lacks identity {user!r}: {exc!r}") from exc


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read {what} {path}: {exc.strerror}") from exc
