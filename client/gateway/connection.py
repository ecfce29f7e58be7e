"""What a client connects with: the gateway peer's endpoint, its client TLS pair, and the identity and signer
an org's connection profile names (identities and signing themselves: :mod:`swarmfuse.network.protocol.identity`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from swarmfuse.network.protocol.identity import ECDSASigner, Identity, IdentityError, read_file, tls_cert_hash


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
        pair = cls(read_file(cert, "client TLS certificate"), read_file(key, "client TLS key"))
        tls_cert_hash(pair.cert_pem)  # IdentityError unless a PEM certificate
        try:
            serialization.load_pem_private_key(pair.key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"client TLS key {key} is not an unencrypted PEM private key: {exc}") from exc
        return pair


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
    top-level ``tls_client`` (one pair for every identity), else none (server-authenticated TLS only). A relative
    path is relative to the profile's folder."""

    def file(name: str) -> Path:
        return path.parent / name

    try:
        profile = json.loads(read_file(path, "connection profile"))
        peer, pair, msp_id = profile["peer"], profile["identities"][user], profile["mspid"]
        endpoint = PeerEndpoint(
            endpoint=peer["endpoint"],
            tls_root_cert=read_file(file(peer["tls_ca_cert"]), "peer TLS CA certificate"),
            host_override=peer.get("host_override") or None,
        )
        tls_pair = pair.get("tls_client") or profile.get("tls_client")
        return ProfileCredentials(
            peer=endpoint,
            identity=Identity.from_pem_file(msp_id, file(pair["cert"])),
            signer=ECDSASigner.from_pem_file(file(pair["key"])),
            tls_client=TlsClientCert.from_pem_files(file(tls_pair["cert"]), file(tls_pair["key"])) if tls_pair else None,
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise IdentityError(f"connection profile {path} is malformed or lacks identity {user!r}: {exc!r}") from exc
