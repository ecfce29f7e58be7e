"""Signing a channel config update as the peer CLI does (``internal/peer/channel``: ``signconfigtx``, ``update``):
the update travels as a CONFIG_UPDATE envelope holding a ``ConfigUpdateEnvelope``; each admin appends a
``ConfigSignature`` (over its signature header and the update bytes) and wraps it in a new envelope it signs."""

from __future__ import annotations

import os
import time

from fabric_protos.common import common_pb2, configtx_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.lifecycle import SigningIdentity


class NotAConfigUpdate(SwarmfuseError, ValueError):
    """Bytes that are not a CONFIG_UPDATE envelope one can sign or submit (the peer CLI's sanity check)."""


def _update_envelope(channel: str, data: configtx_pb2.ConfigUpdateEnvelope,
                     signer: SigningIdentity | None) -> common_pb2.Envelope:
    """A CONFIG_UPDATE envelope (message version 0, epoch 0, no transaction ID), signed by ``signer`` if given."""
    channel_header = common_pb2.ChannelHeader(type=common_pb2.CONFIG_UPDATE, version=0, channel_id=channel, epoch=0)
    channel_header.timestamp.FromSeconds(int(time.time()))
    header = common_pb2.Header(channel_header=channel_header.SerializeToString())
    if signer is not None:
        header.signature_header = common_pb2.SignatureHeader(creator=signer.serialized,
                                                             nonce=os.urandom(blockfmt.NONCE_SIZE)).SerializeToString()
    payload = common_pb2.Payload(header=header, data=data.SerializeToString()).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=signer.sign(payload) if signer is not None else b"")


def unsigned_update(update: configtx_pb2.ConfigUpdate) -> common_pb2.Envelope:
    """``update`` wrapped for signing: a CONFIG_UPDATE envelope holding it with no signature yet."""
    return _update_envelope(update.channel_id, configtx_pb2.ConfigUpdateEnvelope(
        config_update=update.SerializeToString()), None)


def read_update(data: bytes) -> tuple[str, configtx_pb2.ConfigUpdateEnvelope]:
    """The channel and ``ConfigUpdateEnvelope`` of a CONFIG_UPDATE envelope's bytes; :class:`NotAConfigUpdate`
    naming what is wrong (the checks of the peer CLI's ``channel signconfigtx`` and ``update``)."""
    try:
        envelope = common_pb2.Envelope.FromString(data)
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        update_envelope = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
        update = configtx_pb2.ConfigUpdate.FromString(update_envelope.config_update)
    except DecodeError as exc:
        raise NotAConfigUpdate(f"not a config update envelope: {exc}") from exc
    if header.type != common_pb2.CONFIG_UPDATE:
        raise NotAConfigUpdate(f"not a config update envelope: header type {header.type}, not CONFIG_UPDATE")
    if not header.channel_id or header.channel_id != update.channel_id:
        raise NotAConfigUpdate(f"the envelope's channel {header.channel_id!r} is not its update's "
                               f"({update.channel_id!r})")
    return header.channel_id, update_envelope


def sign_update(data: bytes, signer: SigningIdentity) -> common_pb2.Envelope:
    """The peer CLI's ``channel signconfigtx``: ``signer``'s ``ConfigSignature`` (over its signature header ‖ the
    update) added to the update, in a new envelope signed by ``signer``."""
    channel, update_envelope = read_update(data)
    signature_header = common_pb2.SignatureHeader(creator=signer.serialized,
                                                  nonce=os.urandom(blockfmt.NONCE_SIZE)).SerializeToString()
    update_envelope.signatures.append(configtx_pb2.ConfigSignature(
        signature_header=signature_header, signature=signer.sign(signature_header + update_envelope.config_update)))
    return _update_envelope(channel, update_envelope, signer)
