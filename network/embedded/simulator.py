"""Transaction simulation over committed state, recording a Fabric ``TxReadWriteSet``.

Behaves as Fabric's ``txmgr`` simulator (core/ledger/kvledger/txmgmt/txmgr, rwsetutil):
- reads see committed state only (no read-your-writes); each read records a ``KVRead`` with the
  committed version, or none when the key does not exist (a later read of the key replaces it);
- writes are buffered, a later write of a key replaces the earlier one, an empty value is a delete;
- a range query records a ``RangeQueryInfo`` from the results actually pulled from its iterator:
  ``end_key`` is the last key returned until the iterator is exhausted, then the query's end key;
  up to 50 results are kept as raw reads, more are folded into a merkle summary (SHA-256, degree 50);
- after a paginated range query writes are refused, and a paginated query after a write is refused;
- history queries are not recorded;
- a key's metadata is read as its value is (the read is recorded with the key's version); a metadata write
  replaces the key's whole metadata map, a later one for the same key replacing the earlier;
- the read-write set has one ``NsReadWriteSet`` for the namespace once anything was read, written or
  queried, with reads and writes sorted by key and range queries in the order they were opened.

A simulator serves one transaction and is not thread-safe: the caller makes one call at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.model import HistoryEntry, StateReader, VersionedValue
from swarmfuse.network.protocol.txops import decode_metadata

# Results of a range query kept as raw reads; beyond this they are hashed (Fabric's maxDegreeQueryReadsHashing).
MAX_DEGREE_QUERY_READS_HASHING = 50


class SimulationError(SwarmfuseError):
    """The simulator refuses a call; the message is the one Fabric's peer gives."""


def _kv_read(key: str, value: VersionedValue | None) -> kv_rwset_pb2.KVRead:
    read = kv_rwset_pb2.KVRead(key=key)
    if value is not None:
        read.version.CopyFrom(kv_rwset_pb2.Version(block_num=value.version.block, tx_num=value.version.tx))
    return read


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class _MerkleTree:
    """Fabric's range-query merkle tree: a level is folded into one hash of the next once it holds
    more than ``max_degree`` hashes."""

    def __init__(self, max_degree: int) -> None:
        self.max_degree = max_degree
        self.levels: dict[int, list[bytes]] = {}
        self.max_level = 1

    def update(self, leaf: bytes) -> None:
        self.levels.setdefault(1, []).append(leaf)
        level = 1
        while len(self.levels.get(level, [])) > self.max_degree:
            combined = _sha256(b"".join(self.levels.pop(level)))
            level += 1
            self.levels.setdefault(level, []).append(combined)
            self.max_level = max(self.max_level, level)

    def done(self) -> kv_rwset_pb2.QueryReadsMerkleSummary:
        level = 1
        while level < self.max_level:
            hashes = self.levels.pop(level, [])
            if hashes:
                self.levels.setdefault(level + 1, []).append(
                    hashes[0] if len(hashes) == 1 else _sha256(b"".join(hashes))
                )
            level += 1
        top = self.levels.get(self.max_level, [])
        if len(top) > self.max_degree:
            self.max_level += 1
            top = [_sha256(b"".join(top))]
        return kv_rwset_pb2.QueryReadsMerkleSummary(
            max_degree=self.max_degree, max_level=self.max_level, max_level_hashes=top
        )


def set_range_query_reads(
    info: kv_rwset_pb2.RangeQueryInfo,
    reads: Sequence[kv_rwset_pb2.KVRead],
    max_degree: int = MAX_DEGREE_QUERY_READS_HASHING,
) -> None:
    """Put ``reads`` (the results of a range query, in order) into ``info`` as Fabric does: raw reads
    when there are at most ``max_degree`` of them, else a merkle summary; nothing when there are none.
    The validator can rebuild the same field from a re-run of the query and compare."""
    if len(reads) <= max_degree:
        if reads:
            info.raw_reads.CopyFrom(kv_rwset_pb2.QueryReads(kv_reads=reads))
        return
    tree = _MerkleTree(max_degree)
    chunk = max_degree + 1  # Fabric hashes a leaf once more than max_degree results are pending
    for first in range(0, len(reads), chunk):
        leaf = kv_rwset_pb2.QueryReads(kv_reads=reads[first : first + chunk]).SerializeToString()
        tree.update(_sha256(leaf))
    info.reads_merkle_hashes.CopyFrom(tree.done())


@dataclass
class _RangeRecord:
    """What one range query contributes to the read-write set."""

    start_key: str
    end_key: str = ""
    exhausted: bool = False
    reads: list[kv_rwset_pb2.KVRead] = field(default_factory=list)

    def to_proto(self) -> kv_rwset_pb2.RangeQueryInfo:
        info = kv_rwset_pb2.RangeQueryInfo(start_key=self.start_key, end_key=self.end_key, itr_exhausted=self.exhausted)
        set_range_query_reads(info, self.reads)
        return info


class RangeIterator(Iterator[tuple[str, VersionedValue]]):
    """Results of one range query, each recorded in the query's ``RangeQueryInfo`` as it is pulled."""

    def __init__(
        self, results: Iterator[tuple[str, VersionedValue]], record: _RangeRecord, end_key: str, limit: int | None
    ) -> None:
        self._results = results
        self._record = record
        self._end_key = end_key
        self._limit = limit
        self._returned = 0
        self._closed = False

    def __iter__(self) -> RangeIterator:
        return self

    def __next__(self) -> tuple[str, VersionedValue]:
        if self._closed:
            raise StopIteration
        item = None
        if self._limit is None or self._returned < self._limit:
            item = next(self._results, None)
        if item is None:
            self._record.exhausted = True
            self._record.end_key = self._end_key
            raise StopIteration
        key, value = item
        self._returned += 1
        self._record.reads.append(_kv_read(key, value))
        self._record.end_key = key
        return item

    def bookmark_and_close(self) -> str:
        """The key the next page starts from ("" when none is left), without recording it; then close."""
        bookmark = ""
        if not self._closed:
            following = next(self._results, None)
            bookmark = following[0] if following is not None else ""
        self.close()
        return bookmark

    def close(self) -> None:
        self._closed = True


class TxSimulator:
    """Simulates one transaction of ``namespace`` (the chaincode name) over ``reader``'s committed state."""

    def __init__(self, reader: StateReader, namespace: str, tx_id: str, history: bool = True) -> None:
        self.reader = reader
        self.namespace = namespace
        self.tx_id = tx_id
        self._history = history
        self._reads: dict[str, kv_rwset_pb2.KVRead] = {}
        self._writes: dict[str, bytes] = {}
        self._metadata_writes: dict[str, dict[str, bytes]] = {}
        self._ranges: list[_RangeRecord] = []
        self._iterators: list[RangeIterator] = []
        self._touched = False
        self._write_performed = False
        self._paginated_query_performed = False
        self._done = False

    # --- reads -------------------------------------------------------------------------------

    def get_state(self, key: str) -> bytes:
        """The committed value of ``key`` (b"" when it does not exist); the read is recorded."""
        value = self._read(key)
        return value.value if value is not None else b""

    def get_state_metadata(self, key: str) -> dict[str, bytes]:
        """The committed metadata of ``key`` (empty when it has none or does not exist); the read is recorded."""
        value = self._read(key)
        return decode_metadata(value.metadata) if value is not None else {}

    def get_state_multiple(self, keys: Sequence[str]) -> list[bytes]:
        return [self.get_state(key) for key in keys]

    def get_state_range(self, start: str, end: str) -> RangeIterator:
        """Keys in ``[start, end)`` (``end == ""``: no upper bound)."""
        self._check_done()
        return self._open_range(start, end, None)

    def get_state_range_paginated(self, start: str, end: str, page_size: int) -> RangeIterator:
        """At most ``page_size`` keys (no limit when ``page_size <= 0``) from ``start``; read-only transactions only."""
        self._check_done()
        if self._write_performed:
            raise SimulationError(
                f"txid [{self.tx_id}]: unsuppored transaction. Paginated queries are supported only in a "
                "read-only transaction"
            )
        self._paginated_query_performed = True
        return self._open_range(start, end, page_size if page_size > 0 else None)

    def get_history_for_key(self, key: str) -> list[HistoryEntry]:
        """Committed changes of ``key``, newest first; not recorded in the read-write set."""
        self._check_done()
        if not self._history:
            raise SimulationError("history database is not enabled")
        return self.reader.get_history(self.namespace, key)

    # --- writes ------------------------------------------------------------------------------

    def put_state(self, key: str, value: bytes) -> None:
        """Buffer a write; an empty value is a delete, as in Fabric."""
        self._check_write()
        self._touched = True
        self._writes[key] = bytes(value)

    def del_state(self, key: str) -> None:
        self.put_state(key, b"")

    def set_state_metadata(self, key: str, entries: dict[str, bytes]) -> None:
        """Buffer a metadata write: ``entries`` become the key's whole metadata map."""
        self._check_write()
        self._touched = True
        self._metadata_writes[key] = dict(entries)

    # --- results -----------------------------------------------------------------------------

    def done(self) -> None:
        """End the simulation: open range queries are closed and further reads and writes refused.
        The results stay available."""
        self._done = True
        for iterator in self._iterators:
            iterator.close()

    def writes(self) -> list[tuple[str, str, bytes | None]]:
        """``(namespace, key, value)`` sorted by key; ``None`` marks a delete."""
        return [(self.namespace, key, value or None) for key, value in sorted(self._writes.items())]

    def read_write_set(self) -> rwset_pb2.TxReadWriteSet:
        result = rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV)
        if not self._touched:
            return result
        kv = kv_rwset_pb2.KVRWSet(
            reads=[self._reads[key] for key in sorted(self._reads)],
            range_queries_info=self._range_infos(),
            writes=[
                kv_rwset_pb2.KVWrite(key=key, is_delete=not value, value=value)
                for key, value in sorted(self._writes.items())
            ],
            metadata_writes=[
                kv_rwset_pb2.KVMetadataWrite(key=key, entries=[
                    kv_rwset_pb2.KVMetadataEntry(name=name, value=entries[name]) for name in sorted(entries)])
                for key, entries in sorted(self._metadata_writes.items())
            ],
        )
        result.ns_rwset.append(rwset_pb2.NsReadWriteSet(namespace=self.namespace, rwset=kv.SerializeToString()))
        return result

    # --- helpers -----------------------------------------------------------------------------

    def _read(self, key: str) -> VersionedValue | None:
        """The committed ``key`` (value, version, metadata), its read recorded with the version it has."""
        self._check_done()
        value = self.reader.get_state(self.namespace, key)
        self._touched = True
        self._reads[key] = _kv_read(key, value)
        return value

    def _open_range(self, start: str, end: str, limit: int | None) -> RangeIterator:
        record = _RangeRecord(start_key=start)
        iterator = RangeIterator(iter(self.reader.get_state_range(self.namespace, start, end)), record, end, limit)
        self._touched = True
        self._ranges.append(record)
        self._iterators.append(iterator)
        return iterator

    def _range_infos(self) -> list[kv_rwset_pb2.RangeQueryInfo]:
        """One entry per distinct (start, end, exhausted), the first one kept, as Fabric's rwset builder does."""
        seen: set[tuple[str, str, bool]] = set()
        infos = []
        for record in self._ranges:
            identity = (record.start_key, record.end_key, record.exhausted)
            if identity not in seen:
                seen.add(identity)
                infos.append(record.to_proto())
        return infos

    def _check_done(self) -> None:
        if self._done:
            raise SimulationError("this instance should not be used after calling Done()")

    def _check_write(self) -> None:
        self._check_done()
        if self._paginated_query_performed:
            raise SimulationError(
                f"txid [{self.tx_id}]: unsuppored transaction. Transaction has already performed a paginated "
                "query. Writes are not allowed"
            )
        self._write_performed = True
