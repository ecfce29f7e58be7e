"""Site TLS: each agent's server and client pair, issued by its org's TLS CA, and telling which task
org a peer's client certificate belongs to (by the TLS CA that signed it)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from swarmfuse.network.crypto import issue_tls_pair
from swarmfuse.network.layout import Layout
from swarmfuse.network.protocol.identity import tls_cert_hash
from swarmfuse.network.topology import Org

CERT_DAYS = 825


@dataclass(frozen=True)
class SiteTls:
    """The agent's TLS files and the bundle of every task org's TLS CA it trusts."""

    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    trust: Path

    def fingerprint(self) -> str:
        """SHA-256 of the server certificate (DER), published in the org's member profile."""
        return tls_cert_hash(self.server_cert.read_bytes()).hex()


def site_tls(folder: Path) -> SiteTls:
    tls = folder / "tls"
    return SiteTls(tls / "server.crt", tls / "server.key", tls / "client.crt", tls / "client.key", tls / "trust.pem")


def issue_site_tls(layout: Layout, org: Org, task_orgs: list[Org], folder: Path, host: str) -> SiteTls:
    """Issue the agent's pairs from ``org``'s TLS CA, the server's for its name and the ``host`` it serves on (no
    other name: not ``localhost``), once and again when the host changes; (re)write the trust bundle of the task's
    orgs."""
    files = site_tls(folder)
    files.server_cert.parent.mkdir(parents=True, exist_ok=True)
    if not files.client_cert.exists() or not names_host(files.server_cert, host):
        issue_tls_pair(layout, org, f"site.{org.domain}", ExtendedKeyUsageOID.SERVER_AUTH, files.server_cert,
                       files.server_key, CERT_DAYS, hosts=(host,))
        issue_tls_pair(layout, org, f"site-client.{org.domain}", ExtendedKeyUsageOID.CLIENT_AUTH, files.client_cert,
                       files.client_key, CERT_DAYS, hosts=())
    files.trust.write_bytes(b"".join(layout.org_tls_ca(o).read_bytes() for o in task_orgs))
    return files


def names_host(cert_path: Path, host: str) -> bool:
    """Whether the certificate at ``cert_path`` exists and names ``host`` (an IP address or DNS name) among its SANs."""
    if not cert_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        return ipaddress.ip_address(host) in sans.get_values_for_type(x509.IPAddress)
    except ValueError:
        return host in sans.get_values_for_type(x509.DNSName)


class OrgResolver:
    """Maps a certificate to the task org whose TLS CA signed it."""

    def __init__(self, cas: Mapping[str, x509.Certificate]) -> None:
        self._cas = dict(cas)

    @classmethod
    def of_task(cls, layout: Layout, orgs: list[Org]) -> OrgResolver:
        """The TLS CAs of ``orgs`` as the network home keeps them."""
        return cls({org.mspid: x509.load_pem_x509_certificate(layout.org_tls_ca(org).read_bytes()) for org in orgs})

    def org_of(self, der: bytes | None) -> str | None:
        if not der:
            return None
        cert = x509.load_der_x509_certificate(der)
        for mspid, ca in self._cas.items():
            if cert.issuer != ca.subject:
                continue
            public_key = ca.public_key()
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            try:
                public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            return mspid
        return None
