"""SQLite ledger of the embedded engine: atomic block commits, versions, history, ranges, tx index,
chain checks on open, crash safety (an exception mid-commit, a kill -9) and concurrent readers."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from swarmfuse.network.embedded.ledger import CommitRefused, Ledger, LedgerCorrupt
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.commithash import commit_hash, update_batch_bytes, version_bytes
from swarmfuse.network.protocol.model import TxLocation, TxResult, Version, VersionedValue
from swarmfuse.network.protocol.txops import encode_metadata

pytestmark = pytest.mark.timeout(60)

NS = "swarmfuse"
MVCC_READ_CONFLICT = 11
Write = tuple[str, str, bytes | None]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ledger.db") as opened:
        _commit(opened, [TxResult("config", 0, 0)])
        yield opened


def _commit(ledger: Ledger, results: Sequence[TxResult], envelopes: Sequence[bytes] | None = None) -> common_pb2.Block:
    """Commit the next block; one envelope per result unless ``envelopes`` is given."""
    envelopes = envelopes if envelopes is not None else [f"env-{ledger.height}-{r.index}".encode() for r in results]
    block = blockfmt.new_block(ledger.height, ledger.last_header_hash or b"", envelopes)
    codes = {r.index: r.code for r in results}
    blockfmt.set_transactions_filter(block, [codes.get(i, 0) for i in range(len(envelopes))])
    ledger.commit(block, results)
    return block


def _tx(tx_id: str, index: int, *writes: Write, code: int = 0, ts: int = 0) -> TxResult:
    return TxResult(tx_id, index, code, writes, timestamp_s=ts, timestamp_nanos=7)


# --- commit and read -------------------------------------------------------------------------------


def test_commit_read_round_trip(ledger: Ledger) -> None:
    block = _commit(ledger, [_tx("t1", 0, (NS, "a", b"1"), (NS, "b", b"2")), _tx("t2", 1, ("other", "a", b"3"))])
    assert ledger.height == 2
    assert ledger.get_state(NS, "a") == VersionedValue(b"1", Version(1, 0))
    assert ledger.get_state("other", "a") == VersionedValue(b"3", Version(1, 1))
    assert ledger.get_state(NS, "missing") is None
    stored = ledger.block(1)
    assert stored == block and ledger.block_bytes(1) == block.SerializeToString()
    assert ledger.block(2) is None and ledger.block_bytes(7) is None
    assert [b.header.number for b in ledger.blocks()] == [0, 1]
    assert [b.header.number for b in ledger.blocks(1)] == [1]
    assert ledger.last_header_hash == blockfmt.header_hash(block.header)
    assert ledger.tx_location("t2") == TxLocation(1, 1, 0)
    assert ledger.tx_location("nope") is None


def test_versions_follow_the_last_valid_writer(ledger: Ledger) -> None:
    _commit(ledger, [_tx("t1", 0, (NS, "k", b"v1"))])
    _commit(ledger, [_tx("t2", 0, (NS, "k", b"v2")), _tx("t3", 1, (NS, "k", b"v3")),
                     _tx("t4", 2, (NS, "k", b"bad"), code=MVCC_READ_CONFLICT)])
    assert ledger.get_state(NS, "k") == VersionedValue(b"v3", Version(2, 1))


def test_history_newest_first_with_deletes(ledger: Ledger) -> None:
    _commit(ledger, [_tx("t1", 0, (NS, "k", b"v1"), ts=100)])
    _commit(ledger, [_tx("t2", 0, (NS, "k", None), ts=200)])
    _commit(ledger, [_tx("x", 0), _tx("t3", 1, (NS, "k", b"v3"), ts=300)])
    history = ledger.get_history(NS, "k")
    assert [(h.tx_id, h.value, h.is_delete, h.timestamp_s, h.version) for h in history] == [
        ("t3", b"v3", False, 300, Version(3, 1)),
        ("t2", b"", True, 200, Version(2, 0)),
        ("t1", b"v1", False, 100, Version(1, 0)),
    ]
    assert history[0].timestamp_nanos == 7
    assert ledger.get_history(NS, "other") == []


def test_delete_removes_state_and_empty_value_is_a_delete(ledger: Ledger) -> None:
    _commit(ledger, [_tx("t1", 0, (NS, "a", b"1"), (NS, "b", b"2"))])
    _commit(ledger, [_tx("t2", 0, (NS, "a", None), (NS, "b", b""))])
    assert ledger.get_state(NS, "a") is None and ledger.get_state(NS, "b") is None
    assert [h.is_delete for h in ledger.get_history(NS, "b")] == [True, False]


def test_ranges_compare_utf8_bytes_with_composite_keys(ledger: Ledger) -> None:
    keys = ["\x00asset\x00k1\x00", "\x00asset\x00k2\x00", "a", "b", "b\x00", "c", "z", "é", "\U0001f600"]
    _commit(ledger, [_tx("t1", 0, *[(NS, k, k.encode() or b"x") for k in keys]), _tx("t2", 1, ("other", "b", b"o"))])

    def keys_in(start: str, end: str) -> list[str]:
        return [k for k, _ in ledger.get_state_range(NS, start, end)]

    assert keys_in("", "") == keys
    assert keys_in("\x00asset\x00", "\x00asset\x00\U0010ffff") == keys[:2]
    assert keys_in("\x01", "") == keys[2:]
    assert keys_in("b", "c") == ["b", "b\x00"]
    assert keys_in("c", "é") == ["c", "z"]
    assert keys_in("d", "c") == []
    ((key, value),) = ledger.get_state_range("other", "", "")
    assert (key, value) == ("b", VersionedValue(b"o", Version(1, 1)))


class _CountingConnection:
    """A connection that counts the rows its statements hand out."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.rows = 0

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Iterator[tuple[object, ...]]:
        for row in self._conn.execute(sql, parameters):
            self.rows += 1
            yield row


def test_a_range_page_reads_only_its_page(tmp_path: Path) -> None:
    """A paginated range query (Audit:StateDigest's shape) reads its page and the next key (the bookmark) from
    SQLite, not the rest of the range, so a full paginated scan reads each key about once."""
    from swarmfuse.network.embedded.ledger import StateReads
    from swarmfuse.network.embedded.simulator import TxSimulator

    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        _commit(ledger, [TxResult("config", 0, 0)])
        _commit(ledger, [_tx("t1", 0, *[(NS, f"key{i:05d}", b"v") for i in range(5000)])])
    conn = sqlite3.connect(path)
    counting = _CountingConnection(conn)
    pages, start = [], "key01000"
    while start and len(pages) < 3:
        simulation = TxSimulator(StateReads(counting), NS, "tx")  # type: ignore[arg-type]
        iterator = simulation.get_state_range_paginated(start, "", 10)
        pages.append([key for key, _ in iterator])
        start = iterator.bookmark_and_close()
    conn.close()
    assert pages == [[f"key{i:05d}" for i in range(first, first + 10)] for first in (1000, 1010, 1020)]
    assert counting.rows == 3 * 11


def test_invalid_tx_is_indexed_without_state_writes(ledger: Ledger) -> None:
    _commit(ledger, [_tx("good", 0, (NS, "a", b"1")), _tx("bad", 1, (NS, "b", b"2"), code=MVCC_READ_CONFLICT),
                     _tx("", 2, (NS, "c", b"3"), code=MVCC_READ_CONFLICT)])
    assert ledger.tx_location("bad") == TxLocation(1, 1, MVCC_READ_CONFLICT)
    assert ledger.get_state(NS, "b") is None and ledger.get_history(NS, "b") == []
    assert ledger.tx_location("") is None


def test_first_index_of_a_tx_id_is_kept(ledger: Ledger) -> None:
    _commit(ledger, [_tx("dup", 0, (NS, "a", b"1"))])
    _commit(ledger, [_tx("dup", 0, code=MVCC_READ_CONFLICT)])
    assert ledger.tx_location("dup") == TxLocation(1, 0, 0)


# --- refused commits ------------------------------------------------------------------------------


def test_bad_blocks_are_refused(ledger: Ledger) -> None:
    _commit(ledger, [_tx("t1", 0, (NS, "a", b"1"))])
    previous = ledger.last_header_hash or b""

    def refused(block: common_pb2.Block, results: Sequence[TxResult], match: str) -> None:
        with pytest.raises(CommitRefused, match=match):
            ledger.commit(block, results)

    duplicate = blockfmt.new_block(1, previous, [b"e"])
    blockfmt.set_transactions_filter(duplicate, [0])
    refused(duplicate, [], "expects block 2")
    bad_link = blockfmt.new_block(2, b"\x00" * 32, [b"e"])
    blockfmt.set_transactions_filter(bad_link, [0])
    refused(bad_link, [], "previous_hash")
    bad_data = blockfmt.new_block(2, previous, [b"e"])
    blockfmt.set_transactions_filter(bad_data, [0])
    bad_data.data.data[0] = b"f"
    refused(bad_data, [], "data hash")
    no_filter = blockfmt.new_block(2, previous, [b"e"])
    refused(no_filter, [], "0 codes for 1 envelopes")
    mismatch = blockfmt.new_block(2, previous, [b"e"])
    blockfmt.set_transactions_filter(mismatch, [MVCC_READ_CONFLICT])
    refused(mismatch, [_tx("t", 0)], "filter says 11")
    refused(mismatch, [_tx("t", 1, code=MVCC_READ_CONFLICT)], "out of range")
    assert ledger.height == 2 and ledger.get_state(NS, "a") == VersionedValue(b"1", Version(1, 0))
    _commit(ledger, [_tx("t2", 0, (NS, "a", b"2"))])
    assert ledger.height == 3


# --- persistence and checks on open ------------------------------------------------------------------


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        _commit(ledger, [TxResult("config", 0, 0)])
        _commit(ledger, [_tx("t1", 0, (NS, "a", b"1"))])
        last_hash = ledger.last_header_hash
        ledger.meta_put("chaincode", b"definition")
    with Ledger.open(path) as ledger:
        assert ledger.height == 2 and ledger.last_header_hash == last_hash
        assert ledger.get_state(NS, "a") == VersionedValue(b"1", Version(1, 0))
        assert ledger.tx_location("t1") == TxLocation(1, 0, 0)
        assert ledger.meta_get("chaincode") == b"definition" and ledger.meta_get("other") is None
        _commit(ledger, [_tx("t2", 0, (NS, "a", b"2"))])
    with Ledger.open(path) as ledger:
        assert ledger.height == 3 and ledger.get_state(NS, "a") == VersionedValue(b"2", Version(2, 0))


def _build(path: Path, blocks: int = 4) -> None:
    with Ledger.open(path) as ledger:
        _commit(ledger, [TxResult("config", 0, 0)])
        for n in range(1, blocks):
            _commit(ledger, [_tx(f"t{n}", 0, (NS, "a", str(n).encode()), (NS, f"k{n}", b"v"))])


def _tamper(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


def test_corrupted_block_byte_is_detected_on_open(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _build(path)
    conn = sqlite3.connect(path)
    data = bytearray(conn.execute("SELECT data FROM blocks WHERE number = 2").fetchone()[0])
    conn.close()
    block = common_pb2.Block.FromString(bytes(data))
    position = bytes(data).index(block.data.data[0])
    data[position] ^= 0x01  # one bit of the envelope
    _tamper(path, "UPDATE blocks SET data = ? WHERE number = 2", bytes(data))
    with pytest.raises(LedgerCorrupt, match="block 2: data hash"):
        Ledger.open(path)


def test_broken_chain_and_tampered_state_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _build(path)
    _tamper(path, "UPDATE state SET value = ? WHERE key = ?", b"forged", b"a")
    with pytest.raises(LedgerCorrupt, match="state key swarmfuse/b'a'"):
        Ledger.open(path)
    _tamper(path, "UPDATE state SET value = ? WHERE key = ?", b"3", b"a")
    Ledger.open(path).close()
    _tamper(path, "DELETE FROM state WHERE key = ?", b"k2")
    with pytest.raises(LedgerCorrupt, match="state key swarmfuse/b'k2' written at 2:0 is missing"):
        Ledger.open(path)
    _tamper(path, "INSERT INTO state (ns, key, value, block, tx) VALUES (?, ?, ?, 2, 0)", NS, b"k2", b"v")
    _tamper(path, "INSERT INTO state (ns, key, value, block, tx) VALUES (?, ?, ?, 2, 0)", NS, b"k20", b"v")
    with pytest.raises(LedgerCorrupt, match="state key swarmfuse/b'k20' .* has no live write"):
        Ledger.open(path)
    _tamper(path, "DELETE FROM state WHERE key = ?", b"k20")
    Ledger.open(path).close()

    _tamper(path, "UPDATE history SET value = ? WHERE key = ? AND block = 1", b"forged", b"a")
    with pytest.raises(LedgerCorrupt, match="block 1: commit hash"):
        Ledger.open(path)
    _tamper(path, "UPDATE history SET value = ? WHERE key = ? AND block = 1", b"1", b"a")

    conn = sqlite3.connect(path)
    block = common_pb2.Block.FromString(conn.execute("SELECT data FROM blocks WHERE number = 3").fetchone()[0])
    conn.close()
    block.header.previous_hash = b"\x00" * 32
    _tamper(path, "UPDATE blocks SET data = ?, header_hash = ? WHERE number = 3",
            block.SerializeToString(), blockfmt.header_hash(block.header))
    with pytest.raises(LedgerCorrupt, match="block 3: previous_hash"):
        Ledger.open(path)
    with pytest.raises(LedgerCorrupt, match="block 3: previous_hash"):
        Ledger.open(path, full_check=False)

    _tamper(path, "DELETE FROM blocks WHERE number = 1")
    with pytest.raises(LedgerCorrupt, match="block 1 is missing"):
        Ledger.open(path)


# --- commit hash -------------------------------------------------------------------------------------


def _updates_message_class() -> type:
    """Fabric's ``txmgr.Updates``/``KVWrite`` (core/ledger/kvledger/txmgmt/txmgr/updates.proto) built at run time."""
    proto = descriptor_pb2.FileDescriptorProto(name="txmgr_updates_test.proto", package="txmgrtest", syntax="proto3")
    kv = proto.message_type.add(name="KVWrite")
    F = descriptor_pb2.FieldDescriptorProto
    fields = [(1, "namespace", F.TYPE_STRING), (2, "collection", F.TYPE_STRING), (3, "key", F.TYPE_BYTES),
              (4, "isDelete", F.TYPE_BOOL), (5, "value", F.TYPE_BYTES), (6, "version_bytes", F.TYPE_BYTES)]
    for number, name, kind in fields:
        kv.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    updates = proto.message_type.add(name="Updates")
    updates.field.add(name="kvwrites", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                      type_name=".txmgrtest.KVWrite")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("txmgrtest.Updates"))


def test_version_bytes_match_fabric_height_encoding() -> None:
    assert version_bytes(Version(0, 0)) == b"\x00\x00"
    assert version_bytes(Version(1, 2)) == b"\x01\x01\x01\x02"
    assert version_bytes(Version(256, 0)) == b"\x02\x01\x00\x00"
    assert version_bytes(Version(2**64 - 1, 1)) == b"\x08" + b"\xff" * 8 + b"\x01\x01"


def test_update_batch_bytes_match_protobuf_encoding() -> None:
    updates = {("ns3", "key6"): (None, Version(1, 6)), ("ns1", "key2"): (b"value2", Version(1, 2)),
               ("ns1", "key1"): (b"value1", Version(1, 1)), ("ns2", "key3"): (b"value3", Version(1, 3)),
               ("", "config"): (b"skipped", Version(1, 0))}
    Updates = _updates_message_class()
    expected = Updates()
    for ns, key, value, version in [("ns1", b"key1", b"value1", Version(1, 1)), ("", b"key2", b"value2", Version(1, 2)),
                                    ("ns2", b"key3", b"value3", Version(1, 3)), ("ns3", b"key6", None, Version(1, 6))]:
        write = expected.kvwrites.add(namespace=ns, key=key, version_bytes=version_bytes(version))
        if value is None:
            write.isDelete = True
        else:
            write.value = value
    assert update_batch_bytes(updates) == expected.SerializeToString()


def test_update_batch_bytes_with_private_data_hashes_match_fabric_order() -> None:
    """Per namespace: public writes by key, then each collection's hashed writes by key hash (Fabric's
    ``deterministicBytesForPubAndHashUpdates``); the namespace and the collection on their first write only."""
    updates = {("_lifecycle", "namespaces/fields/cc/Sequence"): (b"seq", Version(3, 0))}
    hashed = {("_lifecycle", "_implicit_org_B", b"\x02"): (b"vb", Version(3, 1)),
              ("_lifecycle", "_implicit_org_A", b"\x09"): (None, Version(3, 0)),
              ("_lifecycle", "_implicit_org_A", b"\x01"): (b"va", Version(3, 0)),
              ("other", "coll", b"\x05"): (b"vo", Version(3, 2))}
    Updates = _updates_message_class()
    expected = Updates()
    expected.kvwrites.add(namespace="_lifecycle", key=b"namespaces/fields/cc/Sequence", value=b"seq",
                          version_bytes=version_bytes(Version(3, 0)))
    expected.kvwrites.add(collection="_implicit_org_A", key=b"\x01", value=b"va",
                          version_bytes=version_bytes(Version(3, 0)))
    expected.kvwrites.add(key=b"\x09", isDelete=True, version_bytes=version_bytes(Version(3, 0)))
    expected.kvwrites.add(collection="_implicit_org_B", key=b"\x02", value=b"vb",
                          version_bytes=version_bytes(Version(3, 1)))
    expected.kvwrites.add(namespace="other", collection="coll", key=b"\x05", value=b"vo",
                          version_bytes=version_bytes(Version(3, 2)))
    assert update_batch_bytes(updates, hashed) == expected.SerializeToString()


def test_commit_hash_chain_in_block_metadata(ledger: Ledger) -> None:
    genesis = ledger.block(0)
    assert genesis is not None and genesis.metadata.metadata[blockfmt.COMMIT_HASH] == b""
    b1 = _commit(ledger, [_tx("t1", 0, (NS, "a", b"1")), _tx("t2", 1, (NS, "b", b"2"), code=MVCC_READ_CONFLICT)])
    b2 = _commit(ledger, [_tx("t3", 0, (NS, "a", None))])
    h1 = commit_hash(b"\x00\x0b", update_batch_bytes({(NS, "a"): (b"1", Version(1, 0))}), b"")
    h2 = commit_hash(b"\x00", update_batch_bytes({(NS, "a"): (None, Version(2, 0))}), h1)
    assert h1 == hashlib.sha256(b"\x02\x00\x0b" + update_batch_bytes({(NS, "a"): (b"1", Version(1, 0))})).digest()
    for block, expected in [(b1, h1), (b2, h2)]:
        stored = ledger.block(block.header.number)
        assert stored is not None
        assert common_pb2.Metadata.FromString(stored.metadata.metadata[blockfmt.COMMIT_HASH]).value == expected


# --- crashes ------------------------------------------------------------------------------------------------


def test_failure_mid_commit_leaves_nothing(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    _commit(ledger, [_tx("t1", 0, (NS, "a", b"1"))])

    def crash(*args: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(Ledger, "_append_history", staticmethod(crash))
    with pytest.raises(RuntimeError, match="power cut"):
        _commit(ledger, [_tx("t2", 0, (NS, "a", b"2"), (NS, "new", b"x"))])
    monkeypatch.undo()
    assert ledger.height == 2 and ledger.block(2) is None and ledger.tx_location("t2") is None
    assert ledger.get_state(NS, "a") == VersionedValue(b"1", Version(1, 0)) and ledger.get_state(NS, "new") is None
    ledger.verify(full=True)
    _commit(ledger, [_tx("t2", 0, (NS, "a", b"2"))])
    assert ledger.get_state(NS, "a") == VersionedValue(b"2", Version(2, 0))
    ledger.verify(full=True)


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from swarmfuse.network.protocol import blockfmt
    from swarmfuse.network.embedded.ledger import Ledger
    from swarmfuse.network.protocol.model import TxResult

    ledger = Ledger.open(Path(sys.argv[1]), full_check=False)  # as the engine opens a channel
    while True:
        n = ledger.height
        envelopes = [f"env-{n}-{i}".encode() * 50 for i in range(20)]
        block = blockfmt.new_block(n, ledger.last_header_hash or b"", envelopes)
        blockfmt.set_transactions_filter(block, [0] * 20)
        results = [TxResult(f"tx-{n}-{i}", i, 0, [("cc", "counter", str(n).encode()), ("cc", f"k{n}-{i}", b"v" * 200)])
                   for i in range(20)]
        ledger.commit(block, results)
        print(n, flush=True)
""")


def _commit_until_killed(path: Path, at_least: int) -> int:
    """Run :data:`_CHILD` on ``path`` until it reports block ``at_least`` committed, kill -9 it somewhere in a
    later commit; the last block number it reported."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    reported = -1
    try:
        assert child.stdout is not None
        for line in child.stdout:
            reported = int(line)
            if reported >= at_least:
                break
        time.sleep(0.013)  # land somewhere in a later commit
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    return reported


def test_kill_9_during_commits_leaves_whole_blocks(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _commit_until_killed(path, 15)
    with Ledger.open(path) as ledger:
        height = ledger.height
        assert height >= 16
        assert ledger.get_state("cc", "counter") == VersionedValue(str(height - 1).encode(), Version(height - 1, 19))
        assert ledger.get_state("cc", f"k{height - 1}-19") is not None
        assert ledger.get_state("cc", f"k{height}-0") is None
        assert ledger.tx_location(f"tx-{height - 1}-19") == TxLocation(height - 1, 19, 0)
        assert ledger.tx_location(f"tx-{height}-0") is None


def test_open_after_kill_9_at_a_large_height_commits_nothing_twice_and_loses_nothing(tmp_path: Path) -> None:
    """Killed at a height of over a thousand blocks, reopened with the engine's quick check, resumed and killed
    again: every block a writer reported is there, each committed once (the counter's history holds each
    block's 20 writes exactly once), every transaction is indexed where it was committed, and the full check passes."""
    path = tmp_path / "ledger.db"
    reported = _commit_until_killed(path, 1200)
    with Ledger.open(path, full_check=False) as ledger:
        height = ledger.height
    assert height >= reported + 1  # nothing reported committed is lost
    reported = _commit_until_killed(path, height + 10)  # resumes at the reopened height
    with Ledger.open(path, full_check=True) as ledger:
        final = ledger.height
        assert final >= reported + 1
        assert [(entry.value, entry.version) for entry in ledger.get_history("cc", "counter")] == [
            (str(n).encode(), Version(n, i)) for n in reversed(range(final)) for i in reversed(range(20))]
        for n in range(final):
            assert ledger.tx_location(f"tx-{n}-19") == TxLocation(n, 19, 0)
        assert ledger.tx_location(f"tx-{final}-0") is None


def test_the_quick_check_covers_the_last_block_and_its_state_only(tmp_path: Path) -> None:
    """``full_check=False`` (how the engine opens) finds what a crash could leave in the last block: its state
    writes, its commit hash, its link and the savepoint; damage to older blocks is the full check's finding."""
    path = tmp_path / "ledger.db"
    _build(path, blocks=6)
    _tamper(path, "UPDATE history SET value = ? WHERE key = ? AND block = 2", b"forged", b"k2")
    with Ledger.open(path, full_check=False) as ledger:
        assert ledger.height == 6 and ledger.get_state(NS, "a") == VersionedValue(b"5", Version(5, 0))
    with pytest.raises(LedgerCorrupt, match="block 2: commit hash"):
        Ledger.open(path, full_check=True)
    _tamper(path, "UPDATE history SET value = ? WHERE key = ? AND block = 2", b"v", b"k2")

    _tamper(path, "UPDATE state SET value = ? WHERE key = ?", b"forged", b"k5")
    with pytest.raises(LedgerCorrupt, match="state key swarmfuse/b'k5' does not match its write in block 5"):
        Ledger.open(path, full_check=False)
    _tamper(path, "DELETE FROM state WHERE key = ?", b"k5")
    with pytest.raises(LedgerCorrupt, match="state key swarmfuse/b'k5' does not match its write in block 5"):
        Ledger.open(path, full_check=False)
    _tamper(path, "INSERT INTO state (ns, key, value, block, tx) VALUES (?, ?, ?, 5, 0)", NS, b"k5", b"v")

    _tamper(path, "UPDATE history SET value = ? WHERE key = ? AND block = 5", b"forged", b"a")
    with pytest.raises(LedgerCorrupt, match="block 5: commit hash"):
        Ledger.open(path, full_check=False)
    _tamper(path, "UPDATE history SET value = ? WHERE key = ? AND block = 5", b"5", b"a")

    _tamper(path, "UPDATE meta SET value = ? WHERE name = ?", b"4", "_ledger.savepoint")
    with pytest.raises(LedgerCorrupt, match="block 5: the savepoint names block 4"):
        Ledger.open(path, full_check=False)
    _tamper(path, "UPDATE meta SET value = ? WHERE name = ?", b"5", "_ledger.savepoint")

    _tamper(path, "DELETE FROM blocks WHERE number = 4")
    with pytest.raises(LedgerCorrupt, match="block 4 is missing"):
        Ledger.open(path, full_check=False)


# --- concurrency ---------------------------------------------------------------------------------------------


def test_concurrent_readers_see_whole_blocks(ledger: Ledger) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                rows = list(ledger.get_state_range(NS, "", ""))
                values = {v.value for _, v in rows}
                assert len(values) <= 1, f"a range saw two blocks: {values}"
                if rows:
                    assert {v.version.block for _, v in rows} == {int(rows[0][1].value)}
                height = ledger.height
                if height > 1:
                    assert ledger.block(height - 1) is not None
                ledger.get_state(NS, "a")
                reads[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for n in range(1, 41):
        _commit(ledger, [_tx(f"t{n}", 0, *[(NS, k, str(n).encode()) for k in "abcdef"])])
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert reads[0] > 0
    assert ledger.get_state(NS, "f") == VersionedValue(b"40", Version(40, 0))


def test_wait_for_height_wakes_on_commit(ledger: Ledger) -> None:
    assert ledger.wait_for_height(1, timeout=0)
    assert not ledger.wait_for_height(2, timeout=0.05)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(ledger.wait_for_height(3, timeout=10)))
    waiter.start()
    _commit(ledger, [_tx("t1", 0)])
    time.sleep(0.02)
    assert woke == []
    _commit(ledger, [_tx("t2", 0)])
    waiter.join(5)
    assert woke == [True]


def test_close_wakes_waiters(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(ledger.wait_for_height(1, timeout=10)))
    waiter.start()
    time.sleep(0.02)
    ledger.close()
    waiter.join(5)
    assert woke == [False]


def test_reserved_meta_names(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="reserved"):
        ledger.meta_put("_ledger.savepoint", b"9")


# --- the chaincode definition, committed through _lifecycle in block 1 ---------------------------


def test_a_channel_defines_its_chaincode_in_block_1_and_reopens_only_with_that_definition(tmp_path: Path) -> None:
    """As on Fabric: the chaincode exists on the channel once a ``_lifecycle`` ``CommitChaincodeDefinition``
    transaction (admin creator, peers' endorsements per LifecycleEndorsement) is committed VALID in a block. A
    channel stopped between its genesis block and that block defines it when reopened; one whose ledger holds
    another definition than the channel was joined with does not open."""
    from engine_pki import genesis_channel, member, pki

    from swarmfuse.network.embedded.channel import CHAINCODE_META, open_channel
    from swarmfuse.network.protocol.lifecycle import LIFECYCLE, field_key, metadata_key
    from swarmfuse.network.protocol.validator import transaction_rwset

    orderer = member("orderer", "orderer")
    path = tmp_path / "task1.sqlite"
    channel = genesis_channel(path, orderer)  # stopped before block 1: no definition yet
    chaincode = pki().channel().chaincode
    assert chaincode is not None
    assert channel.ledger.height == 1 and channel.committed_chaincode() is None
    channel.start()
    peers = [member(org, "peer") for org in ("dc1", "dc2", "dc3", "auditor")]
    with pytest.raises(ValueError, match="committed ENDORSEMENT_POLICY_FAILURE"):  # 2 of 4 orgs: not a majority
        channel.define_chaincode(member("dc1", "admin"), peers[:2])
    channel.define_chaincode(member("dc1", "admin"), peers[:3])
    committed = channel.committed_chaincode()
    assert committed is not None and (committed.sequence, committed.version, committed.written_at.block) == (
        1, chaincode.version, 2)
    block = channel.ledger.block(2)
    assert block is not None and blockfmt.transactions_filter(block) == [0]
    [(namespace, kv, collections), (legacy, legacy_kv, _)] = transaction_rwset(block.data.data[0])
    assert (namespace, collections, legacy, [r.key for r in legacy_kv.reads]) == (LIFECYCLE, [], "lscc",
                                                                                 [chaincode.name])
    name = chaincode.name
    assert [w.key for w in kv.writes] == sorted([metadata_key(name), *(field_key(name, f) for f in (
        "Collections", "EndorsementInfo", "Sequence", "ValidationInfo"))])
    channel.define_chaincode(member("dc1", "admin"), peers)  # defined: nothing more is submitted
    assert channel.ledger.height == 3
    channel.stop()
    open_channel(path, orderer.sign, orderer.serialized).ledger.close()  # reopens: the same definition
    with sqlite3.connect(path) as conn:
        meta = conn.execute("SELECT value FROM meta WHERE name = ?", (CHAINCODE_META,)).fetchone()[0]
        conn.execute("UPDATE meta SET value = ? WHERE name = ?", (meta.replace(b'"sequence": 1', b'"sequence": 2'),
                                                                   CHAINCODE_META))
    with pytest.raises(ValueError, match="not the one the channel was joined with"):
        open_channel(path, orderer.sign, orderer.serialized)


def test_a_snapshot_reads_one_height_while_blocks_commit(ledger: Ledger) -> None:
    """A simulation's reads all see the height at its first read, however many blocks commit meanwhile, and
    any thread may make them; the next snapshot sees the new height."""
    _commit(ledger, [_tx("t1", 0, (NS, "a", b"1"), (NS, "b", b"1"))])
    with ledger.snapshot() as state:
        assert state.get_state(NS, "a") == VersionedValue(b"1", Version(1, 0))
        _commit(ledger, [_tx("t2", 0, (NS, "a", b"2"), (NS, "b", b"2"), (NS, "c", b"2"))])
        seen: list[object] = []
        reader = threading.Thread(target=lambda: seen.extend([state.get_state(NS, "b"),
                                                              [k for k, _ in state.get_state_range(NS, "", "")],
                                                              len(state.get_history(NS, "a"))]))
        reader.start()
        reader.join()
        assert seen == [VersionedValue(b"1", Version(1, 0)), ["a", "b"], 1]
        assert ledger.get_state(NS, "b") == VersionedValue(b"2", Version(2, 0))  # outside it: the newest height
    with ledger.snapshot() as state:
        assert state.get_state(NS, "c") == VersionedValue(b"2", Version(2, 0))


# --- key metadata (state-based endorsement policies) -----------------------------------------------

def _meta(tx_id: str, index: int, writes: Sequence[Write], metadata: Sequence[tuple[str, str, bytes]]) -> TxResult:
    return TxResult(tx_id, index, 0, writes, timestamp_s=1, timestamp_nanos=7, metadata_writes=metadata)


def test_key_metadata_follows_fabric_merge_rules(tmp_path: Path) -> None:
    """A value write keeps the key's metadata, a metadata write alone keeps the value (new version, no history
    entry), a delete drops both, metadata of a key that does not exist is dropped; a full check passes."""
    policy, other = encode_metadata({"VALIDATION_PARAMETER": b"p1"}), encode_metadata({"VALIDATION_PARAMETER": b"p2"})
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        _commit(ledger, [TxResult("config", 0, 0)])
        _commit(ledger, [_meta("t1", 0, [(NS, "k", b"v1"), (NS, "gone", b"x")], [(NS, "k", policy)]),
                         _meta("t2", 1, [], [(NS, "never", policy)])])
        assert ledger.get_state(NS, "k") == VersionedValue(b"v1", Version(1, 0), policy)
        assert ledger.get_state(NS, "never") is None
        _commit(ledger, [_meta("t3", 0, [(NS, "k", b"v2")], []), _meta("t4", 1, [(NS, "gone", None)], [])])
        assert ledger.get_state(NS, "k") == VersionedValue(b"v2", Version(2, 0), policy)
        _commit(ledger, [_meta("t5", 0, [], [(NS, "k", other)])])
        assert ledger.get_state(NS, "k") == VersionedValue(b"v2", Version(3, 0), other)
        assert [h.tx_id for h in ledger.get_history(NS, "k")] == ["t3", "t1"]
        _commit(ledger, [_meta("t6", 0, [(NS, "k", None)], [(NS, "k", policy)])])
        assert ledger.get_state(NS, "k") is None
        _commit(ledger, [_meta("t7", 0, [(NS, "k", b"v3")], [])])
        assert ledger.get_state(NS, "k") == VersionedValue(b"v3", Version(5, 0))
    with Ledger.open(path, full_check=True) as reopened:
        assert reopened.get_state(NS, "k") == VersionedValue(b"v3", Version(5, 0))


def test_a_metadata_only_change_enters_the_commit_hash_with_the_kept_value(ledger: Ledger) -> None:
    """Fabric's update batch holds the key with its value and the new version; the metadata bytes are not hashed."""
    _commit(ledger, [_tx("t1", 0, (NS, "k", b"v"))])
    block = _commit(ledger, [_meta("t2", 0, [], [(NS, "k", encode_metadata({"VALIDATION_PARAMETER": b"p"}))])])
    previous = common_pb2.Metadata.FromString(ledger.block(1).metadata.metadata[blockfmt.COMMIT_HASH]).value
    expected = commit_hash(bytes(blockfmt.transactions_filter(block)),
                           update_batch_bytes({(NS, "k"): (b"v", Version(2, 0))}), previous)
    assert common_pb2.Metadata.FromString(block.metadata.metadata[blockfmt.COMMIT_HASH]).value == expected


def test_a_ledger_written_before_key_metadata_opens_and_keeps_its_state(tmp_path: Path) -> None:
    """The columns key metadata added are created on open; what was committed stays as it was."""
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        _commit(ledger, [TxResult("config", 0, 0)])
        _commit(ledger, [_tx("t1", 0, (NS, "k", b"v"))])
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE state DROP COLUMN metadata")
        conn.execute("ALTER TABLE history DROP COLUMN metadata")
        conn.execute("ALTER TABLE history DROP COLUMN value_write")
    conn.close()
    with Ledger.open(path) as reopened:
        assert reopened.get_state(NS, "k") == VersionedValue(b"v", Version(1, 0))
        assert [h.tx_id for h in reopened.get_history(NS, "k")] == ["t1"]
