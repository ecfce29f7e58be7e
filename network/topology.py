"""The shape of a network: organisations, nodes, the address they listen on (the operator's IPv4 address,
127.0.0.1 unless ``network up --address`` says otherwise) and their ports.

Ports are laid out from one base so two homes with different bases never overlap:
orderer ``i`` uses ``base + 3i`` (listen), ``+1`` (admin), ``+2`` (operations); the peer of org
``j`` (in topology order) uses ``base + 20 + 5j`` (listen), ``+1`` (chaincode), ``+2`` (operations),
``+3`` (the org's chaincode server), ``+4`` (the org's site agent). A network needs :data:`PORT_SPAN` ports from its base.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, astuple, dataclass, field
from typing import Literal

from swarmfuse.network.errors import InvalidInput

MIN_ORGS, MAX_ORGS = 2, 8
AUDITOR = "Auditor"
ORDERER_MSP = "OrdererMSP"
ORDERER_DOMAIN = "orderer.swarmfuse.local"
PORT_SPAN = 70
MAX_HOSTED = (PORT_SPAN - 20) // 5
"""Peer orgs (founding, auditor and joined) whose five ports fit in :data:`PORT_SPAN`."""
_ORG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,48}$")
HOST = "127.0.0.1"
"""The default listen address: loopback."""
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
"""What certificates name besides the operator's address and names when that address is a loopback one."""
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
Consensus = Literal["raft", "bft"]
ORDERER_COUNT: dict[str, int] = {"raft": 3, "bft": 4}


@dataclass(frozen=True)
class Org:
    """A peer organisation with its single peer."""

    name: str
    index: int
    auditor: bool = False

    @property
    def mspid(self) -> str:
        return f"{self.name}MSP"

    @property
    def domain(self) -> str:
        return f"{self.name.lower()}.swarmfuse.local"

    @property
    def peer_host(self) -> str:
        return f"peer0.{self.domain}"

    @property
    def peer_process(self) -> str:
        return f"peer-{self.name}"

    @property
    def chaincode_process(self) -> str:
        return f"chaincode-{self.name}"


@dataclass(frozen=True)
class OrdererPorts:
    listen: int
    admin: int
    operations: int


@dataclass(frozen=True)
class PeerPorts:
    """The peer's ports, plus the ports of its org's chaincode server and site agent."""

    listen: int
    chaincode: int
    operations: int
    ccaas: int
    site: int


@dataclass(frozen=True)
class Topology:
    """What ``network up`` starts; persisted in the home's state file."""

    n_orgs: int = 3
    auditor: bool = False
    consensus: Consensus = "raft"
    port_base: int = 17000
    # Peers (Fabric's, or the embedded engine's org endpoints) require a client TLS certificate from one of
    # the orgs' TLS CAs, and Deliver then checks the request's TLS certificate hash (Fabric's TLS binding).
    mutual_tls: bool = True
    address: str = HOST
    """The IPv4 address every listener binds to and clients reach; certificates name it."""
    names: tuple[str, ...] = ()
    """Further host names (or addresses) the nodes' TLS certificates carry, for clients that use them."""
    joined: tuple[str, ...] = ()
    """Orgs made in homes of their own that joined a task later and whose peer this home's engine hosts
    (``swarmfuse network add-peer``), after the founding orgs in port order."""
    orgs: tuple[Org, ...] = field(init=False)

    def __post_init__(self) -> None:
        validate_org_count(self.n_orgs)
        if self.consensus not in ORDERER_COUNT:
            raise InvalidInput(f"consensus must be one of {', '.join(ORDERER_COUNT)}, not {self.consensus!r}")
        if not 1024 <= self.port_base <= 65535 - PORT_SPAN:
            raise InvalidInput(f"port base {self.port_base} out of range 1024..{65535 - PORT_SPAN}")
        check_listen_address(self.address)
        object.__setattr__(self, "names", tuple(check_host_name(name) for name in self.names))
        orgs = [Org(f"DC{i}", i - 1) for i in range(1, self.n_orgs + 1)]
        if self.auditor:
            orgs.append(Org(AUDITOR, self.n_orgs, auditor=True))
        object.__setattr__(self, "joined", tuple(self.joined))
        for name in self.joined:
            if not _ORG_NAME.match(name) or any(org.name == name for org in orgs):
                raise InvalidInput(f"org {name!r} cannot join: not a valid org name, or the network has it already")
            orgs.append(Org(name, len(orgs)))
        if len(orgs) > MAX_HOSTED:
            raise InvalidInput(f"a network's ports make room for {MAX_HOSTED} peer orgs; it would have {len(orgs)}")
        object.__setattr__(self, "orgs", tuple(orgs))

    @property
    def founding_orgs(self) -> tuple[Org, ...]:
        """The orgs made with the network (its home holds their CAs), without those that joined later."""
        return tuple(org for org in self.orgs if org.name not in self.joined)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("orgs")
        data["names"] = list(self.names)
        data["joined"] = list(self.joined)
        return data

    def endpoint(self, port: int) -> str:
        """``address:port`` of one of the network's listeners."""
        return f"{self.address}:{port}"

    @property
    def sans(self) -> tuple[str, ...]:
        """What the nodes' TLS certificates name: localhost and 127.0.0.1 when the address is a loopback one, the
        address, then the operator's names."""
        local = LOOPBACK_NAMES if ipaddress.ip_address(self.address).is_loopback else ()
        return tuple(dict.fromkeys((*local, self.address, *self.names)))

    @property
    def orderers(self) -> tuple[str, ...]:
        return tuple(f"orderer{i}" for i in range(ORDERER_COUNT[self.consensus]))

    def orderer_host(self, name: str) -> str:
        return f"{name}.{ORDERER_DOMAIN}"

    def orderer_ports(self, name: str) -> OrdererPorts:
        start = self.port_base + 3 * self.orderers.index(name)
        return OrdererPorts(listen=start, admin=start + 1, operations=start + 2)

    def peer_ports(self, org: Org) -> PeerPorts:
        start = self.port_base + 20 + 5 * org.index
        return PeerPorts(listen=start, chaincode=start + 1, operations=start + 2, ccaas=start + 3, site=start + 4)

    def all_ports(self) -> list[int]:
        """Every port the network listens on."""
        nodes: list[OrdererPorts | PeerPorts] = [self.orderer_ports(name) for name in self.orderers]
        nodes += [self.peer_ports(org) for org in self.orgs]
        return [port for ports in nodes for port in astuple(ports)]

    def describe(self) -> str:
        """One line naming what distinguishes this network (for messages)."""
        names = f" ({', '.join(self.names)})" if self.names else ""
        joined = f", joined {', '.join(self.joined)}" if self.joined else ""
        return (f"{self.n_orgs} orgs{joined}, auditor={self.auditor}, consensus={self.consensus}, port base "
                f"{self.port_base}, mutual TLS {'on' if self.mutual_tls else 'off'}, address {self.address}{names}")

    def org(self, name: str) -> Org:
        for org in self.orgs:
            if org.name == name:
                return org
        raise InvalidInput(f"unknown org {name!r}: this network has {', '.join(o.name for o in self.orgs)}")


def check_listen_address(address: str) -> str:
    """An IPv4 address of one interface (not 0.0.0.0: clients and certificates need the address they reach);
    :class:`InvalidInput` naming what is wrong. Whether this host has it is checked when something binds it."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidInput(f"address {address!r} is not an IPv4 address (e.g. 10.0.0.5); give host names with --name") from None
    if parsed.version != 4:
        raise InvalidInput(f"address {address}: only IPv4 listen addresses are supported")
    if parsed.is_unspecified or parsed.is_multicast or address == "255.255.255.255":
        raise InvalidInput(f"address {address} names no single interface: give the address clients reach this host at")
    return address


def check_host_name(name: str) -> str:
    """A DNS host name or an IP address a certificate may name; :class:`InvalidInput` otherwise."""
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    if not _HOST_NAME.match(name):
        raise InvalidInput(f"{name!r} is neither a host name nor an IP address")
    return name


def validate_org_count(n: int) -> None:
    if not MIN_ORGS <= n <= MAX_ORGS:
        raise InvalidInput(f"--orgs must be between {MIN_ORGS} and {MAX_ORGS}, got {n}")


# Fabric channel names: lower case letters, digits, '.' and '-', starting with a letter, < 250 chars.
_CHANNEL = re.compile(r"^[a-z][a-z0-9.-]{0,248}$")


def validate_channel_name(name: str) -> None:
    if not _CHANNEL.match(name):
        raise InvalidInput(
            f"task name {name!r} is not a valid channel name: use lower-case letters, digits, '.' and '-', "
            "starting with a letter, at most 249 characters"
        )


def parse_org_list(text: str, topology: Topology) -> list[Org]:
    """``DC1,DC2,...`` into orgs of ``topology``: unknown, repeated or auditor-only lists are refused."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InvalidInput("--orgs is empty: name at least two orgs, e.g. DC1,DC2")
    if len(set(names)) != len(names):
        raise InvalidInput(f"--orgs names an org twice: {text}")
    orgs = [topology.org(name) for name in names]
    members = [org for org in orgs if not org.auditor]
    if len(members) < 2:
        raise InvalidInput("a task needs at least two DC orgs (the auditor org does not count)")
    return orgs
