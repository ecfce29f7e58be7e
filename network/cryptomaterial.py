"""MSP and TLS material made with ``cryptography``, in the tree ``cryptogen generate`` writes for
:func:`swarmfuse.network.crypto.cryptogen_config`: same folders, file names, subjects, key usages and extensions
(Fabric ``cmd/cryptogen/main.go``, ``internal/cryptogen/{ca,msp,csp}``), with NodeOUs enabled.

Per org (``peerOrganizations/<domain>`` or ``ordererOrganizations/<domain>``): ``ca/`` and ``tlsca/`` (``priv_sk``
and ``<ca name>-cert.pem``), the verifying ``msp/`` (``cacerts``, ``tlscacerts``, ``config.yaml``, empty
``admincerts``) and one folder per node and user with a local ``msp/`` (plus ``keystore/priv_sk`` and
``signcerts/<CN>-cert.pem``) and ``tls/`` (``ca.crt`` and ``server.*`` for nodes, ``client.*`` for users).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmfuse.errors import SwarmfuseError
from swarmfuse.files import write_private
from swarmfuse.network.crypto import CERT_DAYS, cryptogen_config
from swarmfuse.network.layout import Layout
from swarmfuse.network.topology import Topology

KEY_FILE = "priv_sk"
CLIENT_OU, PEER_OU, ADMIN_OU, ORDERER_OU = "client", "peer", "admin", "orderer"

# cryptogen's subject template (internal/cryptogen/ca/ca.go subjectTemplate).
_COUNTRY, _PROVINCE, _LOCALITY = "US", "California", "San Francisco"
# Half the order of P-256: Fabric's signer keeps ECDSA signatures at S <= N/2 (internal/cryptogen/csp toLowS).
_P256_HALF_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551 // 2
# Characters of an ASN.1 PrintableString; Go encodes other name values as UTF8String.
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")
_ORG_KEYS = {"Name", "Domain", "EnableNodeOUs", "Template", "Specs", "Users"}


class UnsupportedCryptoConfig(SwarmfuseError, ValueError):
    """The crypto-config document uses a cryptogen feature this module does not reproduce."""


@dataclass(frozen=True)
class _CA:
    """A signing or TLS certificate authority of one org."""

    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def file_name(self) -> str:
        return f"{self.name}-cert.pem"

    @property
    def key_id(self) -> bytes:
        return self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


@dataclass(frozen=True)
class _Identity:
    """A node or user to issue an MSP and TLS pair for."""

    common_name: str
    sans: tuple[str, ...]
    ou: str


def generate_material(topology: Topology, layout: Layout) -> None:
    """Write under ``layout.crypto`` what ``cryptogen generate`` writes for ``cryptogen_config(topology)``."""
    config = cryptogen_config(topology)
    validity = _validity(dt.datetime.now(dt.UTC))
    for spec in cast(list[dict[str, Any]], config["PeerOrgs"]):
        _generate_org(layout.crypto / "peerOrganizations", spec, PEER_OU, validity)
    for spec in cast(list[dict[str, Any]], config["OrdererOrgs"]):
        _generate_org(layout.crypto / "ordererOrganizations", spec, ORDERER_OU, validity)


def generate_peer_org(base: Path, name: str, domain: str, sans: Sequence[str]) -> Path:
    """One peer org's tree as cryptogen writes it under ``base`` (``peerOrganizations``): its CA and TLS CA, its
    verifying MSP, ``peer0.<domain>`` (TLS SANs: its names, then ``sans``), ``User1@<domain>`` and
    ``Admin@<domain>``; returns the org's folder."""
    spec = {"Name": name, "Domain": domain, "EnableNodeOUs": True, "Template": {"Count": 1, "SANS": list(sans)},
            "Users": {"Count": 1}}
    _generate_org(base, spec, PEER_OU, _validity(dt.datetime.now(dt.UTC)))
    return base / domain


def _validity(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Now rounded to the minute, back-dated 5 minutes, for CERT_DAYS days (ca.go x509Template)."""
    start = (now + dt.timedelta(seconds=30)).replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    return start, start + dt.timedelta(days=CERT_DAYS)


def _generate_org(base: Path, spec: Mapping[str, Any], node_ou: str, validity: tuple[dt.datetime, dt.datetime]) -> None:
    _check_supported(spec)
    domain = spec["Domain"]
    org_dir = base / domain
    sign_ca = _new_ca(org_dir / "ca", domain, f"ca.{domain}", validity)
    tls_ca = _new_ca(org_dir / "tlsca", domain, f"tlsca.{domain}", validity)
    _verifying_msp(org_dir / "msp", sign_ca, tls_ca)
    for node in _nodes(spec, node_ou):
        _local_msp(org_dir / f"{node_ou}s" / node.common_name, node, sign_ca, tls_ca, validity)
    for user in _users(spec, peer_org=node_ou == PEER_OU):
        _local_msp(org_dir / "users" / user.common_name, user, sign_ca, tls_ca, validity)


def _check_supported(spec: Mapping[str, Any]) -> None:
    """Refuse what cryptogen would honour but this module ignores (explicit CA, CN or hostname templates...)."""
    name = spec.get("Name", "?")
    extra = set(spec) - _ORG_KEYS
    extra |= {f"Template.{key}" for key in set(spec.get("Template", {})) - {"Count", "Start", "SANS"}}
    extra |= {f"Specs.{key}" for node in spec.get("Specs", []) for key in set(node) - {"Hostname", "SANS"}}
    extra |= {f"Users.{key}" for key in set(spec.get("Users", {})) - {"Count"}}
    if extra:
        raise UnsupportedCryptoConfig(f"org {name}: unsupported crypto-config keys {', '.join(sorted(extra))}")
    if spec.get("EnableNodeOUs") is not True:
        raise UnsupportedCryptoConfig(f"org {name}: only EnableNodeOUs: true is supported")
    sans = [*spec.get("Template", {}).get("SANS", []), *(s for node in spec.get("Specs", []) for s in node.get("SANS", []))]
    if any("{{" in san for san in sans):
        raise UnsupportedCryptoConfig(f"org {name}: templated SANS are not supported")


def _nodes(spec: Mapping[str, Any], ou: str) -> list[_Identity]:
    """Explicit specs then templated hosts ``<peer|orderer><i>``; SANs are the CN, the host name, then the listed ones."""
    template = spec.get("Template", {})
    hosts = [(node["Hostname"], node.get("SANS", [])) for node in spec.get("Specs", [])]
    start = template.get("Start", 0)
    hosts += [(f"{ou}{i}", template.get("SANS", [])) for i in range(start, start + template.get("Count", 0))]
    return [
        _Identity(f"{host}.{spec['Domain']}", (f"{host}.{spec['Domain']}", host, *sans), ou) for host, sans in hosts
    ]


def _users(spec: Mapping[str, Any], peer_org: bool) -> list[_Identity]:
    """``User<j>@<domain>`` (client; peer orgs only) and ``Admin@<domain>`` (admin); users' TLS certs have no SANs."""
    domain = spec["Domain"]
    count = spec.get("Users", {}).get("Count", 0) if peer_org else 0
    users = [_Identity(f"User{j}@{domain}", (), CLIENT_OU) for j in range(1, count + 1)]
    return [*users, _Identity(f"Admin@{domain}", (), ADMIN_OU)]


def _verifying_msp(msp: Path, sign_ca: _CA, tls_ca: _CA) -> None:
    """The org MSP (msp.go GenerateVerifyingMSP): CA certs and config.yaml; admincerts stays empty with NodeOUs."""
    for folder in ("admincerts", "cacerts", "tlscacerts"):
        (msp / folder).mkdir(parents=True, exist_ok=True)
    _write_cert(msp / "cacerts" / sign_ca.file_name, sign_ca.cert)
    _write_cert(msp / "tlscacerts" / tls_ca.file_name, tls_ca.cert)
    (msp / "config.yaml").write_text(node_ous_config(f"cacerts/{sign_ca.file_name}"))


def _local_msp(
    folder: Path, who: _Identity, sign_ca: _CA, tls_ca: _CA, validity: tuple[dt.datetime, dt.datetime]
) -> None:
    """A node's or user's MSP and TLS folders (msp.go GenerateLocalMSP)."""
    msp, tls = folder / "msp", folder / "tls"
    for sub in ("admincerts", "cacerts", "tlscacerts", "keystore", "signcerts"):
        (msp / sub).mkdir(parents=True, exist_ok=True)
    tls.mkdir(parents=True, exist_ok=True)

    key = _new_key(msp / "keystore" / KEY_FILE)
    signcert = _issue(
        sign_ca, who.common_name, key.public_key(), validity, ou=who.ou, sans=(),
        usage=_key_usage("digital_signature"), extended=(),
    )
    _write_cert(msp / "signcerts" / f"{who.common_name}-cert.pem", signcert)
    _write_cert(msp / "cacerts" / sign_ca.file_name, sign_ca.cert)
    _write_cert(msp / "tlscacerts" / tls_ca.file_name, tls_ca.cert)
    (msp / "config.yaml").write_text(node_ous_config(f"cacerts/{sign_ca.file_name}"))

    prefix = "client" if who.ou in (CLIENT_OU, ADMIN_OU) else "server"
    tls_key = _new_key(tls / f"{prefix}.key")
    tls_cert = _issue(
        tls_ca, who.common_name, tls_key.public_key(), validity, ou=None, sans=who.sans,
        usage=_key_usage("digital_signature", "key_encipherment"),
        extended=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    )
    _write_cert(tls / f"{prefix}.crt", tls_cert)
    _write_cert(tls / "ca.crt", tls_ca.cert)


def node_ous_config(ca_file: str) -> str:
    """``msp/config.yaml`` as cryptogen writes it (msp.go exportConfig; go-yaml v4 Marshal, 4-space indent)."""
    lines = ["NodeOUs:", "    Enable: true"]
    for field, ou in (("Client", CLIENT_OU), ("Peer", PEER_OU), ("Admin", ADMIN_OU), ("Orderer", ORDERER_OU)):
        lines.append(f"    {field}OUIdentifier:")
        lines += [f"        Certificate: {ca_file}", f"        OrganizationalUnitIdentifier: {ou}"]
    return "\n".join(lines) + "\n"


def _new_ca(folder: Path, domain: str, name: str, validity: tuple[dt.datetime, dt.datetime]) -> _CA:
    """A self-signed CA (ca.go NewCA): O=<domain>, CN=<name>; its SKI is, as cryptogen's computeSKI makes it, the
    SHA-256 of the private scalar (Go's ``ecdsa.PrivateKey.ECDH().Bytes()``)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = _new_key(folder / KEY_FILE)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    subject = _subject(name, organization=domain)
    builder = (
        _builder(subject, subject, key.public_key(), validity)
        .add_extension(_key_usage("digital_signature", "key_encipherment", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(hashlib.sha256(scalar).digest()), critical=False)
    )
    ca = _CA(name=name, key=key, cert=_sign(builder, key))
    _write_cert(folder / ca.file_name, ca.cert)
    return ca


def _issue(
    ca: _CA,
    common_name: str,
    public_key: ec.EllipticCurvePublicKey,
    validity: tuple[dt.datetime, dt.datetime],
    *,
    ou: str | None,
    sans: Sequence[str],
    usage: x509.KeyUsage,
    extended: Sequence[x509.ObjectIdentifier],
) -> x509.Certificate:
    """An end-entity certificate (ca.go SignCertificate): extensions in Go's order, AKI = the CA's SKI."""
    builder = _builder(_subject(common_name, ou=ou), ca.cert.subject, public_key, validity)
    builder = builder.add_extension(usage, critical=True)
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended)), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(x509.AuthorityKeyIdentifier(ca.key_id, None, None), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
    return _sign(builder, ca.key)


def _key_usage(*flags: str) -> x509.KeyUsage:
    names = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
        "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )
    return x509.KeyUsage(**{name: name in flags for name in names})


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, validity: tuple[dt.datetime, dt.datetime]
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(secrets.randbelow((1 << 128) - 1) + 1)
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
    )


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """Sign with ECDSA/SHA-256, drawing again until the signature is low-S as Fabric's signer makes it."""
    while True:
        cert = builder.sign(key, hashes.SHA256())
        if decode_dss_signature(cert.signature)[1] <= _P256_HALF_ORDER:
            return cert


def _subject(common_name: str, *, organization: str | None = None, ou: str | None = None) -> x509.Name:
    """C, ST, L, [O], [OU], CN in Go's order (pkix.Name.ToRDNSequence) and string types."""
    parts = [
        (NameOID.COUNTRY_NAME, _COUNTRY), (NameOID.STATE_OR_PROVINCE_NAME, _PROVINCE), (NameOID.LOCALITY_NAME, _LOCALITY)
    ]
    if organization:
        parts.append((NameOID.ORGANIZATION_NAME, organization))
    if ou:
        parts.append((NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    parts.append((NameOID.COMMON_NAME, common_name))
    return x509.Name([x509.NameAttribute(oid, value, _type=_string_type(value)) for oid, value in parts])


def _string_type(value: str) -> _ASN1Type:
    return _ASN1Type.PrintableString if _PRINTABLE.fullmatch(value) else _ASN1Type.UTF8String


def _general_names(sans: Sequence[str]) -> list[x509.GeneralName]:
    """DNS names first, then IP addresses, as Go writes them (a SAN that parses as an IP is one)."""
    dns: list[x509.GeneralName] = []
    ips: list[x509.GeneralName] = []
    for san in sans:
        try:
            ips.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            dns.append(x509.DNSName(san))
    return dns + ips


def _new_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A P-256 key written as PKCS#8 PEM with mode 0600 (csp.go GeneratePrivateKey)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(path, pem)
    return key


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
