"""``swarmfuse network add-peer --org-home H4``: the embedded engine hosts the peer of an org made in a home of its
own (``swarmfuse org init``) that joined a task by channel update.

The engine is one trust domain (it signs as every org's peer), so it takes that org's peer pairs (signing and TLS);
nothing else private leaves the org's home: its CA and TLS CA keys stay there (the TLS CA issues, from there, the
pairs of the org's chaincode link that the network home keeps) and so do its admin's and users' keys. The org's
peer is served at the next free slot of the network's ports, which its home must name as its address (the anchor
peer the channel config publishes). On Fabric the org runs its own peer on its own host instead.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from cryptography.x509.oid import ExtendedKeyUsageOID

from swarmfuse.network.control import Network
from swarmfuse.network.crypto import chaincode_tls, issue_tls_pair
from swarmfuse.network.errors import InvalidInput
from swarmfuse.network.layout import Layout
from swarmfuse.network.nodes import ENGINE_PROCESS
from swarmfuse.network.orghome import open_org_home
from swarmfuse.network.procs import check_ports_free
from swarmfuse.network.topology import Org, Topology

logger = logging.getLogger(__name__)


def add_peer(network: Network, org_home: Path) -> Org:
    """Host the peer of the org in ``org_home`` on the network's engine (restarted to serve it, with its chaincode
    server); :class:`InvalidInput` for a Fabric home, an org the network has, another domain or another address
    than the slot the engine serves it at."""
    home = open_org_home(org_home)
    record = home.record
    with network.locked():
        current = network.require_state()
        if current.engine != "embedded":
            raise InvalidInput(f"{network.home} runs Fabric: there {record.name} runs its own peer on its own host")
        topology = current.topology()
        if any(org.name == record.name or org.mspid == record.mspid for org in topology.orgs):
            raise InvalidInput(f"the network has an org {record.name} ({record.mspid}) already")
        hosting = Topology(**{**topology.to_dict(), "joined": (*topology.joined, record.name)})  # type: ignore[arg-type]
        org = hosting.org(record.name)
        if record.domain != org.domain:
            raise InvalidInput(f"{record.name}'s domain is {record.domain}; a peer this engine hosts has the "
                               f"domain {org.domain} (make the org without --domain)")
        ports = hosting.peer_ports(org)
        expected = hosting.endpoint(ports.listen)
        if record.address != expected:
            raise InvalidInput(f"this engine would serve {record.name}'s peer at {expected}, but its home names "
                               f"{record.address}: make the org with --address {expected}")
        check_ports_free([ports.listen, ports.ccaas], hosting.address)
        _take_peer(Layout(home.home), network.layout, org, hosting)
        current.joined.append(record.name)
        network.save(current)
    if network.supervisor.pid(ENGINE_PROCESS) is not None:  # the engine reads its orgs when it starts
        network.supervisor.stop([ENGINE_PROCESS])
    network.up()
    logger.info("the engine hosts %s's peer at %s", record.name, expected)
    return org


def _take_peer(source: Layout, target: Layout, org: Org, topology: Topology) -> None:
    """Copy ``org``'s verifying MSP, CA certificates and peer (its pairs) from its home; issue its chaincode link's
    pairs with its TLS CA, whose key stays in its home."""
    src, dst = source.org_dir(org), target.org_dir(org)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src / "msp", dst / "msp", ignore=shutil.ignore_patterns("keystore"))
    shutil.copytree(source.peer_dir(org), target.peer_dir(org))
    for ca in ("ca", "tlsca"):
        (dst / ca).mkdir(parents=True)
        for cert in (src / ca).glob("*-cert.pem"):
            shutil.copyfile(cert, dst / ca / cert.name)
    files = chaincode_tls(target, org)
    files.server_cert.parent.mkdir(parents=True, exist_ok=True)
    issue_tls_pair(source, org, f"chaincode.{org.domain}", ExtendedKeyUsageOID.SERVER_AUTH, files.server_cert,
                   files.server_key, hosts=topology.sans)
    issue_tls_pair(source, org, f"peer0-client.{org.domain}", ExtendedKeyUsageOID.CLIENT_AUTH, files.client_cert,
                   files.client_key)
