"""The process supervisor and the home's lock, on real (non-Fabric) processes: identity by pid, start time,
boot and home (never the command line), stop reporting what it could not stop, the lock's timeout, real
TLS health probes, and listeners that never share a port (no SO_REUSEPORT). No network needed."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from cli_runner import run_cli_process
from tls_pki import Pki, serve

from swarmfuse.chaincode.shim import server as chaincode_server
from swarmfuse.network import procs
from swarmfuse.network.control import LOCK_TIMEOUT_S, Network, default_lock_timeout
from swarmfuse.network.embedded import admin, engine
from swarmfuse.network.errors import InvalidInput, LockTimeout, StopFailed
from swarmfuse.network.procs import ProcessSpec, Supervisor, TlsProbe, boot_id, healthy, start_time

SLEEP = "import time; time.sleep(60)"


def _spec(name: str, script: str = SLEEP, port: int = 1, **options: object) -> ProcessSpec:
    return ProcessSpec(name=name, kind="test", args=[sys.executable, "-c", script], env={}, port=port, **options)  # type: ignore[arg-type]


@pytest.fixture
def supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(tmp_path / "home" / "run", tmp_path / "home" / "logs", tmp_path / "home")


def _stat_field_22(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


# --- identity ----------------------------------------------------------------------------------------------

def test_pid_file_records_pid_start_time_boot_and_home(supervisor: Supervisor) -> None:
    pid = supervisor.start(_spec("sleeper"))
    try:
        record = json.loads(supervisor.pid_file("sleeper").read_text())
        assert record == {"name": "sleeper", "pid": pid, "start_time": _stat_field_22(pid),
                          "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
                          "home": supervisor.home}
        assert "marker" not in record and "cmdline" not in json.dumps(record)
        assert supervisor.pid("sleeper") == pid
    finally:
        supervisor.stop(["sleeper"])


def test_a_live_process_is_ours_only_with_the_recorded_start_time_and_home(supervisor: Supervisor,
                                                                           tmp_path: Path) -> None:
    # This test process is alive, and its command line names nothing of the home: only the record counts.
    me = {"name": "me", "pid": os.getpid(), "start_time": start_time(os.getpid()), "boot_id": boot_id(),
          "home": supervisor.home}
    supervisor.run_dir.mkdir(parents=True)
    supervisor.pid_file("me").write_text(json.dumps(me))
    assert supervisor.pid("me") == os.getpid()
    # Same pid, another start time: a reused pid, so not ours; the stale record goes.
    supervisor.pid_file("me").write_text(json.dumps(me | {"start_time": me["start_time"] - 1}))
    assert supervisor.pid("me") is None and not supervisor.pid_file("me").exists()
    # Same process, recorded for another home (a copied home): never trusted, and left alone.
    supervisor.pid_file("me").write_text(json.dumps(me | {"home": str(tmp_path / "elsewhere")}))
    assert supervisor.pid("me") is None and supervisor.pid_file("me").exists()
    # Another boot: not ours.
    supervisor.pid_file("me").write_text(json.dumps(me | {"boot_id": "another-boot"}))
    assert supervisor.pid("me") is None


def test_an_old_pid_file_identifies_nothing_and_stop_names_it(supervisor: Supervisor) -> None:
    supervisor.run_dir.mkdir(parents=True)
    supervisor.pid_file("peer-DC1").write_text(f"{os.getpid()} {sys.executable}\n")  # the former "pid marker" format
    assert supervisor.pid("peer-DC1") is None  # the command-line marker is not looked at
    with pytest.raises(StopFailed, match=r"could not stop peer-DC1 .*old or damaged format") as failed:
        supervisor.stop(["peer-DC1"])
    assert failed.value.stopped == [] and list(failed.value.failed) == ["peer-DC1"]
    assert supervisor.pid_file("peer-DC1").exists()  # kept for the operator


def test_start_time_is_field_22_even_with_spaces_and_parens_in_the_name(tmp_path: Path) -> None:
    odd = tmp_path / "a b) c"
    odd.symlink_to(sys.executable)
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    pid = supervisor.start(ProcessSpec(name="odd", kind="test", args=[str(odd), "-c", SLEEP], env={}, port=1))
    try:
        assert start_time(pid) == _stat_field_22(pid) and supervisor.pid("odd") == pid
    finally:
        supervisor.stop(["odd"])
    assert start_time(pid) is None


# --- stop --------------------------------------------------------------------------------------------------

def test_stop_reports_a_process_it_could_not_stop_and_stops_the_others(supervisor: Supervisor,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    stubborn, polite = supervisor.start(_spec("stubborn")), supervisor.start(_spec("polite"))
    real_killpg = os.killpg

    def killpg(pid: int, signum: int) -> None:  # the stubborn process survives every signal
        if pid != stubborn:
            real_killpg(pid, signum)

    monkeypatch.setattr(procs.os, "killpg", killpg)
    monkeypatch.setattr(procs, "KILL_WAIT_S", 0.3)
    try:
        with pytest.raises(StopFailed) as failed:
            supervisor.stop(["polite", "stubborn"], grace=0.3)
        message = str(failed.value)
        assert message.startswith("could not stop stubborn (")
        assert f"stubborn: pid {stubborn} still running 0s after SIGKILL" in message
        assert failed.value.stopped == ["polite"] and supervisor.pid("polite") is None
        assert supervisor.pid("stubborn") == stubborn and supervisor.pid_file("stubborn").exists()
    finally:
        monkeypatch.undo()
        supervisor.stop(["stubborn"])
    with pytest.raises(ProcessLookupError):
        os.kill(polite, 0)


def test_stop_reports_a_process_it_may_not_signal(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = supervisor.start(_spec("foreign"))

    def refused(pid: int, signum: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(procs.os, "killpg", refused)
    try:
        with pytest.raises(StopFailed, match=rf"foreign: pid {pid}: not permitted to send SIGTERM"):
            supervisor.stop(["foreign"])
    finally:
        monkeypatch.undo()
        supervisor.stop(["foreign"])


def test_stop_never_signals_a_pid_that_is_no_longer_ours(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    # The record names this test process with a start time it does not have: stop must leave it alone.
    supervisor.run_dir.mkdir(parents=True)
    record = {"name": "old", "pid": os.getpid(), "start_time": (start_time(os.getpid()) or 0) + 5,
              "boot_id": boot_id(), "home": supervisor.home}
    supervisor.pid_file("old").write_text(json.dumps(record))
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(procs.os, "killpg", lambda pid, signum: sent.append((pid, signum)))
    assert supervisor.stop(["old"]) == [] and sent == []


def test_down_of_a_network_with_an_unstoppable_process_fails_and_keeps_the_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmfuse.network.state import NetworkState
    from swarmfuse.network.topology import Topology

    network = Network(tmp_path / "home")
    network.save(NetworkState.for_topology(Topology(n_orgs=2, port_base=30000), "embedded"))
    pid = network.supervisor.start(_spec("engine"))
    monkeypatch.setattr(procs.os, "killpg", lambda pid, signum: None)
    monkeypatch.setattr(procs, "KILL_WAIT_S", 0.2)
    monkeypatch.setattr(procs, "STOP_GRACE_S", 0.2)
    try:
        with pytest.raises(StopFailed, match=rf"could not stop engine \(engine: pid {pid} still running"):
            network.down(purge=True)
        assert network.home.is_dir() and network.running() == ["engine"]
    finally:
        monkeypatch.undo()
        network.supervisor.stop(["engine"])


# --- the home's lock ---------------------------------------------------------------------------------------

def test_lock_wait_times_out_naming_the_holder(tmp_path: Path) -> None:
    holder, waiter = Network(tmp_path / "home"), Network(tmp_path / "home", lock_timeout=0.3)
    with holder.locked():
        started = time.monotonic()
        with pytest.raises(LockTimeout) as timed_out, waiter.locked():
            pass
        assert 0.3 <= time.monotonic() - started < 3.0
    message = str(timed_out.value)
    assert f"has held the lock on {holder.home} for more than 0.3s" in message
    assert f"(pid {os.getpid()}, since " in message and "SWARMFUSE_LOCK_TIMEOUT" in message
    with waiter.locked():  # released: taken at once
        assert json.loads((holder.home / ".lock").read_text())["pid"] == os.getpid()
    assert (holder.home / ".lock").read_text() == ""


def test_lock_timeout_is_configurable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SWARMFUSE_LOCK_TIMEOUT", raising=False)
    assert default_lock_timeout() == LOCK_TIMEOUT_S == 120.0
    monkeypatch.setenv("SWARMFUSE_LOCK_TIMEOUT", "2.5")
    assert Network(tmp_path).lock_timeout == 2.5
    assert Network(tmp_path, lock_timeout=7).lock_timeout == 7
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("SWARMFUSE_LOCK_TIMEOUT", bad)
        with pytest.raises(InvalidInput, match="SWARMFUSE_LOCK_TIMEOUT must be a number of seconds"):
            default_lock_timeout()


def test_lock_holder_in_another_process_times_out_the_cli(tmp_path: Path) -> None:
    import subprocess

    home = tmp_path / "home"
    home.mkdir()
    script = ("import fcntl, sys, time; h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX); "
              "print('locked', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(home / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        env = dict(os.environ, SWARMFUSE_LOCK_TIMEOUT="0.5")
        (home / "state.json").write_text(json.dumps({"engine": "embedded", "n_orgs": 2, "auditor": False,
                                                     "consensus": "raft", "port_base": 30000}))
        done = run_cli_process("network", "down", "--home", str(home), timeout=60, env=env)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert "another swarmfuse command has held the lock" in done.stderr and "Traceback" not in done.stderr


# --- health probes -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.new()


def _files(pki: Pki, folder: Path) -> tuple[Path, Path, Path]:
    client = pki.client()
    paths = folder / "ca.pem", folder / "client.crt", folder / "client.key"
    for path, data in zip(paths, (pki.ca_pem, client.cert_pem, client.key_pem)):
        path.write_bytes(data)
    return paths


def test_tls_probe_needs_a_tls_handshake_not_just_a_taken_port(pki: Pki, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procs, "PROBE_TIMEOUT_S", 0.5)
    ca, cert, key = _files(pki, tmp_path)
    with socket.socket() as squatter:  # something holds the port but speaks no TLS
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        assert not TlsProbe(f"127.0.0.1:{port}", ca, cert, key)()
        assert not healthy(_spec("cc", port=port, probes=[TlsProbe(f"127.0.0.1:{port}", ca, cert, key)]))
        assert healthy(ProcessSpec(name="plain", kind="test", args=[], env={}, port=port))  # no probe: the port
    server, port = serve(pki, object(), require_client_auth=True, deliver=False)
    try:
        assert TlsProbe(f"127.0.0.1:{port}", ca, cert, key)()
        assert not TlsProbe(f"127.0.0.1:{port}", ca)()  # mutual TLS: no client certificate, no session
        other = Pki.new("other-ca")
        (tmp_path / "other.pem").write_bytes(other.ca_pem)
        assert not TlsProbe(f"127.0.0.1:{port}", tmp_path / "other.pem", cert, key)()  # untrusted server
        assert not TlsProbe(f"127.0.0.1:{port}", tmp_path / "missing.pem")()
    finally:
        server.stop(0)


def test_health_url_and_probes_must_both_answer(pki: Pki, tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    ca, cert, key = _files(pki, tmp_path)
    http = admin._Server(("127.0.0.1", 0), Ok)
    admin._serve(http, "ok")
    url = f"http://127.0.0.1:{http.server_address[1]}/healthz"
    server, port = serve(pki, object(), require_client_auth=True, deliver=False)
    try:
        probe = TlsProbe(f"127.0.0.1:{port}", ca, cert, key)
        assert healthy(_spec("node", health_url=url, probes=[probe]))
        assert not healthy(_spec("node", health_url=url, probes=[probe, TlsProbe("127.0.0.1:1", ca, cert, key)]))
    finally:
        server.stop(0)
        http.shutdown()
        http.server_close()
    assert not healthy(_spec("node", health_url=url, probes=[]))


def test_chaincode_and_engine_specs_probe_with_the_orgs_tls_material(tmp_path: Path) -> None:
    from swarmfuse.network.crypto import chaincode_tls
    from swarmfuse.network.layout import Layout
    from swarmfuse.network.nodes import chaincode_spec, engine_spec
    from swarmfuse.network.topology import Topology

    layout = Layout(tmp_path)
    for mutual in (False, True):
        topology = Topology(n_orgs=2, port_base=30000, mutual_tls=mutual)
        dc1 = topology.orgs[0]
        [probe] = chaincode_spec(topology, layout, dc1, "pkg").probes
        tls = chaincode_tls(layout, dc1)
        assert (probe.address, probe.ca, probe.cert, probe.key) == (
            "127.0.0.1:30023", layout.org_tls_ca(dc1), tls.client_cert, tls.client_key)
        probes = engine_spec(topology, layout).probes
        assert [p.address for p in probes] == ["127.0.0.1:30020", "127.0.0.1:30025", "127.0.0.1:30000"]
        assert [p.ca for p in probes] == [*(layout.org_tls_ca(org) for org in topology.orgs), layout.orderer_tls_ca]
        assert probes[-1].cert is None  # the orderer's Broadcast asks no client certificate
        admin_tls = layout.user_dir(dc1, "Admin") / "tls" / "client.crt"
        assert probes[0].cert == (admin_tls if mutual else None)


# --- no shared ports ---------------------------------------------------------------------------------------

def _grpc_bind(options: list[tuple[str, object]], port: int = 0) -> tuple[grpc.Server, int]:
    server = grpc.server(ThreadPoolExecutor(max_workers=1), options=options)
    try:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    except RuntimeError:
        bound = 0
    return server, bound


@pytest.mark.parametrize("options", [engine.SERVER_OPTIONS, chaincode_server.SERVER_OPTIONS],
                         ids=["engine", "chaincode"])
def test_grpc_listeners_do_not_share_a_port(options: list[tuple[str, object]]) -> None:
    assert ("grpc.so_reuseport", 0) in options
    first, port = _grpc_bind(options)
    first.start()
    try:
        second, bound = _grpc_bind(options, port)
        assert bound == 0, "a second server bound a port in use"
        second.stop(0)
        # gRPC's default would have let it (SO_REUSEPORT), which is why the option is set.
        default_first, default_port = _grpc_bind([])
        default_first.start()
        default_second, default_bound = _grpc_bind([], default_port)
        assert default_bound == default_port
        default_first.stop(0)
        default_second.stop(0)
    finally:
        first.stop(0)


def test_http_listeners_do_not_share_a_port() -> None:
    assert admin._Server.allow_reuse_port is False
    first = admin.start_operations(("127.0.0.1", 0), lambda: True)
    try:
        with pytest.raises(OSError):
            admin.start_operations(("127.0.0.1", first.server_address[1]), lambda: True)
        with socket.socket() as probe:
            assert probe.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        assert first.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        first.shutdown()
        first.server_close()


def test_signals_are_sent_to_the_process_group(supervisor: Supervisor) -> None:
    # The node's own children (a shell's, a builder's) go with it: the group is signalled.
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    pid = supervisor.start(_spec("parent", script))
    time.sleep(0.5)
    grandchildren = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    assert grandchildren
    supervisor.stop(["parent"])
    time.sleep(0.2)
    for child in grandchildren:
        assert start_time(child) is None or _state(child) == "Z"


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
