"""Range, composite-key, paginated and history queries through the shim, over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fabric_protos.peer import chaincode_shim_pb2
from shim_peer import HistoryEntry, Msg, PeerSim, ShimTestChaincode, response_of, transaction

from swarmfuse.chaincode.shim import ChaincodeServer, ServerConfig
from swarmfuse.chaincode.stub import create_composite_key

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def peer() -> Iterator[PeerSim]:
    server = ChaincodeServer(ShimTestChaincode(), ServerConfig(chaincode_id="swarmfuse_1.0:q", address="127.0.0.1:0"))
    server.start()
    sim = PeerSim(f"127.0.0.1:{server.port}", batch_size=2)
    sim.handshake()
    yield sim
    sim.close()
    server.stop(grace=None)


def _payload(peer: PeerSim, txid: str, *args: str) -> object:
    response = response_of(peer.run(transaction(txid, *args)))
    assert response.status == 200, response.message
    return json.loads(response.payload)


def _kinds(peer: PeerSim) -> list[str]:
    return [Msg.Type.Name(r.type) for r in peer.requests]


def test_range_query_pages_through_query_state_next(peer: PeerSim) -> None:
    peer.state.update({f"k{i}": f"v{i}".encode() for i in range(5)})
    peer.state[create_composite_key("asset", ["x"])] = b"hidden"
    items = _payload(peer, "tx1", "range", "k1", "")
    assert items == [["k1", "v1"], ["k2", "v2"], ["k3", "v3"], ["k4", "v4"]]
    # 4 results in batches of 2: the first batch, then one QUERY_STATE_NEXT; the query ends by itself.
    assert _kinds(peer) == ["GET_STATE_BY_RANGE", "QUERY_STATE_NEXT"]
    # QUERY_STATE_NEXT names the iterator the peer opened for this query (the test peer's first is "1").
    assert chaincode_shim_pb2.QueryStateNext.FromString(peer.requests[1].payload).id == "1"


def test_range_from_empty_start_key_skips_composite_keys(peer: PeerSim) -> None:
    peer.state.update({"a": b"1", "b": b"2", create_composite_key("asset", ["o", "1"]): b"c"})
    assert _payload(peer, "tx1", "range", "", "") == [["a", "1"], ["b", "2"]]
    request = chaincode_shim_pb2.GetStateByRange.FromString(peer.requests[0].payload)
    assert (request.startKey, request.endKey) == ("\x01", "")


def test_range_with_composite_start_key_is_refused(peer: PeerSim) -> None:
    done = peer.run(transaction("tx1", "range", "\x00asset\x00", ""))
    assert done.type == Msg.ERROR
    assert "reserved for composite keys" in done.payload.decode()
    assert peer.requests == []


def test_unfinished_query_is_closed(peer: PeerSim) -> None:
    peer.state.update({f"k{i}": b"v" for i in range(5)})
    response = response_of(peer.run(transaction("tx1", "first", "", "")))
    assert response.payload == b"k0"
    assert _kinds(peer) == ["GET_STATE_BY_RANGE", "QUERY_STATE_CLOSE"]


def test_paginated_range_returns_bookmark(peer: PeerSim) -> None:
    peer.state.update({f"k{i}": b"v" for i in range(5)})
    first = _payload(peer, "tx1", "page", "", "", "3", "")
    assert first == {"keys": ["k0", "k1", "k2"], "bookmark": "k3", "count": 3}
    second = _payload(peer, "tx2", "page", "", "", "3", first["bookmark"])
    assert second == {"keys": ["k3", "k4"], "bookmark": "", "count": 2}
    metadata = chaincode_shim_pb2.QueryMetadata.FromString(
        chaincode_shim_pb2.GetStateByRange.FromString(peer.requests[-1].payload).metadata
    )
    assert (metadata.pageSize, metadata.bookmark) == (3, "k3")


def test_zero_page_size_is_refused(peer: PeerSim) -> None:
    done = peer.run(transaction("tx1", "page", "", "", "0", ""))
    assert done.type == Msg.ERROR and "page size must be a positive integer" in done.payload.decode()


def test_partial_composite_key_query(peer: PeerSim) -> None:
    for owner, asset in [("alice", "1"), ("alice", "2"), ("alice", "3"), ("bob", "9")]:
        peer.state[create_composite_key("asset", [owner, asset])] = b"x"
    peer.state["alice"] = b"plain key"
    assert _payload(peer, "tx1", "by_owner", "alice") == [["alice", "1"], ["alice", "2"], ["alice", "3"]]
    request = chaincode_shim_pb2.GetStateByRange.FromString(peer.requests[0].payload)
    assert request.startKey == "\x00asset\x00alice\x00"
    assert request.endKey == "\x00asset\x00alice\x00\U0010ffff"
    assert _payload(peer, "tx2", "owner_page", "alice", "2", "") == {
        "n": 2,
        "bookmark": create_composite_key("asset", ["alice", "3"]),
    }


def test_history_is_decoded(peer: PeerSim) -> None:
    peer.history["doc"] = [
        HistoryEntry("t1", b"first", 1_700_000_000),
        HistoryEntry("t2", b"second", 1_700_000_060),
        HistoryEntry("t3", b"", 1_700_000_120, is_delete=True),
    ]
    rows = _payload(peer, "tx1", "history", "doc")
    assert rows == [
        {"tx": "t1", "value": "first", "at": "2023-11-14T22:13:20+00:00", "deleted": False},
        {"tx": "t2", "value": "second", "at": "2023-11-14T22:14:20+00:00", "deleted": False},
        {"tx": "t3", "value": "", "at": "2023-11-14T22:15:20+00:00", "deleted": True},
    ]
    assert _kinds(peer) == ["GET_HISTORY_FOR_KEY", "QUERY_STATE_NEXT"]


def test_error_reply_during_paging_surfaces(peer: PeerSim) -> None:
    peer.state.update({f"k{i}": b"v" for i in range(5)})
    peer.send(transaction("tx1", "range", "", ""))
    peer.answer(peer.recv())  # the first batch
    next_request = peer.recv()
    assert next_request.type == Msg.QUERY_STATE_NEXT
    peer.reply(next_request, Msg.ERROR, b"query iterator expired")
    close_request = peer.recv()  # the shim still ends the query it left open
    assert close_request.type == Msg.QUERY_STATE_CLOSE
    peer.answer(close_request)
    done = peer.recv()
    assert done.type == Msg.ERROR
    assert done.payload.decode() == "PeerError: peer rejected QUERY_STATE_NEXT: query iterator expired"
