"""Plain OS processes: run a command to completion, or start a long-lived node with a pid file and a
log file, check it, wait for its health endpoint, stop it by pid."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swarmfuse.network.errors import CommandFailed, NetworkError, PortInUse

logger = logging.getLogger(__name__)

STOP_GRACE_S = 10.0


def run_checked(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120.0, stdout_only: bool = False
) -> str:
    """Run ``args``; return stdout+stderr (or stdout only), or raise :class:`CommandFailed` with the tail of its output."""
    logger.debug("run %s", " ".join(args))
    try:
        done = subprocess.run(list(args), env=dict(env) if env else None, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        lines = output.strip().splitlines()
        tail = "\n".join([line for line in lines if "Error" in line] or lines[-6:])
        raise CommandFailed(f"{Path(args[0]).name} {args[1] if len(args) > 1 else ''} failed (exit {done.returncode}): {tail}")
    return done.stdout if stdout_only else output


@dataclass(frozen=True)
class ProcessSpec:
    """How to start one long-lived node and how to tell that it is ready."""

    name: str
    kind: str
    args: list[str]
    env: dict[str, str]
    port: int
    health_url: str | None = None
    cwd: Path | None = None
    other_ports: list[int] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        """Every port the node listens on (checked free before it starts)."""
        return [self.port, *self.other_ports]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports_free(ports: Sequence[int]) -> None:
    """Raise :class:`PortInUse` naming every port of ``ports`` already taken."""
    taken = [port for port in ports if not port_free(port)]
    if taken:
        raise PortInUse(f"port(s) already in use on 127.0.0.1: {', '.join(map(str, taken))} (choose another --port-base)")


class Supervisor:
    """Pid files under ``run_dir``, logs under ``log_dir``."""

    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        # Children started by this supervisor: their exit status is authoritative, whatever the pid files say.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The pid of ``name`` when its process is alive and still ours, else ``None`` (stale file removed)."""
        path = self.pid_file(name)
        try:
            pid, marker = path.read_text().split(maxsplit=1)
        except (OSError, ValueError):
            return None
        if _alive(int(pid)) and marker.strip() in _cmdline(int(pid)):
            return int(pid)
        path.unlink(missing_ok=True)
        return None

    def start(self, spec: ProcessSpec) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(spec.name).open("ab") as log:
            log.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(
                spec.args, env=spec.env, cwd=spec.cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        # The marker (the executable's path or module) lets a later run tell our process from a reused pid.
        marker = spec.args[2] if spec.args[1:2] == ["-m"] else spec.args[0]
        self.pid_file(spec.name).write_text(f"{proc.pid} {marker}\n")
        self._children[spec.name] = proc
        logger.info("started %s (pid %d)", spec.name, proc.pid)
        return proc.pid

    def _running_pid(self, name: str) -> int | None:
        """The pid of ``name``: our own child while it runs, else what its pid file says (see :meth:`pid`)."""
        child = self._children.get(name)
        if child is not None and child.poll() is None:
            return child.pid
        return self.pid(name)

    def wait_ready(self, spec: ProcessSpec, timeout: float = 60.0) -> None:
        """Poll the health URL (or the port) of ``spec`` until it answers; fail early if it died."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while time.monotonic() < deadline:
            if self._running_pid(spec.name) is None:
                raise NetworkError(f"{spec.name} exited during start-up; see {self.log_file(spec.name)}")
            if healthy(spec):
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        raise NetworkError(f"{spec.name} not ready after {timeout:.0f}s; see {self.log_file(spec.name)}")

    def stop(self, names: list[str], grace: float = STOP_GRACE_S) -> list[str]:
        """SIGTERM each running process of ``names``, SIGKILL whatever is left after ``grace``.

        Returns the names that were running and are now stopped."""
        running = {name: pid for name in names if (pid := self._running_pid(name)) is not None}
        for pid in running.values():
            _signal_group(pid, signal.SIGTERM)
        for name, pid in running.items():
            if not _wait_gone(pid, grace):
                logger.warning("%s (pid %d) ignored SIGTERM; killing it", name, pid)
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
            self.pid_file(name).unlink(missing_ok=True)
            if (child := self._children.pop(name, None)) is not None:
                child.wait()
            logger.info("stopped %s (pid %d)", name, pid)
        return list(running)


def healthy(spec: ProcessSpec) -> bool:
    """The node's main port accepts connections and its health endpoint (if any) answers 200."""
    if port_free(spec.port):
        return False
    if spec.health_url is None:
        return True
    try:
        with urllib.request.urlopen(spec.health_url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:
        return state.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)
