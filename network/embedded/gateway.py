"""``gateway.Gateway`` of one org's endpoint: Evaluate, Endorse, Submit, CommitStatus and
ChaincodeEvents with the semantics (and error shapes) of Fabric's gateway in its peers."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.gateway.gateway_pb2 import ErrorDetail
from fabric_protos.gateway.gateway_pb2_grpc import GatewayServicer
from fabric_protos.peer import proposal_pb2, proposal_response_pb2

from swarmfuse.network.embedded import rpc
from swarmfuse.network.embedded.channel import AccessDenied, BroadcastRefused, Channel
from swarmfuse.network.embedded.endorser import Endorser
from swarmfuse.network.embedded.events import chaincode_events, start_block
from swarmfuse.network.embedded.rpc import RpcFailure, StreamSlots, detail
from swarmfuse.network.protocol.msp import Principal
from swarmfuse.network.protocol.proposals import (
    CheckedProposal,
    ProposalRejected,
    check_proposal,
    time_window_violation,
)
from swarmfuse.network.protocol.txassembly import assemble_transaction

logger = logging.getLogger(__name__)

POLL_S = 0.5
ENDORSE_FAILED = "failed to endorse transaction, see attached details for more info"
COLLECT_FAILED = "failed to collect enough transaction endorsements, see attached details for more info"
EVALUATE_FAILED = "failed to evaluate transaction, see attached details for more info"
REMOTE_ERROR = "rpc error: code = Unknown desc = "  # how a remote peer's gRPC error reads in a detail


class Peers:
    """The engine's endorsers by MSP ID and its channels by name (shared by every org's services)."""

    def __init__(self, endorsers: dict[str, Endorser], channels: dict[str, Channel]) -> None:
        self.endorsers = endorsers
        self.channels = channels
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="endorse")


class GatewayService(GatewayServicer):
    """The gateway of one org's peer; ``events`` bounds its open ChaincodeEvents calls (with the endpoint's
    Deliver calls), ``statuses`` its open CommitStatus calls."""

    def __init__(self, peers: Peers, mspid: str, events: StreamSlots, statuses: StreamSlots) -> None:
        self._peers = peers
        self._mspid = mspid
        self._events = events
        self._statuses = statuses

    @property
    def _local(self) -> Endorser:
        return self._peers.endorsers[self._mspid]

    # --- helpers --------------------------------------------------------------------------------

    def _channel(self, name: str, code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION) -> Channel:
        """A channel this org's peer has joined; otherwise Fabric's answer for an unjoined channel."""
        channel = self._peers.channels.get(name)
        if channel is None or not channel.has_org(self._mspid):
            if code == grpc.StatusCode.PERMISSION_DENIED:
                raise RpcFailure(code, f"Failed to get policy manager for channel [{name}]")
            raise RpcFailure(code, f"failed to get config for channel [{name}]: could not get last config for channel {name}")
        return channel

    def _check(self, channel: Channel, signed: proposal_pb2.SignedProposal, endorser: Endorser,
               evaluating: bool) -> CheckedProposal:
        """The endorser's proposal checks; a refusal is answered as Fabric's gateway answers it."""
        try:
            return check_proposal(signed, channel.definition, channel.msps, channel.ledger, channel.may_propose)
        except ProposalRejected as exc:
            details = [detail(endorser.address, endorser.mspid, str(exc))]
            if evaluating:
                raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                                 f"evaluate call to endorser returned error: {exc}", details) from exc
            raise RpcFailure(grpc.StatusCode.ABORTED, ENDORSE_FAILED, details) from exc

    def _simulate(self, channel: Channel, checked: CheckedProposal, endorser: Endorser
                  ) -> proposal_response_pb2.ProposalResponse:
        with channel.ledger.snapshot() as state:  # every read of the simulation at one height
            return endorser.process(checked, state, channel.chaincode.name, channel.chaincode.version)

    def _filtered(self, signed: proposal_pb2.SignedProposal, endorsers: Sequence[Endorser]) -> list[ErrorDetail] | None:
        """The peers' auth filters (``TimeWindowCheck``) run before the endorser: each peer asked refuses a
        proposal outside its time window with a gRPC error, which the gateway reports as that peer's detail
        (a remote peer's prefixed as gRPC prints it); ``None`` when the proposal passes."""
        refusal = time_window_violation(signed)
        if refusal is None:
            return None
        return [detail(e.address, e.mspid, refusal if e is self._local else REMOTE_ERROR + refusal) for e in endorsers]

    def _proposal_channel(self, signed: proposal_pb2.SignedProposal) -> str:
        try:
            proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
            header = common_pb2.Header.FromString(proposal.header)
            return common_pb2.ChannelHeader.FromString(header.channel_header).channel_id
        except Exception as exc:  # any decode failure of client bytes
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, f"failed to unpack transaction proposal: {exc}") from exc

    # --- Evaluate -------------------------------------------------------------------------------

    def Evaluate(self, request: gw.EvaluateRequest, context: grpc.ServicerContext) -> gw.EvaluateResponse:
        try:
            return self._evaluate(request)
        except RpcFailure as failure:
            rpc.abort(context, failure)

    def _evaluate(self, request: gw.EvaluateRequest) -> gw.EvaluateResponse:
        channel = self._channel(self._proposal_channel(request.proposed_transaction), grpc.StatusCode.UNAVAILABLE)
        endorser = self._evaluator(channel, request.target_organizations)
        # Fabric's gateway takes a filter's refusal (an error without a proposal response) for an unavailable
        # peer: it tries every other peer that could evaluate, then gives up with UNAVAILABLE.
        candidates = self._evaluators(channel, endorser, request.target_organizations)
        refused = self._filtered(request.proposed_transaction, candidates)
        if refused is not None:
            raise RpcFailure(grpc.StatusCode.UNAVAILABLE, EVALUATE_FAILED, refused)
        checked = self._check(channel, request.proposed_transaction, endorser, evaluating=True)
        response = self._simulate(channel, checked, endorser)
        if not 200 <= response.response.status < 400:
            message = f"chaincode response {response.response.status}, {response.response.message}"
            code = grpc.StatusCode.UNKNOWN if response.payload or response.response.status != 500 \
                else grpc.StatusCode.ABORTED  # Fabric: a bare 500 is the peer's own error, not the chaincode's
            raise RpcFailure(code, f"evaluate call to endorser returned error: {message}",
                             [detail(endorser.address, endorser.mspid, message)])
        return gw.EvaluateResponse(result=response.response)

    def _evaluators(self, channel: Channel, first: Endorser, targets: Sequence[str]) -> list[Endorser]:
        """``first``, then every other peer of the channel (of ``targets`` when given) that can evaluate."""
        wanted = [m for m in (list(targets) or [org.mspid for org in channel.peer_orgs]) if m != first.mspid]
        return [first] + [self._peers.endorsers[m] for m in wanted if channel.has_org(m) and m in self._peers.endorsers]

    def _evaluator(self, channel: Channel, targets: Sequence[str]) -> Endorser:
        wanted = list(targets) or [self._mspid]
        for mspid in wanted:
            if channel.has_org(mspid) and mspid in self._peers.endorsers:
                return self._peers.endorsers[mspid]
        raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                         f"no peers available to evaluate chaincode {channel.chaincode.name} in channel {channel.name}")

    # --- Endorse --------------------------------------------------------------------------------

    def Endorse(self, request: gw.EndorseRequest, context: grpc.ServicerContext) -> gw.EndorseResponse:
        try:
            return self._endorse(request)
        except RpcFailure as failure:
            rpc.abort(context, failure)

    def _endorse(self, request: gw.EndorseRequest) -> gw.EndorseResponse:
        channel = self._channel(self._proposal_channel(request.proposed_transaction))
        if request.endorsing_organizations:  # Fabric sends the proposal to each named org at once
            refused = self._filtered(request.proposed_transaction, self._plan(channel, request.endorsing_organizations))
            if refused is not None:
                raise RpcFailure(grpc.StatusCode.ABORTED, COLLECT_FAILED, refused)
        else:  # Fabric sends it to its own peer first
            refused = self._filtered(request.proposed_transaction, [self._local])
            if refused is not None:
                raise RpcFailure(grpc.StatusCode.ABORTED, ENDORSE_FAILED, refused)
        checked = self._check(channel, request.proposed_transaction, self._local, evaluating=False)
        endorsers = self._plan(channel, request.endorsing_organizations)
        futures = [self._peers.pool.submit(self._simulate, channel, checked, e) for e in endorsers]
        responses = [future.result() for future in futures]
        failed = [(e, r) for e, r in zip(endorsers, responses, strict=True) if not 200 <= r.response.status < 400]
        if failed:
            details = [detail(e.address, e.mspid, f"chaincode response {r.response.status}, {r.response.message}")
                       for e, r in failed]
            raise RpcFailure(grpc.StatusCode.ABORTED, ENDORSE_FAILED, details)
        mismatched = [e for e, r in zip(endorsers, responses, strict=True) if r.payload != responses[0].payload]
        if mismatched:
            raise RpcFailure(grpc.StatusCode.ABORTED, COLLECT_FAILED,
                             [detail(e.address, e.mspid, "ProposalResponsePayloads do not match") for e in mismatched])
        payload = assemble_transaction(checked.proposal, responses)
        return gw.EndorseResponse(prepared_transaction=common_pb2.Envelope(payload=payload.SerializeToString()))

    def _plan(self, channel: Channel, requested: Sequence[str]) -> list[Endorser]:
        """The endorsers: the requested orgs, or the local org (when it can endorse) plus others in channel order
        until the chaincode's policy is met."""
        available = [org.mspid for org in channel.peer_orgs if org.mspid in self._peers.endorsers]
        if requested:
            unknown = [m for m in requested if m not in available]
            if unknown:
                raise RpcFailure(grpc.StatusCode.UNAVAILABLE,
                                 f"failed to find any endorsing peers for org(s): {', '.join(unknown)}")
            return [self._peers.endorsers[m] for m in requested]
        policy = channel.endorsement_policy
        ordered = ([self._mspid] if self._mspid in available else []) + [m for m in available if m != self._mspid]
        chosen: list[Principal] = []
        picked: list[Endorser] = []
        for mspid in ordered:
            if not policy.mentions(mspid):
                continue
            chosen.append(Principal(mspid=mspid, role="peer", cert=None))
            picked.append(self._peers.endorsers[mspid])
            if policy.satisfied_by(chosen):
                return picked
        raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                         "no combination of peers can be derived which satisfy the endorsement policy: "
                         "no peer combination can satisfy the endorsement policy")

    # --- Submit / CommitStatus ------------------------------------------------------------------

    def Submit(self, request: gw.SubmitRequest, context: grpc.ServicerContext) -> gw.SubmitResponse:
        try:
            return self._submit(request)
        except RpcFailure as failure:
            rpc.abort(context, failure)

    def _submit(self, request: gw.SubmitRequest) -> gw.SubmitResponse:
        envelope = request.prepared_transaction
        if not envelope.payload:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "a prepared transaction is required")
        if not envelope.signature:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed")
        channel = self._channel(request.channel_id)
        try:  # Fabric's gateway hands the envelope, whatever its type, to the orderer's Broadcast
            channel.broadcast(envelope)
        except BroadcastRefused as exc:
            raise _orderer_refusal(exc.status, exc.info) from exc
        return gw.SubmitResponse()

    def CommitStatus(self, request: gw.SignedCommitStatusRequest, context: grpc.ServicerContext
                     ) -> gw.CommitStatusResponse:
        try:
            inner = gw.CommitStatusRequest.FromString(request.request)
            channel = self._channel(inner.channel_id, grpc.StatusCode.PERMISSION_DENIED)
            self._authorise(channel, inner.identity, request.request, request.signature)
            with self._statuses.held():
                while context.is_active():
                    location = channel.ledger.tx_location(inner.transaction_id)
                    if location is not None:
                        return gw.CommitStatusResponse(result=location.code, block_number=location.block)
                    channel.ledger.wait_for_height(channel.ledger.height + 1, POLL_S)
            raise RpcFailure(grpc.StatusCode.CANCELLED, "the client went away")
        except RpcFailure as failure:
            rpc.abort(context, failure)

    def _authorise(self, channel: Channel, identity: bytes, message: bytes, signature: bytes) -> None:
        try:
            channel.check_reader(identity)
        except AccessDenied as exc:
            raise RpcFailure(grpc.StatusCode.PERMISSION_DENIED, str(exc)) from exc
        if not channel.msps.verify(identity, message, signature):
            raise RpcFailure(grpc.StatusCode.PERMISSION_DENIED, "the request's signature does not verify")

    # --- ChaincodeEvents ------------------------------------------------------------------------

    def ChaincodeEvents(self, request: gw.SignedChaincodeEventsRequest, context: grpc.ServicerContext
                        ) -> Iterator[gw.ChaincodeEventsResponse]:
        try:
            inner = gw.ChaincodeEventsRequest.FromString(request.request)
            channel = self._channel(inner.channel_id, grpc.StatusCode.PERMISSION_DENIED)
            self._authorise(channel, inner.identity, request.request, request.signature)
            kind = inner.start_position.WhichOneof("Type")
            if kind in ("oldest", "newest"):
                raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT,
                                 f"invalid start position type: *orderer.SeekPosition_{kind.capitalize()}")
            after = channel.ledger.tx_location(inner.after_transaction_id) if inner.after_transaction_id else None
            first = after.block if after is not None else start_block(inner.start_position, channel.ledger.height)
            self._events.take()
        except RpcFailure as failure:
            rpc.abort(context, failure)
        try:
            number = first
            while context.is_active():
                in_block = channel.chaincode_events(number)
                if in_block is None:
                    channel.ledger.wait_for_height(number + 1, POLL_S)
                    continue
                resume_after = after.index if after is not None and number == after.block else -1
                events = chaincode_events(in_block, inner.chaincode_id, resume_after)
                if events:
                    yield gw.ChaincodeEventsResponse(events=events, block_number=number)
                number += 1
        finally:
            self._events.release()


def _orderer_refusal(status: str, info: str) -> RpcFailure:
    """What the gateway answers when the orderer refuses a Broadcast (Fabric attaches no details)."""
    return RpcFailure(grpc.StatusCode.ABORTED, f"received unsuccessful response from orderer: status={status}, info={info}")
