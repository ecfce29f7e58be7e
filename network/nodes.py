"""Process specs for orderers, peers and chaincode servers: command, environment overrides, ports, health
endpoint and TLS probes. Every listener is on the topology's address and TLS is on for every link."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from swarmfuse.network.binaries import Fabric
from swarmfuse.network.crypto import chaincode_tls
from swarmfuse.network.layout import Layout
from swarmfuse.network.procs import ProcessSpec, TlsProbe
from swarmfuse.network.topology import ORDERER_MSP, Org, Topology

BUILDER_SOURCE = Path(__file__).with_name("builders") / "ccaas" / "bin"
BUILDER_NAME = "swarmfuse-ccaas"
BUILDER_SCRIPTS = ("detect", "build", "release")
ENGINE_PROCESS = "engine"


def install_builder(layout: Layout) -> None:
    """Copy the external builder into the home, executable, so peers never depend on how swarmfuse was installed."""
    target = layout.builder_dir / "bin"
    target.mkdir(parents=True, exist_ok=True)
    for name in BUILDER_SCRIPTS:
        shutil.copyfile(BUILDER_SOURCE / name, target / name)
        (target / name).chmod(0o755)


def _base_env(fabric: Fabric) -> dict[str, str]:
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    return {**keep, "FABRIC_CFG_PATH": str(fabric.config_dir)}


def orderer_spec(fabric: Fabric, topology: Topology, layout: Layout, name: str) -> ProcessSpec:
    ports = topology.orderer_ports(name)
    node = layout.orderer_dir(topology, name)
    tls = node / "tls"
    data = layout.data_dir(name)
    tls_ca = str(layout.orderer_tls_ca)
    env = _base_env(fabric) | {
        "ORDERER_GENERAL_LISTENADDRESS": topology.address,
        "ORDERER_GENERAL_LISTENPORT": str(ports.listen),
        "ORDERER_GENERAL_LOCALMSPID": ORDERER_MSP,
        "ORDERER_GENERAL_LOCALMSPDIR": str(node / "msp"),
        "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_GENERAL_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{tls / 'ca.crt'}]",
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": str(tls / "server.crt"),
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": str(tls / "server.key"),
        "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{tls / 'ca.crt'}]",
        "ORDERER_FILELEDGER_LOCATION": str(data / "ledger"),
        "ORDERER_CONSENSUS_WALDIR": str(data / "etcdraft" / "wal"),
        "ORDERER_CONSENSUS_SNAPDIR": str(data / "etcdraft" / "snapshot"),
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
        "ORDERER_ADMIN_LISTENADDRESS": f"{topology.address}:{ports.admin}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_ADMIN_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_ADMIN_TLS_ROOTCAS": f"[{tls_ca}]",
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{tls_ca}]",
        "ORDERER_OPERATIONS_LISTENADDRESS": f"{topology.address}:{ports.operations}",
        "ORDERER_METRICS_PROVIDER": "prometheus",
    }
    return ProcessSpec(
        name=name, kind="orderer", args=[fabric.bin("orderer")], env=env, port=ports.listen,
        health_url=f"http://{topology.address}:{ports.operations}/healthz", cwd=data, host=topology.address,
        other_ports=[ports.admin, ports.operations],
        probes=[TlsProbe(f"{topology.address}:{ports.listen}", layout.orderer_tls_ca, server_name=topology.orderer_host(name))],
    )


def peer_spec(fabric: Fabric, topology: Topology, layout: Layout, org: Org) -> ProcessSpec:
    ports = topology.peer_ports(org)
    node = layout.peer_dir(org)
    address = f"{topology.address}:{ports.listen}"
    builders = [{"name": BUILDER_NAME, "path": str(layout.builder_dir), "propagateEnvironment": []}]
    data = layout.data_dir(org.peer_process)
    env = _base_env(fabric) | {
        "CORE_PEER_ID": org.peer_host,
        "CORE_PEER_ADDRESS": address,
        "CORE_PEER_LISTENADDRESS": address,
        "CORE_PEER_CHAINCODEADDRESS": f"{topology.address}:{ports.chaincode}",
        "CORE_PEER_CHAINCODELISTENADDRESS": f"{topology.address}:{ports.chaincode}",
        "CORE_PEER_GOSSIP_BOOTSTRAP": address,
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": address,
        "CORE_PEER_LOCALMSPID": org.mspid,
        "CORE_PEER_MSPCONFIGPATH": str(node / "msp"),
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": str(node / "tls" / "server.crt"),
        "CORE_PEER_TLS_KEY_FILE": str(node / "tls" / "server.key"),
        "CORE_PEER_TLS_ROOTCERT_FILE": str(node / "tls" / "ca.crt"),
        "CORE_PEER_FILESYSTEMPATH": str(data),
        "CORE_LEDGER_STATE_STATEDATABASE": "goleveldb",
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(data / "snapshots"),
        "CORE_OPERATIONS_LISTENADDRESS": f"{topology.address}:{ports.operations}",
        "CORE_METRICS_PROVIDER": "prometheus",
        "CORE_VM_ENDPOINT": "",
        "CORE_CHAINCODE_EXTERNALBUILDERS": json.dumps(builders),
    }
    if topology.mutual_tls:
        # Clients and other peers present a certificate from one of the orgs' TLS CAs (the peer adds the roots of
        # its channels' MSPs by itself); Deliver then checks each request's TLS certificate hash.
        env |= {
            "CORE_PEER_TLS_CLIENTAUTHREQUIRED": "true",
            "CORE_PEER_TLS_CLIENTROOTCAS_FILES": " ".join(str(layout.org_tls_ca(each)) for each in topology.orgs),
        }
    return ProcessSpec(
        name=org.peer_process, kind="peer", args=[fabric.bin("peer"), "node", "start"], env=env, port=ports.listen, host=topology.address,
        health_url=f"http://{topology.address}:{ports.operations}/healthz", other_ports=[ports.chaincode, ports.operations],
        probes=[peer_probe(topology, layout, org)],
    )


# Operator settings of the chaincode servers, passed on from the environment of `network up` when set.
CHAINCODE_SETTINGS = ("CHAINCODE_APP", "CHAINCODE_MAX_CLOCK_SKEW_S", "CHAINCODE_LOG_LEVEL")


def chaincode_spec(topology: Topology, layout: Layout, org: Org, package_id: str) -> ProcessSpec:
    ports = topology.peer_ports(org)
    tls = chaincode_tls(layout, org)
    passed = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH", *CHAINCODE_SETTINGS)
    keep = {key: os.environ[key] for key in passed if key in os.environ}
    env = keep | {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": f"{topology.address}:{ports.ccaas}",
        "CHAINCODE_TLS_CERT_FILE": str(tls.server_cert),
        "CHAINCODE_TLS_KEY_FILE": str(tls.server_key),
        "CHAINCODE_CLIENT_CA_CERT_FILE": str(tls.ca_cert),
    }
    # The server requires the peer's client certificate: the probe presents it, as the peer will.
    probe = TlsProbe(f"{topology.address}:{ports.ccaas}", tls.ca_cert, cert=tls.client_cert, key=tls.client_key)
    return ProcessSpec(
        name=org.chaincode_process, kind="chaincode", args=[sys.executable, "-m", "swarmfuse.chaincode"],
        env=env, port=ports.ccaas, probes=[probe], host=topology.address,
    )


def engine_spec(topology: Topology, layout: Layout) -> ProcessSpec:
    """The embedded engine: every org's peer port, and orderer0's listen (Broadcast), admin and operations ports."""
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH") if key in os.environ}
    orderer = topology.orderer_ports(topology.orderers[0])
    peer_ports = [topology.peer_ports(org).listen for org in topology.orgs]
    return ProcessSpec(
        name=ENGINE_PROCESS, kind="engine",
        args=[sys.executable, "-m", "swarmfuse.network.embedded", "--home", str(layout.home)],
        env=keep, port=peer_ports[0], host=topology.address, health_url=f"http://{topology.address}:{orderer.operations}/healthz",
        other_ports=[*peer_ports[1:], orderer.listen, orderer.admin, orderer.operations],
        probes=[*(peer_probe(topology, layout, org) for org in topology.orgs),
                TlsProbe(f"{topology.address}:{orderer.listen}", layout.orderer_tls_ca,
                         server_name=topology.orderer_host(topology.orderers[0]))],
    )


def peer_probe(topology: Topology, layout: Layout, org: Org) -> TlsProbe:
    """A TLS probe of ``org``'s peer endpoint (Fabric peer or engine), presenting the org admin's client TLS
    certificate when the network requires mutual TLS (for an org that joined later, whose admin is not in the home,
    the first founding org's admin's)."""
    founding = topology.founding_orgs
    tls = layout.user_dir(org if org in founding else founding[0], "Admin") / "tls"
    client = (tls / "client.crt", tls / "client.key") if topology.mutual_tls else (None, None)
    return TlsProbe(f"{topology.address}:{topology.peer_ports(org).listen}", layout.org_tls_ca(org), cert=client[0], key=client[1],
                    server_name=org.peer_host)
