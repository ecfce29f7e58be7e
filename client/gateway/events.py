"""Chaincode events (Gateway.ChaincodeEvents) and blocks (Deliver), resumable through a checkpointer.

Both start at the next block to commit unless a start block is given (a checkpoint's position wins). Each
request can be signed offline (``to_bytes``/``digest``/``set_signature``) before ``events()`` opens the
stream. Deliver requests claim the client TLS certificate's hash (``ChannelHeader.tls_cert_hash``), which a
peer requiring mutual TLS checks against the connection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2

from swarmfuse.client.gateway.checkpoint import Checkpointer, InMemoryCheckpointer
from swarmfuse.client.gateway.client import GatewayClient, stream_errors
from swarmfuse.client.gateway.errors import DeliverError
from swarmfuse.client.gateway.proposal import new_header
from swarmfuse.network.protocol.identity import digest

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChaincodeEvents(_Stream):
    """Iterator over a chaincode's events; each event is checkpointed once the caller asks for the next."""

    def __init__(self, call: grpc.Call, chaincode: str, checkpointer: Checkpointer) -> None:
        super().__init__(call)
        self._checkpointer = checkpointer
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


class ChaincodeEventsRequest:
    """A signed ``ChaincodeEvents`` request: ``events()`` opens the stream (signing with the gateway's signer
    unless a signature was set); ``to_bytes()``, ``digest()`` and ``set_signature()`` sign it offline."""

    def __init__(self, client: GatewayClient, signed: gw.SignedChaincodeEventsRequest,
                 checkpointer: Checkpointer | None = None) -> None:
        self._client = client
        self._signed = signed
        self._checkpointer = checkpointer or InMemoryCheckpointer()
        self._request = gw.ChaincodeEventsRequest.FromString(signed.request)

    @classmethod
    def build(cls, client: GatewayClient, channel: str, chaincode: str, start_block: int | None,
              checkpointer: Checkpointer | None) -> ChaincodeEventsRequest:
        """Events from the checkpoint when it has a position, else from ``start_block``, else from the next
        block to commit."""
        checkpointer = checkpointer or InMemoryCheckpointer()
        position = checkpointer.position
        start = position.block_number if position.block_number is not None else start_block
        request = gw.ChaincodeEventsRequest(
            channel_id=channel, chaincode_id=chaincode, identity=client.creator,
            start_position=_seek(start), after_transaction_id=position.transaction_id or "",
        )
        return cls(client, gw.SignedChaincodeEventsRequest(request=request.SerializeToString()), checkpointer)

    @property
    def channel(self) -> str:
        return self._request.channel_id

    @property
    def chaincode(self) -> str:
        return self._request.chaincode_id

    def to_bytes(self) -> bytes:
        """The serialized ``gateway.SignedChaincodeEventsRequest`` (with its signature, once signed)."""
        return self._signed.SerializeToString()

    def digest(self) -> bytes:
        """SHA-256 of the request bytes: what the signer signs."""
        return digest(self._signed.request)

    def set_signature(self, signature: bytes) -> None:
        """Attach a signature made elsewhere (offline signing)."""
        self._signed.signature = signature

    def events(self) -> ChaincodeEvents:
        """Open the event stream (a context manager and iterator)."""
        if not self._signed.signature:
            self.set_signature(self._client.signer.sign(self.digest()))
        return ChaincodeEvents(self._client.chaincode_events(self._signed), self.chaincode, self._checkpointer)


class BlockEvents(_Stream):
    """Iterator over full blocks (``common.Block``) or filtered ones (``peer.FilteredBlock``)."""

    def __init__(self, call: grpc.Call, channel: str, checkpointer: Checkpointer, filtered: bool) -> None:
        super().__init__(call)
        self._checkpointer = checkpointer
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


def seek_envelope(client: GatewayClient, channel: str, seek: ab_pb2.SeekInfo) -> common_pb2.Envelope:
    """An unsigned Deliver request for ``seek``, claiming the client's TLS certificate hash (if any)."""
    _, header = new_header(common_pb2.DELIVER_SEEK_INFO, channel, client.creator, tls_cert_hash=client.tls_cert_hash)
    payload = common_pb2.Payload(header=common_pb2.Header.FromString(header), data=seek.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


class BlockEventsRequest:
    """A signed Deliver request: ``events()`` opens the block stream (signing with the gateway's signer unless
    a signature was set); ``to_bytes()``, ``digest()`` and ``set_signature()`` sign it offline."""

    def __init__(self, client: GatewayClient, envelope: common_pb2.Envelope, filtered: bool = False,
                 checkpointer: Checkpointer | None = None) -> None:
        self._client = client
        self._envelope = envelope
        self.filtered = filtered
        self._checkpointer = checkpointer or InMemoryCheckpointer()
        payload = common_pb2.Payload.FromString(envelope.payload)
        self.channel = common_pb2.ChannelHeader.FromString(payload.header.channel_header).channel_id

    @classmethod
    def build(cls, client: GatewayClient, channel: str, start_block: int | None, checkpointer: Checkpointer | None,
              filtered: bool) -> BlockEventsRequest:
        """Blocks from the checkpoint when it has a position, else from ``start_block``, else from the next block
        to commit (Fabric's ``NextCommit``), with no end."""
        checkpointer = checkpointer or InMemoryCheckpointer()
        position = checkpointer.position
        start = position.block_number if position.block_number is not None else start_block
        seek = ab_pb2.SeekInfo(start=_seek(start), stop=_seek(_MAX_BLOCK), behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY)
        return cls(client, seek_envelope(client, channel, seek), filtered, checkpointer)

    def to_bytes(self) -> bytes:
        """The serialized ``common.Envelope`` (with its signature, once signed)."""
        return self._envelope.SerializeToString()

    def digest(self) -> bytes:
        """SHA-256 of the envelope's payload: what the signer signs."""
        return digest(self._envelope.payload)

    def set_signature(self, signature: bytes) -> None:
        """Attach a signature made elsewhere (offline signing)."""
        self._envelope.signature = signature

    def events(self) -> BlockEvents:
        """Open the block stream (a context manager and iterator)."""
        if not self._envelope.signature:
            self.set_signature(self._client.signer.sign(self.digest()))
        return BlockEvents(self._client.deliver(self._envelope, self.filtered), self.channel, self._checkpointer,
                           self.filtered)


def newest_block(client: GatewayClient, channel: str, filtered: bool = False) -> common_pb2.Block | events_pb2.FilteredBlock:
    """The channel's newest committed block (one Deliver request from newest to newest)."""
    newest = ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
    seek = ab_pb2.SeekInfo(start=newest, stop=newest, behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY)
    envelope = seek_envelope(client, channel, seek)
    envelope.signature = client.signer.sign(digest(envelope.payload))
    with BlockEvents(client.deliver(envelope, filtered), channel, InMemoryCheckpointer(), filtered) as blocks:
        block = next(iter(blocks), None)
    if block is None:
        raise DeliverError(f"block stream on {channel} ended without a block")
    return block
