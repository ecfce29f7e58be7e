"""Session fixture ``ledger_network``: ONE real network per ledger engine for the whole test session.

Four DC orgs and the Auditor org; task channel ``task1`` with DC1, DC2, DC3 and the Auditor (DC4 stays
outside). The fixture is parametrised by engine: the embedded engine always, Fabric too wherever a
release is configured (``SWARMFUSE_FABRIC_HOME`` or the cache). Each test's ID names the engine it ran
on (``[embedded]`` / ``[fabric]``), and the summary counts the tests run on each. Home and port range
come from the session's tmp dir and a free port range, so it never collides with a developer's network.
``SWARMFUSE_REQUIRE_FABRIC=1`` makes a missing Fabric a failure.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

import pytest
from fabric_protos.common import common_pb2

from swarmfuse.client.gateway import Gateway
from swarmfuse.network import tasks
from swarmfuse.network.binaries import Fabric, locate
from swarmfuse.network.control import Network
from swarmfuse.network.errors import FabricUnavailable
from swarmfuse.network.procs import port_free
from swarmfuse.network.tasks import InvokeResult
from swarmfuse.network.topology import PORT_SPAN, Org, Topology

TASK = "task1"
TASK_ORGS = "DC1,DC2,DC3,Auditor"
CHAINCODE = "swarmfuse"

# The networks of the test session serve the production contracts plus the test-only ``Sample`` contract
# (tests/chaincode/sample_app.py): chaincode servers inherit these settings from ``network up``.
SAMPLE_APP_DIR = Path(__file__).resolve().parent / "chaincode"
os.environ["CHAINCODE_APP"] = "sample_app"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SAMPLE_APP_DIR), os.environ.get("PYTHONPATH")]))


def fabric_release() -> Fabric | None:
    """The configured Fabric release, ``None`` when there is none (a failure under ``SWARMFUSE_REQUIRE_FABRIC=1``)."""
    try:
        return locate()
    except FabricUnavailable as exc:
        if os.environ.get("SWARMFUSE_REQUIRE_FABRIC") == "1":
            raise pytest.UsageError(f"SWARMFUSE_REQUIRE_FABRIC=1 but {exc}") from exc
        return None


ENGINES = ["embedded"] + (["fabric"] if fabric_release() is not None else [])

# The session fixture ``job`` (the main job's round, once per engine) lives in tests/round_job.py; the site
# store's databases (fixture ``db_url``: SQLite and PostgreSQL) in tests/store_databases.py.
pytest_plugins = ["round_job", "store_databases"]


def require_fabric() -> Fabric:
    """The Fabric release, for tests of Fabric-only behaviour (they are collected only where it exists)."""
    fabric = fabric_release()
    assert fabric is not None, "collected a Fabric-only test without a Fabric release"
    return fabric


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


def new_network(home: Path, engine: str) -> Network:
    return Network(home, require_fabric() if engine == "fabric" else None)


class LedgerNetwork:
    """Handle on the session's network of one engine: profiles, gateways, invoke/query, blocks."""

    def __init__(self, network: Network, task: str) -> None:
        self.network = network
        self.task = task
        self.home = network.home
        self.engine = network.require_state().engine
        self.topology = network.require_state().topology()

    def org(self, name: str) -> Org:
        return self.topology.org(name)

    @property
    def task_members(self) -> list[Org]:
        """The task's DC orgs (its endorsers)."""
        names = self.network.require_state().tasks[self.task].orgs
        return [org for org in map(self.org, names) if not org.auditor]

    def profile_path(self, org: str) -> Path:
        return self.network.layout.profile(org)

    def profile(self, org: str) -> dict[str, object]:
        return json.loads(self.profile_path(org).read_text())

    def gateway(self, org: str, user: str = "user") -> Gateway:
        return Gateway.from_profile(self.profile_path(org), user=user)

    def submit(self, org: str, function: str, *args: str, endorsers: Sequence[str] | None = None) -> InvokeResult:
        mspids = [self.org(name).mspid for name in endorsers] if endorsers else None
        return tasks.invoke(self.network, self.task, self.org(org), function, *args, endorsers=mspids)

    def invoke(self, org: str, function: str, *args: str) -> str:
        return self.submit(org, function, *args).payload.decode()

    def query(self, org: str, function: str, *args: str) -> str:
        return tasks.query(self.network, self.task, self.org(org), function, *args).decode()

    def blocks(self, org: str, start: int, stop: int) -> list[common_pb2.Block]:
        """Committed blocks ``start..stop`` (inclusive) through ``org``'s Deliver service."""
        with self.gateway(org) as gateway, gateway.network(self.task).block_events(start_block=start) as events:
            found = []
            for block in events:
                found.append(block)
                if block.header.number >= stop:
                    return found
        raise AssertionError("block stream ended early")

    def height(self, org: str) -> int:
        """The channel's height as ``org``'s Deliver service reports it (newest block + 1)."""
        with self.gateway(org) as gateway:
            return gateway.network(self.task).newest_block().header.number + 1


@pytest.fixture(scope="session", params=ENGINES)
def ledger_network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerNetwork]:
    engine = request.param
    home: Path = tmp_path_factory.mktemp(f"swarmfuse-{engine}") / "home"
    network = new_network(home, engine)
    # A SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the finally below still stops the network.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        network.up(Topology(n_orgs=4, auditor=True, port_base=free_port_base()), engine)
        tasks.create(network, TASK, TASK_ORGS)
        yield LedgerNetwork(network, TASK)
    finally:
        if network.running():
            network.down()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each available engine, for tests that start a network of their own."""
    return request.param


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


_ran_on: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for engine_name in ("embedded", "fabric"):
            if f"[{engine_name}" in report.nodeid or f"-{engine_name}]" in report.nodeid or f"-{engine_name}-" in report.nodeid:
                _ran_on[engine_name] += 1
                break


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _ran_on:
        parts = [f"{_ran_on[name]} passed on {name}" for name in ("embedded", "fabric")]
        note = "" if "fabric" in ENGINES else " (no Fabric release configured on this machine)"
        terminalreporter.write_line(f"ledger engines: {', '.join(parts)}{note}")
