"""The peer side of the chaincode protocol, against the real shim (``ChaincodeServer``) over mutual TLS."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2, chaincode_shim_pb2_grpc, proposal_response_pb2
from memory_state import MemoryState

from swarmfuse.chaincode.shim import ChaincodeServer, ServerConfig
from swarmfuse.chaincode.shim.config import TlsMaterial
from swarmfuse.chaincode.stub import ChaincodeStub, Response, create_composite_key
from swarmfuse.network.embedded.chaincode import (
    READY_PARAMS,
    ChaincodeClient,
    ChaincodeTimeout,
    ChaincodeUnavailable,
    ExecuteResult,
)
from swarmfuse.network.embedded.simulator import TxSimulator, set_range_query_reads
from swarmfuse.network.protocol.model import Version, VersionedValue
from swarmfuse.network.protocol.txops import encode_metadata

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))
from sample_app import create_chaincode
from shim_peer import DEFAULT_CERT, KeyPair, ShimTestChaincode, make_cert, signed_proposal

pytestmark = pytest.mark.timeout(60)

NS = "swarmfuse"
CHANNEL = "task1"
Msg = chaincode_shim_pb2.ChaincodeMessage


class EngineTestChaincode(ShimTestChaincode):
    """The shim's test chaincode plus what these tests need: a barrier, a blocking call, a page-then-write."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(1)
        self.entered = threading.Event()
        self.release = threading.Event()

    def cc_barrier(self, stub: ChaincodeStub, key: str) -> Response:
        self.barrier.wait(timeout=5)  # every transaction of the barrier must be running at once
        stub.put_state(key, stub.tx_id.encode())
        return Response(200, payload=(stub.get_state("seed") or b""))

    def cc_block(self, stub: ChaincodeStub) -> Response:
        self.entered.set()
        self.release.wait(timeout=10)
        return Response(200, payload=b"released")

    def cc_page_then_put(self, stub: ChaincodeStub) -> Response:
        stub.get_state_by_range_with_pagination("", "", 2)
        stub.put_state("after", b"x")
        return Response(200)


@pytest.fixture(scope="module")
def pki() -> dict[str, KeyPair]:
    ca = make_cert("test-ca", ca=True)
    return {
        "ca": ca,
        "server": make_cert("chaincode", ca, sans=("chaincode.dc1.swarmfuse.local", "127.0.0.1")),
        "peer": make_cert("peer0", ca),
        "stranger": make_cert("stranger"),
    }


def start_server(pki: dict[str, KeyPair], chaincode: object, address: str = "127.0.0.1:0") -> ChaincodeServer:
    tls = TlsMaterial(cert_pem=pki["server"].cert_pem, key_pem=pki["server"].key_pem, client_ca_pem=pki["ca"].cert_pem)
    server = ChaincodeServer(chaincode, ServerConfig(chaincode_id="swarmfuse_1.0:abc", address=address, tls=tls))
    server.start()
    return server


def new_client(pki: dict[str, KeyPair], port: int, identity: str = "peer") -> ChaincodeClient:
    return ChaincodeClient(
        f"127.0.0.1:{port}",
        root_cert=pki["ca"].cert_pem,
        client_cert=pki[identity].cert_pem,
        client_key=pki[identity].key_pem,
        server_name="chaincode.dc1.swarmfuse.local",
    )


@dataclass
class Endpoint:
    server: ChaincodeServer
    client: ChaincodeClient
    chaincode: object


@pytest.fixture(scope="module")
def app(pki: dict[str, KeyPair]) -> Iterator[Endpoint]:
    """The real contract application behind the real shim."""
    server = start_server(pki, create_chaincode())
    client = new_client(pki, server.port)
    client.connect(timeout=10)
    yield Endpoint(server, client, None)
    client.close()
    server.stop(grace=None)


@pytest.fixture(scope="module")
def testcc(pki: dict[str, KeyPair]) -> Iterator[Endpoint]:
    """The shim's test chaincode (ranges, composite keys, pagination, history) behind the real shim."""
    chaincode = EngineTestChaincode()
    server = start_server(pki, chaincode)
    client = new_client(pki, server.port)
    client.connect(timeout=10)
    yield Endpoint(server, client, chaincode)
    client.close()
    server.stop(grace=None)


_counter = iter(range(1_000_000))


def run(
    client: ChaincodeClient, state: MemoryState, *args: str, timeout: float = 10.0
) -> tuple[ExecuteResult, TxSimulator]:
    tx_id = f"tx{next(_counter):04d}"
    simulator = TxSimulator(state, NS, tx_id)
    result = client.execute(
        CHANNEL,
        tx_id,
        signed_proposal(tx_id, "DC1MSP", DEFAULT_CERT.cert_pem, dt.datetime.now(dt.UTC)),  # contracts check skew
        chaincode_pb2.ChaincodeInput(args=[a.encode() for a in args]),
        simulator,
        timeout=timeout,
    )
    return result, simulator


def kv_set(sim: TxSimulator) -> kv_rwset_pb2.KVRWSet:
    (ns,) = sim.read_write_set().ns_rwset
    assert ns.namespace == NS
    return kv_rwset_pb2.KVRWSet.FromString(ns.rwset)


def test_handshake_registers_the_package_id(app: Endpoint) -> None:
    assert app.client.connected
    assert app.client.chaincode_id == "swarmfuse_1.0:abc"


def test_put_records_a_write_and_returns_the_event(app: Endpoint) -> None:
    result, sim = run(app.client, MemoryState(), "Sample:Put", "color", "blue")
    assert result.response.status == 200, result.response.message
    assert sim.writes() == [(NS, "color", b"blue")]
    assert list(kv_set(sim).writes) == [kv_rwset_pb2.KVWrite(key="color", value=b"blue")]
    assert result.event is not None
    assert (result.event.event_name, result.event.chaincode_id, result.event.tx_id) == ("Put", NS, sim.tx_id)
    assert json.loads(result.event.payload) == {"key": "color", "value": "blue"}


def test_get_records_a_read_with_its_version(app: Endpoint) -> None:
    state = MemoryState()
    state.put(NS, "color", b"green", Version(5, 2))
    result, sim = run(app.client, state, "Sample:Get", "color")
    assert (result.response.status, result.response.payload) == (200, b"green")
    assert result.event is None and sim.writes() == []
    (read,) = kv_set(sim).reads
    assert read == kv_rwset_pb2.KVRead(key="color", version=kv_rwset_pb2.Version(block_num=5, tx_num=2))

    missing, sim = run(app.client, state, "Sample:Get", "nothing")
    assert missing.response.status == 404 and "no value under key" in missing.response.message
    (read,) = kv_set(sim).reads
    assert read.key == "nothing" and not read.HasField("version")


def _numbered_state(count: int) -> tuple[MemoryState, list[str]]:
    state = MemoryState()
    keys = [f"n{i:04d}" for i in range(count)]
    for i, key in enumerate(keys):
        state.put(NS, key, str(i).encode(), Version(7, i))
    return state, keys


def test_range_over_many_keys_crosses_query_state_next_pages(testcc: Endpoint) -> None:
    state, keys = _numbered_state(250)
    result, sim = run(testcc.client, state, "range", "n0000", "")
    assert result.response.status == 200, result.response.message
    items = json.loads(result.response.payload)
    assert [key for key, _ in items] == keys  # 100 + 100 + 50: the shim followed has_more twice
    (info,) = kv_set(sim).range_queries_info
    expected = kv_rwset_pb2.RangeQueryInfo(start_key="n0000", end_key="", itr_exhausted=True)
    set_range_query_reads(expected, [kv_rwset_pb2.KVRead(key=k, version={"block_num": 7, "tx_num": i})
                                     for i, k in enumerate(keys)])
    assert info == expected


def test_first_batch_is_one_hundred_results_plus_one_pending(testcc: Endpoint) -> None:
    state, keys = _numbered_state(250)
    result, sim = run(testcc.client, state, "first", "n0000", "n9999")
    assert (result.response.status, result.response.payload) == (200, b"n0000")
    (info,) = kv_set(sim).range_queries_info
    # As Fabric's peer: 101 results were pulled for the first response (the 101st waits for the next batch).
    assert (info.end_key, info.itr_exhausted) == (keys[100], False)
    assert info.reads_merkle_hashes.max_level == 1 and len(info.reads_merkle_hashes.max_level_hashes) == 2


def test_pagination_with_bookmark(testcc: Endpoint) -> None:
    state, keys = _numbered_state(25)
    first, sim = run(testcc.client, state, "page", "n0000", "", "10", "")
    body = json.loads(first.response.payload)
    assert body == {"keys": keys[:10], "bookmark": keys[10], "count": 10}
    (info,) = kv_set(sim).range_queries_info
    assert (info.start_key, info.end_key, info.itr_exhausted) == ("n0000", keys[9], False)

    last, sim = run(testcc.client, state, "page", "n0000", "", "10", keys[20])
    assert json.loads(last.response.payload) == {"keys": keys[20:], "bookmark": "", "count": 5}
    (info,) = kv_set(sim).range_queries_info
    assert (info.start_key, info.end_key, info.itr_exhausted) == (keys[20], "", True)


def test_composite_key_ranges(testcc: Endpoint) -> None:
    state = MemoryState()
    for owner, asset in [("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("alice", "a3")]:
        state.put(NS, create_composite_key("asset", [owner, asset]), b"{}", Version(3, 0))
    state.put(NS, "plain", b"x", Version(3, 1))
    result, sim = run(testcc.client, state, "by_owner", "alice")
    assert json.loads(result.response.payload) == [["alice", "a1"], ["alice", "a2"], ["alice", "a3"]]
    (info,) = kv_set(sim).range_queries_info
    assert info.start_key == "\x00asset\x00alice\x00" and info.end_key == "\x00asset\x00alice\x00\U0010ffff"
    assert info.itr_exhausted and len(info.raw_reads.kv_reads) == 3

    paged, _ = run(testcc.client, state, "owner_page", "alice", "2", "")
    assert json.loads(paged.response.payload) == {"n": 2, "bookmark": create_composite_key("asset", ["alice", "a3"])}
    plain, _ = run(testcc.client, state, "range", "", "")
    assert json.loads(plain.response.payload) == [["plain", "x"]]  # simple-key ranges skip composite keys


def test_history_of_a_key(testcc: Endpoint) -> None:
    state = MemoryState()
    state.put(NS, "h", b"one", Version(2, 0), tx_id="t-one")
    state.put(NS, "h", b"two", Version(3, 1), tx_id="t-two")
    state.put(NS, "h", b"", Version(4, 0), tx_id="t-del")
    result, sim = run(testcc.client, state, "history", "h")
    rows = json.loads(result.response.payload)
    assert [(r["tx"], r["value"], r["deleted"]) for r in rows] == [
        ("t-one", "one", False), ("t-two", "two", False), ("t-del", "", True)
    ]
    assert rows[1]["at"].startswith("2023-11-14T22:13:23")  # the change's timestamp reaches the chaincode
    assert sim.read_write_set().ns_rwset == []  # history reads are not recorded


def test_chaincode_error_becomes_status_500(testcc: Endpoint) -> None:
    result, sim = run(testcc.client, MemoryState(), "put_then_raise", "k")
    assert result.response.status == 500
    assert result.response.message == "transaction returned with failure: RuntimeError: cannot store k"
    assert result.event is None and sim.writes() == []

    refused, _ = run(testcc.client, MemoryState(), "put_then_fail", "k")
    assert (refused.response.status, refused.event) == (409, None)


def test_paginated_query_then_write_fails_the_transaction(testcc: Endpoint) -> None:
    state, _ = _numbered_state(5)
    result, sim = run(testcc.client, state, "page_then_put")
    assert result.response.status == 500
    assert "WRITE_BATCH_STATE failed: transaction ID: " + sim.tx_id in result.response.message
    assert "Transaction has already performed a paginated query. Writes are not allowed" in result.response.message
    assert sim.writes() == []


def test_eight_concurrent_transactions_share_one_stream(testcc: Endpoint) -> None:
    chaincode = testcc.chaincode
    assert isinstance(chaincode, EngineTestChaincode)
    chaincode.barrier = threading.Barrier(8)
    state = MemoryState()
    state.put(NS, "seed", b"s", Version(1, 0))
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda i: run(testcc.client, state, "barrier", f"key{i}"), range(8)))
    for i, (result, sim) in enumerate(outcomes):
        assert (result.response.status, result.response.payload) == (200, b"s"), result.response.message
        assert sim.writes() == [(NS, f"key{i}", sim.tx_id.encode())]
        assert [r.key for r in kv_set(sim).reads] == ["seed"]
    assert len({sim.tx_id for _, sim in outcomes}) == 8


def test_timeout_then_the_stream_still_works(testcc: Endpoint) -> None:
    chaincode = testcc.chaincode
    assert isinstance(chaincode, EngineTestChaincode)
    chaincode.release.clear()
    with pytest.raises(ChaincodeTimeout, match="timeout expired while executing transaction"):
        run(testcc.client, MemoryState(), "block", timeout=0.3)
    chaincode.release.set()  # its late COMPLETED is dropped
    result, _ = run(testcc.client, MemoryState(), "get", "x")
    assert result.response.status == 404 and testcc.client.connected


def test_killed_server_then_reconnect(pki: dict[str, KeyPair]) -> None:
    chaincode = EngineTestChaincode()
    server = start_server(pki, chaincode)
    port = server.port
    client = new_client(pki, port)
    client.connect(timeout=10)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(run, client, MemoryState(), "block")
            assert chaincode.entered.wait(5)
            server.stop(grace=None)
            with pytest.raises(ChaincodeUnavailable, match="chaincode stream terminated"):
                pending.result(timeout=10)
        assert not client.connected
        with pytest.raises(ChaincodeUnavailable, match="is not connected"):
            run(client, MemoryState(), "put", "k", "v")

        chaincode.release.set()
        server = start_server(pki, create_chaincode(), address=f"127.0.0.1:{port}")
        client.connect(timeout=10)
        result, sim = run(client, MemoryState(), "Sample:Put", "k", "v")
        assert result.response.status == 200 and sim.writes() == [(NS, "k", b"v")]
    finally:
        chaincode.release.set()
        client.close()
        server.stop(grace=None)


def test_untrusted_client_certificate_cannot_connect(pki: dict[str, KeyPair]) -> None:
    server = start_server(pki, create_chaincode())
    client = new_client(pki, server.port, "stranger")
    try:
        with pytest.raises(ChaincodeUnavailable, match="cannot connect to chaincode server"):
            client.connect(timeout=10)
        assert not client.connected
    finally:
        client.close()
        server.stop(grace=None)


def test_not_connected_and_unreachable(pki: dict[str, KeyPair]) -> None:
    client = new_client(pki, 1)
    with pytest.raises(ChaincodeUnavailable, match="connect\\(\\) was not called"):
        run(client, MemoryState(), "Sample:Get", "k")
    with pytest.raises(ChaincodeUnavailable, match="cannot connect to chaincode server 127.0.0.1:1"):
        client.connect(timeout=10)


# --- protocol corners, with a scripted chaincode (the shim never sends these) -----------------------

Step = tuple[int, bytes, str | None]  # message type, payload, txid (None: the running transaction's)


class ScriptedChaincode(chaincode_shim_pb2_grpc.ChaincodeServicer):
    """Registers, then for each transaction sends ``script``'s requests one by one and records the replies."""

    def __init__(self, script: list[Step]) -> None:
        self.script = script
        self.ready: chaincode_pb2.ChaincodeAdditionalParams | None = None
        self.replies: list[Msg] = []

    def Connect(self, request_iterator: Iterator[Msg], context: grpc.ServicerContext) -> Iterator[Msg]:
        yield Msg(type=Msg.REGISTER, payload=chaincode_pb2.ChaincodeID(name="scripted:1").SerializeToString())
        assert next(request_iterator).type == Msg.REGISTERED
        ready = next(request_iterator)
        assert ready.type == Msg.READY
        self.ready = chaincode_pb2.ChaincodeAdditionalParams.FromString(ready.payload)
        for tx in request_iterator:
            for kind, payload, txid in self.script:
                yield Msg(type=kind, payload=payload, txid=txid or tx.txid, channel_id=tx.channel_id)
                self.replies.append(next(request_iterator))
            done = proposal_response_pb2.Response(status=200, payload=b"scripted")
            yield Msg(type=Msg.COMPLETED, payload=done.SerializeToString(), txid=tx.txid, channel_id=tx.channel_id)


def _scripted(pki: dict[str, KeyPair], script: list[Step]) -> tuple[ScriptedChaincode, grpc.Server, int]:
    servicer = ScriptedChaincode(script)
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(pki["server"].key_pem, pki["server"].cert_pem)],
        root_certificates=pki["ca"].cert_pem,
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return servicer, server, port


def test_protocol_corners(pki: dict[str, KeyPair]) -> None:
    shim = chaincode_shim_pb2
    batch_records = [
        shim.WriteRecord(key="w1", value=b"1", type=shim.WriteRecord.PUT_STATE),
        shim.WriteRecord(key="a", type=shim.WriteRecord.DEL_STATE),
    ]
    script: list[Step] = [
        (Msg.GET_STATE_MULTIPLE, shim.GetStateMultiple(keys=["a", "zz", "b"]).SerializeToString(), None),
        (Msg.WRITE_BATCH_STATE, shim.WriteBatchState(rec=batch_records).SerializeToString(), None),
        (Msg.GET_HISTORY_FOR_KEY, shim.GetHistoryForKey(key="a").SerializeToString(), None),
        (Msg.QUERY_STATE_NEXT, shim.QueryStateNext(id="nope").SerializeToString(), None),
        (Msg.QUERY_STATE_CLOSE, shim.QueryStateClose(id="nope").SerializeToString(), None),
        (Msg.GET_QUERY_RESULT, shim.GetQueryResult(query="{}").SerializeToString(), None),
        (Msg.INVOKE_CHAINCODE, b"", None),
        (Msg.GET_STATE, shim.GetState(key="a", collection="secret").SerializeToString(), None),
        (Msg.GET_STATE, shim.GetState(key="a").SerializeToString(), "ghost"),
        (Msg.PUT_STATE, b"\xff\xff", None),
    ]
    servicer, server, port = _scripted(pki, script)
    client = new_client(pki, port)
    try:
        client.connect(timeout=10)
        assert client.chaincode_id == "scripted:1"
        state = MemoryState()
        state.put(NS, "a", b"A", Version(2, 3))
        state.put(NS, "b", b"B", Version(2, 4))
        result, sim = run(client, state, "anything")
        assert (result.response.status, result.response.payload) == (200, b"scripted")
    finally:
        client.close()
        server.stop(None)
    assert servicer.ready == READY_PARAMS
    multiple, batch, history, next_, close, rich, invoke, private, ghost, garbage = servicer.replies
    assert shim.GetStateMultipleResult.FromString(multiple.payload).values == [b"A", b"", b"B"]
    assert batch.type == Msg.RESPONSE and sim.writes() == [(NS, "a", None), (NS, "w1", b"1")]
    assert [r.key for r in kv_set(sim).reads] == ["a", "b", "zz"]
    page = shim.QueryResponse.FromString(history.payload)
    assert not page.has_more
    assert [kv_query_result_pb2.KeyModification.FromString(r.resultBytes).value for r in page.results] == [b"A"]
    prefix = f"failed: transaction ID: {sim.tx_id}"
    assert (next_.type, next_.payload.decode()) == (Msg.ERROR, f"QUERY_STATE_NEXT {prefix}: query iterator not found")
    assert close.type == Msg.RESPONSE and shim.QueryResponse.FromString(close.payload).id == "nope"
    assert rich.payload.decode() == f"GET_QUERY_RESULT {prefix}: not supported by the embedded engine"
    assert (invoke.type, invoke.payload.decode()) == (
        Msg.ERROR, f"INVOKE_CHAINCODE {prefix}: not supported by the embedded engine"
    )
    assert private.type == Msg.ERROR and "private data (collection 'secret')" in private.payload.decode()
    assert ghost.txid == "ghost"
    assert ghost.payload.decode() == "GET_STATE failed: transaction ID: ghost: no ledger context"
    assert garbage.type == Msg.ERROR and garbage.payload.decode().startswith(f"PUT_STATE {prefix}: unmarshal failed")


def test_key_metadata_messages(pki: dict[str, KeyPair]) -> None:
    """GET_STATE_METADATA answers the committed entries (and records a read); PUT_STATE_METADATA, alone or
    as a write-batch record, becomes a metadata write of the read-write set; collections are refused."""
    shim = chaincode_shim_pb2
    policy = shim.StateMetadata(metakey="VALIDATION_PARAMETER", value=b"policy-bytes")
    script: list[Step] = [
        (Msg.GET_STATE_METADATA, shim.GetStateMetadata(key="a").SerializeToString(), None),
        (Msg.GET_STATE_METADATA, shim.GetStateMetadata(key="none").SerializeToString(), None),
        (Msg.PUT_STATE_METADATA, shim.PutStateMetadata(key="b", metadata=policy).SerializeToString(), None),
        (Msg.WRITE_BATCH_STATE, shim.WriteBatchState(rec=[
            shim.WriteRecord(key="c", value=b"C", type=shim.WriteRecord.PUT_STATE),
            shim.WriteRecord(key="c", metadata=policy, type=shim.WriteRecord.PUT_STATE_METADATA),
        ]).SerializeToString(), None),
        (Msg.PUT_STATE_METADATA, shim.PutStateMetadata(key="d", collection="secret",
                                                       metadata=policy).SerializeToString(), None),
    ]
    servicer, server, port = _scripted(pki, script)
    client = new_client(pki, port)
    try:
        client.connect(timeout=10)
        state = MemoryState()
        state.values[(NS, "a")] = VersionedValue(b"A", Version(2, 3), encode_metadata({"VALIDATION_PARAMETER": b"p"}))
        result, sim = run(client, state, "anything")
        assert result.response.status == 200
    finally:
        client.close()
        server.stop(None)
    got, empty, put, batch, private = servicer.replies
    assert [(e.metakey, e.value) for e in shim.StateMetadataResult.FromString(got.payload).entries] == [
        ("VALIDATION_PARAMETER", b"p")]
    assert empty.type == Msg.RESPONSE and not shim.StateMetadataResult.FromString(empty.payload).entries
    assert put.type == Msg.RESPONSE and batch.type == Msg.RESPONSE
    assert private.type == Msg.ERROR and "private data (collection 'secret')" in private.payload.decode()
    kv = kv_set(sim)
    assert [r.key for r in kv.reads] == ["a", "none"]
    assert [(w.key, [(e.name, e.value) for e in w.entries]) for w in kv.metadata_writes] == [
        ("b", [("VALIDATION_PARAMETER", b"policy-bytes")]), ("c", [("VALIDATION_PARAMETER", b"policy-bytes")])]
    assert sim.writes() == [(NS, "c", b"C")]
