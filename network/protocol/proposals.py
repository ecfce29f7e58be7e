"""A peer's checks of a signed proposal before it endorses (Fabric's ``TimeWindowCheck`` auth filter, then
the endorser's ``UnpackProposal`` and ``preProcess``), with Fabric's messages; and the proposal hash that binds
a transaction's header and payload to what was endorsed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.durations import go_duration
from swarmfuse.network.protocol.identity import transaction_id
from swarmfuse.network.protocol.model import ChannelDefinition
from swarmfuse.network.protocol.msp import ChannelMSPs, IdentityRejected, Principal
from swarmfuse.network.protocol.rules import LedgerView, channel_readers

logger = logging.getLogger(__name__)


def proposal_hash(proposal: proposal_pb2.Proposal) -> bytes:
    """Fabric's ``GetProposalHash1``: SHA-256 of channel header bytes ‖ signature header bytes ‖ the
    ``ChaincodeProposalPayload`` re-encoded without its transient map (what goes into the transaction)."""
    header = common_pb2.Header.FromString(proposal.header)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    return hash_parts(header.channel_header, header.signature_header, tx_proposal_payload(payload))


def tx_proposal_payload(payload: proposal_pb2.ChaincodeProposalPayload) -> bytes:
    """The proposal payload as a transaction carries it: the input only, never the transient map."""
    return proposal_pb2.ChaincodeProposalPayload(input=payload.input).SerializeToString()


def hash_parts(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


PEER_TIME_WINDOW = timedelta(minutes=15)
"""``peer.authentication.timewindow`` of Fabric's ``core.yaml``: its peers' ``TimeWindowCheck`` auth filter
(``core/handlers/auth/filter/timewindow.go``, a default filter since Fabric 3.0) refuses a proposal stamped
further than this from the peer's clock, before the endorser looks at anything else."""


def time_window_violation(signed_proposal: proposal_pb2.SignedProposal, window: timedelta = PEER_TIME_WINDOW,
                          now: datetime | None = None) -> str | None:
    """Fabric's ``TimeWindowCheck`` filter: its refusal message when the proposal's timestamp is further than
    ``window`` from the peer's clock (``now``), else ``None`` (also for a proposal that does not parse, which
    the gateway refuses as malformed before any peer sees it)."""
    try:
        proposal = proposal_pb2.Proposal.FromString(signed_proposal.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    except DecodeError:
        return None
    now = now or datetime.now(UTC)
    stamp_s = channel_header.timestamp.seconds + channel_header.timestamp.nanos / 1e9
    now_s = now.timestamp()
    if not (stamp_s + window.total_seconds() < now_s or stamp_s - window.total_seconds() > now_s):
        return None
    return (f"request unauthorized due to incorrect timestamp {_rfc3339(channel_header.timestamp.seconds)}, "
            f"peer time {_rfc3339(int(now_s))}, peer.authentication.timewindow {go_duration(int(window.total_seconds() * 10**9))}")


def _rfc3339(seconds: int) -> str:
    """Go's ``time.Format(time.RFC3339)`` of a UTC time (whole seconds)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # beyond Python's years; Go prints them, we print the seconds
        return f"{seconds}s since the epoch"


class ProposalRejected(SwarmfuseError):
    """A proposal Fabric's endorser refuses, with the message it gives and a gRPC status for the caller."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class CheckedProposal:
    """A signed proposal that passed the endorser's checks, unpacked."""

    signed_proposal: proposal_pb2.SignedProposal
    proposal: proposal_pb2.Proposal
    channel_header: common_pb2.ChannelHeader
    signature_header: common_pb2.SignatureHeader
    chaincode_name: str
    input: chaincode_pb2.ChaincodeInput
    principal: Principal
    proposal_hash: bytes

    @property
    def channel(self) -> str:
        return self.channel_header.channel_id

    @property
    def tx_id(self) -> str:
        return self.channel_header.tx_id

    @property
    def creator(self) -> bytes:
        return self.signature_header.creator


def _unpack(signed: proposal_pb2.SignedProposal) -> tuple[
    proposal_pb2.Proposal, common_pb2.ChannelHeader, common_pb2.SignatureHeader, str, chaincode_pb2.ChaincodeInput,
    bytes,
]:
    """Fabric's ``UnpackProposal``: every part parsed, chaincode ID and input present."""
    def parse_as(message_type: type, data: bytes, what: str):  # type: ignore[no-untyped-def]
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            raise ProposalRejected(f"error unmarshalling {what}: {exc}", grpc.StatusCode.INVALID_ARGUMENT) from exc

    proposal = parse_as(proposal_pb2.Proposal, signed.proposal_bytes, "Proposal")
    header = parse_as(common_pb2.Header, proposal.header, "Header")
    channel_header = parse_as(common_pb2.ChannelHeader, header.channel_header, "ChannelHeader")
    signature_header = parse_as(common_pb2.SignatureHeader, header.signature_header, "SignatureHeader")
    extension = parse_as(proposal_pb2.ChaincodeHeaderExtension, channel_header.extension, "ChaincodeHeaderExtension")
    if not extension.HasField("chaincode_id"):
        raise ProposalRejected("ChaincodeHeaderExtension.ChaincodeId is nil", grpc.StatusCode.INVALID_ARGUMENT)
    if not extension.chaincode_id.name:
        raise ProposalRejected("ChaincodeHeaderExtension.ChaincodeId.Name is empty", grpc.StatusCode.INVALID_ARGUMENT)
    payload = parse_as(proposal_pb2.ChaincodeProposalPayload, proposal.payload, "ChaincodeProposalPayload")
    spec = parse_as(chaincode_pb2.ChaincodeInvocationSpec, payload.input, "ChaincodeInvocationSpec")
    if not spec.HasField("chaincode_spec"):
        raise ProposalRejected("chaincode invocation spec did not contain chaincode spec",
                               grpc.StatusCode.INVALID_ARGUMENT)
    if not spec.chaincode_spec.HasField("input"):
        raise ProposalRejected("chaincode input did not contain any input", grpc.StatusCode.INVALID_ARGUMENT)
    digest = hash_parts(header.channel_header, header.signature_header, tx_proposal_payload(payload))
    return proposal, channel_header, signature_header, extension.chaincode_id.name, spec.chaincode_spec.input, digest


def check_proposal(signed_proposal: proposal_pb2.SignedProposal, channel: ChannelDefinition, msps: ChannelMSPs,
                   ledger: LedgerView, readers: Callable[[Principal], bool] | None = None) -> CheckedProposal:
    """Fabric's endorser checks (``UnpackProposal``, ``preProcess``) in its order, with its messages:
    unpack, channel, header type/epoch/nonce/creator, tx ID, creator identity and signature, duplicate
    of a committed tx, ACL ``peer/Propose`` (``readers``: the channel's ``/Channel/Application/Readers``, by
    default the org policies ``network/configtx.py`` writes), then that the chaincode is defined."""
    proposal, chdr, shdr, chaincode_name, chaincode_input, digest = _unpack(signed_proposal)
    if chdr.channel_id != channel.name:
        raise ProposalRejected(f"channel '{chdr.channel_id}' not found", grpc.StatusCode.NOT_FOUND)

    def invalid(reason: str) -> ProposalRejected:
        return ProposalRejected(f"error validating proposal: {reason}", grpc.StatusCode.INVALID_ARGUMENT)

    if chdr.type != common_pb2.ENDORSER_TRANSACTION:
        raise invalid(f"invalid header type {header_type_name(chdr.type)}")
    if chdr.epoch != 0:
        raise invalid("epoch is non-zero")
    if not shdr.nonce:
        raise invalid("nonce is empty")
    if not shdr.creator:
        raise invalid("creator is empty")
    expected = transaction_id(shdr.nonce, shdr.creator)
    if chdr.tx_id != expected:
        raise invalid(f"incorrectly computed txid '{chdr.tx_id}' -- expected '{expected}'")
    if not signed_proposal.signature:
        raise invalid("empty signature bytes")
    try:
        principal = msps.identify(shdr.creator)
    except IdentityRejected as exc:
        logger.warning("proposal %s refused, invalid creator: %s", chdr.tx_id[:8], exc)
        if exc.mspid is None:
            raise ProposalRejected(f"error validating proposal: access denied: channel [{channel.name}] creator org "
                                   f"unknown, creator is malformed") from exc
        raise ProposalRejected(f"error validating proposal: access denied: channel [{channel.name}] creator org "
                               f"[{exc.mspid}]") from exc
    if not msps.check_signature(principal, signed_proposal.proposal_bytes, signed_proposal.signature):
        logger.warning("proposal %s refused: the creator's signature over the proposal is not valid", chdr.tx_id[:8])
        raise ProposalRejected(f"error validating proposal: access denied: channel [{channel.name}] creator org "
                               f"[{principal.mspid}]")
    if ledger.tx_location(chdr.tx_id) is not None:
        raise ProposalRejected(f"duplicate transaction found [{chdr.tx_id}]. Creator [{shdr.creator.hex()}]",
                               grpc.StatusCode.ALREADY_EXISTS)
    if not (channel_readers(channel, principal) if readers is None else readers(principal)):
        raise ProposalRejected(
            "failed evaluating policy on signed data during check policy [/Channel/Application/Readers]: "
            "[implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the "
            "'Readers' sub-policies to be satisfied]"
        )
    if channel.chaincode is None or channel.chaincode.name != chaincode_name:
        raise ProposalRejected(f"make sure the chaincode {chaincode_name} has been successfully defined on channel "
                               f"{channel.name} and try again: chaincode {chaincode_name} not found",
                               grpc.StatusCode.NOT_FOUND)
    return CheckedProposal(signed_proposal, proposal, chdr, shdr, chaincode_name, chaincode_input, principal, digest)


def header_type_name(value: int) -> str:
    try:
        return common_pb2.HeaderType.Name(value)
    except ValueError:
        return str(value)
