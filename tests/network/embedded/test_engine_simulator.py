"""The transaction simulator: what it reads and writes, and the Fabric read-write set it records."""

from __future__ import annotations

import hashlib

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from memory_state import MemoryState

from swarmfuse.network.embedded.simulator import SimulationError, TxSimulator, set_range_query_reads
from swarmfuse.network.protocol.model import Version

pytestmark = pytest.mark.timeout(60)

NS = "swarmfuse"


def kv_set(sim: TxSimulator) -> kv_rwset_pb2.KVRWSet:
    rwset = sim.read_write_set()
    assert rwset.data_model == rwset_pb2.TxReadWriteSet.KV
    assert [ns.namespace for ns in rwset.ns_rwset] == [NS]
    return kv_rwset_pb2.KVRWSet.FromString(rwset.ns_rwset[0].rwset)


def read(key: str, block: int | None = None, tx: int = 0) -> kv_rwset_pb2.KVRead:
    result = kv_rwset_pb2.KVRead(key=key)
    if block is not None:
        result.version.CopyFrom(kv_rwset_pb2.Version(block_num=block, tx_num=tx))
    return result


@pytest.fixture
def state() -> MemoryState:
    state = MemoryState()
    for i in range(10):
        state.put(NS, f"k{i:02d}", f"v{i}".encode(), Version(2, i))
    state.put("other", "k00", b"elsewhere", Version(1, 0))
    return state


def test_reads_record_versions_and_writes_are_buffered(state: MemoryState) -> None:
    sim = TxSimulator(state, NS, "tx1")
    assert sim.get_state("k03") == b"v3"
    assert sim.get_state("missing") == b""
    assert sim.get_state_multiple(["k01", "k00"]) == [b"v1", b"v0"]
    sim.put_state("zeta", b"1")
    sim.put_state("alpha", b"first")
    sim.put_state("alpha", b"second")  # a later write of a key replaces the earlier one
    sim.del_state("k01")
    sim.put_state("k02", b"")  # an empty value is a delete, as in Fabric
    assert sim.get_state("alpha") == b""  # no read-your-writes: reads see committed state

    kv = kv_set(sim)
    assert list(kv.reads) == [read("alpha"), read("k00", 2, 0), read("k01", 2, 1), read("k03", 2, 3), read("missing")]
    assert not kv.reads[0].HasField("version") and kv.reads[1].HasField("version")
    assert list(kv.writes) == [
        kv_rwset_pb2.KVWrite(key="alpha", value=b"second"),
        kv_rwset_pb2.KVWrite(key="k01", is_delete=True),
        kv_rwset_pb2.KVWrite(key="k02", is_delete=True),
        kv_rwset_pb2.KVWrite(key="zeta", value=b"1"),
    ]
    assert sim.writes() == [(NS, "alpha", b"second"), (NS, "k01", None), (NS, "k02", None), (NS, "zeta", b"1")]


def test_untouched_simulation_has_no_namespace(state: MemoryState) -> None:
    sim = TxSimulator(state, NS, "tx1")
    assert [entry.tx_id for entry in sim.get_history_for_key("k01")] == ["tx2.1"]  # history is not recorded
    assert sim.read_write_set() == rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV)
    assert sim.writes() == []


def test_keys_sort_by_code_point_like_fabric(state: MemoryState) -> None:
    sim = TxSimulator(state, NS, "tx1")
    for key in ["\U0001f600", "\x00asset\x00a\x00", "é", "Z", "a"]:
        sim.put_state(key, b"x")
    assert [w.key for w in kv_set(sim).writes] == ["\x00asset\x00a\x00", "Z", "a", "é", "\U0001f600"]


def test_range_query_records_what_was_pulled(state: MemoryState) -> None:
    sim = TxSimulator(state, NS, "tx1")
    assert [key for key, _ in sim.get_state_range("k02", "k05")] == ["k02", "k03", "k04"]
    partial = sim.get_state_range("k05", "")
    assert next(partial)[0] == "k05" and next(partial)[0] == "k06"
    assert list(sim.get_state_range("x", "y")) == []
    assert [key for key, _ in sim.get_state_range("k02", "k05")] == ["k02", "k03", "k04"]  # same query: one entry

    infos = list(kv_set(sim).range_queries_info)
    assert len(infos) == 3
    exhausted, stopped, empty = infos
    assert (exhausted.start_key, exhausted.end_key, exhausted.itr_exhausted) == ("k02", "k05", True)
    assert list(exhausted.raw_reads.kv_reads) == [read("k02", 2, 2), read("k03", 2, 3), read("k04", 2, 4)]
    assert (stopped.start_key, stopped.end_key, stopped.itr_exhausted) == ("k05", "k06", False)
    assert list(stopped.raw_reads.kv_reads) == [read("k05", 2, 5), read("k06", 2, 6)]
    assert (empty.start_key, empty.end_key, empty.itr_exhausted) == ("x", "y", True)
    assert empty.WhichOneof("reads_info") is None
    assert list(kv_set(sim).reads) == []  # range results are not point reads


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaf(reads: list[kv_rwset_pb2.KVRead]) -> bytes:
    return _sha(kv_rwset_pb2.QueryReads(kv_reads=reads).SerializeToString())


def test_more_than_fifty_results_become_a_merkle_summary() -> None:
    reads = [read(f"k{i:05d}", 3, i) for i in range(2602)]

    info = kv_rwset_pb2.RangeQueryInfo()
    set_range_query_reads(info, reads[:50])
    assert list(info.raw_reads.kv_reads) == reads[:50]

    info = kv_rwset_pb2.RangeQueryInfo()
    set_range_query_reads(info, reads[:120])  # leaves of 51, 51 and 18 reads
    assert info.reads_merkle_hashes == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=50, max_level=1, max_level_hashes=[_leaf(reads[0:51]), _leaf(reads[51:102]), _leaf(reads[102:120])]
    )

    info = kv_rwset_pb2.RangeQueryInfo()
    set_range_query_reads(info, reads)  # 51 full leaves fold into one level-2 hash, then one leaf of 1 read
    leaves = [_leaf(reads[i : i + 51]) for i in range(0, 51 * 51, 51)]
    assert info.reads_merkle_hashes == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=50, max_level=2, max_level_hashes=[_sha(b"".join(leaves)), _leaf(reads[2601:])]
    )


def test_large_range_in_rwset_is_hashed() -> None:
    state = MemoryState()
    for i in range(60):
        state.put(NS, f"r{i:03d}", b"v", Version(4, i))
    sim = TxSimulator(state, NS, "tx1")
    assert len(list(sim.get_state_range("", ""))) == 60
    (info,) = kv_set(sim).range_queries_info
    expected = kv_rwset_pb2.RangeQueryInfo(start_key="", end_key="", itr_exhausted=True)
    set_range_query_reads(expected, [read(f"r{i:03d}", 4, i) for i in range(60)])
    assert info == expected and info.WhichOneof("reads_info") == "reads_merkle_hashes"


def test_paginated_query_then_write_is_refused(state: MemoryState) -> None:
    sim = TxSimulator(state, "swarmfuse", "tx9")
    page = sim.get_state_range_paginated("k01", "", 3)
    assert [next(page)[0] for _ in range(3)] == ["k01", "k02", "k03"]
    assert page.bookmark_and_close() == "k04"
    with pytest.raises(SimulationError, match=r"^txid \[tx9\]: unsuppored transaction\. Transaction has already "
                       r"performed a paginated query\. Writes are not allowed$"):
        sim.put_state("k01", b"x")
    with pytest.raises(SimulationError, match="Writes are not allowed"):
        sim.del_state("k01")
    (info,) = kv_set(sim).range_queries_info
    assert (info.start_key, info.end_key, info.itr_exhausted) == ("k01", "k03", False)
    assert list(kv_set(sim).writes) == []


def test_paginated_query_after_write_is_refused(state: MemoryState) -> None:
    sim = TxSimulator(state, NS, "tx9")
    sim.put_state("a", b"1")
    with pytest.raises(SimulationError, match=r"Paginated queries are supported only in a read-only transaction"):
        sim.get_state_range_paginated("", "", 5)
    assert len(list(sim.get_state_range("k08", ""))) == 2  # plain range queries stay allowed


def test_last_page_has_no_bookmark_and_limit_marks_exhausted(state: MemoryState) -> None:
    sim = TxSimulator(state, NS, "tx1")
    page = sim.get_state_range_paginated("k07", "", 5)
    assert [key for key, _ in page] == ["k07", "k08", "k09"]
    assert page.bookmark_and_close() == ""
    full = sim.get_state_range_paginated("k00", "k09", 2)
    assert [key for key, _ in full] == ["k00", "k01"]  # pulling past the page ends it, as Fabric's scanner does
    first, second = kv_set(sim).range_queries_info
    assert (first.end_key, first.itr_exhausted) == ("", True)
    assert (second.end_key, second.itr_exhausted, len(second.raw_reads.kv_reads)) == ("k09", True, 2)


def test_history_disabled_and_done(state: MemoryState) -> None:
    sim = TxSimulator(state, NS, "tx1", history=False)
    with pytest.raises(SimulationError, match="^history database is not enabled$"):
        sim.get_history_for_key("k01")
    sim.put_state("a", b"1")
    iterator = sim.get_state_range("k00", "")
    next(iterator)
    sim.done()
    assert list(iterator) == []  # closed by done()
    with pytest.raises(SimulationError, match=r"should not be used after calling Done\(\)"):
        sim.get_state("k01")
    with pytest.raises(SimulationError, match=r"after calling Done\(\)"):
        sim.put_state("b", b"2")
    assert sim.writes() == [(NS, "a", b"1")] and len(kv_set(sim).range_queries_info) == 1
