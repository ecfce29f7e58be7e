"""Crypto material: cryptogen (or, without a Fabric release, :mod:`swarmfuse.network.cryptomaterial`, same tree)
for MSPs and node TLS (NodeOUs on, SANs the topology's: its address and names, with localhost and 127.0.0.1 on
loopback), plus the chaincode servers' TLS pairs, issued with
``cryptography`` by each org's TLS CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmfuse.files import write_private
from swarmfuse.network.binaries import Fabric
from swarmfuse.network.layout import Layout
from swarmfuse.network.procs import run_checked
from swarmfuse.network.topology import ORDERER_DOMAIN, Org, Topology

logger = logging.getLogger(__name__)

SANS = ["localhost", "127.0.0.1"]
"""What a TLS pair names when no topology says otherwise."""
CERT_DAYS = 3650


def cryptogen_config(topology: Topology) -> dict[str, object]:
    """The ``crypto-config.yaml`` document for ``topology``."""
    return {
        "OrdererOrgs": [
            {
                "Name": "Orderer",
                "Domain": ORDERER_DOMAIN,
                "EnableNodeOUs": True,
                "Specs": [{"Hostname": name, "SANS": list(topology.sans)} for name in topology.orderers],
            }
        ],
        "PeerOrgs": [
            {
                "Name": org.name,
                "Domain": org.domain,
                "EnableNodeOUs": True,
                "Template": {"Count": 1, "SANS": list(topology.sans)},
                "Users": {"Count": 1},
            }
            for org in topology.founding_orgs
        ],
    }


def generate(fabric: Fabric | None, topology: Topology, layout: Layout) -> None:
    """Write MSPs and TLS material for every org and node, with ``fabric``'s cryptogen or, when ``fabric`` is None,
    with :func:`~swarmfuse.network.cryptomaterial.generate_material`; kept when already made for this topology."""
    config = layout.home / "crypto-config.yaml"
    document = yaml.safe_dump(cryptogen_config(topology), sort_keys=False)
    if layout.crypto.is_dir() and config.is_file() and config.read_text() == document:
        return
    logger.info("generating crypto material for %d orgs", len(topology.founding_orgs))
    shutil.rmtree(layout.crypto, ignore_errors=True)
    config.unlink(missing_ok=True)
    pending = config.with_name(".crypto-config.yaml.pending")  # becomes crypto-config.yaml once the tree is complete
    pending.write_text(document)
    if fabric is None:
        from swarmfuse.network.cryptomaterial import generate_material  # here: cryptomaterial imports this module

        generate_material(topology, layout)
    else:
        run_checked([fabric.bin("cryptogen"), "generate", f"--config={pending}", f"--output={layout.crypto}"])
    for org in topology.founding_orgs:
        issue_chaincode_tls(layout, org, topology.sans)
    pending.replace(config)


@dataclass(frozen=True)
class ChaincodeTls:
    """TLS files of one org's chaincode server and of its peer as the server's client."""

    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    ca_cert: Path


def chaincode_tls(layout: Layout, org: Org) -> ChaincodeTls:
    folder = layout.chaincode_dir(org) / "tls"
    return ChaincodeTls(
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
        ca_cert=layout.org_tls_ca(org),
    )


def issue_chaincode_tls(layout: Layout, org: Org, hosts: Sequence[str] = tuple(SANS)) -> ChaincodeTls:
    """Server pair (for ``hosts``) and client pair for ``org``'s chaincode link."""
    files = chaincode_tls(layout, org)
    files.server_cert.parent.mkdir(parents=True, exist_ok=True)
    issue_tls_pair(layout, org, f"chaincode.{org.domain}", ExtendedKeyUsageOID.SERVER_AUTH, files.server_cert,
                   files.server_key, hosts=hosts)
    issue_tls_pair(layout, org, f"peer0-client.{org.domain}", ExtendedKeyUsageOID.CLIENT_AUTH, files.client_cert,
                   files.client_key)
    return files


def issue_tls_pair(layout: Layout, org: Org, name: str, usage: x509.ObjectIdentifier, cert_path: Path,
                   key_path: Path, days: int = CERT_DAYS, hosts: Sequence[str] = tuple(SANS)) -> None:
    """A P-256 key and a certificate for ``name`` and ``hosts`` (host names or IP addresses; by default
    localhost and 127.0.0.1) signed by ``org``'s TLS CA."""
    ca_cert = x509.load_pem_x509_certificate(layout.org_tls_ca(org).read_bytes())
    ca_key = serialization.load_pem_private_key((layout.org_tls_ca(org).parent / "priv_sk").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans = [x509.DNSName(name), *(_subject_alt_name(host) for host in hosts)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))


def _subject_alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
