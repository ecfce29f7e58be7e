"""One org's endpoint as the engine serves it (``org_server``: Gateway and Deliver on one gRPC server): long-lived
calls (Deliver, ChaincodeEvents, CommitStatus) are bounded apart from Endorse, Evaluate and Submit, so open
streams never make a Submit or its commit status wait, and one stream too many is refused at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from engine_pki import genesis_channel, member
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.gateway.gateway_pb2_grpc import GatewayStub
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import transaction_pb2
from fabric_protos.peer.events_pb2_grpc import DeliverStub

from swarmfuse.client.gateway.proposal import new_header
from swarmfuse.network.embedded.channel import Channel
from swarmfuse.network.embedded.engine import EndpointLimits, org_server
from swarmfuse.network.embedded.gateway import Peers
from swarmfuse.network.protocol import blockfmt

pytestmark = pytest.mark.timeout(60)

CLIENT = member("dc1", "client")
LIMITS = EndpointLimits(streams=2, commit_statuses=1, unary=1)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[grpc.Channel, Channel]]:
    """DC1's endpoint with ``LIMITS`` (4 server threads) on a channel whose orderer cuts blocks."""
    channel = genesis_channel(tmp_path / "task1.sqlite", member("orderer", "orderer"))
    channel.start()
    peers = Peers({}, {channel.name: channel})  # no endorsers: the test submits envelopes it assembles itself
    server = org_server(peers, "DC1MSP", mutual_tls=False, limits=LIMITS)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    connection = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield connection, channel
    finally:
        connection.close()
        server.stop(0)
        channel.stop()
        peers.pool.shutdown()


def _deliver_request(channel: str) -> common_pb2.Envelope:
    """Every block from 0 on, as DC1's client."""
    _, header = new_header(common_pb2.DELIVER_SEEK_INFO, channel, CLIENT.serialized)
    seek = ab_pb2.SeekInfo(start=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=0)),
                           stop=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=2**64 - 1)))
    payload = common_pb2.Payload(header=common_pb2.Header.FromString(header), data=seek.SerializeToString())
    serialized = payload.SerializeToString()
    return common_pb2.Envelope(payload=serialized, signature=CLIENT.sign(serialized))


def _events_request(channel: str) -> gw.SignedChaincodeEventsRequest:
    request = gw.ChaincodeEventsRequest(channel_id=channel, chaincode_id="swarmfuse", identity=CLIENT.serialized,
                                        start_position=ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit()))
    serialized = request.SerializeToString()
    return gw.SignedChaincodeEventsRequest(request=serialized, signature=CLIENT.sign(serialized))


def _transaction(channel: str) -> tuple[str, common_pb2.Envelope]:
    """A signed endorser transaction without endorsements: ordered and committed (as an invalid transaction)."""
    tx_id, header = new_header(common_pb2.ENDORSER_TRANSACTION, channel, CLIENT.serialized)
    payload = common_pb2.Payload(header=common_pb2.Header.FromString(header),
                                 data=transaction_pb2.Transaction().SerializeToString()).SerializeToString()
    return tx_id, common_pb2.Envelope(payload=payload, signature=CLIENT.sign(payload))


def _commit_status_request(channel: str, tx_id: str) -> gw.SignedCommitStatusRequest:
    request = gw.CommitStatusRequest(transaction_id=tx_id, channel_id=channel, identity=CLIENT.serialized)
    serialized = request.SerializeToString()
    return gw.SignedCommitStatusRequest(request=serialized, signature=CLIENT.sign(serialized))


def test_open_streams_never_block_a_submit_or_its_commit_status(endpoint: tuple[grpc.Channel, Channel]) -> None:
    """With every stream slot held by an open Deliver call waiting for the next block, one more ChaincodeEvents
    call is refused at once with RESOURCE_EXHAUSTED, while a Submit and then its CommitStatus are served; the
    open streams then receive the block the transaction went into."""
    connection, channel = endpoint
    deliver, gateway = DeliverStub(connection), GatewayStub(connection)
    streams = [deliver.Deliver(iter([_deliver_request(channel.name)])) for _ in range(LIMITS.streams)]
    try:
        for stream in streams:  # each admitted: it delivered block 0 and now waits for block 1 in its thread
            assert next(stream).block.header.number == 0
        with pytest.raises(grpc.RpcError) as refused:
            next(gateway.ChaincodeEvents(_events_request(channel.name), timeout=10))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 2 open Deliver and ChaincodeEvents calls" in refused.value.details()

        tx_id, envelope = _transaction(channel.name)
        gateway.Submit(gw.SubmitRequest(transaction_id=tx_id, channel_id=channel.name, prepared_transaction=envelope),
                       timeout=10)
        status = gateway.CommitStatus(_commit_status_request(channel.name, tx_id), timeout=10)
        assert status.block_number == 1 and status.result != transaction_pb2.VALID
        for stream in streams:
            block = next(stream).block
            assert block.header.number == 1 and blockfmt.transactions_filter(block) == [status.result]
    finally:
        for stream in streams:
            stream.cancel()
