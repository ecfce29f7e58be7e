"""The shim's message handling over a real gRPC socket, with a test client playing the peer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import pytest
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2
from shim_peer import CHANNEL, Msg, PeerSim, ShimTestChaincode, response_of, transaction

from swarmfuse.chaincode.shim import ChaincodeServer, ServerConfig

pytestmark = pytest.mark.timeout(60)

PACKAGE_ID = "swarmfuse_1.0:0123abcd"


@pytest.fixture()
def server() -> Iterator[ChaincodeServer]:
    cc_server = ChaincodeServer(ShimTestChaincode(), ServerConfig(chaincode_id=PACKAGE_ID, address="127.0.0.1:0"))
    cc_server.start()
    yield cc_server
    cc_server.stop(grace=None)


@pytest.fixture()
def peer(server: ChaincodeServer) -> Iterator[PeerSim]:
    sim = PeerSim(f"127.0.0.1:{server.port}")
    sim.handshake()
    yield sim
    sim.close()


def test_register_handshake_sends_package_id(server: ChaincodeServer) -> None:
    sim = PeerSim(f"127.0.0.1:{server.port}")
    try:
        assert sim.handshake().name == PACKAGE_ID
        # After READY the chaincode serves transactions.
        sim.state["a"] = b"1"
        assert response_of(sim.run(transaction("tx0", "get", "a"))).payload == b"1"
    finally:
        sim.close()


# A peer that pings far more often than gRPC servers accept by default (one per 5 min, 2 strikes).
EAGER_PINGS = (
    ("grpc.keepalive_time_ms", 200),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_time_between_pings_ms", 100),
)


def test_server_accepts_frequent_keepalive_pings(server: ChaincodeServer) -> None:
    sim = PeerSim(f"127.0.0.1:{server.port}", channel_options=EAGER_PINGS)
    try:
        sim.handshake()
        # Idle with a ping a second (the client's floor): gRPC's default server policy sends GOAWAY
        # (too_many_pings) after the third and drops the connection within these 9 seconds.
        time.sleep(9)
        sim.state["k"] = b"v"
        assert response_of(sim.run(transaction("tx1", "get", "k"))).payload == b"v"
    finally:
        sim.close()


def test_keepalive_message_is_echoed(peer: PeerSim) -> None:
    peer.send(Msg(type=Msg.KEEPALIVE, txid="ka"))
    echo = peer.recv()
    assert (echo.type, echo.txid) == (Msg.KEEPALIVE, "ka")


def test_put_get_and_event(peer: PeerSim) -> None:
    done = peer.run(transaction("tx1", "put", "color", "blue"))
    response = response_of(done)
    assert (response.status, response.payload) == (200, b"ok")
    assert done.chaincode_event.event_name == "Put"
    assert json.loads(done.chaincode_event.payload) == {"key": "color", "value": "blue"}
    assert (done.txid, done.channel_id) == ("tx1", CHANNEL)
    puts = [r for r in peer.requests if r.type == Msg.PUT_STATE]
    assert [chaincode_shim_pb2.PutState.FromString(r.payload).key for r in puts] == ["color"]
    assert all((r.txid, r.channel_id) == ("tx1", CHANNEL) for r in peer.requests)

    got = response_of(peer.run(transaction("tx2", "get", "color")))
    assert (got.status, got.payload) == (200, b"blue")
    missing = response_of(peer.run(transaction("tx3", "get", "nothing")))
    assert (missing.status, missing.message) == (404, "NotFound: nothing")


def test_delete_and_put_in_one_transaction(peer: PeerSim) -> None:
    peer.state["old"] = b"v"
    assert response_of(peer.run(transaction("tx1", "move", "old", "new"))).status == 200
    assert peer.state == {"new": b"v"}
    assert [Msg.Type.Name(r.type) for r in peer.requests] == ["GET_STATE", "DEL_STATE", "PUT_STATE"]


def test_interleaved_transactions_get_their_own_replies(peer: PeerSim) -> None:
    peer.state.update({"a": b"A", "b": b"B"})
    peer.send(transaction("txA", "wait_get", "a"))
    peer.send(transaction("txB", "wait_get", "b"))
    first, second = peer.recv(), peer.recv()
    assert {first.txid, second.txid} == {"txA", "txB"}
    assert first.type == second.type == Msg.GET_STATE
    # Answer in the opposite order of arrival: each reply must reach its own transaction.
    peer.answer(second)
    peer.answer(first)
    results = {m.txid: response_of(m).payload for m in (peer.recv(), peer.recv())}
    assert results == {"txA": b"A@txA", "txB": b"B@txB"}


def test_same_txid_on_two_channels_is_two_transactions(peer: PeerSim) -> None:
    peer.state["k"] = b"v"
    peer.send(transaction("same", "wait_get", "k", channel="ch1"))
    peer.send(transaction("same", "wait_get", "k", channel="ch2"))
    requests = [peer.recv(), peer.recv()]
    assert sorted(r.channel_id for r in requests) == ["ch1", "ch2"]
    for request in reversed(requests):
        peer.answer(request)
    done = [peer.recv(), peer.recv()]
    assert sorted(m.channel_id for m in done) == ["ch1", "ch2"]
    assert all(response_of(m).payload == b"v@same" for m in done)


def test_error_reply_to_get_state_becomes_error_to_peer(peer: PeerSim) -> None:
    peer.send(transaction("tx1", "get", "k"))
    request = peer.recv()
    assert request.type == Msg.GET_STATE
    peer.reply(request, Msg.ERROR, b"ledger unavailable")
    done = peer.recv()
    assert (done.type, done.txid) == (Msg.ERROR, "tx1")
    assert done.payload.decode() == "PeerError: peer rejected GET_STATE: ledger unavailable"


def test_exception_in_chaincode_is_error_and_writes_nothing(peer: PeerSim) -> None:
    done = peer.run(transaction("tx1", "put_then_raise", "k"))
    assert done.type == Msg.ERROR
    assert done.payload.decode() == "RuntimeError: cannot store k"
    assert not done.HasField("chaincode_event")
    assert peer.requests == [] and peer.state == {}


def test_error_response_writes_nothing_and_drops_event(peer: PeerSim) -> None:
    done = peer.run(transaction("tx1", "put_then_fail", "k"))
    response = response_of(done)
    assert (response.status, response.message) == (409, "Conflict: refused after writing")
    assert not done.HasField("chaincode_event")
    assert peer.requests == [] and peer.state == {}


def test_unknown_function_and_missing_arguments(peer: PeerSim) -> None:
    assert response_of(peer.run(transaction("tx1", "nope"))).status == 404
    done = peer.run(transaction("tx2", "get"))
    assert done.type == Msg.ERROR
    assert done.payload.decode().startswith("TypeError:")


def test_chaincode_returning_something_else_is_an_error(peer: PeerSim) -> None:
    done = peer.run(transaction("tx1", "not_a_response"))
    assert (done.type, done.payload) == (Msg.ERROR, b"TypeError: chaincode returned str, expected Response")


def test_init_message_is_served_like_a_transaction(peer: PeerSim) -> None:
    message = transaction("tx1", "put", "k", "v")
    message.type = Msg.INIT
    assert response_of(peer.run(message)).status == 200
    assert peer.state == {"k": b"v"}


def test_duplicate_running_txid_is_refused(peer: PeerSim) -> None:
    peer.send(transaction("dup", "get", "k"))
    request = peer.recv()
    peer.send(transaction("dup", "get", "k"))
    refused = peer.recv()
    assert (refused.type, refused.txid) == (Msg.ERROR, "dup")
    assert refused.payload == f"transaction dup on channel {CHANNEL} is already running".encode()
    peer.answer(request)
    assert response_of(peer.recv()).status == 404


def test_transaction_without_arguments_is_rejected(peer: PeerSim) -> None:
    done = peer.run(transaction("tx1"))
    assert done.type == Msg.ERROR
    assert "no arguments" in done.payload.decode()


def test_transaction_without_proposal_is_rejected(peer: PeerSim) -> None:
    message = transaction("tx1", "get", "k")
    message.ClearField("proposal")
    done = peer.run(message)
    assert (done.type, done.payload) == (Msg.ERROR, b"the transaction carries no signed proposal")


def test_message_before_ready_is_a_protocol_error(server: ChaincodeServer) -> None:
    sim = PeerSim(f"127.0.0.1:{server.port}")
    try:
        assert sim.recv().type == Msg.REGISTER
        sim.send(transaction("tx1", "get", "k"))
        error = sim.recv()
        assert error.type == Msg.ERROR
        assert error.payload == b"expected REGISTERED from the peer, got TRANSACTION"
    finally:
        sim.close()


def test_write_batch_when_peer_offers_it(server: ChaincodeServer) -> None:
    sim = PeerSim(f"127.0.0.1:{server.port}")
    try:
        sim.handshake(chaincode_pb2.ChaincodeAdditionalParams(use_write_batch=True, max_size_write_batch=100))
        sim.state["gone"] = b"x"
        assert response_of(sim.run(transaction("tx1", "many", "250"))).status == 200
        kinds = [Msg.Type.Name(r.type) for r in sim.requests]
        assert kinds == ["WRITE_BATCH_STATE"] * 3  # 251 records in batches of at most 100
        sizes = [len(chaincode_shim_pb2.WriteBatchState.FromString(r.payload).rec) for r in sim.requests]
        assert sizes == [100, 100, 51]
        assert len(sim.state) == 250 and "gone" not in sim.state and sim.state["k0249"] == b"249"
    finally:
        sim.close()


def test_peer_disconnect_fails_waiting_transaction(server: ChaincodeServer) -> None:
    sim = PeerSim(f"127.0.0.1:{server.port}")
    sim.handshake()
    sim.send(transaction("tx1", "get", "k"))
    assert sim.recv().type == Msg.GET_STATE
    sim.close()
    # A new peer connection is served normally after the old stream died mid-transaction.
    again = PeerSim(f"127.0.0.1:{server.port}")
    try:
        again.handshake()
        again.state["k"] = b"v"
        assert response_of(again.run(transaction("tx2", "get", "k"))).payload == b"v"
    finally:
        again.close()


def test_drain_lets_running_transaction_finish_and_refuses_new_ones(server: ChaincodeServer, peer: PeerSim) -> None:
    peer.state["k"] = b"v"
    peer.send(transaction("tx1", "get", "k"))
    request = peer.recv()
    server.drain()
    peer.send(transaction("tx2", "get", "k"))
    refused = peer.recv()
    assert (refused.type, refused.txid, refused.payload) == (Msg.ERROR, "tx2", b"the chaincode server is shutting down")
    peer.answer(request)
    assert response_of(peer.recv()).payload == b"v"
    with pytest.raises(EOFError):
        peer.recv()
    late = PeerSim(f"127.0.0.1:{server.port}")
    with pytest.raises(grpc.RpcError) as refused_stream:
        late.recv()
    assert refused_stream.value.code() == grpc.StatusCode.UNAVAILABLE
    late.close()


@pytest.mark.parametrize("batch", [False, True])
def test_key_endorsement_policy_is_read_and_written(server: ChaincodeServer, batch: bool) -> None:
    """``get_state_validation_parameter`` asks GET_STATE_METADATA at once; ``set_state_validation_parameter``
    is buffered with the writes and sent after the value, as PUT_STATE_METADATA or a write-batch record."""
    sim = PeerSim(f"127.0.0.1:{server.port}")
    try:
        ready = chaincode_pb2.ChaincodeAdditionalParams(use_write_batch=True, max_size_write_batch=100) if batch else None
        sim.handshake(ready)
        sim.policies["k"] = b"old-policy"
        done = response_of(sim.run(transaction("tx1", "protect", "k", "v", "new-policy")))
        assert (done.status, done.payload) == (200, b"old-policy")
        kinds = [Msg.Type.Name(r.type) for r in sim.requests]
        assert kinds == ["GET_STATE_METADATA", "WRITE_BATCH_STATE"] if batch else \
            ["GET_STATE_METADATA", "PUT_STATE", "PUT_STATE_METADATA"]
        assert (sim.state, sim.policies) == ({"k": b"v"}, {"k": b"new-policy"})
    finally:
        sim.close()
