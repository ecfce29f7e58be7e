"""Fabric identities and signing: an MSP member (MSP ID + X.509 certificate, serialized as a creator) and
its ECDSA P-256 / SHA-256 signer with low-S signatures, as Fabric's MSPs require."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature, encode_dss_signature
from fabric_protos.msp.identities_pb2 import SerializedIdentity

from swarmfuse.errors import SwarmfuseError

# Order of the P-256 group: a signature's S must be at most half of it (Fabric rejects high-S signatures).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class IdentityError(SwarmfuseError):
    """A certificate, key or credential file that cannot serve as an identity or signer."""


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
        pem = read_file(path, "certificate")
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
            key = serialization.load_pem_private_key(read_file(path, "private key"), password=None)
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


def tls_cert_hash(cert_pem: bytes) -> bytes:
    """SHA-256 of the DER of the first certificate in ``cert_pem`` (Fabric's TLS binding hash)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise IdentityError(f"the TLS certificate is not a PEM X.509 certificate: {exc}") from exc
    return digest(cert.public_bytes(serialization.Encoding.DER))


def transaction_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction ID (``protoutil.ComputeTxID``): hex(SHA-256(nonce ‖ serialized creator))."""
    return hashlib.sha256(nonce + creator).hexdigest()


def read_file(path: Path, what: str) -> bytes:
    """The bytes of a credential file; :class:`IdentityError` naming ``what`` and the OS's reason otherwise."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read {what} {path}: {exc.strerror}") from exc
