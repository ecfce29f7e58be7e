"""The orderer's ``AtomicBroadcast.Broadcast`` on orderer0's port: what ``peer channel update`` and Fabric's
gateways send envelopes to. Each envelope of the stream is answered with a ``BroadcastResponse`` (SUCCESS, or
Fabric's status and info, after which the stream ends, as Fabric's handler ends it); the processing is the
channel's (:meth:`~swarmfuse.network.embedded.channel.Channel.broadcast`). The orderer's own ``Deliver`` is not
served: clients read blocks from the peers' Deliver."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.orderer.ab_pb2_grpc import AtomicBroadcastServicer
from google.protobuf.message import DecodeError

from swarmfuse.network.embedded.channel import BroadcastRefused, Channel

logger = logging.getLogger(__name__)


class BroadcastService(AtomicBroadcastServicer):
    """Broadcast to the engine's channels (by name, as the engine holds them)."""

    def __init__(self, channels: dict[str, Channel]) -> None:
        self._channels = channels

    def Broadcast(self, request_iterator: Iterator[common_pb2.Envelope], context: grpc.ServicerContext
                  ) -> Iterator[ab_pb2.BroadcastResponse]:
        for envelope in request_iterator:
            response = self._process(envelope)
            yield response
            if response.status != common_pb2.SUCCESS:
                return

    def _process(self, envelope: common_pb2.Envelope) -> ab_pb2.BroadcastResponse:
        try:
            payload = common_pb2.Payload.FromString(envelope.payload)
            channel_id = common_pb2.ChannelHeader.FromString(payload.header.channel_header).channel_id
        except DecodeError as exc:
            return ab_pb2.BroadcastResponse(status=common_pb2.BAD_REQUEST, info=f"could not determine channel ID: {exc}")
        channel = self._channels.get(channel_id)
        if channel is None:
            return ab_pb2.BroadcastResponse(status=common_pb2.NOT_FOUND, info="channel does not exist")
        try:
            channel.broadcast(envelope)
        except BroadcastRefused as refused:
            logger.info("[%s] broadcast refused: %s", channel_id, refused)
            return ab_pb2.BroadcastResponse(status=common_pb2.Status.Value(refused.status), info=refused.info)
        return ab_pb2.BroadcastResponse(status=common_pb2.SUCCESS)
