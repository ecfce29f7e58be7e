"""The ordering service of one channel: cuts submitted envelopes into blocks (Fabric's BatchSize and
BatchTimeout), has each block validated, signs it as the orderer and commits it atomically."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fabric_protos.common import common_pb2

from swarmfuse.network.embedded import blockfmt
from swarmfuse.network.embedded.ledger import Ledger, TxResult

logger = logging.getLogger(__name__)

Validate = Callable[[Sequence[bytes], int], list[TxResult]]


@dataclass(frozen=True)
class BatchConfig:
    max_count: int
    absolute_max_bytes: int
    timeout_s: float


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
        self._thread = threading.Thread(target=self._run, name=f"orderer-{channel}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Cut and commit what is pending, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def broadcast(self, envelope: bytes) -> None:
        """Accept one envelope for ordering (the caller has checked it as Fabric's Broadcast does)."""
        if len(envelope) > self._batch.absolute_max_bytes:
            raise ValueError(f"envelope of {len(envelope)} bytes exceeds the channel's AbsoluteMaxBytes")
        with self._cond:
            if self._stopping:
                raise RuntimeError(f"the orderer of {self.channel} is stopping")
            if self._pending_bytes + len(envelope) > self._batch.absolute_max_bytes:
                self._ready.append(self._cut_locked())
            self._pending.append(envelope)
            self._pending_bytes += len(envelope)
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
                self._commit(batch)
            except Exception:  # a failed commit must not kill ordering; the envelopes are reported lost
                logger.exception("[%s] could not commit a block of %d transactions", self.channel, len(batch))

    def _commit(self, envelopes: list[bytes]) -> None:
        number = self._ledger.height
        previous = self._ledger.block(number - 1)
        assert previous is not None, "a channel always has its genesis block"
        block = blockfmt.new_block(number, blockfmt.header_hash(previous.header), envelopes)
        blockfmt.sign_block(block, self._sign, self._creator, last_config=0)
        results = self._validate(envelopes, number)
        blockfmt.set_transactions_filter(block, [result.code for result in results])
        self._ledger.commit(block, results)
        logger.info("[%s] committed block %d with %d transactions", self.channel, number, len(envelopes))
        self._on_commit(block, results)
