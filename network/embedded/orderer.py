"""The ordering service of one channel: cuts submitted envelopes into blocks (Fabric's BatchSize and
BatchTimeout, cut as Fabric's blockcutter does; a CONFIG transaction in a block of its own), has each block
validated, signs it as the orderer (LAST_CONFIG naming the newest config block) and commits it atomically.

A batch is never dropped. When a block cannot be made or committed (the validator or the ledger fails), the
orderer halts: it writes every envelope it accepted and has not committed to the channel's unordered file
(``<ledger>.unordered``, atomically), logs the failure as critical and refuses every later Broadcast with
SERVICE_UNAVAILABLE. The next start commits those envelopes first, in the order accepted, or refuses to start
the channel, naming the file, until the fault is fixed (or the operator deletes it: the transactions are then
refused as a whole, and their clients never see them commit).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2

from swarmfuse.errors import SwarmfuseError
from swarmfuse.files import write_atomic
from swarmfuse.network.embedded.ledger import Ledger
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.model import TxResult

logger = logging.getLogger(__name__)

Validate = Callable[[Sequence[bytes], int], list[TxResult]]


@dataclass(frozen=True)
class BatchConfig:
    """The channel's BatchSize and BatchTimeout."""

    max_count: int
    absolute_max_bytes: int
    preferred_max_bytes: int
    timeout_s: float


def message_size(envelope: bytes) -> int:
    """What Fabric's blockcutter counts of an envelope: its payload and signature bytes."""
    parsed = common_pb2.Envelope.FromString(envelope)
    return len(parsed.payload) + len(parsed.signature)


class OrdererHalted(SwarmfuseError, RuntimeError):
    """The channel's orderer stopped after a block could not be committed; it orders nothing until a restart."""


class UnorderedBatchesError(SwarmfuseError, RuntimeError):
    """The envelopes a halted orderer left could not be committed at start; the channel does not start."""


def save_batches(path: Path, batches: Sequence[Sequence[bytes]]) -> None:
    """Write ``batches`` (each a ``common.BlockData`` of envelopes) to ``path``, length-prefixed, atomically."""
    records = [common_pb2.BlockData(data=list(batch)).SerializeToString() for batch in batches]
    write_atomic(path, b"".join(struct.pack(">Q", len(record)) + record for record in records))


def load_batches(path: Path) -> list[list[bytes]]:
    """The batches :func:`save_batches` wrote to ``path``; ``ValueError`` naming the file when it is damaged."""
    data, batches, offset = path.read_bytes(), [], 0
    while offset < len(data):
        if offset + 8 > len(data):
            raise ValueError(f"{path} is truncated at byte {offset}")
        (size,) = struct.unpack_from(">Q", data, offset)
        record = data[offset + 8:offset + 8 + size]
        if len(record) != size:
            raise ValueError(f"{path} is truncated at byte {offset}")
        batches.append(list(common_pb2.BlockData.FromString(record).data))
        offset += 8 + size
    return batches


class Orderer:
    """One thread per channel: collects envelopes, cuts a block when the batch is full or its timeout expires."""

    def __init__(self, channel: str, ledger: Ledger, batch: BatchConfig, validate: Validate,
                 sign: Callable[[bytes], bytes], creator: bytes,
                 on_commit: Callable[[common_pb2.Block, list[TxResult]], None]) -> None:
        self.channel = channel
        self._ledger = ledger
        self._batch = batch
        self._validate = validate
        self._sign = sign
        self._creator = creator
        self._on_commit = on_commit
        self._ready: list[list[bytes]] = []  # batches cut by size, waiting for the thread
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._first_at: float | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._halted: str | None = None
        tip = ledger.block(ledger.height - 1)
        assert tip is not None, "a channel always has its genesis block"
        self._last_config = blockfmt.last_config_index(tip)
        self._thread = threading.Thread(target=self._run, name=f"orderer-{channel}", daemon=True)

    @property
    def unordered_path(self) -> Path:
        """Where a halted orderer keeps the envelopes it accepted and could not commit."""
        return self._ledger.path.with_name(self._ledger.path.name + ".unordered")

    @property
    def halted(self) -> str | None:
        """Why the orderer halted, ``None`` while it runs."""
        return self._halted

    def start(self) -> None:
        """Commit what a halted run left (see the module), then start ordering."""
        path = self.unordered_path
        if path.exists():
            try:
                batches = load_batches(path)
                while batches:  # one block per batch; the file keeps what is not committed yet
                    block, results = self._commit(batches[0])
                    batches.pop(0)
                    save_batches(path, batches)
                    logger.warning("[%s] committed block %d: %d transactions a halted orderer had left in %s",
                                   self.channel, block.header.number, len(results), path)
                    self._on_commit(block, results)
            except Exception as exc:
                raise UnorderedBatchesError(
                    f"channel {self.channel}: the transactions a halted orderer left in {path} cannot be committed "
                    f"({exc!r}); fix the fault and restart, or delete the file to refuse them") from exc
            path.unlink()
        self._thread.start()

    def stop(self) -> None:
        """Cut and commit what is pending, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def configure(self, batch: BatchConfig) -> None:
        """Cut the batches after this one by ``batch`` (a config block changed the channel's BatchSize or
        BatchTimeout)."""
        with self._cond:
            self._batch = batch
            self._cond.notify_all()

    def broadcast(self, envelope: bytes, isolated: bool = False) -> None:
        """Accept one envelope for ordering (the caller has checked it as Fabric's Broadcast does); an ``isolated``
        one (a CONFIG transaction) gets a block of its own, after the pending batch."""
        if len(envelope) > self._batch.absolute_max_bytes:
            raise ValueError(f"envelope of {len(envelope)} bytes exceeds the channel's AbsoluteMaxBytes")
        size = message_size(envelope)
        with self._cond:
            if self._halted is not None:
                raise OrdererHalted(f"the orderer of {self.channel} halted ({self._halted}); it orders nothing "
                                    "until the engine restarts")
            if self._stopping:
                raise RuntimeError(f"the orderer of {self.channel} is stopping")
            # Fabric's blockcutter: a message above PreferredMaxBytes gets a block of its own (after the pending
            # batch); one that would take the pending batch above it cuts the pending batch first.
            if isolated or size > self._batch.preferred_max_bytes:
                if self._pending:
                    self._ready.append(self._cut_locked())
                self._ready.append([envelope])
                self._cond.notify_all()
                return
            if self._pending and self._pending_bytes + size > self._batch.preferred_max_bytes:
                self._ready.append(self._cut_locked())
            self._pending.append(envelope)
            self._pending_bytes += size
            if self._first_at is None:
                self._first_at = time.monotonic()
            if len(self._pending) >= self._batch.max_count:
                self._ready.append(self._cut_locked())
            self._cond.notify_all()

    def _cut_locked(self) -> list[bytes]:
        batch, self._pending, self._pending_bytes, self._first_at = self._pending, [], 0, None
        return batch

    def _next_batch(self) -> list[bytes] | None:
        """The next batch to commit: a full one, one whose timeout expired, or ``None`` once stopped and empty."""
        with self._cond:
            while True:
                if self._ready:
                    return self._ready.pop(0)
                if self._pending:
                    due = self._first_at + self._batch.timeout_s  # type: ignore[operator]
                    if self._stopping or time.monotonic() >= due:
                        return self._cut_locked()
                    self._cond.wait(timeout=max(due - time.monotonic(), 0.0))
                elif self._stopping:
                    return None
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                block, results = self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - any fault halts the orderer with the batch uncommitted
                self._halt(batch, exc)
                return
            try:
                self._on_commit(block, results)
            except Exception:  # the block is committed; a listener's failure is its own
                logger.exception("[%s] a commit listener failed on block %d", self.channel, block.header.number)

    def _halt(self, batch: list[bytes], exc: Exception) -> None:
        """Stop ordering, keeping ``batch`` and every envelope accepted after it in the unordered file."""
        with self._cond:
            self._halted = f"block {self._ledger.height} could not be committed: {exc!r}"
            batches = [batch, *self._ready, *([self._pending] if self._pending else [])]
            self._ready, self._pending, self._pending_bytes, self._first_at = [], [], 0, None
            self._cond.notify_all()
        count = sum(map(len, batches))
        try:
            save_batches(self.unordered_path, batches)
            kept = f"its {count} accepted transactions are kept in {self.unordered_path} for the next start"
        except Exception:
            logger.exception("[%s] could not keep the unordered transactions", self.channel)
            kept = f"its {count} accepted transactions could NOT be kept and are lost"
        logger.critical("[%s] ORDERER HALTED: %s; %s", self.channel, self._halted, kept, exc_info=exc)

    def _commit(self, envelopes: list[bytes]) -> tuple[common_pb2.Block, list[TxResult]]:
        number = self._ledger.height
        previous = self._ledger.block(number - 1)
        assert previous is not None, "a channel always has its genesis block"
        block = blockfmt.new_block(number, blockfmt.header_hash(previous.header), envelopes)
        last_config = number if blockfmt.is_config_block(envelopes) else self._last_config
        blockfmt.sign_block(block, self._sign, self._creator, last_config=last_config)
        results = self._validate(envelopes, number)
        blockfmt.set_transactions_filter(block, [result.code for result in results])
        self._ledger.commit(block, results)
        self._last_config = last_config
        logger.info("[%s] committed block %d with %d transactions", self.channel, number, len(envelopes))
        return block, results
