"""The embedded orderer never drops a batch: a block that cannot be made or committed halts the channel's
orderer loudly (later Broadcasts refused), its accepted transactions are kept, and the next start commits
them before anything else, or refuses to start the channel while they cannot be committed."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2

from swarmfuse.network.embedded.ledger import Ledger
from swarmfuse.network.embedded.orderer import (
    BatchConfig,
    Orderer,
    OrdererHalted,
    UnorderedBatchesError,
    Validate,
    load_batches,
    save_batches,
)
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.model import TxResult

pytestmark = pytest.mark.timeout(60)

BATCH = BatchConfig(max_count=2, absolute_max_bytes=1 << 20, preferred_max_bytes=1 << 19, timeout_s=0.05)


def env(name: str, size: int = 0) -> bytes:
    """An envelope whose payload is ``name``, padded to ``size`` payload bytes."""
    return common_pb2.Envelope(payload=name.encode().ljust(size, b".")).SerializeToString()


def _valid(envelopes: Sequence[bytes], number: int) -> list[TxResult]:
    return [TxResult(hashlib.sha256(e).hexdigest(), i, 0) for i, e in enumerate(envelopes)]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ch.db") as opened:
        genesis = blockfmt.new_block(0, b"", [b"config"])
        blockfmt.set_transactions_filter(genesis, [0])
        opened.commit(genesis, [TxResult("config", 0, 0)])
        yield opened


def _orderer(ledger: Ledger, validate: Validate = _valid, committed: list[int] | None = None) -> Orderer:
    def on_commit(block: common_pb2.Block, results: list[TxResult]) -> None:
        if committed is not None:
            committed.append(block.header.number)

    return Orderer("ch", ledger, BATCH, validate, lambda data: b"signature", b"orderer", on_commit)


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_failed_commit_halts_the_orderer_and_keeps_the_batch(ledger: Ledger, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    orderer = _orderer(ledger)
    monkeypatch.setattr(ledger, "commit", lambda block, results: (_ for _ in ()).throw(OSError("disk full")))
    orderer.start()
    with caplog.at_level(logging.CRITICAL):
        orderer.broadcast(env("tx-a"))
        orderer.broadcast(env("tx-b"))
        _wait(lambda: orderer.halted is not None, "the orderer did not halt")
    assert "disk full" in orderer.halted and "ORDERER HALTED" in caplog.text
    with pytest.raises(OrdererHalted, match="halted"):
        orderer.broadcast(env("tx-c"))
    assert ledger.height == 1
    assert load_batches(orderer.unordered_path) == [[env("tx-a"), env("tx-b")]]
    orderer.stop()

    monkeypatch.undo()  # the fault is fixed: the next start commits the kept batch first, then orders as usual
    committed: list[int] = []
    restarted = _orderer(ledger, committed=committed)
    restarted.start()
    assert ledger.height == 2 and list(ledger.block(1).data.data) == [env("tx-a"), env("tx-b")]
    assert not restarted.unordered_path.exists() and committed == [1]
    restarted.broadcast(env("tx-c"))
    _wait(lambda: ledger.height == 3, "the restarted orderer did not order")
    restarted.stop()


def test_a_failing_validation_halts_too_and_a_start_that_cannot_commit_refuses(ledger: Ledger) -> None:
    def broken(envelopes: Sequence[bytes], number: int) -> list[TxResult]:
        raise RuntimeError("state unreadable")

    orderer = _orderer(ledger, validate=broken)
    orderer.start()
    orderer.broadcast(env("tx-a"))  # cut by the timeout
    _wait(lambda: orderer.halted is not None, "the orderer did not halt")
    orderer.stop()
    assert load_batches(orderer.unordered_path) == [[env("tx-a")]]
    again = _orderer(ledger, validate=broken)
    with pytest.raises(UnorderedBatchesError, match="delete the file to refuse them"):
        again.start()
    assert load_batches(orderer.unordered_path) == [[env("tx-a")]] and ledger.height == 1


def test_a_restart_keeps_only_the_batches_not_yet_committed(ledger: Ledger) -> None:
    orderer = _orderer(ledger)
    save_batches(orderer.unordered_path, [[env("tx-a"), env("tx-b")], [env("tx-c")]])
    calls = 0

    def second_fails(envelopes: Sequence[bytes], number: int) -> list[TxResult]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("fault")
        return _valid(envelopes, number)

    with pytest.raises(UnorderedBatchesError):
        _orderer(ledger, validate=second_fails).start()
    assert ledger.height == 2 and load_batches(orderer.unordered_path) == [[env("tx-c")]]
    orderer.start()
    assert ledger.height == 3 and not orderer.unordered_path.exists()
    orderer.stop()


def test_a_listener_failure_does_not_halt_ordering(ledger: Ledger) -> None:
    def on_commit(block: common_pb2.Block, results: list[TxResult]) -> None:
        raise ValueError("listener bug")

    orderer = Orderer("ch", ledger, BATCH, _valid, lambda data: b"signature", b"orderer", on_commit)
    orderer.start()
    orderer.broadcast(env("tx-a"))
    _wait(lambda: ledger.height == 2, "the block was not committed")
    orderer.broadcast(env("tx-b"))
    _wait(lambda: ledger.height == 3, "ordering stopped after a listener failed")
    assert orderer.halted is None
    orderer.stop()


def test_a_damaged_unordered_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ch.db.unordered"
    save_batches(path, [[env("tx-a")]])
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match="truncated"):
        load_batches(path)


def test_blocks_are_cut_at_the_preferred_size_as_fabrics_blockcutter_does(ledger: Ledger) -> None:
    """BatchSize of 10 messages, preferred 1000 bytes: a message above the preferred size gets a block of its own
    (after the pending batch); one that would take the pending batch above it cuts the pending batch first."""
    batch = BatchConfig(max_count=10, absolute_max_bytes=10_000, preferred_max_bytes=1000, timeout_s=0.2)
    orderer = Orderer("ch", ledger, batch, _valid, lambda data: b"signature", b"orderer", lambda b, r: None)
    orderer.start()
    for name, size in (("a", 400), ("b", 400), ("c", 400), ("big", 3000), ("d", 100)):
        orderer.broadcast(env(name, size))
    _wait(lambda: ledger.height == 5, "the four blocks were not cut")
    orderer.stop()
    blocks = [[common_pb2.Envelope.FromString(e).payload[:3].rstrip(b".") for e in ledger.block(n).data.data]
              for n in range(1, 5)]
    assert blocks == [[b"a", b"b"], [b"c"], [b"big"], [b"d"]]
    with pytest.raises(ValueError, match="AbsoluteMaxBytes"):
        orderer.broadcast(env("huge", 20_000))
