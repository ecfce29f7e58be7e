"""The home's state file: the topology, the installed package IDs and the tasks (written atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from swarmfuse.files import write_atomic
from swarmfuse.network.topology import Consensus, Topology


class TaskRecord(BaseModel):
    name: str
    orgs: list[str]
    policy: str
    created: str


Engine = Literal["embedded", "fabric"]


class NetworkState(BaseModel):
    engine: Engine = "fabric"  # homes made before the embedded engine existed are Fabric homes
    n_orgs: int
    auditor: bool
    consensus: Consensus
    port_base: int
    mutual_tls: bool = False  # homes made before the option existed serve server-authenticated TLS only
    address: str = "127.0.0.1"  # homes made before the option existed listen on loopback
    names: list[str] = Field(default_factory=list)
    joined: list[str] = Field(default_factory=list)  # orgs whose peer the engine hosts since they joined a task
    package_ids: dict[str, str] = Field(default_factory=dict)
    tasks: dict[str, TaskRecord] = Field(default_factory=dict)

    @classmethod
    def for_topology(cls, topology: Topology, engine: Engine) -> NetworkState:
        return cls.model_validate({**topology.to_dict(), "engine": engine})

    def topology(self) -> Topology:
        return Topology(n_orgs=self.n_orgs, auditor=self.auditor, consensus=self.consensus, port_base=self.port_base,
                        mutual_tls=self.mutual_tls, address=self.address, names=tuple(self.names), joined=tuple(self.joined))


def load(path: Path) -> NetworkState | None:
    if not path.is_file():
        return None
    return NetworkState.model_validate_json(path.read_text())


def save(path: Path, state: NetworkState) -> None:
    """Write the state atomically (:func:`swarmfuse.files.write_atomic`)."""
    write_atomic(path, (json.dumps(state.model_dump(), indent=2) + "\n").encode())
