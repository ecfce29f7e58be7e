"""The embedded engine killed (SIGKILL) while a client submits: nothing the client saw committed is lost.

A network of its own (two orgs, one task). A thread submits ``Sample:Put`` transactions through the
Gateway client in a loop and records every transaction whose commit status it saw VALID; a second
thread listens to the chaincode's events with a ``FileCheckpointer``. After a few commits the engine
process is killed; its SQLite ledger must open (``Ledger.open`` checks the hash chain, the commit
hashes and the state against the history) and hold every transaction seen committed; ``network up``
restarts the engine; the client carries on. At the end every transaction the client saw committed is
VALID in CommitStatus and its value readable, the blocks served by Deliver chain by their header
hashes, and the listener has resumed from its checkpoint with no event lost and none twice.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import LedgerNetwork, free_port_base, new_network
from fabric_protos.common import common_pb2
from fabric_protos.peer.transaction_pb2 import TxValidationCode

from swarmfuse.client.gateway import ChaincodeEvents, FileCheckpointer, Gateway, GatewayError, Timeouts
from swarmfuse.network import tasks
from swarmfuse.network.embedded.engine import ledger_dir
from swarmfuse.network.embedded.ledger import Ledger
from swarmfuse.network.protocol.blockfmt import data_hash, header_hash
from swarmfuse.network.topology import Topology

pytestmark = pytest.mark.integration

TASK = "crash"
CHAINCODE = "swarmfuse"
TIMEOUTS = Timeouts(connect=3.0, endorse=10.0, evaluate=10.0, submit=10.0, commit_status=15.0)


class Submitter(threading.Thread):
    """Submits ``Sample:Put`` in a loop; ``committed`` holds (tx ID, key, value) of each one seen VALID,
    ``uncertain`` the endorsed ones whose outcome it could not learn (the engine died under the call),
    with the transaction's bytes so that the very same envelope can be submitted again."""

    def __init__(self, profile: Path) -> None:
        super().__init__(name="submitter", daemon=True)
        self.profile = profile
        self.committed: list[tuple[str, str, str]] = []
        self.uncertain: list[tuple[str, str, str, bytes]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        gateway: Gateway | None = None
        number = 0
        while not self.stopping.is_set():
            key, value = f"crash-{number:04d}", f"value {number}"
            number += 1
            transaction = None
            try:
                if gateway is None:
                    gateway = Gateway.from_profile(self.profile, timeouts=TIMEOUTS)
                proposal = gateway.network(TASK).contract(CHAINCODE, "Sample").new_proposal("Put", key, value)
                transaction = proposal.endorse()
                status = transaction.submit().status()
                assert status.successful, status
                self.committed.append((status.transaction_id, key, value))
            except GatewayError as exc:
                self.errors.append(str(exc).splitlines()[0])
                if transaction is not None:
                    self.uncertain.append((transaction.transaction_id, key, value, transaction.to_bytes()))
                if gateway is not None:
                    gateway.close()
                    gateway = None
                time.sleep(0.2)
        if gateway is not None:
            gateway.close()


class Listener(threading.Thread):
    """Chaincode events of the task from ``start_block``, resumed from a file checkpoint after any failure."""

    def __init__(self, profile: Path, start_block: int, checkpoint: Path) -> None:
        super().__init__(name="listener", daemon=True)
        self.profile = profile
        self.start_block = start_block
        self.checkpoint = checkpoint
        self.seen: list[str] = []
        self.streams = 0
        self.stopping = threading.Event()
        self._events: ChaincodeEvents | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with Gateway.from_profile(self.profile, timeouts=TIMEOUTS) as gateway:
                    self._events = gateway.network(TASK).chaincode_events(
                        CHAINCODE, start_block=self.start_block, checkpointer=FileCheckpointer(self.checkpoint))
                    self.streams += 1
                    with self._events as events:
                        for event in events:
                            self.seen.append(event.transaction_id)
                            if self.stopping.is_set():
                                return
            except GatewayError:
                time.sleep(0.5)

    def stop(self) -> None:
        self.stopping.set()
        if self._events is not None:
            self._events.close()


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _tx_codes(blocks: list[common_pb2.Block]) -> dict[str, list[int]]:
    codes: dict[str, list[int]] = {}
    for block in blocks:
        flags = block.metadata.metadata[common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER]
        for index, raw in enumerate(block.data.data):
            payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
            tx_id = common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id
            codes.setdefault(tx_id, []).append(flags[index])
    return codes


def _check_chain(blocks: list[common_pb2.Block]) -> None:
    """Numbers 0..n-1, each block's data hash over its data, each previous_hash the header hash before it."""
    assert [block.header.number for block in blocks] == list(range(len(blocks)))
    for previous, block in itertools.pairwise(blocks):
        assert block.header.previous_hash == header_hash(previous.header), f"block {block.header.number}"
    for block in blocks:
        assert block.header.data_hash == data_hash(list(block.data.data)), f"block {block.header.number}"


def test_engine_killed_while_submitting_loses_nothing_committed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    network = new_network(home, "embedded")
    network.up(Topology(n_orgs=2, port_base=free_port_base()), "embedded")
    submitter = listener = None
    try:
        tasks.create(network, TASK, "DC1,DC2")
        net = LedgerNetwork(network, TASK)
        ledger_path = ledger_dir(network.layout) / f"{TASK}.sqlite"
        start = net.height("DC1")
        listener = Listener(net.profile_path("DC2"), start, tmp_path / "events.checkpoint")
        submitter = Submitter(net.profile_path("DC1"))
        listener.start()
        submitter.start()
        _wait_for(lambda: len(submitter.committed) >= 5, "five commits before the crash")

        pid = network.supervisor.pid("engine")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen_before_crash = list(submitter.committed)
        with Ledger.open(ledger_path) as ledger:  # raises LedgerCorrupt unless chain, commit hashes and state agree
            for tx_id, _, _ in seen_before_crash:
                location = ledger.tx_location(tx_id)
                assert location is not None and location.code == TxValidationCode.VALID, tx_id
            height_at_crash = ledger.height
        time.sleep(1.0)  # the client meets the dead engine

        network.up()
        assert network.supervisor.pid("engine") not in (None, pid)
        _wait_for(lambda: len(submitter.committed) >= len(seen_before_crash) + 5, "five commits after the restart")
        submitter.stopping.set()
        submitter.join(timeout=60)
        assert not submitter.is_alive()
        assert submitter.errors, "the client never noticed the crash"

        with net.gateway("DC1") as gateway:  # the client's recovery: resend the same envelope, learn the outcome
            for tx_id, key, value, kept in submitter.uncertain:
                status = gateway.network(TASK).load_transaction(kept).submit().status()
                assert status.successful and status.transaction_id == tx_id
                submitter.committed.append((tx_id, key, value))

        height = net.height("DC1")
        assert height > height_at_crash
        blocks = net.blocks("DC2", 0, height - 1)
        _check_chain(blocks)
        codes = _tx_codes(blocks)
        with net.gateway("DC2") as gateway:
            network_dc2 = gateway.network(TASK)
            contract = network_dc2.contract(CHAINCODE, "Sample")
            for tx_id, key, value in submitter.committed:
                first, *copies = codes[tx_id]  # a resent envelope that had committed already is a duplicate
                assert first == TxValidationCode.VALID and set(copies) <= {TxValidationCode.DUPLICATE_TXID}, tx_id
                assert network_dc2.commit(tx_id).status().successful, tx_id
                assert contract.evaluate_transaction("Get", key).decode() == value

        expected = [tx_id for block in blocks[start:] for tx_id, flags in _tx_codes([block]).items()
                    if TxValidationCode.VALID in flags]
        _wait_for(lambda: len(listener.seen) >= len(expected), "the listener to catch up")
        time.sleep(1.0)  # a duplicate would arrive right after
        listener.stop()
        listener.join(timeout=30)
        assert listener.streams >= 2, "the listener never had to resume"
        assert listener.seen == expected, "events lost, duplicated or out of order"
        assert {tx_id for tx_id, _, _ in submitter.committed} <= set(listener.seen)
    finally:
        for thread in (submitter, listener):
            if thread is not None:
                thread.stopping.set()
        if listener is not None:
            listener.stop()
        if network.running():
            network.down()
    with Ledger.open(ledger_path) as ledger:  # after a clean stop as well
        assert ledger.height == height
