"""Server settings for chaincode-as-a-service, read from the environment the peer's builder sets up."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from swarmfuse.errors import SwarmfuseError

logger = logging.getLogger(__name__)

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


class ConfigError(SwarmfuseError, ValueError):
    """The environment does not describe a usable chaincode server."""


@dataclass(frozen=True)
class TlsMaterial:
    """PEM server key pair, plus the CA that client certificates must chain to (when required)."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None = None


@dataclass(frozen=True)
class ServerConfig:
    chaincode_id: str
    address: str
    tls: TlsMaterial | None = None
    max_workers: int = 32

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerConfig:
        """Build the config from ``CHAINCODE_*`` variables; every problem is named in a :class:`ConfigError`."""
        chaincode_id = env.get("CHAINCODE_ID", "").strip()
        if not chaincode_id:
            raise ConfigError("CHAINCODE_ID is not set (the chaincode package ID, e.g. swarmfuse_1.0:<hash>)")
        address = env.get("CHAINCODE_SERVER_ADDRESS", "").strip()
        _check_address(address)
        return cls(chaincode_id=chaincode_id, address=address, tls=_tls_from_env(env))


def _check_address(address: str) -> None:
    if not address:
        raise ConfigError("CHAINCODE_SERVER_ADDRESS is not set (host:port to listen on, e.g. 0.0.0.0:9999)")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"CHAINCODE_SERVER_ADDRESS={address!r} is not host:port with a port in 1..65535")


def _flag(env: Mapping[str, str], name: str) -> bool:
    word = env.get(name, "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={env[name]!r} is not a boolean (use true or false)")


def _read(env: Mapping[str, str], name: str) -> bytes | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    path = Path(value)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from exc
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{name}: {path} is not a PEM file")
    return data


def _tls_from_env(env: Mapping[str, str]) -> TlsMaterial | None:
    disabled = _flag(env, "CHAINCODE_TLS_DISABLED")
    cert = _read(env, "CHAINCODE_TLS_CERT_FILE")
    key = _read(env, "CHAINCODE_TLS_KEY_FILE")
    client_ca = _read(env, "CHAINCODE_CLIENT_CA_CERT_FILE")
    if disabled:
        if cert or key or client_ca:
            raise ConfigError(
                "CHAINCODE_TLS_DISABLED=true contradicts the CHAINCODE_TLS_*/CLIENT_CA files that are set"
            )
        return None
    if (cert is None) != (key is None):
        missing = "CHAINCODE_TLS_KEY_FILE" if key is None else "CHAINCODE_TLS_CERT_FILE"
        raise ConfigError(f"{missing} is not set: TLS needs both CHAINCODE_TLS_CERT_FILE and CHAINCODE_TLS_KEY_FILE")
    if cert is None or key is None:
        if client_ca:
            raise ConfigError(
                "CHAINCODE_CLIENT_CA_CERT_FILE needs TLS: set CHAINCODE_TLS_CERT_FILE and CHAINCODE_TLS_KEY_FILE"
            )
        logger.warning("no CHAINCODE_TLS_CERT_FILE/KEY_FILE given: serving without TLS")
        return None
    return TlsMaterial(cert_pem=cert, key_pem=key, client_ca_pem=client_ca)
