"""Per-org connection profiles (``<home>/orgs/<Org>/connection.json``) that clients and the CLI use."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from swarmfuse.network.layout import Layout, msp_key_pair
from swarmfuse.network.topology import Org, Topology


class Endpoint(BaseModel):
    endpoint: str
    tls_ca_cert: str


class PeerEndpoint(Endpoint):
    host_override: str


class TlsPair(BaseModel):
    cert: str
    key: str


class KeyPair(BaseModel):
    """An identity's signing certificate and key; ``tls_client`` is its client TLS pair (mutual TLS)."""

    cert: str
    key: str
    tls_client: TlsPair | None = None


class Profile(BaseModel):
    """What a client of ``org`` needs: its peer, its identities (each with its client TLS pair, which the
    Gateway client presents for mutual TLS), the orderers, and the engine serving them."""

    engine: str
    org: str
    mspid: str
    auditor: bool
    peer: PeerEndpoint
    identities: dict[str, KeyPair]
    orderers: list[Endpoint]

    @classmethod
    def load(cls, path: Path) -> Profile:
        return cls.model_validate_json(path.read_text())


def _identity(user_dir: Path) -> KeyPair:
    """The identity under ``user_dir`` (``msp/`` and, as cryptogen writes it, ``tls/client.crt|key``)."""
    tls = user_dir / "tls"
    cert, key = msp_key_pair(user_dir / "msp")
    has_tls = (tls / "client.crt").is_file() and (tls / "client.key").is_file()
    tls_client = TlsPair(cert=str(tls / "client.crt"), key=str(tls / "client.key")) if has_tls else None
    return KeyPair(cert=str(cert), key=str(key), tls_client=tls_client)


def build(topology: Topology, layout: Layout, org: Org, engine: str) -> Profile:
    return Profile(
        engine=engine,
        org=org.name,
        mspid=org.mspid,
        auditor=org.auditor,
        peer=PeerEndpoint(
            endpoint=f"{topology.address}:{topology.peer_ports(org).listen}",
            tls_ca_cert=str(layout.org_tls_ca(org)),
            host_override=org.peer_host,
        ),
        identities={
            "admin": _identity(layout.user_dir(org, "Admin")),
            "user": _identity(layout.user_dir(org, "User1")),
        },
        orderers=[  # the embedded engine serves Broadcast on orderer0's port alone
            Endpoint(endpoint=f"{topology.address}:{topology.orderer_ports(name).listen}", tls_ca_cert=str(layout.orderer_tls_ca))
            for name in (topology.orderers if engine == "fabric" else topology.orderers[:1])
        ],
    )


def write_all(topology: Topology, layout: Layout, engine: str) -> None:
    """The founding orgs' profiles (an org that joined later keeps its users in its own home)."""
    for org in topology.founding_orgs:
        path = layout.profile(org)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(build(topology, layout, org, engine).model_dump(), indent=2) + "\n")
