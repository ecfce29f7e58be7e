"""Chaincode events (Gateway.ChaincodeEvents) and blocks (Deliver), resumable through a checkpointer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2

from swarmfuse.client.gateway.checkpoint import Checkpointer, InMemoryCheckpointer
from swarmfuse.client.gateway.client import GatewayClient, stream_errors
from swarmfuse.client.gateway.errors import DeliverError
from swarmfuse.client.gateway.identity import digest
from swarmfuse.client.gateway.proposal import new_header

_MAX_BLOCK = 2**64 - 1


@dataclass(frozen=True)
class ChaincodeEvent:
    """One event a committed transaction emitted."""

    block_number: int
    transaction_id: str
    chaincode: str
    event_name: str
    payload: bytes


def _seek(block_number: int | None) -> ab_pb2.SeekPosition:
    if block_number is None:
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=block_number))


class _Stream:
    """An open server stream the caller can close (cancels the gRPC call)."""

    def __init__(self, call: grpc.Call) -> None:
        self._call = call

    def close(self) -> None:
        self._call.cancel()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChaincodeEvents(_Stream):
    """Iterator over a chaincode's events; each event is checkpointed once the caller asks for the next."""

    def __init__(self, client: GatewayClient, channel: str, chaincode: str,
                 start_block: int | None, checkpointer: Checkpointer | None) -> None:
        self._checkpointer = checkpointer or InMemoryCheckpointer()
        position = self._checkpointer.position
        start = position.block_number if position.block_number is not None else start_block
        request = gw.ChaincodeEventsRequest(
            channel_id=channel, chaincode_id=chaincode, identity=client.creator,
            start_position=_seek(start), after_transaction_id=position.transaction_id or "",
        )
        signed = gw.SignedChaincodeEventsRequest(request=request.SerializeToString())
        signed.signature = client.signer.sign(digest(signed.request))
        super().__init__(client.chaincode_events(signed))
        self._events = self._iterate(chaincode)

    def _iterate(self, chaincode: str) -> Iterator[ChaincodeEvent]:
        for response in stream_errors(f"chaincode {chaincode}", self._call):
            for event in response.events:
                yield ChaincodeEvent(response.block_number, event.tx_id, event.chaincode_id, event.event_name, event.payload)
                self._checkpointer.checkpoint_transaction(response.block_number, event.tx_id)
            self._checkpointer.checkpoint_block(response.block_number)

    def __iter__(self) -> Iterator[ChaincodeEvent]:
        return self._events

    def __next__(self) -> ChaincodeEvent:
        return next(self._events)


class BlockEvents(_Stream):
    """Iterator over full blocks (``common.Block``) or filtered ones (``peer.FilteredBlock``)."""

    def __init__(self, client: GatewayClient, channel: str, start_block: int | None,
                 checkpointer: Checkpointer | None, filtered: bool) -> None:
        self._checkpointer = checkpointer or InMemoryCheckpointer()
        position = self._checkpointer.position
        start = position.block_number if position.block_number is not None else start_block
        start_position = _seek(start) if start is not None else ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
        seek = ab_pb2.SeekInfo(
            start=start_position, stop=_seek(_MAX_BLOCK), behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY
        )
        _, header = new_header(common_pb2.DELIVER_SEEK_INFO, channel, client.creator)
        payload = common_pb2.Payload(header=common_pb2.Header.FromString(header), data=seek.SerializeToString())
        envelope = common_pb2.Envelope(payload=payload.SerializeToString())
        envelope.signature = client.signer.sign(digest(envelope.payload))
        super().__init__(client.deliver(envelope, filtered))
        self._blocks = self._iterate(channel, filtered)

    def _iterate(self, channel: str, filtered: bool) -> Iterator[common_pb2.Block | events_pb2.FilteredBlock]:
        for response in stream_errors(f"blocks of {channel}", self._call):
            kind = response.WhichOneof("Type")
            if kind == "status":
                raise DeliverError(f"block stream on {channel} ended: {common_pb2.Status.Name(response.status)}")
            block = response.filtered_block if filtered else response.block
            yield block
            number = block.number if filtered else block.header.number
            self._checkpointer.checkpoint_block(number)

    def __iter__(self) -> Iterator[common_pb2.Block | events_pb2.FilteredBlock]:
        return self._blocks

    def __next__(self) -> common_pb2.Block | events_pb2.FilteredBlock:
        return next(self._blocks)
