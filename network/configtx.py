"""``configtx.yaml`` for one task channel: its orgs with anchor peers, the orderers (Raft or BFT),
capabilities (channel V3_0, orderer V2_0, application V2_5) and signature policies.

The auditor org may read everything; only its admin (for chaincode lifecycle) satisfies its Writers
policy, and its peer is not an endorser of the chaincode. Proposals need channel Readers (not the
default Writers) so auditor clients can evaluate queries; submitting still needs Writers, which the
orderers and the validating peers enforce.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarmfuse.network.layout import Layout
from swarmfuse.network.protocol.policy import org_policy_rules
from swarmfuse.network.topology import ORDERER_MSP, Org, Topology

PROFILE = "TaskChannel"
BATCH_TIMEOUT = "250ms"


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org_section(org: Org, topology: Topology, layout: Layout) -> dict[str, object]:
    rules = org_policy_rules(org.mspid, "auditor" if org.auditor else "member")
    return {
        "Name": org.mspid,
        "ID": org.mspid,
        "MSPDir": str(layout.org_dir(org) / "msp"),
        "Policies": {name: _sig(rule) for name, rule in rules.items()},
        "AnchorPeers": [{"Host": topology.address, "Port": topology.peer_ports(org).listen}],
    }


def _orderer_org(topology: Topology, layout: Layout) -> dict[str, object]:
    return {
        "Name": ORDERER_MSP,
        "ID": ORDERER_MSP,
        "MSPDir": str(layout.orderer_org_dir / "msp"),
        "Policies": {name: _sig(rule) for name, rule in org_policy_rules(ORDERER_MSP, "orderer").items()},
        "OrdererEndpoints": [f"{topology.address}:{topology.orderer_ports(name).listen}" for name in topology.orderers],
    }


def _consensus(topology: Topology, layout: Layout) -> dict[str, object]:
    def tls(name: str) -> str:
        return str(layout.orderer_dir(topology, name) / "tls" / "server.crt")

    if topology.consensus == "raft":
        consenters = [
            {"Host": topology.address, "Port": topology.orderer_ports(n).listen, "ClientTLSCert": tls(n), "ServerTLSCert": tls(n)}
            for n in topology.orderers
        ]
        return {"OrdererType": "etcdraft", "EtcdRaft": {"Consenters": consenters}}
    mapping = [
        {
            "ID": i + 1, "Host": topology.address, "Port": topology.orderer_ports(n).listen, "MSPID": ORDERER_MSP,
            "Identity": str(layout.orderer_dir(topology, n) / "msp" / "signcerts" / f"{topology.orderer_host(n)}-cert.pem"),
            "ClientTLSCert": tls(n), "ServerTLSCert": tls(n),
        }
        for i, n in enumerate(topology.orderers)
    ]
    smartbft = {
        "RequestBatchMaxInterval": "200ms", "RequestForwardTimeout": "5s", "RequestComplainTimeout": "20s",
        "RequestAutoRemoveTimeout": "3m0s", "ViewChangeResendInterval": "5s", "ViewChangeTimeout": "20s",
        "LeaderHeartbeatTimeout": "1m0s", "CollectTimeout": "1s", "IncomingMessageBufferSize": 200,
        "RequestPoolSize": 100000, "LeaderHeartbeatCount": 10,
    }
    return {"OrdererType": "BFT", "ConsenterMapping": mapping, "SmartBFT": smartbft}


def channel_config(topology: Topology, layout: Layout, orgs: Sequence[Org]) -> dict[str, object]:
    """The configtx document whose profile :data:`PROFILE` makes the genesis block of a task channel."""
    orderer = {
        **_consensus(topology, layout),
        "BatchTimeout": BATCH_TIMEOUT,
        "BatchSize": {"MaxMessageCount": 100, "AbsoluteMaxBytes": "10 MB", "PreferredMaxBytes": "2 MB"},
        "Organizations": [_orderer_org(topology, layout)],
        "Policies": {
            "Readers": _meta("ANY Readers"), "Writers": _meta("ANY Writers"), "Admins": _meta("MAJORITY Admins"),
            "BlockValidation": _meta("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }
    application = {
        "Organizations": [_org_section(org, topology, layout) for org in orgs],
        "Policies": {
            "Readers": _meta("ANY Readers"), "Writers": _meta("ANY Writers"), "Admins": _meta("MAJORITY Admins"),
            "LifecycleEndorsement": _meta("MAJORITY Endorsement"), "Endorsement": _meta("MAJORITY Endorsement"),
        },
        "Capabilities": {"V2_5": True},
        "ACLs": {"peer/Propose": "/Channel/Application/Readers"},
    }
    profile = {
        "Policies": {"Readers": _meta("ANY Readers"), "Writers": _meta("ANY Writers"), "Admins": _meta("MAJORITY Admins")},
        "Capabilities": {"V3_0": True},
        "Orderer": orderer,
        "Application": application,
    }
    return {"Profiles": {PROFILE: profile}}


def endorsement_policy(orgs: Sequence[Org]) -> str:
    """MAJORITY of the task's DC orgs (the auditor is never an endorser): ``OutOf(k, 'DC1MSP.peer', ...)``."""
    return majority_endorsement_policy([org.mspid for org in orgs if not org.auditor])


def majority_endorsement_policy(member_mspids: Sequence[str]) -> str:
    """The task's chaincode endorsement policy over its DC orgs' MSP IDs: a majority of their peers."""
    k = len(member_mspids) // 2 + 1
    return f"OutOf({k}, " + ", ".join(f"'{mspid}.peer'" for mspid in member_mspids) + ")"
