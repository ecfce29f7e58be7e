"""Against a real network of each engine (the session's ``ledger_network``, plus short-lived networks
of their own): invoke and read back on every org, chaincode events in committed blocks, rejected
transactions, channel isolation, status, crash recovery, the auditor's rights, profiles and logs.
Fabric-only behaviour (a restarted peer catching up, BFT ordering) runs where a Fabric release is."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from cli_runner import run_cli_process
from conftest import ENGINES, LedgerNetwork, free_port_base, new_network, require_fabric

from swarmfuse.client.gateway import DeliverError, EndorseError, EvaluateError, SubmitError
from swarmfuse.network import tasks
from swarmfuse.network.blocks import transactions
from swarmfuse.network.control import Network
from swarmfuse.network.errors import InvalidInput
from swarmfuse.network.tasks import TransactionFailed
from swarmfuse.network.topology import Topology

pytestmark = pytest.mark.integration

CHANNEL_READERS = ("DC1", "DC2", "DC3", "Auditor")
FABRIC_ONLY = [engine for engine in ENGINES if engine == "fabric"]


def _key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


def test_invoke_is_read_back_on_every_peer_of_the_task(ledger_network: LedgerNetwork) -> None:
    key = _key()
    ledger_network.invoke("DC1", "Sample:Put", key, "hello from DC1")
    for org in CHANNEL_READERS:
        assert ledger_network.query(org, "Sample:Get", key) == "hello from DC1"


def test_chaincode_event_of_the_transaction_is_in_its_committed_block(ledger_network: LedgerNetwork) -> None:
    key = _key()
    result = ledger_network.submit("DC2", "Sample:Put", key, "evented")
    [block] = ledger_network.blocks("DC3", result.block_number, result.block_number)
    by_tx = {tx.tx_id: tx for tx in transactions(block)}
    event = by_tx[result.tx_id]
    assert (event.chaincode_id, event.event_name) == ("swarmfuse", "Put")
    assert event.event_payload and b'"evented"' in event.event_payload


def test_failing_transaction_is_rejected_with_its_message_and_writes_nothing(ledger_network: LedgerNetwork) -> None:
    before = ledger_network.height("DC1")
    with pytest.raises(TransactionFailed, match=r"BadRequest: key must not be empty"):
        ledger_network.invoke("DC1", "Sample:Put", "", "never stored")
    with pytest.raises(TransactionFailed, match="NotFound"):
        ledger_network.query("DC1", "Sample:Get", _key())
    assert ledger_network.height("DC1") == before


def test_org_outside_the_task_is_refused_the_channel(ledger_network: LedgerNetwork) -> None:
    with ledger_network.gateway("DC4") as gateway:
        network = gateway.network(ledger_network.task)
        with pytest.raises(DeliverError, match="NOT_FOUND|FORBIDDEN"), network.block_events(start_block=0) as blocks:
            next(iter(blocks))
        with pytest.raises((EvaluateError, EndorseError)):
            network.contract("swarmfuse").evaluate_transaction("Sample:Get", "x")


def test_status_reports_every_process_healthy(ledger_network: LedgerNetwork) -> None:
    rows = ledger_network.network.status()
    kinds = Counter(row.kind for row in rows)
    if ledger_network.engine == "fabric":
        assert kinds == {"orderer": 3, "peer": 5, "chaincode": 5}
    else:
        assert kinds == {"engine": 1, "chaincode": 5}
    assert all(row.health == "ok" and row.pid for row in rows), rows
    again = run_cli_process("network", "up", "--home", str(ledger_network.home))
    assert again.returncode == 0 and "already running" in again.stdout
    assert f"engine: {ledger_network.engine}" in again.stdout
    shown = run_cli_process("network", "status", "--home", str(ledger_network.home))
    assert shown.returncode == 0 and f"engine: {ledger_network.engine}" in shown.stdout


@pytest.mark.parametrize("ledger_network", FABRIC_ONLY, indirect=True)
def test_restarted_peer_catches_up_on_blocks_committed_while_down(ledger_network: LedgerNetwork) -> None:
    pid = ledger_network.network.supervisor.pid("peer-DC3")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while ledger_network.network.supervisor.pid("peer-DC3") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    keys = [_key() for _ in range(3)]
    for key in keys:
        ledger_network.submit("DC1", "Sample:Put", key, f"while DC3 was down: {key}", endorsers=["DC1", "DC2"])
    target = ledger_network.height("DC1")
    restarted = run_cli_process("network", "up", "--home", str(ledger_network.home))
    assert restarted.returncode == 0, restarted.stderr
    assert ledger_network.network.supervisor.pid("peer-DC3") not in (None, pid)
    deadline = time.monotonic() + 60
    while ledger_network.height("DC3") < target and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ledger_network.height("DC3") >= target
    for key in keys:
        assert ledger_network.query("DC3", "Sample:Get", key) == f"while DC3 was down: {key}"


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


def test_crash_recovery_keeps_the_ledger_and_down_leaves_no_process(tmp_path: Path, engine: str) -> None:
    """A network of its own: crash every process, ``up`` restarts it with the data, ``down`` stops all."""
    home = tmp_path / "crashy"
    network = new_network(home, engine)
    network.up(Topology(n_orgs=2, port_base=free_port_base()), engine)
    try:
        tasks.create(network, "crash", "DC1,DC2")
        dc1, dc2 = (network.require_state().topology().org(name) for name in ("DC1", "DC2"))
        tasks.invoke(network, "crash", dc1, "Sample:Put", "survives", "the crash")
        pids = [network.supervisor.pid(name) for name in network.running()]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            os.waitpid(pid, 0)
        assert network.running() == []
        up = run_cli_process("network", "up", "--home", str(home))
        assert up.returncode == 0, up.stderr
        assert len(network.running()) == len(pids)
        assert tasks.query(network, "crash", dc2, "Sample:Get", "survives") == b"the crash"
        tasks.invoke(network, "crash", dc2, "Sample:Put", "after", "restart")
        assert tasks.query(network, "crash", dc1, "Sample:Get", "after") == b"restart"
    finally:
        down = run_cli_process("network", "down", "--home", str(home))
    assert down.returncode == 0, down.stderr
    assert network.running() == []
    assert _processes_mentioning(str(home)) == []
    purged = run_cli_process("network", "down", "--purge", "--home", str(home))
    assert purged.returncode == 0 and not home.exists()


@pytest.mark.parametrize("engine", FABRIC_ONLY)
def test_bft_network_orders_transactions(tmp_path: Path, engine: str) -> None:
    """``--consensus bft``: four SmartBFT orderers order a task channel's transactions."""
    network = Network(tmp_path / "bft", require_fabric())
    network.up(Topology(n_orgs=2, consensus="bft", port_base=free_port_base()), engine)
    try:
        assert sorted(n for n in network.running() if n.startswith("orderer")) == [f"orderer{i}" for i in range(4)]
        tasks.create(network, "bft", "DC1,DC2")
        dc1, dc2 = network.require_state().topology().orgs
        tasks.invoke(network, "bft", dc1, "Sample:Put", "agreed", "by four orderers")
        assert tasks.query(network, "bft", dc2, "Sample:Get", "agreed") == b"by four orderers"
    finally:
        network.down()
    assert network.running() == []


def test_embedded_engine_refuses_bft(tmp_path: Path) -> None:
    network = Network(tmp_path / "home")
    with pytest.raises(InvalidInput, match="--consensus applies to --engine fabric"):
        network.up(Topology(n_orgs=2, consensus="bft", port_base=free_port_base()), "embedded")
    assert not (tmp_path / "home" / "state.json").exists()


def test_auditor_reads_but_its_clients_cannot_submit(ledger_network: LedgerNetwork) -> None:
    key = _key()
    ledger_network.invoke("DC2", "Sample:Put", key, "audited")
    with ledger_network.gateway("Auditor") as gateway:
        contract = gateway.network(ledger_network.task).contract("swarmfuse", "Sample")
        assert contract.evaluate_transaction("Get", key) == b"audited"
        with pytest.raises(SubmitError, match="status=FORBIDDEN.*'Writers' sub-policies"):
            contract.submit_transaction("Put", key, "tampered")
    assert ledger_network.query("DC1", "Sample:Get", key) == "audited"


def test_connection_profiles_and_logs_of_every_org(ledger_network: LedgerNetwork) -> None:
    for org in ("DC1", "DC2", "DC3", "DC4", "Auditor"):
        profile = ledger_network.profile(org)
        assert profile["org"] == org and profile["mspid"] == f"{org}MSP"
        assert profile["engine"] == ledger_network.engine
        peer = profile["peer"]
        assert peer["endpoint"] == f"127.0.0.1:{ledger_network.topology.peer_ports(ledger_network.org(org)).listen}"
        identities = profile["identities"].values()
        paths = [peer["tls_ca_cert"]] + [ident[part] for ident in identities for part in ("cert", "key")]
        paths += [ident["tls_client"][part] for ident in identities for part in ("cert", "key")]  # mutual TLS pair
        paths += [o["tls_ca_cert"] for o in profile["orderers"]]
        assert all(Path(p).is_file() for p in paths), paths
        assert len(profile["orderers"]) == (3 if ledger_network.engine == "fabric" else 1)  # the engine's: orderer0
        node_log = f"peer-{org}.log" if ledger_network.engine == "fabric" else "engine.log"
        assert (ledger_network.home / "logs" / node_log).stat().st_size > 0
        assert (ledger_network.home / "logs" / f"chaincode-{org}.log").is_file()


def test_no_file_readable_by_others_holds_a_private_key(ledger_network: LedgerNetwork) -> None:
    """Every file of the network home that holds a private key, and every chaincode package (its connection file
    carries the chaincode client's TLS key), is readable by its owner alone, inside a package too."""
    import io
    import stat
    import tarfile

    keys, packages = [], []
    for path in ledger_network.home.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if b"PRIVATE KEY-----" in data:
            keys.append(path)
        if path.name.endswith(".tar.gz") and path.parent.parent.name == "chaincode":
            packages.append(path)
            with tarfile.open(fileobj=io.BytesIO(data)) as outer:
                code = outer.extractfile("code.tar.gz").read()  # type: ignore[union-attr]
                with tarfile.open(fileobj=io.BytesIO(code)) as inner:
                    members = [*outer.getmembers(), *inner.getmembers()]
            assert all(m.mode & 0o077 == 0 for m in members), (path, [(m.name, oct(m.mode)) for m in members])
    assert keys and packages
    exposed = [(str(p), oct(stat.S_IMODE(p.stat().st_mode))) for p in [*keys, *packages] if p.stat().st_mode & 0o077]
    assert not exposed
