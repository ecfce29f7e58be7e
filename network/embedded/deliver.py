"""Peer ``Deliver`` of one org's endpoint: committed blocks (full or filtered) from a signed seek
request, with Fabric's status replies (BAD_REQUEST, NOT_FOUND, FORBIDDEN, SUCCESS), Fabric's time window
(a request stamped more than ``peer.authentication.timewindow`` from the peer's clock is a BAD_REQUEST, so a
recorded request cannot be replayed later) and, when the endpoint requires client certificates, Fabric's
TLS binding check."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2
from fabric_protos.peer.events_pb2_grpc import DeliverServicer

from swarmfuse.network.embedded import rpc
from swarmfuse.network.embedded.channel import AccessDenied, Channel
from swarmfuse.network.embedded.events import filtered_block, start_block
from swarmfuse.network.embedded.rpc import RpcFailure, StreamSlots
from swarmfuse.network.protocol.identity import tls_cert_hash
from swarmfuse.network.protocol.proposals import PEER_TIME_WINDOW

logger = logging.getLogger(__name__)

POLL_S = 0.5
Status = common_pb2.Status


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class DeliverService(DeliverServicer):
    """Blocks of the channels one org has joined.

    With ``mutual_tls`` (the endpoint requires client certificates, as a Fabric peer with
    ``peer.tls.clientAuthRequired``) every request must claim, in ``ChannelHeader.tls_cert_hash``, the SHA-256
    of the client certificate of its connection (Fabric's TLS binding); without it no hash is checked, as in
    Fabric."""

    def __init__(self, channels: dict[str, Channel], mspid: str, slots: StreamSlots, mutual_tls: bool = False) -> None:
        self._channels = channels
        self._mspid = mspid
        self._slots = slots
        self._mutual_tls = mutual_tls

    def Deliver(self, request_iterator: Iterator[common_pb2.Envelope], context: grpc.ServicerContext
                ) -> Iterator[events_pb2.DeliverResponse]:
        return self._serve(request_iterator, context, filtered=False)

    def DeliverFiltered(self, request_iterator: Iterator[common_pb2.Envelope], context: grpc.ServicerContext
                        ) -> Iterator[events_pb2.DeliverResponse]:
        return self._serve(request_iterator, context, filtered=True)

    def DeliverWithPrivateData(self, request_iterator: Iterator[common_pb2.Envelope], context: grpc.ServicerContext
                               ) -> Iterator[events_pb2.DeliverResponse]:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "private data is not supported by the embedded engine")

    def _serve(self, requests: Iterator[common_pb2.Envelope], context: grpc.ServicerContext, filtered: bool
               ) -> Iterator[events_pb2.DeliverResponse]:
        try:
            self._slots.take()
        except RpcFailure as failure:
            rpc.abort(context, failure)
        held = True
        try:
            for response in self._answer(requests, context, filtered):
                if response.WhichOneof("Type") == "status" and response.status != Status.SUCCESS:
                    self._slots.release()  # the call ends here: free its slot before the client hears it ended
                    held = False
                yield response
        finally:
            if held:
                self._slots.release()

    def _answer(self, requests: Iterator[common_pb2.Envelope], context: grpc.ServicerContext, filtered: bool
                ) -> Iterator[events_pb2.DeliverResponse]:
        for envelope in requests:  # after SUCCESS the client may send another seek; any other status ends the call
            try:
                channel, seek = self._open(envelope, context)
                yield from self._blocks(channel, seek, context, filtered)
            except _Refused as refused:
                logger.info("deliver refused (%s): %s", Status.Name(refused.status), refused)
                yield events_pb2.DeliverResponse(status=refused.status)
                return
            if not context.is_active():
                return
            yield events_pb2.DeliverResponse(status=Status.SUCCESS)

    def _open(self, envelope: common_pb2.Envelope, context: grpc.ServicerContext) -> tuple[Channel, ab_pb2.SeekInfo]:
        try:
            payload = common_pb2.Payload.FromString(envelope.payload)
            header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
            seek = ab_pb2.SeekInfo.FromString(payload.data)
        except Exception as exc:  # malformed client bytes
            raise _Refused(Status.BAD_REQUEST, f"malformed deliver request: {exc}") from exc
        check_timestamp(header, datetime.now(UTC))
        if self._mutual_tls:
            check_tls_binding(header.tls_cert_hash, client_cert_hash(context))
        channel = self._channels.get(header.channel_id)
        if channel is None or not channel.has_org(self._mspid):
            raise _Refused(Status.NOT_FOUND, f"channel {header.channel_id!r} not found")
        try:
            channel.check_reader(signature_header.creator)
            if not channel.msps.verify(signature_header.creator, envelope.payload, envelope.signature):
                raise AccessDenied("the request's signature does not verify")
        except AccessDenied as exc:
            raise _Refused(Status.FORBIDDEN, str(exc)) from exc
        return channel, seek

    def _blocks(self, channel: Channel, seek: ab_pb2.SeekInfo, context: grpc.ServicerContext, filtered: bool
                ) -> Iterator[events_pb2.DeliverResponse]:
        if not seek.HasField("start") or not seek.HasField("stop"):
            raise _Refused(Status.BAD_REQUEST, "a seek request needs a start and a stop position")
        height = channel.ledger.height
        first = start_block(seek.start, height)
        if seek.start.WhichOneof("Type") == "specified" and first > height:
            raise _Refused(Status.NOT_FOUND, f"block {first} is beyond the channel's height {height}")
        last = _stop_block(seek, first, height)
        fail_if_not_ready = seek.behavior == ab_pb2.SeekInfo.FAIL_IF_NOT_READY
        number = first
        while number <= last:
            if not context.is_active():
                return
            block = channel.ledger.block(number)
            if block is None:
                if fail_if_not_ready:
                    raise _Refused(Status.NOT_FOUND, f"block {number} is not committed yet")
                channel.ledger.wait_for_height(number + 1, POLL_S)
                continue
            if filtered:
                yield events_pb2.DeliverResponse(filtered_block=filtered_block(block, channel.name))
            else:
                yield events_pb2.DeliverResponse(block=block)
            number += 1


def client_cert_hash(context: grpc.ServicerContext) -> bytes:
    """SHA-256 of the DER of the client's TLS certificate on this call's connection (empty without one)."""
    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return b""
    return tls_cert_hash(pems[0])


def check_timestamp(header: common_pb2.ChannelHeader, now: datetime, window: timedelta = PEER_TIME_WINDOW) -> None:
    """Fabric's check of a Deliver request's stamp (``common/deliver``): present, and within ``window`` of
    the peer's clock (``now``) either way; BAD_REQUEST otherwise."""
    if not header.HasField("timestamp"):
        raise _Refused(Status.BAD_REQUEST, "channel header in envelope must contain timestamp")
    stamp = header.timestamp.ToDatetime(tzinfo=UTC)
    if abs(now - stamp) > window:
        raise _Refused(Status.BAD_REQUEST, f"envelope timestamp {stamp.isoformat()} is more than "
                                           f"{window.total_seconds() / 60:g} minutes apart from current server time "
                                           f"{now.isoformat()}")


def check_tls_binding(claimed: bytes, actual: bytes) -> None:
    """Fabric's mutual-TLS binding check (``common/deliver/binding.go``), in its order; BAD_REQUEST on failure."""
    if not claimed:
        raise _Refused(Status.BAD_REQUEST, "client didn't include its TLS cert hash")
    if not actual:
        raise _Refused(Status.BAD_REQUEST, "client didn't send a TLS certificate")
    if claimed != actual:
        raise _Refused(Status.BAD_REQUEST,
                       f"claimed TLS cert hash is {claimed.hex()} but actual TLS cert hash is {actual.hex()}")


def _stop_block(seek: ab_pb2.SeekInfo, first: int, height: int) -> int:
    """Fabric's stop rules: oldest = the start block only; newest = the newest at request time (one block when the
    start is newest too); specified = that block (not before the start); next_commit = never."""
    kind = seek.stop.WhichOneof("Type")
    if kind == "oldest" or (kind == "newest" and seek.start.WhichOneof("Type") == "newest"):
        return first
    if kind == "newest":
        return height - 1
    if kind == "specified":
        if seek.stop.specified.number < first:
            raise _Refused(Status.BAD_REQUEST, f"stop block {seek.stop.specified.number} is before start block {first}")
        return seek.stop.specified.number
    return 2**64 - 1
