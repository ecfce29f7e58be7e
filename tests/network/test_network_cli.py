"""Bad input on the ``network`` and ``task`` commands: one clear line, non-zero exit, no traceback.
Also the process supervisor on real (non-Fabric) processes. No Fabric needed."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli

from swarmfuse.network import state as state_file
from swarmfuse.network.embedded.engine import ledger_dir
from swarmfuse.network.embedded.ledger import Ledger
from swarmfuse.network.errors import NetworkError, PortInUse
from swarmfuse.network.layout import Layout
from swarmfuse.network.procs import ProcessSpec, Supervisor, boot_id, check_ports_free, start_time
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.model import TxResult
from swarmfuse.network.state import NetworkState, TaskRecord
from swarmfuse.network.topology import Topology


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def home_with_state(tmp_path: Path) -> Path:
    """A home whose state names a 3-org network with one task (nothing running)."""
    current = NetworkState.for_topology(Topology(n_orgs=3, auditor=True, port_base=31000), "fabric")
    current.tasks["existing"] = TaskRecord(name="existing", orgs=["DC1", "DC2"], policy="p", created="now")
    state_file.save(tmp_path / "state.json", current)
    return tmp_path


@pytest.mark.parametrize("n", ["1", "9"])
def test_up_with_org_count_out_of_range(tmp_path: Path, n: str) -> None:
    code, out = run_cli("network", "up", "--orgs", n, "--home", str(tmp_path / "h"))
    assert code == 1 and "between 2 and 8" in out and "Traceback" not in out


def test_up_with_unknown_consensus(tmp_path: Path) -> None:
    code, out = run_cli("network", "up", "--consensus", "pow", "--home", str(tmp_path / "h"))
    assert code == 1 and "consensus must be one of raft, bft" in out


def test_up_with_a_port_in_use_starts_nothing(tmp_path: Path, listening: int) -> None:
    home = tmp_path / "h"
    code, out = run_cli("network", "up", "--port-base", str(listening), "--home", str(home))
    assert code == 1 and f"already in use on 127.0.0.1: {listening}" in out
    assert not home.exists()


def test_check_ports_free_names_every_taken_port(listening: int) -> None:
    with pytest.raises(PortInUse, match=str(listening)):
        check_ports_free([listening])


def test_down_with_nothing_running(tmp_path: Path) -> None:
    code, out = run_cli("network", "down", "--home", str(tmp_path))
    assert code == 1 and "nothing is running" in out


def test_status_without_a_network(tmp_path: Path) -> None:
    code, out = run_cli("network", "status", "--home", str(tmp_path))
    assert code == 1 and "no network under" in out


def test_purge_refuses_a_folder_that_is_not_a_home(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    code, out = run_cli("network", "down", "--purge", "--home", str(tmp_path))
    assert code == 1 and "holds no swarmfuse network" in out
    assert (tmp_path / "precious.txt").exists()


def test_task_with_invalid_channel_name(home_with_state: Path) -> None:
    code, out = run_cli("task", "create", "Bad_Name", "--orgs", "DC1,DC2", "--home", str(home_with_state))
    assert code == 1 and "not a valid channel name" in out


def test_task_with_unknown_org(home_with_state: Path) -> None:
    code, out = run_cli("task", "create", "t2", "--orgs", "DC1,DC7", "--home", str(home_with_state))
    assert code == 1 and "unknown org 'DC7'" in out


def test_task_that_exists(home_with_state: Path) -> None:
    code, out = run_cli("task", "create", "existing", "--orgs", "DC1,DC2", "--home", str(home_with_state))
    assert code == 1 and "task 'existing' already exists" in out


def test_task_on_a_stopped_network(home_with_state: Path) -> None:
    code, out = run_cli("task", "create", "t2", "--orgs", "DC1,DC2", "--home", str(home_with_state))
    assert code == 1 and "not fully running" in out


def test_task_list_shows_recorded_tasks(home_with_state: Path) -> None:
    code, out = run_cli("task", "list", "--home", str(home_with_state))
    assert code == 0 and "existing" in out and "DC1, DC2" in out


def test_up_with_another_topology_on_an_existing_home(home_with_state: Path) -> None:
    code, out = run_cli("network", "up", "--orgs", "5", "--home", str(home_with_state))
    assert code == 1 and "already holds a network with 3 orgs" in out


def test_check_fully_checks_every_embedded_ledger_and_names_the_first_bad_block(tmp_path: Path) -> None:
    """``network check`` runs the full check the engine's start skips: a ledger damaged in an old block opens for
    the engine (its quick check covers the last block) but fails the check, which names the block and exits 1."""
    state_file.save(tmp_path / "state.json", NetworkState.for_topology(Topology(n_orgs=2, port_base=31000), "embedded"))
    folder = ledger_dir(Layout(tmp_path.resolve()))
    for name in ("alpha", "beta"):
        with Ledger.open(folder / f"{name}.sqlite") as ledger:
            for number in range(4):
                block = blockfmt.new_block(number, ledger.last_header_hash or b"", [f"{name}-{number}".encode()])
                blockfmt.set_transactions_filter(block, [0])
                ledger.commit(block, [TxResult(f"{name}-{number}", 0, 0, [("cc", "k", str(number).encode())])])
    code, out = run_cli("network", "check", "--home", str(tmp_path))
    assert code == 0 and "alpha" in out and "beta" in out and out.count(" 4 ") >= 2, out
    with Ledger.open(folder / "beta.sqlite") as ledger:
        damaged = ledger.block(1)
    damaged.data.data[0] = b"forged"
    conn = sqlite3.connect(folder / "beta.sqlite")
    with conn:
        conn.execute("UPDATE blocks SET data = ? WHERE number = 1", (damaged.SerializeToString(),))
    conn.close()
    Ledger.open(folder / "beta.sqlite", full_check=False).close()
    code, out = run_cli("network", "check", "--home", str(tmp_path))
    assert code == 1 and "block 1: data hash does not match its data" in out and "ok" in out, out


def test_check_on_a_fabric_home_says_where_its_ledgers_are_checked(home_with_state: Path) -> None:
    code, out = run_cli("network", "check", "--home", str(home_with_state))
    assert code == 1 and "runs Fabric" in out and "audit verify" in out and "Traceback" not in out


def test_supervisor_starts_waits_and_stops_by_pid(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    script = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)"
    spec = ProcessSpec(name="sleeper", kind="test", args=[sys.executable, "-c", script], env={}, port=1)
    pid = supervisor.start(spec)
    assert supervisor.pid("sleeper") == pid
    assert supervisor.stop(["sleeper", "never-started"]) == ["sleeper"]
    assert supervisor.pid("sleeper") is None
    assert not supervisor.pid_file("sleeper").exists()
    assert "--- start" in supervisor.log_file("sleeper").read_text()


def test_supervisor_tracks_its_own_children_whatever_the_pid_files_say(tmp_path: Path) -> None:
    # A start-up that fails half way must still stop what it started: a lost pid file must neither make a
    # running child look dead nor leave it behind.
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    script = "import time; time.sleep(60)"
    spec = ProcessSpec(name="child", kind="test", args=[sys.executable, "-c", script], env={}, port=1)
    pid = supervisor.start(spec)
    supervisor.pid_file("child").unlink()
    with pytest.raises(NetworkError, match="not ready"):  # still running: a timeout, not "exited during start-up"
        supervisor.wait_ready(spec, timeout=0.5)
    assert supervisor.stop(["child"]) == ["child"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stale_pid_file_is_cleaned(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    supervisor.run_dir.mkdir()
    # pid 1 is alive but is not ours: it did not start when the record says
    record = {"name": "ghost", "pid": 1, "start_time": (start_time(1) or 0) + 1, "boot_id": boot_id(),
              "home": str(tmp_path.resolve())}
    supervisor.pid_file("ghost").write_text(json.dumps(record))
    assert supervisor.pid("ghost") is None
    assert not supervisor.pid_file("ghost").exists()
