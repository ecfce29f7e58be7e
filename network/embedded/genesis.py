"""The genesis config block of a task channel on the embedded engine, built from the home's crypto
material (what ``configtxgen`` makes from ``configtx.yaml`` on Fabric), signed by the orderer org's admin."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fabric_protos.common import common_pb2

from swarmfuse.network.layout import Layout, msp_key_pair
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.identity import ECDSASigner, Identity, digest
from swarmfuse.network.protocol.model import ChaincodeDefinition, ChannelDefinition, OrgDefinition
from swarmfuse.network.topology import ORDERER_MSP, Org, Topology

# The single built-in orderer has no consensus round trip to amortise, so a block is cut after 10 ms
# (Fabric's Raft channels here wait up to 250 ms: network/configtx.py's BATCH_TIMEOUT).
BATCH_TIMEOUT_S = 0.01


def _pems(folder: Path) -> tuple[bytes, ...]:
    return tuple(path.read_bytes() for path in sorted(folder.glob("*.pem")))


def channel_definition(topology: Topology, layout: Layout, name: str, orgs: Sequence[Org], chaincode: str,
                       version: str, policy: str) -> ChannelDefinition:
    """The channel's orgs (CA and TLS CA roots, anchor endpoint), the orderer org and the chaincode."""
    members = tuple(
        OrgDefinition(
            name=org.name, mspid=org.mspid, kind="auditor" if org.auditor else "member",
            ca_certs=_pems(layout.org_dir(org) / "msp" / "cacerts"),
            tls_ca_certs=_pems(layout.org_dir(org) / "msp" / "tlscacerts"),
            endpoints=(f"{topology.address}:{topology.peer_ports(org).listen}",),
        )
        for org in orgs
    )
    orderer_msp = layout.orderer_org_dir / "msp"
    orderer = OrgDefinition(
        name="Orderer", mspid=ORDERER_MSP, kind="orderer", ca_certs=_pems(orderer_msp / "cacerts"),
        tls_ca_certs=_pems(orderer_msp / "tlscacerts"),
        endpoints=(f"{topology.address}:{topology.orderer_ports(topology.orderers[0]).listen}",),
    )
    return ChannelDefinition(name=name, orgs=members, orderer_org=orderer, batch_timeout_s=BATCH_TIMEOUT_S,
                             chaincode=ChaincodeDefinition(chaincode, version, 1, policy))


def genesis_block(layout: Layout, definition: ChannelDefinition) -> common_pb2.Block:
    """Block 0 of the channel, its CONFIG envelope signed by the orderer org's admin."""
    creator, signer = signing_identity(layout.orderer_admin_dir / "msp", ORDERER_MSP)
    return blockfmt.config_block(definition, lambda message: signer.sign(digest(message)), creator)


def signing_identity(msp: Path, mspid: str) -> tuple[bytes, ECDSASigner]:
    """The serialized identity and signer of an MSP folder (a node's or an admin's)."""
    cert, key = msp_key_pair(msp)
    return Identity.from_pem_file(mspid, cert).serialize(), ECDSASigner.from_pem_file(key)
