"""One channel's ledger in SQLite: blocks, versioned world state, key history and the tx index.

Each block commits in ONE SQLite transaction (WAL, ``synchronous=FULL``): the block bytes, the state
writes of its valid transactions with ``Version(block, tx index)``, their history, the tx index and
the savepoint. A kill at any instant leaves the whole block or nothing, so on open only the last block can be
in doubt: the quick check (``full_check=False``, how the engine opens a channel) covers the savepoint, the last
block (hashes, link, commit hash) and the state of the keys it wrote, in time independent of the height. The
full check (``full_check=True``, the default, and :meth:`Ledger.verify`, which ``swarmfuse network check``
runs) also covers the numbering, the hash chain (``previous_hash`` links, data hashes), every commit hash and
the whole state (against the history of valid writes), in time proportional to the ledger. The first
inconsistency raises :class:`LedgerCorrupt`.

Keys are stored as BLOBs of their UTF-8 bytes, so composite keys (U+0000) work and ranges compare
as bytes, as in Fabric's state database. Commits come from one thread; any thread may read: each
reading thread has its own connection and every read is one SQL statement (one snapshot). A transaction
simulation reads through :meth:`Ledger.snapshot` instead: one read transaction for all its reads, so it sees
one height even while blocks commit (Fabric holds a read lock on the state for the whole simulation).

Each block's COMMIT_HASH is set as Fabric's kvledger sets it (:mod:`~swarmfuse.network.protocol.commithash`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.commithash import commit_hash, stored_commit_hash, update_batch_bytes
from swarmfuse.network.protocol.model import VALID, HistoryEntry, TxLocation, TxResult, Version, VersionedValue
from swarmfuse.network.protocol.txops import BlockChanges, KeyChange

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    header_hash BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    ns TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    block INTEGER NOT NULL,
    tx INTEGER NOT NULL,
    metadata BLOB NOT NULL DEFAULT x'',
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    ns TEXT NOT NULL,
    key BLOB NOT NULL,
    block INTEGER NOT NULL,
    tx INTEGER NOT NULL,
    tx_id TEXT NOT NULL,
    value BLOB NOT NULL,
    is_delete INTEGER NOT NULL,
    ts_s INTEGER NOT NULL,
    ts_nanos INTEGER NOT NULL,
    metadata BLOB NOT NULL DEFAULT x'',
    value_write INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (ns, key, block, tx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_by_block ON history (block);
CREATE TABLE IF NOT EXISTS txs (
    tx_id TEXT PRIMARY KEY,
    block INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    code INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

_ADDED_COLUMNS = (  # columns later versions added: (table, column, declaration), added on open when missing
    ("state", "metadata", "BLOB NOT NULL DEFAULT x''"),
    ("history", "metadata", "BLOB NOT NULL DEFAULT x''"),
    ("history", "value_write", "INTEGER NOT NULL DEFAULT 1"),
)

_SAVEPOINT = "_ledger.savepoint"  # meta row: the last committed block number (same transaction)


class LedgerCorrupt(SwarmfuseError):
    """The stored ledger is inconsistent; the message names the first bad block (or key)."""


class CommitRefused(SwarmfuseError, ValueError):
    """A block cannot be appended (wrong number, previous hash, data hash, filter or results)."""


# --------------------------------------------------------------------------------------------- ledger


class Ledger:
    """SQLite ledger of one channel (implements :class:`~swarmfuse.network.protocol.model.StateReader`)."""

    def __init__(self, path: Path, writer: sqlite3.Connection) -> None:
        self._path = path
        self._writer = writer
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._idle_snapshots: list[sqlite3.Connection] = []  # connections for snapshots, kept for reuse
        self._readers_lock = threading.Lock()
        self._height_changed = threading.Condition()
        self._height = 0
        self._last_hash: bytes | None = None
        self._commit_hash = b""
        self._closed = False

    @property
    def path(self) -> Path:
        """The ledger's SQLite file."""
        return self._path

    # ------------------------------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, path: Path, full_check: bool = True) -> Ledger:
        """Open (or create) the ledger at ``path`` and check it (see :meth:`verify`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            writer.execute("PRAGMA journal_mode=WAL")
            writer.execute("PRAGMA synchronous=FULL")
            writer.executescript(_SCHEMA)
            _add_missing_columns(writer)
            ledger = cls(path, writer)
            ledger.verify(full=full_check)
        except BaseException:
            writer.close()
            raise
        return ledger

    def close(self) -> None:
        """Close every connection; waiters in :meth:`wait_for_height` return False."""
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._idle_snapshots.clear()
            self._writer.close()
        with self._height_changed:
            self._height_changed.notify_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_reader(self) -> sqlite3.Connection:
        """A read-only connection, closed with the ledger (the caller holds ``_readers_lock``)."""
        if self._closed:
            raise sqlite3.ProgrammingError(f"ledger {self._path} is closed")
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA query_only=ON")
        self._readers.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._readers_lock:
                conn = self._new_reader()
            self._local.conn = conn
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[StateReads]:
        """Committed state at one height for every read made through it, whichever thread reads (one at a time)."""
        with self._readers_lock:
            conn = self._idle_snapshots.pop() if self._idle_snapshots else self._new_reader()
        conn.execute("BEGIN")
        try:
            yield StateReads(conn)
        finally:
            conn.execute("ROLLBACK")
            with self._readers_lock:
                if not self._closed:
                    self._idle_snapshots.append(conn)

    # ---------------------------------------------------------------------------------------- checks

    def verify(self, full: bool = True) -> None:
        """Check the ledger in one read transaction; raise :class:`LedgerCorrupt` naming the first bad block or key.

        Always (what a crash can have left: a commit is one SQLite transaction, so at most the last block is in
        doubt), in time independent of the height: the savepoint names the last block, which parses with
        matching data hash, header hash, ``previous_hash`` (block n-2's stored header hash) and commit hash,
        and the state of every key it wrote equals that write. With ``full`` (the default on open): blocks
        are numbered 0..n-1 and every block, its commit hash against its valid writes (history) and the whole
        state against the last write of every key in the history are checked, in time proportional to the
        ledger.
        """
        conn = self._writer
        with self._write_lock:
            conn.execute("BEGIN")
            try:
                height, last_hash, last = self._check_all(conn) if full else self._check_tail(conn)
            finally:
                conn.execute("ROLLBACK")
            self._commit_hash = stored_commit_hash(last) if last is not None else b""
            self._last_hash = last_hash
        with self._height_changed:
            self._height = height

    def _check_all(self, conn: sqlite3.Connection) -> tuple[int, bytes | None, common_pb2.Block | None]:
        rows = conn.execute("SELECT number, header_hash FROM blocks ORDER BY number").fetchall()
        for expected, (number, _) in enumerate(rows):
            if number != expected:
                raise LedgerCorrupt(f"block {expected} is missing (next stored block is {number})")
        self._check_savepoint(conn, len(rows) - 1)
        last: common_pb2.Block | None = None
        commit = b""
        for number, stored_hash in rows:
            last = self._check_block(conn, number, stored_hash, rows[number - 1][1] if number else b"")
            commit = self._check_commit_hash(conn, last, commit)
        self._check_state(conn)
        return len(rows), rows[-1][1] if rows else None, last

    def _check_tail(self, conn: sqlite3.Connection) -> tuple[int, bytes | None, common_pb2.Block | None]:
        """The last block, its link to the one before it, its commit hash and its state writes."""
        (number,) = conn.execute("SELECT MAX(number) FROM blocks").fetchone()
        last_number = -1 if number is None else number
        self._check_savepoint(conn, last_number)
        if number is None:
            return 0, None, None
        previous_hash, previous_commit = b"", b""
        if number:
            row = conn.execute("SELECT header_hash, data FROM blocks WHERE number = ?", (number - 1,)).fetchone()
            if row is None:
                raise LedgerCorrupt(f"block {number - 1} is missing (next stored block is {number})")
            previous_hash, previous_commit = row[0], stored_commit_hash(self._parse(number - 1, row[1]))
        (stored_hash,) = conn.execute("SELECT header_hash FROM blocks WHERE number = ?", (number,)).fetchone()
        last = self._check_block(conn, number, stored_hash, previous_hash)
        if number:
            self._check_commit_hash(conn, last, previous_commit)
        self._check_block_state(conn, number)
        return number + 1, stored_hash, last

    @staticmethod
    def _check_savepoint(conn: sqlite3.Connection, last: int) -> None:
        saved = conn.execute("SELECT value FROM meta WHERE name = ?", (_SAVEPOINT,)).fetchone()
        saved_block = int(saved[0]) if saved else -1
        if saved_block != last:
            raise LedgerCorrupt(f"block {last}: the savepoint names block {saved_block} as the last one")

    @staticmethod
    def _parse(number: int, data: bytes) -> common_pb2.Block:
        try:
            return common_pb2.Block.FromString(data)
        except DecodeError as exc:
            raise LedgerCorrupt(f"block {number}: stored bytes do not parse as a block: {exc}") from exc

    def _check_block(self, conn: sqlite3.Connection, number: int, stored_hash: bytes,
                     previous_hash: bytes) -> common_pb2.Block:
        block = self._parse(number, conn.execute("SELECT data FROM blocks WHERE number = ?", (number,)).fetchone()[0])
        if block.header.number != number:
            raise LedgerCorrupt(f"block {number}: header says number {block.header.number}")
        if blockfmt.data_hash(block.data.data) != block.header.data_hash:
            raise LedgerCorrupt(f"block {number}: data hash does not match its data")
        if blockfmt.header_hash(block.header) != stored_hash:
            raise LedgerCorrupt(f"block {number}: header hash does not match the stored hash")
        if number and block.header.previous_hash != previous_hash:
            raise LedgerCorrupt(f"block {number}: previous_hash does not match the header hash of block {number - 1}")
        return block

    def _check_commit_hash(self, conn: sqlite3.Connection, block: common_pb2.Block, previous: bytes) -> bytes:
        number = block.header.number
        stored = stored_commit_hash(block)
        if number == 0:
            return stored
        updates: dict[tuple[str, str], tuple[bytes | None, Version]] = {}
        for ns, key, tx, value, is_delete in conn.execute(
                "SELECT ns, key, tx, value, is_delete FROM history WHERE block = ? ORDER BY tx", (number,)):
            updates[(ns, key.decode())] = (None if is_delete else value, Version(number, tx))
        expected = commit_hash(bytes(blockfmt.transactions_filter(block)), update_batch_bytes(updates), previous)
        if stored != expected:
            raise LedgerCorrupt(
                f"block {number}: commit hash does not match the state updates of its valid transactions")
        return stored

    @staticmethod
    def _check_state(conn: sqlite3.Connection) -> None:
        """The state must equal the last history entry of every key (deleted keys absent): one scan of each."""
        history = conn.execute(
            "SELECT ns, key, block, tx, value, metadata, is_delete FROM history ORDER BY ns, key, block, tx")
        state = conn.execute("SELECT ns, key, block, tx, value, metadata FROM state ORDER BY ns, key")
        live = _last_live_writes(history)
        expected = next(live, None)
        for row in state:
            where = f"state key {row[0]}/{row[1]!r} (version {row[2]}:{row[3]})"
            if expected is None or tuple(row[:2]) < tuple(expected[:2]):
                raise LedgerCorrupt(f"{where} has no live write in the history")
            if tuple(row[:2]) > tuple(expected[:2]):
                break
            if tuple(row) != tuple(expected):
                raise LedgerCorrupt(f"{where} does not match its history")
            expected = next(live, None)
        if expected is not None:
            raise LedgerCorrupt(f"state key {expected[0]}/{expected[1]!r} written at {expected[2]}:{expected[3]} "
                                "is missing from the state")

    @staticmethod
    def _check_block_state(conn: sqlite3.Connection, number: int) -> None:
        """Every key block ``number`` (the last one) wrote must be in the state as its last write left it."""
        history = conn.execute("SELECT ns, key, block, tx, value, metadata, is_delete FROM history WHERE block = ? "
                               "ORDER BY ns, key, tx", (number,))
        last: dict[tuple[str, bytes], tuple[str, bytes, int, int, bytes, bytes, int]] = {}
        for row in history:
            last[(row[0], row[1])] = row
        for (ns, key), row in last.items():
            stored = conn.execute("SELECT ns, key, block, tx, value, metadata FROM state WHERE ns = ? AND key = ?",
                                  (ns, key)).fetchone()
            if row[6] and stored is not None:
                raise LedgerCorrupt(f"state key {ns}/{key!r}: block {number} deleted it but the state holds it")
            if not row[6] and (stored is None or tuple(stored) != tuple(row[:6])):
                raise LedgerCorrupt(f"state key {ns}/{key!r} does not match its write in block {number}")

    # ---------------------------------------------------------------------------------------- blocks

    @property
    def height(self) -> int:
        """Number of committed blocks (the next block's number)."""
        return self._height

    @property
    def last_header_hash(self) -> bytes | None:
        """Header hash of the last committed block (the next block's ``previous_hash``); None when empty."""
        return self._last_hash

    def block_bytes(self, number: int) -> bytes | None:
        """The stored block ``number``; None, without a read, when it is not committed (a waiting stream's poll)."""
        if not 0 <= number < self._height:
            return None
        row = self._reader().execute("SELECT data FROM blocks WHERE number = ?", (number,)).fetchone()
        return row[0] if row else None

    def block(self, number: int) -> common_pb2.Block | None:
        data = self.block_bytes(number)
        return None if data is None else common_pb2.Block.FromString(data)

    def blocks(self, start: int = 0) -> Iterator[common_pb2.Block]:
        """The blocks from ``start`` that are committed now (later commits are not included)."""
        end = self._height

        def generate() -> Iterator[common_pb2.Block]:
            for number in range(start, end):
                block = self.block(number)
                if block is None:
                    return
                yield block

        return generate()

    def tx_location(self, tx_id: str) -> TxLocation | None:
        row = self._reader().execute("SELECT block, idx, code FROM txs WHERE tx_id = ?", (tx_id,)).fetchone()
        return TxLocation(*row) if row else None

    def wait_for_height(self, height: int, timeout: float | None) -> bool:
        """Block until the ledger holds ``height`` blocks; False on timeout or close."""
        with self._height_changed:
            return self._height_changed.wait_for(lambda: self._height >= height or self._closed, timeout) \
                and self._height >= height

    # ---------------------------------------------------------------------------------------- commit

    def commit(self, block: common_pb2.Block, results: Sequence[TxResult]) -> None:
        """Append ``block`` (its TRANSACTIONS_FILTER already set) and apply the writes of its VALID results.

        All in one SQLite transaction. Sets the block's COMMIT_HASH slot (blocks from 1 on) in place.
        Raises :class:`CommitRefused` before writing anything when the block does not fit.
        """
        with self._write_lock:
            if self._closed:
                raise sqlite3.ProgrammingError(f"ledger {self._path} is closed")
            number = block.header.number
            self._check_commit(block, results)
            changes = BlockChanges(number, StateReads(self._writer))
            applied = [(result, changes.apply(result.index, result.writes, result.metadata_writes))
                       for result in sorted(results, key=lambda r: r.index) if result.code == VALID]
            updates = changes.update_batch()
            tx_filter = bytes(blockfmt.transactions_filter(block))
            new_commit_hash = b""
            if number >= 1:
                new_commit_hash = commit_hash(tx_filter, update_batch_bytes(updates), self._commit_hash)
                block.metadata.metadata[blockfmt.COMMIT_HASH] = common_pb2.Metadata(
                    value=new_commit_hash).SerializeToString()
            block_hash = blockfmt.header_hash(block.header)
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO blocks (number, header_hash, data) VALUES (?, ?, ?)",
                             (number, block_hash, block.SerializeToString()))
                self._index_txs(conn, number, results)
                self._apply_state(conn, changes.latest.values())
                self._append_history(conn, applied)
                conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                             (_SAVEPOINT, str(number).encode()))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._commit_hash = new_commit_hash
            self._last_hash = block_hash
        with self._height_changed:
            self._height = number + 1
            self._height_changed.notify_all()
        log.debug("committed block %d (%d txs)", number, len(block.data.data))

    def _check_commit(self, block: common_pb2.Block, results: Sequence[TxResult]) -> None:
        number = block.header.number
        if number != self._height:
            raise CommitRefused(f"block {number}: the ledger expects block {self._height} next")
        expected_previous = self._last_hash if self._last_hash is not None else b""
        if block.header.previous_hash != expected_previous:
            raise CommitRefused(f"block {number}: previous_hash does not match the header hash of block {number - 1}")
        if blockfmt.data_hash(block.data.data) != block.header.data_hash:
            raise CommitRefused(f"block {number}: data hash does not match its data")
        if len(block.metadata.metadata) < blockfmt.METADATA_SLOTS:
            raise CommitRefused(
                f"block {number}: {len(block.metadata.metadata)} metadata slots, not {blockfmt.METADATA_SLOTS}")
        codes = blockfmt.transactions_filter(block)
        if len(codes) != len(block.data.data):
            raise CommitRefused(
                f"block {number}: transactions filter has {len(codes)} codes for {len(block.data.data)} envelopes")
        seen = set()
        for result in results:
            if not 0 <= result.index < len(codes) or result.index in seen:
                raise CommitRefused(f"block {number}: result index {result.index} is out of range or repeated")
            seen.add(result.index)
            if result.code != codes[result.index]:
                raise CommitRefused(f"block {number}: tx {result.index} has code {result.code} "
                                    f"but the filter says {codes[result.index]}")

    @staticmethod
    def _index_txs(conn: sqlite3.Connection, number: int, results: Sequence[TxResult]) -> None:
        conn.executemany("INSERT OR IGNORE INTO txs (tx_id, block, idx, code) VALUES (?, ?, ?, ?)",
                         [(r.tx_id, number, r.index, r.code) for r in results if r.tx_id])

    @staticmethod
    def _apply_state(conn: sqlite3.Connection, changes: Iterable[KeyChange]) -> None:
        puts, deletes = [], []
        for change in changes:
            if change.value:
                puts.append((change.namespace, change.key.encode(), change.value, change.version.block,
                             change.version.tx, change.metadata))
            else:
                deletes.append((change.namespace, change.key.encode()))
        conn.executemany("DELETE FROM state WHERE ns = ? AND key = ?", deletes)
        conn.executemany(
            "INSERT OR REPLACE INTO state (ns, key, value, block, tx, metadata) VALUES (?, ?, ?, ?, ?, ?)", puts)

    @staticmethod
    def _append_history(conn: sqlite3.Connection, applied: Sequence[tuple[TxResult, list[KeyChange]]]) -> None:
        """Every change of every valid transaction; a metadata-only change is kept for the state checks but
        is not part of the key history the chaincode reads."""
        rows = [(c.namespace, c.key.encode(), c.version.block, c.version.tx, result.tx_id, c.value or b"",
                 int(c.value is None), result.timestamp_s, result.timestamp_nanos, c.metadata, int(c.value_write))
                for result, changes in applied for c in changes]
        conn.executemany(
            "INSERT INTO history (ns, key, block, tx, tx_id, value, is_delete, ts_s, ts_nanos, metadata, value_write) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # ---------------------------------------------------------------------------------------- state

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        return StateReads(self._reader()).get_state(namespace, key)

    def get_state_range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        return StateReads(self._reader()).get_state_range(namespace, start, end)

    def get_hashed_version(self, namespace: str, collection: str, key_hash: bytes) -> Version | None:
        return StateReads(self._reader()).get_hashed_version(namespace, collection, key_hash)

    def get_history(self, namespace: str, key: str) -> list[HistoryEntry]:
        return StateReads(self._reader()).get_history(namespace, key)

    # ----------------------------------------------------------------------------------------- meta

    def meta_get(self, name: str) -> bytes | None:
        row = self._reader().execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def meta_put(self, name: str, value: bytes) -> None:
        if name.startswith("_ledger."):
            raise ValueError(f"meta name {name!r} is reserved for the ledger")
        with self._write_lock:
            self._writer.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


class StateReads:
    """The committed state as one connection sees it (a :class:`~swarmfuse.network.protocol.model.StateReader`):
    each read one statement, all of them one height when the connection is in a read transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        row = self._conn.execute(
            "SELECT value, block, tx, metadata FROM state WHERE ns = ? AND key = ?", (namespace, key.encode())
        ).fetchone()
        return VersionedValue(row[0], Version(row[1], row[2]), row[3]) if row else None

    def get_state_range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in ``[start, end)`` by UTF-8 bytes (``end == ""``: no upper bound), one snapshot (one statement),
        fetched as the caller pulls them: a page, or a phantom check that stops at the first difference, reads
        only what it takes, not the rest of the range."""
        if end:
            cursor = self._conn.execute(
                "SELECT key, value, block, tx, metadata FROM state WHERE ns = ? AND key >= ? AND key < ? ORDER BY key",
                (namespace, start.encode(), end.encode()))
        else:
            cursor = self._conn.execute(
                "SELECT key, value, block, tx, metadata FROM state WHERE ns = ? AND key >= ? ORDER BY key",
                (namespace, start.encode()))
        return ((key.decode(), VersionedValue(value, Version(block, tx), metadata))
                for key, value, block, tx, metadata in cursor)

    def get_hashed_version(self, namespace: str, collection: str, key_hash: bytes) -> Version | None:
        """No private data: the engine defines no collection, so no private key exists."""
        return None

    def get_history(self, namespace: str, key: str) -> list[HistoryEntry]:
        """Every committed value change of ``key``, newest first (metadata-only changes are not history)."""
        rows = self._conn.execute(
            "SELECT tx_id, value, is_delete, ts_s, ts_nanos, block, tx FROM history WHERE ns = ? AND key = ? "
            "AND value_write = 1 ORDER BY block DESC, tx DESC", (namespace, key.encode())).fetchall()
        return [HistoryEntry(tx_id, value, bool(deleted), ts_s, ts_nanos, Version(block, tx))
                for tx_id, value, deleted, ts_s, ts_nanos, block, tx in rows]


def _last_live_writes(rows: Iterator[tuple[str, bytes, int, int, bytes, bytes, int]]
                      ) -> Iterator[tuple[str, bytes, int, int, bytes, bytes]]:
    """From history rows sorted by (ns, key, block, tx): each key's last change, unless it is a delete."""
    last = None
    for row in rows:
        if last is not None and row[:2] != last[:2] and not last[6]:
            yield last[:6]
        last = row
    if last is not None and not last[6]:
        yield last[:6]


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a ledger written by an earlier version to the current schema (no row changes)."""
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
