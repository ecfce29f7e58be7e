"""Against a real network (the session's ``fabric_network``, plus one short-lived network of its own):
invoke and read back on every peer, chaincode events, rejected transactions, peer catch-up after a
restart, channel isolation, crash recovery and a clean ``down``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import FabricNetwork, free_port_base, require_fabric

from swarmfuse.network import tasks
from swarmfuse.network.blocks import read_block, transactions
from swarmfuse.network.control import Network
from swarmfuse.network.errors import CommandFailed
from swarmfuse.network.topology import Topology

pytestmark = pytest.mark.integration

CHANNEL_READERS = ("DC1", "DC2", "DC3", "Auditor")


def _key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


def _height(net: FabricNetwork, org: str) -> int:
    out = net.peer_cli(org, "channel", "getinfo", "-c", net.task)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.split("Blockchain info: ", 1)[1])["height"]


def _swarmfuse(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarmfuse", *args, "--home", str(home)], capture_output=True, text=True, timeout=300
    )


def test_invoke_is_read_back_on_every_peer_of_the_task(fabric_network: FabricNetwork) -> None:
    key = _key()
    fabric_network.invoke("DC1", "Sample:Put", key, "hello from DC1")
    for org in CHANNEL_READERS:
        assert fabric_network.query(org, "Sample:Get", key) == "hello from DC1"


def test_chaincode_event_of_the_transaction_is_received(fabric_network: FabricNetwork, tmp_path: Path) -> None:
    key = _key()
    result = fabric_network.submit("DC2", "Sample:Put", key, "evented")
    assert result.tx_id is not None
    block_file = tmp_path / "newest.block"
    fetched = fabric_network.peer_cli("DC3", "channel", "fetch", "newest", str(block_file), "-c", fabric_network.task,
                                      *fabric_network.cli.orderer_args())
    assert fetched.returncode == 0, fetched.stderr
    by_tx = {tx.tx_id: tx for tx in transactions(read_block(block_file))}
    event = by_tx[result.tx_id]
    assert (event.chaincode_id, event.event_name) == ("swarmfuse", "Put")
    assert json.loads(event.event_payload or b"") == {"key": key, "value": "evented"}


def test_failing_transaction_is_rejected_with_its_message_and_writes_nothing(fabric_network: FabricNetwork) -> None:
    before = _height(fabric_network, "DC1")
    with pytest.raises(CommandFailed, match=r"status:400.*BadRequest: key must not be empty"):
        fabric_network.invoke("DC1", "Sample:Put", "", "never stored")
    with pytest.raises(CommandFailed, match="NotFound"):
        fabric_network.query("DC1", "Sample:Get", _key())
    assert _height(fabric_network, "DC1") == before


def test_org_outside_the_task_is_refused_the_channel(fabric_network: FabricNetwork, tmp_path: Path) -> None:
    fetched = fabric_network.peer_cli("DC4", "channel", "fetch", "oldest", str(tmp_path / "b.block"), "-c",
                                      fabric_network.task, *fabric_network.cli.orderer_args())
    assert fetched.returncode != 0
    assert "FORBIDDEN" in fetched.stderr
    joined = fabric_network.peer_cli("DC4", "channel", "list")
    assert fabric_network.task not in joined.stdout
    denied = fabric_network.peer_cli("DC4", "chaincode", "query", "-C", fabric_network.task, "-n", "swarmfuse",
                                     "-c", '{"Args":["Sample:Get","x"]}')
    assert denied.returncode != 0


def test_status_reports_every_process_healthy(fabric_network: FabricNetwork) -> None:
    rows = fabric_network.network.status()
    assert {row.kind for row in rows} == {"orderer", "peer", "chaincode"}
    assert len(rows) == 3 + 5 + 5
    assert all(row.health == "ok" and row.pid for row in rows), rows
    again = _swarmfuse(fabric_network.home, "network", "up")
    assert again.returncode == 0 and "already running" in again.stdout


def test_restarted_peer_catches_up_on_blocks_committed_while_down(fabric_network: FabricNetwork) -> None:
    pid = fabric_network.network.supervisor.pid("peer-DC3")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while fabric_network.network.supervisor.pid("peer-DC3") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    keys = [_key() for _ in range(3)]
    for key in keys:
        fabric_network.submit("DC1", "Sample:Put", key, f"while DC3 was down: {key}", endorsers=["DC1", "DC2"])
    target = _height(fabric_network, "DC1")
    restarted = _swarmfuse(fabric_network.home, "network", "up")
    assert restarted.returncode == 0, restarted.stderr
    assert fabric_network.network.supervisor.pid("peer-DC3") not in (None, pid)
    deadline = time.monotonic() + 60
    while _height(fabric_network, "DC3") < target and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _height(fabric_network, "DC3") >= target
    for key in keys:
        assert fabric_network.query("DC3", "Sample:Get", key) == f"while DC3 was down: {key}"


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line or environment mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in blob and state != "Z":
            found.append(int(entry.name))
    return found


def test_crash_recovery_keeps_the_ledger_and_down_leaves_no_process(tmp_path: Path) -> None:
    """A network of its own: crash every process, ``up`` restarts it with the data, ``down`` stops all."""
    fabric = require_fabric()
    home = tmp_path / "crashy"
    network = Network(home, fabric)
    network.up(Topology(n_orgs=2, port_base=free_port_base()))
    try:
        tasks.create(network, "crash", "DC1,DC2")
        orgs = [network.require_state().topology().org(name) for name in ("DC1", "DC2")]
        cli = network.peer_cli()
        tasks.invoke(cli, "crash", orgs[0], orgs, "Sample:Put", "survives", "the crash")
        pids = [network.supervisor.pid(name) for name in network.running()]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            os.waitpid(pid, 0)
        assert network.running() == []
        up = _swarmfuse(home, "network", "up")
        assert up.returncode == 0, up.stderr
        assert len(network.running()) == len(pids)
        assert tasks.query(cli, "crash", orgs[1], "Sample:Get", "survives") == "the crash"
        tasks.invoke(cli, "crash", orgs[1], orgs, "Sample:Put", "after", "restart")
        assert tasks.query(cli, "crash", orgs[0], "Sample:Get", "after") == "restart"
    finally:
        down = _swarmfuse(home, "network", "down")
    assert down.returncode == 0, down.stderr
    assert network.running() == []
    assert _processes_mentioning(str(home)) == []
    purged = _swarmfuse(home, "network", "down", "--purge")
    assert purged.returncode == 0 and not home.exists()


def test_bft_network_orders_transactions(tmp_path: Path) -> None:
    """``--consensus bft``: four SmartBFT orderers order a task channel's transactions."""
    fabric = require_fabric()
    network = Network(tmp_path / "bft", fabric)
    network.up(Topology(n_orgs=2, consensus="bft", port_base=free_port_base()))
    try:
        assert sorted(n for n in network.running() if n.startswith("orderer")) == [f"orderer{i}" for i in range(4)]
        tasks.create(network, "bft", "DC1,DC2")
        orgs = list(network.require_state().topology().orgs)
        cli = network.peer_cli()
        tasks.invoke(cli, "bft", orgs[0], orgs, "Sample:Put", "agreed", "by four orderers")
        assert tasks.query(cli, "bft", orgs[1], "Sample:Get", "agreed") == "by four orderers"
    finally:
        network.down()
    assert network.running() == []


def test_auditor_reads_but_its_clients_cannot_submit(fabric_network: FabricNetwork) -> None:
    key = _key()
    fabric_network.invoke("DC2", "Sample:Put", key, "audited")
    ctor = json.dumps({"Args": ["Sample:Get", key]})
    read = fabric_network.cli.run(fabric_network.org("Auditor"), "chaincode", "query", "-C", fabric_network.task,
                                  "-n", "swarmfuse", "-c", ctor, identity="User1")
    assert read.returncode == 0 and read.stdout.strip() == "audited", read.stderr
    put = json.dumps({"Args": ["Sample:Put", key, "tampered"]})
    write = fabric_network.cli.run(fabric_network.org("Auditor"), "chaincode", "invoke", *fabric_network.cli.orderer_args(),
                                   "-C", fabric_network.task, "-n", "swarmfuse", "-c", put,
                                   *fabric_network.cli.peer_args(fabric_network.task_members), "--waitForEvent",
                                   identity="User1")
    assert write.returncode != 0
    assert "access denied" in write.stderr or "FORBIDDEN" in write.stderr, write.stderr[-500:]
    assert fabric_network.query("DC1", "Sample:Get", key) == "audited"


def test_connection_profiles_and_logs_of_every_org(fabric_network: FabricNetwork) -> None:
    for org in ("DC1", "DC2", "DC3", "DC4", "Auditor"):
        profile = fabric_network.profile(org)
        assert profile["org"] == org and profile["mspid"] == f"{org}MSP"
        peer = profile["peer"]
        assert peer["endpoint"] == f"127.0.0.1:{fabric_network.topology.peer_ports(fabric_network.org(org)).listen}"
        paths = [peer["tls_ca_cert"]] + [p for ident in profile["identities"].values() for p in ident.values()]
        paths += [o["tls_ca_cert"] for o in profile["orderers"]]
        assert all(Path(p).is_file() for p in paths), paths
        assert len(profile["orderers"]) == 3
        assert (fabric_network.home / "logs" / f"peer-{org}.log").stat().st_size > 0
        assert (fabric_network.home / "logs" / f"chaincode-{org}.log").is_file()
