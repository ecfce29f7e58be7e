"""The chaincode-as-a-service package of one org: ``metadata.json`` + ``code.tar.gz`` holding the
``connection.json`` (address and TLS material) the peer uses to dial that org's chaincode server."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from swarmfuse.files import PRIVATE, write_private
from swarmfuse.network.crypto import chaincode_tls
from swarmfuse.network.layout import Layout
from swarmfuse.network.topology import Org, Topology

CHAINCODE_NAME = "swarmfuse"
CHAINCODE_VERSION = "1.0"
LABEL = f"{CHAINCODE_NAME}_{CHAINCODE_VERSION}"


def connection(topology: Topology, layout: Layout, org: Org) -> dict[str, object]:
    tls = chaincode_tls(layout, org)
    return {
        "address": f"{topology.address}:{topology.peer_ports(org).ccaas}",
        "dial_timeout": "10s",
        "tls_required": True,
        "client_auth_required": True,
        "root_cert": tls.ca_cert.read_text(),
        "client_key": tls.client_key.read_text(),
        "client_cert": tls.client_cert.read_text(),
    }


def _tar(members: dict[str, bytes]) -> bytes:
    """A gzip tar of ``members`` with fixed times, each member readable by its owner alone (the connection file
    holds the chaincode client's TLS key)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), PRIVATE, 0
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def build_package(topology: Topology, layout: Layout, org: Org) -> Path:
    """Write ``org``'s package file (idempotent) and return its path."""
    path = layout.chaincode_dir(org) / f"{LABEL}.tar.gz"
    if path.is_file():
        return path
    code = _tar({"connection.json": json.dumps(connection(topology, layout, org), indent=2).encode()})
    metadata = json.dumps({"type": "ccaas", "label": LABEL}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, _tar({"metadata.json": metadata, "code.tar.gz": code}))
    return path


def package_id(package: Path) -> str:
    """``<label>:<sha256 of the package file>``, as ``peer lifecycle chaincode calculatepackageid`` gives."""
    return f"{LABEL}:{hashlib.sha256(package.read_bytes()).hexdigest()}"
