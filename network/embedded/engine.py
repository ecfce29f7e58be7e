"""The engine process of one home: per org a TLS gRPC endpoint (Gateway + Deliver) on the org's peer
port, per channel a ledger and an orderer, the orderer's Broadcast, operations and channel-participation
endpoints on orderer0's ports. Everything it needs comes from the home (state file, crypto, channel ledgers)."""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway.gateway_pb2_grpc import add_GatewayServicer_to_server
from fabric_protos.orderer.ab_pb2_grpc import add_AtomicBroadcastServicer_to_server
from fabric_protos.peer.events_pb2_grpc import add_DeliverServicer_to_server

from swarmfuse.network import ccaas
from swarmfuse.network import state as state_file
from swarmfuse.network.configtx import majority_endorsement_policy
from swarmfuse.network.embedded import admin
from swarmfuse.network.embedded.admin import JoinRefused
from swarmfuse.network.embedded.broadcast import BroadcastService
from swarmfuse.network.embedded.chaincode import ChaincodeClient
from swarmfuse.network.embedded.channel import Channel, create_ledger, open_channel
from swarmfuse.network.embedded.deliver import DeliverService
from swarmfuse.network.embedded.endorser import Endorser, PeerIdentity
from swarmfuse.network.embedded.gateway import GatewayService, Peers
from swarmfuse.network.embedded.genesis import signing_identity
from swarmfuse.network.embedded.rpc import StreamSlots
from swarmfuse.network.layout import Layout
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.identity import digest
from swarmfuse.network.protocol.model import ChaincodeDefinition
from swarmfuse.network.topology import Org, Topology

logger = logging.getLogger(__name__)

MAX_MESSAGE = 100 * 1024 * 1024
ORDERER_THREADS = 8
"""Broadcast streams orderer0's port serves at once (each holds a server thread)."""
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9.-]{0,248}$")
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),  # gRPC's default is on: another process could bind the org's port beside us
    # Clients (ours, the Node client, peers' keepalives) may ping; accept it as Fabric's peers do.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.http2.max_ping_strikes", 0),
]


@dataclass(frozen=True)
class EndpointLimits:
    """Calls one org endpoint serves at once. gRPC's threaded server holds a thread per open call, so the endpoint
    has a thread for every long-lived call it admits plus ``unary`` threads that only Endorse, Evaluate and Submit
    use: open streams never make those queue. A long-lived call beyond its bound is refused (RESOURCE_EXHAUSTED).
    """

    streams: int = 448
    """Deliver and ChaincodeEvents calls (open until the client ends them)."""
    commit_statuses: int = 192
    """CommitStatus calls (open until their transaction commits)."""
    unary: int = 64
    """Endorse, Evaluate and Submit calls in progress (more wait for a thread)."""

    @property
    def threads(self) -> int:
        return self.streams + self.commit_statuses + self.unary


def org_server(peers: Peers, mspid: str, mutual_tls: bool, limits: EndpointLimits = EndpointLimits()) -> grpc.Server:
    """The Gateway and Deliver services of org ``mspid`` on a gRPC server with ``limits`` (no port bound yet)."""
    server = grpc.server(ThreadPoolExecutor(max_workers=limits.threads, thread_name_prefix=f"grpc-{mspid}"),
                         options=SERVER_OPTIONS)
    streams = StreamSlots(limits.streams, "Deliver and ChaincodeEvents")
    add_GatewayServicer_to_server(
        GatewayService(peers, mspid, streams, StreamSlots(limits.commit_statuses, "CommitStatus")), server)
    add_DeliverServicer_to_server(DeliverService(peers.channels, mspid, streams, mutual_tls=mutual_tls), server)
    return server


def ledger_dir(layout: Layout) -> Path:
    """Where the engine keeps one SQLite ledger per channel."""
    return layout.home / "data" / "engine"


class Engine:
    """Everything the engine serves for one home; ``start`` binds every endpoint, ``stop`` ends them."""

    def __init__(self, home: Path) -> None:
        self.layout = Layout(home.expanduser().resolve())
        current = state_file.load(self.layout.state_file)
        if current is None:
            raise FileNotFoundError(f"no network state under {self.layout.home}")
        self.state = current
        self.topology: Topology = current.topology()
        orderer_msp = self.layout.orderer_dir(self.topology, self.topology.orderers[0]) / "msp"
        self._orderer_identity, self._orderer_signer = signing_identity(orderer_msp, "OrdererMSP")
        self.channels: dict[str, Channel] = {}
        self._join_lock = threading.Lock()
        self.peers = Peers({org.mspid: self._endorser(org) for org in self.topology.orgs}, self.channels)
        self._home_tls_cas = {self.layout.org_tls_ca(org).read_bytes() for org in self.topology.orgs}
        self._servers: list[grpc.Server] = []
        self._http: list[object] = []
        self._serving = threading.Event()

    def _endorser(self, org: Org) -> Endorser:
        serialized, signer = signing_identity(self.layout.peer_dir(org) / "msp", org.mspid)
        connection = ccaas.connection(self.topology, self.layout, org)
        client = ChaincodeClient(
            str(connection["address"]), str(connection["root_cert"]).encode(), str(connection["client_cert"]).encode(),
            str(connection["client_key"]).encode(), None,
        )
        address = f"{self.topology.address}:{self.topology.peer_ports(org).listen}"
        return Endorser(org.name, PeerIdentity(org.mspid, serialized, signer), client, address)

    def _sign_as_orderer(self, message: bytes) -> bytes:
        return self._orderer_signer.sign(digest(message))

    # --- channels -------------------------------------------------------------------------------

    def _open_channels(self) -> None:
        folder = ledger_dir(self.layout)
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.sqlite")):
            channel = open_channel(path, self._sign_as_orderer, self._orderer_identity)
            channel.start()
            if channel.committed_chaincode() is None:  # it stopped between the genesis block and block 1
                self._define_chaincode(channel)
            self.channels[channel.name] = channel
            logger.info("channel %s reopened at height %d", channel.name, channel.ledger.height)

    def join(self, genesis: common_pb2.Block, chaincode: ChaincodeDefinition) -> str:
        """Join a new channel from its genesis config block (the participation API)."""
        try:
            definition = blockfmt.channel_from_config_block(genesis)
        except Exception as exc:  # a block that is not a channel config
            raise JoinRefused(f"the block is not a channel genesis block: {exc}") from exc
        if genesis.header.number != 0:
            raise JoinRefused(f"a genesis block has number 0, not {genesis.header.number}")
        if not _CHANNEL_NAME.match(definition.name):
            raise JoinRefused(f"invalid channel name {definition.name!r}")
        with self._join_lock:
            if definition.name in self.channels:
                raise JoinRefused(f"channel {definition.name} already exists")
            path = ledger_dir(self.layout) / f"{definition.name}.sqlite"
            create_ledger(path, genesis, chaincode).close()
            channel = open_channel(path, self._sign_as_orderer, self._orderer_identity)
            channel.start()
            try:
                self._define_chaincode(channel)
            except BaseException:
                channel.stop()
                raise
            self.channels[channel.name] = channel
        logger.info("joined channel %s (%d orgs)", definition.name, len(definition.orgs))
        return definition.name

    def _define_chaincode(self, channel: Channel) -> None:
        """Commit the channel's chaincode definition through ``_lifecycle`` as ``swarmfuse task create`` does on
        Fabric: submitted by the admin of the channel's first member org, endorsed by every org's peer (the
        channel's orgs are the home's until the definition is committed: no update comes before it)."""
        first = next(org for org in channel.peer_orgs if org.kind == "member")
        org = next(o for o in self.topology.orgs if o.mspid == first.mspid)
        admin_identity = PeerIdentity(first.mspid, *signing_identity(self.layout.user_dir(org, "Admin") / "msp",
                                                                     first.mspid))
        channel.define_chaincode(admin_identity, [self.peers.endorsers[o.mspid].identity for o in channel.peer_orgs])

    def redefine(self, name: str) -> dict[str, object]:
        """Commit the next definition of channel ``name``'s chaincode when its endorsement policy is not a majority
        of the channel's member orgs' peers (orgs joined or left by channel updates): by the admin of its first
        member org of the home, endorsed by every channel org's peer. :class:`JoinRefused` when the channel is
        unknown or a member org's peer is not hosted here (``swarmfuse network add-peer`` first)."""
        channel = self.channels.get(name)
        if channel is None:
            raise JoinRefused(f"no channel {name!r} on this engine")
        members = [org.mspid for org in channel.peer_orgs if org.kind == "member"]
        missing = [mspid for mspid in members if mspid not in self.peers.endorsers]
        if missing:
            raise JoinRefused(f"channel {name}: no peer of {', '.join(missing)} is hosted here; its endorsement "
                              "policy cannot name it ('swarmfuse network add-peer' first)")
        founding = {org.mspid: org for org in self.topology.founding_orgs}
        first = next(org for org in channel.peer_orgs if org.kind == "member" and org.mspid in founding)
        admin_identity = PeerIdentity(first.mspid, *signing_identity(
            self.layout.user_dir(founding[first.mspid], "Admin") / "msp", first.mspid))
        endorsers = [self.peers.endorsers[o.mspid].identity for o in channel.peer_orgs
                     if o.mspid in self.peers.endorsers]
        with self._join_lock:
            defined = channel.redefine_chaincode(majority_endorsement_policy(members), admin_identity, endorsers)
        logger.info("channel %s: chaincode %s at sequence %d, policy %s", name, defined.name, defined.sequence,
                    defined.policy)
        return {"name": defined.name, "sequence": defined.sequence, "endorsement_policy": str(defined.policy),
                "orgs": [org.mspid for org in channel.peer_orgs]}

    def listing(self) -> list[dict[str, object]]:
        return [{"name": name, "height": channel.ledger.height} for name, channel in sorted(self.channels.items())]

    # --- serving --------------------------------------------------------------------------------

    def start(self) -> None:
        self._open_channels()
        for org in self.topology.orgs:
            self._servers.append(self._org_server(org))
        orderer0 = self.topology.orderers[0]
        ports = self.topology.orderer_ports(orderer0)
        tls = self.layout.orderer_dir(self.topology, orderer0) / "tls"
        self._http.append(admin.start_participation(
            (self.topology.address, ports.admin), tls / "server.crt", tls / "server.key", self.layout.orderer_tls_ca,
            self.join, self.listing, self.redefine,
        ))
        self._http.append(admin.start_operations((self.topology.address, ports.operations), self._serving.is_set))
        self._servers.append(self._orderer_server(ports.listen, tls))
        self._serving.set()
        logger.info("engine serving %d orgs and %d channels", len(self.topology.orgs), len(self.channels))

    def _orderer_server(self, port: int, tls: Path) -> grpc.Server:
        """AtomicBroadcast's Broadcast on orderer0's port, with orderer0's TLS pair (no client certificate asked,
        as the home's Fabric orderers)."""
        server = grpc.server(ThreadPoolExecutor(max_workers=ORDERER_THREADS, thread_name_prefix="grpc-orderer"),
                             options=SERVER_OPTIONS)
        add_AtomicBroadcastServicer_to_server(BroadcastService(self.channels), server)
        pair = ((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())
        if server.add_secure_port(f"{self.topology.address}:{port}", grpc.ssl_server_credentials([pair])) != port:
            raise OSError(f"cannot listen on {self.topology.address}:{port} for the orderer")
        server.start()
        return server

    def _org_server(self, org: Org) -> grpc.Server:
        mutual_tls = self.topology.mutual_tls
        server = org_server(self.peers, org.mspid, mutual_tls)
        tls = self.layout.peer_dir(org) / "tls"
        pair = ((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())
        if mutual_tls:  # as a Fabric peer with clientAuthRequired: a client certificate from a TLS CA of an org of
            # the home or of a channel's config in force (a peer takes its channels' TLS CAs at each config update)
            def fetch() -> grpc.ServerCertificateConfiguration | None:
                client_cas = self._client_tls_cas()
                if client_cas == served[0]:
                    return None
                served[0] = client_cas
                return grpc.ssl_server_certificate_configuration([pair], root_certificates=client_cas)

            served = [self._client_tls_cas()]
            initial = grpc.ssl_server_certificate_configuration([pair], root_certificates=served[0])
            credentials = grpc.dynamic_ssl_server_credentials(initial, fetch, require_client_authentication=True)
        else:
            credentials = grpc.ssl_server_credentials([pair])
        port = self.topology.peer_ports(org).listen
        if server.add_secure_port(f"{self.topology.address}:{port}", credentials) != port:
            raise OSError(f"cannot listen on {self.topology.address}:{port} for {org.name}")
        server.start()
        return server

    def _client_tls_cas(self) -> bytes:
        """The TLS CA certificates (PEM) of the home's orgs and of every org of a channel's config in force."""
        cas = set(self._home_tls_cas)
        for channel in list(self.channels.values()):
            cas.update(pem for org in channel.peer_orgs for pem in org.tls_ca_certs)
        return b"".join(pem if pem.endswith(b"\n") else pem + b"\n" for pem in sorted(cas))

    def stop(self) -> None:
        """Stop accepting calls, let the orderers commit what they hold, close the ledgers."""
        self._serving.clear()
        for server in self._servers:
            server.stop(grace=2.0).wait()
        for http in self._http:
            http.shutdown()  # type: ignore[attr-defined]
        for channel in self.channels.values():
            channel.stop()
        for endorser in self.peers.endorsers.values():
            endorser.close()
        self.peers.pool.shutdown(wait=False)
