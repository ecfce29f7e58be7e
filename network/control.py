"""Network life cycle under one home: ``up`` (fresh or after a crash), ``down`` and ``status``."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from swarmfuse.network import ccaas, crypto, profiles
from swarmfuse.network import state as state_file
from swarmfuse.network.binaries import Fabric, locate
from swarmfuse.network.errors import (
    CommandFailed,
    FabricUnavailable,
    InvalidInput,
    LockTimeout,
    NotRunning,
    StopFailed,
)
from swarmfuse.network.layout import Layout
from swarmfuse.network.nodes import (
    ENGINE_PROCESS,
    chaincode_spec,
    engine_spec,
    install_builder,
    orderer_spec,
    peer_spec,
)
from swarmfuse.network.ordering import wait_for_leaders
from swarmfuse.network.peercli import PeerCli
from swarmfuse.network.procs import ProcessSpec, Supervisor, check_ports_free, healthy
from swarmfuse.network.state import Engine, NetworkState
from swarmfuse.network.topology import Org, Topology
from swarmfuse.wait import wait_until

logger = logging.getLogger(__name__)

ENGINE_CHOICES = ("auto", "embedded", "fabric")
START_ORDER = ("orderer", "engine", "peer", "chaincode")
LOCK_FILE = ".lock"
LOCK_TIMEOUT_S = 120.0
LOCK_TIMEOUT_ENV = "SWARMFUSE_LOCK_TIMEOUT"


def default_lock_timeout() -> float:
    """Seconds a command waits for the home's lock: ``SWARMFUSE_LOCK_TIMEOUT``, else 120."""
    text = os.environ.get(LOCK_TIMEOUT_ENV)
    if not text:
        return LOCK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise InvalidInput(f"{LOCK_TIMEOUT_ENV} must be a number of seconds >= 0, not {text!r}")
    return value


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it into the lock file."""
    try:
        holder = json.loads(path.read_text())
        return f"pid {holder['pid']}, since {holder['since']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def resolve_engine(choice: str) -> Engine:
    """``auto`` is Fabric when a release is configured or cached, the embedded engine otherwise."""
    if choice not in ENGINE_CHOICES:
        raise InvalidInput(f"--engine must be one of {', '.join(ENGINE_CHOICES)}, not {choice!r}")
    if choice != "auto":
        return choice  # type: ignore[return-value]
    try:
        locate()
    except FabricUnavailable:
        return "embedded"
    return "fabric"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    kind: str
    pid: int | None
    port: int
    health: str


@dataclass(frozen=True)
class UpResult:
    started: list[str]
    already_running: bool


class Network:
    """One network home: its state file, crypto, processes and logs."""

    def __init__(self, home: Path, fabric: Fabric | None = None, lock_timeout: float | None = None) -> None:
        self.layout = Layout(home.expanduser().resolve())
        self.supervisor = Supervisor(self.layout.run_dir, self.layout.log_dir, self.layout.home)
        self._fabric = fabric
        self.lock_timeout = default_lock_timeout() if lock_timeout is None else lock_timeout

    @property
    def home(self) -> Path:
        return self.layout.home

    @property
    def fabric(self) -> Fabric:
        if self._fabric is None:
            self._fabric = locate()
        return self._fabric

    def state(self) -> NetworkState | None:
        return state_file.load(self.layout.state_file)

    def require_state(self) -> NetworkState:
        current = self.state()
        if current is None:
            raise NotRunning(f"no network under {self.home}: run 'swarmfuse network up' first")
        return current

    def save(self, current: NetworkState) -> None:
        state_file.save(self.layout.state_file, current)

    def peer_cli(self) -> PeerCli:
        """The Fabric ``peer`` command for this home (Fabric engine only)."""
        if self.require_state().engine != "fabric":
            raise InvalidInput(f"{self.home} runs the embedded engine: the Fabric peer CLI does not apply")
        return PeerCli(self.fabric, self.require_state().topology(), self.layout)

    def specs(self, current: NetworkState) -> list[ProcessSpec]:
        """Every node of the network, in start order (chaincode servers once their package is installed)."""
        topology = current.topology()
        if current.engine == "embedded":
            specs = [engine_spec(topology, self.layout)]
        else:
            specs = [orderer_spec(self.fabric, topology, self.layout, name) for name in topology.orderers]
            specs += [peer_spec(self.fabric, topology, self.layout, org) for org in topology.orgs]
        specs += [
            chaincode_spec(topology, self.layout, org, current.package_ids[org.name])
            for org in topology.orgs
            if org.name in current.package_ids
        ]
        return specs

    @staticmethod
    def process_names(current: NetworkState) -> list[str]:
        """Names of every node of the network, in start order (no Fabric needed)."""
        topology = current.topology()
        if current.engine == "embedded":
            names = [ENGINE_PROCESS]
        else:
            names = list(topology.orderers) + [org.peer_process for org in topology.orgs]
        return names + [org.chaincode_process for org in topology.orgs if org.name in current.package_ids]

    def running(self) -> list[str]:
        current = self.state()
        if current is None:
            return []
        return [name for name in self.process_names(current) if self.supervisor.pid(name) is not None]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the home's lock: one command at a time changes a network. Others wait for it, at most
        ``lock_timeout`` seconds, then fail with :class:`LockTimeout` naming the command that holds it."""
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / LOCK_FILE
        with path.open("a+") as handle:

            def acquired() -> bool:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                return True

            if not wait_until(acquired, self.lock_timeout, poll=0.1):
                raise LockTimeout(
                    f"another swarmfuse command has held the lock on {self.home} for more than "
                    f"{self.lock_timeout:g}s ({_holder(path)}); wait for it to finish and retry, or set "
                    f"{LOCK_TIMEOUT_ENV} to wait longer"
                )
            holder = {"pid": os.getpid(), "command": " ".join(sys.argv) or "python",
                      "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(holder) + "\n")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()

    # --- up ---
    def up(self, topology: Topology | None = None, engine: str = "auto") -> UpResult:
        """Start a fresh network for ``topology`` on ``engine``, or restart the missing nodes of the existing one."""
        if topology is not None and self.state() is None:
            check_ports_free(topology.all_ports(), topology.address)  # before anything is written under the home
        with self.locked():
            return self._up(topology, engine)

    def _up(self, topology: Topology | None, engine: str) -> UpResult:
        current = self.state()
        if current is None:
            if topology is None:
                raise InvalidInput("no network under this home yet: give its topology")
            chosen = resolve_engine(engine)
            if chosen == "embedded" and topology.consensus != "raft":
                raise InvalidInput("the embedded engine has one built-in orderer: --consensus applies to --engine fabric")
            check_ports_free(topology.all_ports(), topology.address)
            current = self._create(topology, chosen)
        elif topology is not None and topology.to_dict() != current.topology().to_dict():
            raise InvalidInput(
                f"{self.home} already holds a network with {current.topology().describe()}: use it as is or "
                "'network down --purge' first"
            )
        elif engine != "auto" and resolve_engine(engine) != current.engine:
            raise InvalidInput(f"{self.home} holds a network on the {current.engine} engine: use it as is or "
                               "'network down --purge' first")
        install_builder(self.layout)
        started: list[str] = []
        try:
            missing = [s for s in self.specs(current) if s.kind != "chaincode" and self.supervisor.pid(s.name) is None]
            self._start(missing, started)
            if len(current.package_ids) < len(current.topology().orgs):
                self._install_packages(current)
            missing = [s for s in self.specs(current) if s.kind == "chaincode" and self.supervisor.pid(s.name) is None]
            self._start(missing, started)
            if current.engine == "fabric":
                wait_for_leaders(current.topology(), current.tasks)
        except BaseException:
            try:
                self.supervisor.stop(started)
            except StopFailed as exc:  # the start-up failure is what the caller must see; this one is logged
                logger.error("while undoing a failed start: %s", exc)
            raise
        return UpResult(started=started, already_running=not started)

    def _create(self, topology: Topology, engine: Engine) -> NetworkState:
        self.home.mkdir(parents=True, exist_ok=True)
        crypto.generate(self.fabric if engine == "fabric" else None, topology, self.layout)
        profiles.write_all(topology, self.layout, engine)
        current = NetworkState.for_topology(topology, engine)
        self.save(current)
        return current

    def _start(self, specs: list[ProcessSpec], started: list[str]) -> None:
        """Start ``specs`` by kind (orderers, then peers, then chaincode servers), waiting for readiness."""
        for kind in START_ORDER:
            batch = [spec for spec in specs if spec.kind == kind]
            for host in {spec.host for spec in batch}:
                check_ports_free([port for spec in batch if spec.host == host for port in spec.ports], host)
            for spec in batch:
                if spec.cwd:
                    spec.cwd.mkdir(parents=True, exist_ok=True)
                self.supervisor.start(spec)
                started.append(spec.name)
            for spec in batch:
                self.supervisor.wait_ready(spec)

    def _install_packages(self, current: NetworkState) -> None:
        """Build each org's CCaaS package; on Fabric install it on the org's peer (the engine reads it from the home)."""
        topology = current.topology()
        for org in topology.orgs:
            package = ccaas.build_package(topology, self.layout, org)
            if current.engine == "fabric":
                self._install_on_peer(topology, org, package)
            current.package_ids[org.name] = ccaas.package_id(package)
            self.save(current)

    def _install_on_peer(self, topology: Topology, org: Org, package: Path) -> None:
        try:
            PeerCli(self.fabric, topology, self.layout).check(org, "lifecycle", "chaincode", "install", str(package))
        except CommandFailed as exc:
            if "already successfully installed" not in str(exc):
                raise

    # --- down / status ---
    def down(self, purge: bool = False) -> list[str]:
        """Stop every process this home started (chaincode servers, peers, orderers); optionally delete the home."""
        if self.state() is None:
            raise NotRunning(f"nothing is running under {self.home}: it holds no swarmfuse network (no state.json)")
        with self.locked():
            current = self.require_state()
            # Raises StopFailed naming any process it could not stop (the home is then kept, even with purge).
            stopped = self.supervisor.stop(list(reversed(self.process_names(current))))
            if not stopped and not purge:
                raise NotRunning(f"nothing is running under {self.home}")
            if purge:
                shutil.rmtree(self.home)
        return stopped

    def status(self) -> list[NodeStatus]:
        """Every node with its pid and health (the nodes are probed concurrently)."""
        current = self.require_state()
        specs = self.specs(current)
        pids = [self.supervisor.pid(spec.name) for spec in specs]

        def health(item: tuple[ProcessSpec, int | None]) -> str:
            spec, pid = item
            return "down" if pid is None else ("ok" if healthy(spec) else "unhealthy")

        with ThreadPoolExecutor(max_workers=max(len(specs), 1)) as pool:
            states = list(pool.map(health, zip(specs, pids, strict=True)))
        return [NodeStatus(spec.name, spec.kind, pid, spec.port, state)
                for spec, pid, state in zip(specs, pids, states, strict=True)]
