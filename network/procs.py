"""Plain OS processes: run a command to completion, or start a long-lived node with a pid file and a
log file, check it, wait until it is healthy, stop it by pid.

A node is identified by its pid file's record: pid, start time (``/proc/<pid>/stat`` field 22), boot ID
and home. A live process counts as ours only when all of them match; a command line is never looked at.
Health comes from each node's operations endpoint and a real TLS probe of its gRPC listener, not from
"something holds the port"."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

from swarmfuse.files import write_atomic
from swarmfuse.network.errors import AddressUnavailable, CommandFailed, NetworkError, PortInUse, StopFailed
from swarmfuse.wait import wait_until

logger = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
KILL_WAIT_S = 5.0
PROBE_TIMEOUT_S = 2.0


def run_checked(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120.0, stdout_only: bool = False
) -> str:
    """Run ``args``; return stdout+stderr (or stdout only), or raise :class:`CommandFailed` with the tail of its output."""
    logger.debug("run %s", " ".join(args))
    try:
        done = subprocess.run(list(args), env=dict(env) if env else None, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        lines = output.strip().splitlines()
        tail = "\n".join([line for line in lines if "Error" in line] or lines[-6:])
        raise CommandFailed(f"{Path(args[0]).name} {args[1] if len(args) > 1 else ''} failed (exit {done.returncode}): {tail}")
    return done.stdout if stdout_only else output


@dataclass(frozen=True)
class TlsProbe:
    """A real readiness probe of a TLS gRPC listener: a fresh channel to ``address`` must complete the TLS
    handshake (trusting ``ca``, presenting ``cert``/``key`` when given, as a mutual-TLS server requires) and
    the HTTP/2 set-up within the timeout."""

    address: str
    ca: Path
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    def __call__(self, timeout: float | None = None) -> bool:
        timeout = PROBE_TIMEOUT_S if timeout is None else timeout
        host, _, port = self.address.rpartition(":")
        try:  # nothing listening: say so at once rather than after the handshake's timeout
            socket.create_connection((host, int(port)), timeout=timeout).close()
        except (OSError, ValueError):
            return False
        try:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=self.ca.read_bytes(),
                private_key=self.key.read_bytes() if self.key else None,
                certificate_chain=self.cert.read_bytes() if self.cert else None,
            )
        except OSError as exc:
            logger.warning("cannot probe %s: %s", self.address, exc)
            return False
        options: list[tuple[str, object]] = [("grpc.use_local_subchannel_pool", 1)]  # a new connection every time
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        channel = grpc.secure_channel(self.address, credentials, options)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False
        finally:
            channel.close()


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
    host: str = "127.0.0.1"
    """The address its listeners bind to."""
    other_ports: list[int] = field(default_factory=list)
    probes: list[TlsProbe] = field(default_factory=list)

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


def check_address_local(host: str) -> None:
    """Raise :class:`AddressUnavailable` when no interface of this host has the address ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise AddressUnavailable(f"cannot listen on {host}: no interface of this host has that address "
                                         "(give one of this host's addresses)") from None
            raise


def check_ports_free(ports: Sequence[int], host: str = "127.0.0.1") -> None:
    """Raise :class:`AddressUnavailable` when this host lacks ``host``, :class:`PortInUse` naming every port of
    ``ports`` already taken on it."""
    check_address_local(host)
    taken = [port for port in ports if not port_free(port, host)]
    if taken:
        raise PortInUse(f"port(s) already in use on {host}: {', '.join(map(str, taken))} (choose another --port-base)")


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds: enough to tell our process from any other that later gets the same pid."""

    name: str
    pid: int
    start_time: int  # clock ticks after boot, /proc/<pid>/stat field 22
    boot_id: str
    home: str

    @classmethod
    def parse(cls, text: str) -> ProcessRecord:
        data = json.loads(text)
        return cls(name=str(data["name"]), pid=int(data["pid"]), start_time=int(data["start_time"]),
                   boot_id=str(data["boot_id"]), home=str(data["home"]))

    def is_running(self) -> bool:
        """This very process is alive: same pid, same start time, same boot."""
        return _alive(self.pid) and start_time(self.pid) == self.start_time and boot_id() == self.boot_id


class Supervisor:
    """Pid files under ``run_dir``, logs under ``log_dir``, for the processes of one ``home``."""

    def __init__(self, run_dir: Path, log_dir: Path, home: Path | None = None) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.home = str((home or run_dir.parent).resolve())
        # Children started by this supervisor: their exit status is authoritative, whatever the pid files say.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def record(self, name: str) -> ProcessRecord | None:
        """The pid file's record of ``name``; ``None`` when there is none. A file this supervisor cannot read as a
        record (damaged, or written by an older swarmfuse) raises :class:`NetworkError`."""
        path = self.pid_file(name)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise NetworkError(f"cannot read pid file {path}: {exc.strerror}") from exc
        try:
            return ProcessRecord.parse(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkError(f"pid file {path} does not identify a process (old or damaged format: {text.strip()!r}); "
                               "make sure that process is stopped, then delete the file") from exc

    def pid(self, name: str) -> int | None:
        """The pid of ``name`` when its recorded process (pid, start time, boot, home) is alive, else ``None``.

        A record of a process that has ended is removed; one written for another home (a copied home) or in a
        format that cannot identify a process is left alone, and never trusted."""
        try:
            record = self.record(name)
        except NetworkError as exc:
            logger.warning("%s", exc)
            return None
        if record is None:
            return None
        if record.home != self.home or record.name != name:
            logger.warning("pid file %s records %s of home %s, not of %s: ignored", self.pid_file(name), record.name,
                           record.home, self.home)
            return None
        if record.is_running():
            return record.pid
        self.pid_file(name).unlink(missing_ok=True)
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
        # Until we reap it the child's pid cannot be reused, so its start time read now is its own.
        record = ProcessRecord(spec.name, proc.pid, start_time(proc.pid) or 0, boot_id(), self.home)
        write_atomic(self.pid_file(spec.name), (json.dumps(asdict(record)) + "\n").encode())
        self._children[spec.name] = proc
        logger.info("started %s (pid %d)", spec.name, proc.pid)
        return proc.pid

    def _running_pid(self, name: str) -> int | None:
        """The pid of ``name``: our own child while it runs, else what its pid file says (see :meth:`pid`)."""
        child = self._children.get(name)
        if child is not None and child.poll() is None:
            return child.pid
        return self.pid(name)

    def _still_ours(self, name: str, pid: int) -> bool:
        """``pid`` is still the process of ``name`` (checked again right before each signal)."""
        child = self._children.get(name)
        if child is not None and child.pid == pid:
            return child.poll() is None
        return self.pid(name) == pid

    def wait_ready(self, spec: ProcessSpec, timeout: float = 60.0) -> None:
        """Poll the health of ``spec`` (see :func:`healthy`) until it is ready; fail early if it died."""

        def ready() -> bool:
            if self._running_pid(spec.name) is None:
                raise NetworkError(f"{spec.name} exited during start-up; see {self.log_file(spec.name)}")
            return healthy(spec)

        if not wait_until(ready, timeout, poll=0.1, max_poll=0.25):
            raise NetworkError(f"{spec.name} not ready after {timeout:.0f}s; see {self.log_file(spec.name)}")

    def stop(self, names: list[str], grace: float | None = None) -> list[str]:
        """SIGTERM each running process of ``names``, SIGKILL whatever is left after ``grace`` (default
        :data:`STOP_GRACE_S`).

        Returns the names that were running and are now stopped. Raises :class:`StopFailed` naming every process
        that could not be stopped (still alive after SIGKILL, not ours to signal, or a pid file that identifies no
        process), after stopping all the others; those pid files are kept."""
        grace = STOP_GRACE_S if grace is None else grace
        failed: dict[str, str] = {}
        running: dict[str, int] = {}
        for name in names:
            try:
                self.record(name)
            except NetworkError as exc:
                failed[name] = str(exc)
                continue
            if (pid := self._running_pid(name)) is not None:
                running[name] = pid
        for name, pid in running.items():
            if (error := self._signal(name, pid, signal.SIGTERM)) is not None:
                failed[name] = error
        stopped = []
        for name, pid in running.items():
            if name in failed:
                continue
            if not self._wait_gone(name, pid, grace):
                logger.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", name, pid, grace)
                if (error := self._signal(name, pid, signal.SIGKILL)) is not None:
                    failed[name] = error
                    continue
                if not self._wait_gone(name, pid, KILL_WAIT_S):
                    failed[name] = f"pid {pid} still running {KILL_WAIT_S:.0f}s after SIGKILL"
                    continue
            self.pid_file(name).unlink(missing_ok=True)
            if (child := self._children.pop(name, None)) is not None:
                child.wait()
            logger.info("stopped %s (pid %d)", name, pid)
            stopped.append(name)
        if failed:
            raise StopFailed(stopped, failed)
        return stopped

    def _signal(self, name: str, pid: int, signum: int) -> str | None:
        """Signal the process group of ``pid`` if it is still ``name``'s process; the reason when it cannot be."""
        if not self._still_ours(name, pid):
            return None  # already gone (and its pid may belong to someone else by now)
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            return f"pid {pid}: not permitted to send {signal.Signals(signum).name} (another user's process?)"
        return None

    def _wait_gone(self, name: str, pid: int, timeout: float) -> bool:
        def gone() -> bool:
            child = self._children.get(name)
            return child.poll() is not None if child is not None and child.pid == pid else not self._still_ours(name, pid)

        return wait_until(gone, timeout, poll=0.1)


def healthy(spec: ProcessSpec) -> bool:
    """The node answers: its operations endpoint (if any) says 200 and every TLS probe of its listeners (if any)
    connects. Only a node with neither (a plain test process) is judged by a listener on its port."""
    if spec.health_url is None and not spec.probes:
        return not port_free(spec.port, spec.host)
    if spec.health_url is not None and not _health_ok(spec.health_url):
        return False
    if len(spec.probes) <= 1:
        return all(probe() for probe in spec.probes)
    with ThreadPoolExecutor(max_workers=len(spec.probes)) as pool:  # e.g. the engine's endpoint of every org
        return all(pool.map(lambda probe: probe(), spec.probes))


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot (``/proc/<pid>/stat`` field 22); ``None`` if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])  # fields[0] is field 3 (state): the command name may hold spaces and ')'
    except (OSError, IndexError, ValueError):
        return None


def boot_id() -> str:
    """This boot's ID: a start time only means something within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


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
