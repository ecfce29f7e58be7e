"""The MSPs of a channel: X.509 identities of its orgs, validated as Fabric's bccsp MSP with NodeOUs
does (``msp/mspimpl.go``, ``msp/mspimplvalidate.go``), and ECDSA signatures checked as
``bccsp/sw/ecdsa.go`` does (P-256 over SHA-256, DER, low S only).

Differences from Fabric, all stricter: the certificate's validity period (and its CA's) is checked
against the clock (Fabric's MSP ignores expiry; its orderer refuses expired submitters), only EC
P-256 keys are accepted, and every CA certificate of an org is a trust anchor (our orgs have one
root CA each and no intermediates).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_protos.msp import identities_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.identity import P256_ORDER
from swarmfuse.network.protocol.model import OrgDefinition

logger = logging.getLogger(__name__)

#: NodeOU identifiers (cryptogen's ``config.yaml``); an identity must carry exactly one of them.
NODE_OU_ROLES = ("client", "peer", "admin", "orderer")
#: Principal roles of Fabric's policy language: the NodeOU roles plus ``member`` (any valid identity).
POLICY_ROLES = ("member", *NODE_OU_ROLES)

_HALF_ORDER = P256_ORDER >> 1
_CACHE_SIZE = 4096


class IdentityRejected(SwarmfuseError):
    """A serialized identity that is not a valid identity of the channel.

    ``mspid`` is set when Fabric's MSP would deserialize the identity and then find it invalid (Fabric
    then reports the org); ``None`` when deserializing fails: malformed, an unknown MSP, a certificate
    that does not parse or does not chain to a CA of the MSP it names.
    """

    def __init__(self, reason: str, mspid: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mspid = mspid


@dataclass(frozen=True)
class Principal:
    """A validated identity: its MSP, its NodeOU role and its certificate.

    ``cert`` may be ``None`` for a hypothetical signer (endorsement planning); such principals are
    never de-duplicated against each other.
    """

    mspid: str
    role: str
    cert: x509.Certificate | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, bytes] | None:
        """What makes two signers the same identity (Fabric: MSP ID + hash of the certificate)."""
        if self.cert is None:
            return None
        return self.mspid, hashlib.sha256(self.cert.tbs_certificate_bytes).digest()

    def satisfies(self, mspid: str, role: str) -> bool:
        """Whether this identity satisfies the principal ``'<mspid>.<role>'`` (``member``: any role)."""
        return self.mspid == mspid and (role == "member" or role == self.role)


def verify_signature(public_key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    """ECDSA over SHA-256 of ``message``: DER signature with 0 < r, 0 < s <= n/2 (Fabric refuses high S)."""
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    if r <= 0 or s <= 0 or s > _HALF_ORDER:
        return False
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class _OrgMSP:
    mspid: str
    cas: tuple[x509.Certificate, ...]


def _load_cas(org: OrgDefinition) -> tuple[x509.Certificate, ...]:
    cas = []
    for pem in org.ca_certs:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise ValueError(f"org {org.name} ({org.mspid}): a CA certificate is not valid PEM X.509: {exc}") from exc
        if not _is_ca(cert):
            raise ValueError(f"org {org.name} ({org.mspid}): {cert.subject.rfc4514_string()} is not a CA certificate")
        cas.append(cert)
    if not cas:
        raise ValueError(f"org {org.name} ({org.mspid}) has no CA certificate")
    return tuple(cas)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_period(cert: x509.Certificate, now: datetime, what: str) -> None:
    if now < cert.not_valid_before_utc:
        raise ValueError(f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise ValueError(f"{what} expired at {cert.not_valid_after_utc.isoformat()}")


def _check_chain(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """The rest of Go's ``x509.Verify`` as Fabric's MSP calls it while deserializing (``sanitizeCert``), a
    deserialization failure when it fails: every certificate of the chain must be valid at the certificate's
    own start plus one second (``getValidityOptsForCert``; the clock is checked separately), and allow the
    extended key usage the MSP asks for: none is set in its ``VerifyOptions``, which Go reads as server
    authentication (a certificate without the extension, as cryptogen's and Fabric CA's are, allows any)."""
    at = cert.not_valid_before_utc + timedelta(seconds=1)
    for link in (cert, issuer):
        if not link.not_valid_before_utc <= at <= link.not_valid_after_utc:
            raise IdentityRejected(
                f"the supplied identity is not valid: x509: certificate has expired or is not yet valid: current time "
                f"{at.isoformat()} is outside {link.not_valid_before_utc.isoformat()} .. "
                f"{link.not_valid_after_utc.isoformat()} ({link.subject.rfc4514_string()})"
            )
    for link in (cert, issuer):
        try:
            usages = link.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages and ExtendedKeyUsageOID.SERVER_AUTH not in usages:
            raise IdentityRejected(
                "the supplied identity is not valid: x509: certificate specifies an incompatible key usage"
            )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ChannelMSPs:
    """The MSPs of one channel (its application orgs and its orderer org), keyed by MSP ID."""

    def __init__(self, orgs: Sequence[OrgDefinition], clock: Callable[[], datetime] = _utcnow) -> None:
        self._msps: dict[str, _OrgMSP] = {}
        for org in orgs:
            if org.mspid in self._msps:
                raise ValueError(f"MSP {org.mspid} is defined twice on the channel")
            self._msps[org.mspid] = _OrgMSP(org.mspid, _load_cas(org))
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[Principal, x509.Certificate]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def mspids(self) -> tuple[str, ...]:
        return tuple(self._msps)

    def identify(self, serialized_identity: bytes) -> Principal:
        """The validated principal of a ``SerializedIdentity``; :class:`IdentityRejected` naming why not."""
        with self._lock:
            cached = self._cache.get(serialized_identity)
            if cached is not None:
                self._cache.move_to_end(serialized_identity)
        if cached is None:
            principal, issuer = self._validate(serialized_identity)
        else:
            principal, issuer = cached
        assert principal.cert is not None
        now = self._clock()
        try:
            _check_period(principal.cert, now, "the certificate")
            _check_period(issuer, now, "its CA certificate")
        except ValueError as exc:
            raise IdentityRejected(f"the identity is not valid: {exc}", principal.mspid) from exc
        if cached is None:
            with self._lock:
                self._cache[serialized_identity] = (principal, issuer)
                if len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return principal

    def verify(self, serialized_identity: bytes, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is a valid signature of ``message`` by a valid identity of the channel."""
        try:
            principal = self.identify(serialized_identity)
        except IdentityRejected as exc:
            logger.debug("signature refused, invalid identity: %s", exc)
            return False
        return self.check_signature(principal, message, signature)

    @staticmethod
    def check_signature(principal: Principal, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` over ``message`` was made with the key of an identified principal."""
        if principal.cert is None:
            return False
        public_key = principal.cert.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)  # checked by identify
        return verify_signature(public_key, message, signature)

    # --- validation (Fabric: DeserializeIdentity + Validate) -------------------------------------

    def _validate(self, serialized_identity: bytes) -> tuple[Principal, x509.Certificate]:
        try:
            sid = identities_pb2.SerializedIdentity.FromString(serialized_identity)
        except DecodeError as exc:
            raise IdentityRejected(f"could not deserialize a SerializedIdentity: {exc}") from exc
        msp = self._msps.get(sid.mspid)
        if msp is None:
            raise IdentityRejected(f"MSP {sid.mspid!r} is not defined on channel")
        try:
            return self._judge(msp, sid.id_bytes)
        except IdentityRejected:
            raise
        except Exception as exc:
            # (cryptography's UnsupportedAlgorithm for an unknown key algorithm, errors reading its extensions):
            # whatever it is, this identity is rejected, never the block that carries it
            raise IdentityRejected(f"the identity's certificate cannot be read: {exc.__class__.__name__}: {exc}",
                                   msp.mspid) from exc

    def _judge(self, msp: _OrgMSP, id_bytes: bytes) -> tuple[Principal, x509.Certificate]:
        try:
            cert = x509.load_pem_x509_certificate(id_bytes)
        except ValueError as exc:
            raise IdentityRejected(f"could not parse the PEM certificate of the identity: {exc}") from exc
        public_key = cert.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
            raise IdentityRejected("the identity's public key is not an EC P-256 key", msp.mspid)
        if _is_ca(cert):
            raise IdentityRejected(
                "an X509 certificate with Basic Constraint: Certificate Authority equals true "
                "cannot be used as an identity",
                msp.mspid,
            )
        issuer = self._issuer(msp, cert)
        _check_chain(cert, issuer)
        role = self._node_ou_role(msp, cert)
        return Principal(msp.mspid, role, cert), issuer

    @staticmethod
    def _issuer(msp: _OrgMSP, cert: x509.Certificate) -> x509.Certificate:
        for ca in msp.cas:
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return ca
        # Fabric builds the validation chain while deserializing (``sanitizeCert``), so this is a
        # deserialization failure: the endorser reports "creator org unknown", not the claimed MSP.
        raise IdentityRejected(
            f"the supplied identity is not valid: certificate signed by unknown authority (not a CA of {msp.mspid})"
        )

    @staticmethod
    def _node_ou_role(msp: _OrgMSP, cert: x509.Certificate) -> str:
        ous = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        roles = [ou for ou in ous if ou in NODE_OU_ROLES]
        if not roles:
            raise IdentityRejected(
                f"the identity does not have an OU that resolves to client, peer, orderer, or admin role. "
                f"OUs: {ous}, MSP: [{msp.mspid}]",
                msp.mspid,
            )
        if len(roles) > 1:
            raise IdentityRejected(
                f"the identity must have a client, a peer, an orderer, or an admin OU role to be valid, "
                f"not a combination of them. OUs: {ous}, MSP: [{msp.mspid}]",
                msp.mspid,
            )
        return roles[0]
