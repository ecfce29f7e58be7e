"""An organisation's public definition: what ``swarmfuse org export`` writes and ``swarmfuse channel add-org``
reads. It holds what a channel config needs of an org (MSP ID, CA and TLS CA certificates, anchor peers) and
nothing private: a certificate field holds certificates only, each a CA certificate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from cryptography import x509
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from swarmfuse.network.errors import InvalidInput
from swarmfuse.network.protocol.model import OrgDefinition

FORMAT = "swarmfuse.org/1"
ORG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,48}$")
"""An org name: a Fabric config ID (the org's group in the channel config) that the policy language can name."""
_MSPID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.DOTALL)


def check_org_name(name: str) -> str:
    if not ORG_NAME.match(name):
        raise InvalidInput(f"org name {name!r} is not valid: a letter, then letters, digits or '-' (at most 49)")
    return name


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` into its parts; :class:`InvalidInput` naming what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"address {address!r} is not host:port (a port from 1 to 65535)")
    return host, int(port)


def _ca_certificates(pem: str, field: str) -> str:
    blocks = _PEM_CERT.findall(pem.encode())
    if not blocks or b"".join(blocks).strip() != pem.encode().strip():
        raise ValueError(f"{field}: expected PEM certificates only")
    for block in blocks:
        cert = x509.load_pem_x509_certificate(block)
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise ValueError(f"{field}: {cert.subject.rfc4514_string()} is not a CA certificate")
    return pem


class OrgDefinitionFile(BaseModel):
    """One organisation's public definition (``dc4.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["swarmfuse.org/1"] = FORMAT
    name: str
    mspid: str
    ca_certs: list[str]
    tls_ca_certs: list[str]
    anchor_peers: list[str]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ORG_NAME.match(value):
            raise ValueError("an org name is a letter, then letters, digits or '-' (at most 49)")
        return value

    @field_validator("mspid")
    @classmethod
    def _mspid(cls, value: str) -> str:
        if not _MSPID.match(value):
            raise ValueError("an MSP ID is 1 to 64 letters, digits, '.' or '-'")
        return value

    @field_validator("ca_certs", "tls_ca_certs")
    @classmethod
    def _certs(cls, value: list[str], info) -> list[str]:  # type: ignore[no-untyped-def]
        if not value:
            raise ValueError("at least one CA certificate is needed")
        return [_ca_certificates(pem, info.field_name) for pem in value]

    @field_validator("anchor_peers")
    @classmethod
    def _anchors(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                parse_address(address)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from exc
        return value

    def to_org(self) -> OrgDefinition:
        """The org as a channel member (an application org of kind ``member``)."""
        return OrgDefinition(name=self.name, mspid=self.mspid, kind="member",
                             ca_certs=tuple(pem.encode() for pem in self.ca_certs),
                             tls_ca_certs=tuple(pem.encode() for pem in self.tls_ca_certs),
                             endpoints=tuple(self.anchor_peers))

    @classmethod
    def load(cls, path: Path) -> OrgDefinitionFile:
        """Read a definition file; :class:`InvalidInput` naming the file and each problem."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read the org definition {path}: {exc.strerror or exc}") from exc
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
            raise InvalidInput(f"{path} is not a valid org definition: {problems}") from exc
