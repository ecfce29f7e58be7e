"""Session fixture ``fabric_network``: ONE real Fabric network for the whole test session.

Four DC orgs and the Auditor org; task channel ``task1`` with DC1, DC2, DC3 and the Auditor (DC4 stays
outside). Home and port range come from the session's tmp dir and a free port range, so it never
collides with a developer's network. Without Fabric the dependent tests are skipped with the reason
(or fail when ``SWARMFUSE_REQUIRE_FABRIC=1``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

import pytest

from swarmfuse.network import tasks
from swarmfuse.network.binaries import Fabric, locate
from swarmfuse.network.control import Network
from swarmfuse.network.errors import FabricUnavailable
from swarmfuse.network.peercli import InvokeResult, PeerCli
from swarmfuse.network.procs import port_free
from swarmfuse.network.topology import PORT_SPAN, Org, Topology

TASK = "task1"
TASK_ORGS = "DC1,DC2,DC3,Auditor"


def require_fabric() -> Fabric:
    """The located Fabric release, or skip (fail under ``SWARMFUSE_REQUIRE_FABRIC=1``) with the reason."""
    try:
        return locate()
    except FabricUnavailable as exc:
        if os.environ.get("SWARMFUSE_REQUIRE_FABRIC") == "1":
            pytest.fail(f"SWARMFUSE_REQUIRE_FABRIC=1 but {exc}")
        pytest.skip(str(exc))


def free_port_base(first: int = 20000, last: int = 60000) -> int:
    """A base whose whole port range is free now, starting from a pid-dependent offset."""
    span = 100
    slots = (last - first) // span
    start = os.getpid() % slots
    for step in range(slots):
        base = first + ((start + step) % slots) * span
        if all(port_free(port) for port in range(base, base + PORT_SPAN)):
            return base
    raise RuntimeError("no free port range for the test network")


class FabricNetwork:
    """Handle on the session's network: profiles and the peer CLI as each org's admin."""

    def __init__(self, network: Network, task: str) -> None:
        self.network = network
        self.task = task
        self.home = network.home
        self.fabric_home = network.fabric.home
        self.cli: PeerCli = network.peer_cli()
        self.topology = network.require_state().topology()

    def org(self, name: str) -> Org:
        return self.topology.org(name)

    @property
    def task_members(self) -> list[Org]:
        """The task's DC orgs (its endorsers)."""
        names = self.network.require_state().tasks[self.task].orgs
        return [org for org in map(self.org, names) if not org.auditor]

    def profile(self, org: str) -> dict[str, object]:
        return json.loads(self.network.layout.profile(org).read_text())

    def peer_cli(self, org: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli.run(self.org(org), *args)

    def submit(self, org: str, function: str, *args: str, wait: bool = True, endorsers: Sequence[str] | None = None) -> InvokeResult:
        targets = [self.org(name) for name in endorsers] if endorsers else self.task_members
        return tasks.invoke(self.cli, self.task, self.org(org), targets, function, *args, wait=wait)

    def invoke(self, org: str, function: str, *args: str, wait: bool = True) -> str:
        return self.submit(org, function, *args, wait=wait).payload.decode()

    def query(self, org: str, function: str, *args: str) -> str:
        return tasks.query(self.cli, self.task, self.org(org), function, *args)


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricNetwork]:
    fabric = require_fabric()
    home: Path = tmp_path_factory.mktemp("swarmfuse-network") / "home"
    network = Network(home, fabric)
    # A SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the finally below still stops the network.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        network.up(Topology(n_orgs=4, auditor=True, port_base=free_port_base()))
        tasks.create(network, TASK, TASK_ORGS)
        yield FabricNetwork(network, TASK)
    finally:
        if network.running():
            network.down()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
