"""Decoding of what the peer forwards with each transaction: the signed proposal and the input."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf.message import DecodeError, Message

from swarmfuse.chaincode.stub import ClientIdentity, Invocation
from swarmfuse.errors import SwarmfuseError

M = TypeVar("M", bound=Message)


class ProposalError(SwarmfuseError, ValueError):
    """The transaction's proposal or input could not be decoded."""


@dataclass(frozen=True)
class ProposalContext:
    """Who sent the proposal, when, and the transient data that came with it."""

    creator: ClientIdentity
    timestamp: datetime
    transient: dict[str, bytes] = field(default_factory=dict)


def _parse(message_type: type[M], data: bytes, what: str) -> M:
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise ProposalError(f"cannot decode {what}: {exc}") from exc
    return message


def decode_proposal(signed: proposal_pb2.SignedProposal) -> ProposalContext:
    """Extract creator (MSP ID + PEM certificate), channel-header timestamp and transient map."""
    if not signed.proposal_bytes:
        raise ProposalError("the transaction carries no signed proposal")
    proposal = _parse(proposal_pb2.Proposal, signed.proposal_bytes, "proposal")
    if not proposal.header:
        raise ProposalError("the proposal has no header")
    header = _parse(common_pb2.Header, proposal.header, "proposal header")
    channel_header = _parse(common_pb2.ChannelHeader, header.channel_header, "channel header")
    signature_header = _parse(common_pb2.SignatureHeader, header.signature_header, "signature header")
    identity = _parse(identities_pb2.SerializedIdentity, signature_header.creator, "creator identity")
    if not identity.mspid:
        raise ProposalError("the proposal creator has no MSP ID")
    payload = _parse(proposal_pb2.ChaincodeProposalPayload, proposal.payload, "proposal payload")
    timestamp = channel_header.timestamp.ToDatetime(tzinfo=UTC)
    return ProposalContext(
        creator=ClientIdentity(mspid=identity.mspid, cert_pem=bytes(identity.id_bytes)),
        timestamp=timestamp,
        transient={key: bytes(value) for key, value in payload.TransientMap.items()},
    )


def decode_invocation(input_bytes: bytes, transient: dict[str, bytes]) -> Invocation:
    """Split the ``ChaincodeInput`` into function name (first argument) and the remaining arguments."""
    chaincode_input = _parse(chaincode_pb2.ChaincodeInput, input_bytes, "chaincode input")
    if not chaincode_input.args:
        raise ProposalError("the transaction has no arguments (expected a function name first)")
    try:
        function = chaincode_input.args[0].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProposalError("the function name is not valid UTF-8") from exc
    return Invocation(function=function, args=tuple(bytes(a) for a in chaincode_input.args[1:]), transient=transient)
