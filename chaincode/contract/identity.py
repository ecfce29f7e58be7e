"""The transaction creator as contracts see it: MSP ID plus what its X.509 certificate says."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from cryptography import x509
from cryptography.x509.oid import NameOID

from swarmfuse.chaincode.contract.errors import Forbidden
from swarmfuse.chaincode.stub import ClientIdentity

ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
"""Extension in which Fabric CA stores enrolment attributes as JSON ``{"attrs": {name: value}}``."""


@dataclass(frozen=True)
class Client:
    """MSP ID, certificate, organisational units and Fabric-CA attributes of the creator.

    The certificate is parsed on first use; an unreadable certificate refuses the transaction.
    """

    identity: ClientIdentity

    @property
    def mspid(self) -> str:
        return self.identity.mspid

    @cached_property
    def certificate(self) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.identity.cert_pem)
        except ValueError as exc:
            raise Forbidden(f"the creator's certificate is not a readable PEM X.509 certificate ({exc})") from exc

    @property
    def id(self) -> str:
        """``x509::<subject>::<issuer>``, unique per certificate holder within an MSP."""
        cert = self.certificate
        return f"x509::{cert.subject.rfc4514_string()}::{cert.issuer.rfc4514_string()}"

    @property
    def common_name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    @cached_property
    def organizational_units(self) -> tuple[str, ...]:
        units = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        return tuple(str(unit.value) for unit in units)

    @cached_property
    def attributes(self) -> dict[str, str]:
        """Fabric-CA attributes; empty when the certificate has none."""
        try:
            extension = self.certificate.extensions.get_extension_for_oid(ATTRIBUTES_OID)
        except x509.ExtensionNotFound:
            return {}
        raw = extension.value.value if isinstance(extension.value, x509.UnrecognizedExtension) else b""
        try:
            attrs = json.loads(raw).get("attrs", {})
        except (ValueError, AttributeError) as exc:
            raise Forbidden(f"the creator's certificate has a malformed attribute extension ({exc})") from exc
        if not isinstance(attrs, dict):
            raise Forbidden("the creator's certificate has a malformed attribute extension (attrs is not an object)")
        return {str(k): str(v) for k, v in attrs.items()}

    def has_attribute(self, name: str, value: str = "true") -> bool:
        return self.attributes.get(name) == value

    def has_ou(self, unit: str) -> bool:
        return unit in self.organizational_units
