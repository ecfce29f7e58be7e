"""``Scoring``: scoring entities with a round's model, on the record.

A participant that wants entities scored with a round's published model first records the request: a
commitment to the entity IDs (SHA-256 of a salt and the sorted IDs), their count and the participants it asks
for features. A site answers only a recorded request of a participant addressed to it, for exactly the
committed IDs, and records its reply (SHA-256, size, rows) before sending it; the requester accepts only a
reply that matches that record. So every set of features that leaves a site for scoring is on the ledger.
"""

from __future__ import annotations

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, Forbidden, NotFound, transaction
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import MEMBER, READERS, ConsortiumContract, own_act_policy
from swarmfuse.chaincode.contracts.fields import Identifier
from swarmfuse.chaincode.contracts.records import (
    RoundState,
    ScoringReply,
    ScoringReplyInput,
    ScoringRequest,
    ScoringRequestInput,
    ScoringView,
)
from swarmfuse.chaincode.contracts.rounds import load_round

NOT_ACTIVE = "Forbidden: caller is not an active member"
PUBLISHED = (RoundState.FUSED, RoundState.CLOSED)


def load_request(ctx: Context, round_id: str, request_id: str) -> ScoringRequest:
    found = ctx.get(keys.scoring_key(round_id, request_id), ScoringRequest)
    if found is None:
        raise NotFound(f"no scoring request {request_id!r} is recorded for round {round_id}")
    return found


class Scoring(ConsortiumContract):
    """Record a scoring request and each site's reply; read them back."""

    @transaction(
        allow=(MEMBER,),
        event="ScoringRequested",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "BadRequest: malformed request, a target that is not another participant",
            "Conflict: no published model, request ID taken",
        ),
    )
    def request(self, ctx: Context, round_id: Identifier, request: ScoringRequestInput) -> ScoringRequest:
        """A participant asks other participants for features of committed entities, to score them."""
        rnd = load_round(ctx, round_id)
        requester = ctx.client.mspid
        if requester not in rnd.participants:
            raise Forbidden(f"{requester} is not a participant of round {round_id}")
        if rnd.state not in PUBLISHED:
            raise Conflict(f"round {round_id} is {rnd.state.value}: it has no published model to score with")
        strangers = [t for t in request.targets if t == requester or t not in rnd.participants]
        if strangers:
            raise BadRequest(f"targets must be other participants of round {round_id}: {', '.join(strangers)}")
        key = keys.scoring_key(round_id, request.request_id)
        if ctx.read(key) is not None:
            raise Conflict(f"scoring request {request.request_id!r} of round {round_id} exists already")
        record = ScoringRequest(**request.model_dump(), round_id=round_id, requester=requester, requested_at=ctx.now,
                                tx_id=ctx.tx_id)
        ctx.put(key, record)
        ctx.emit({"round": round_id, "request": record.request_id, "requester": requester, "targets": record.targets,
                  "entity_count": record.entity_count})
        return record

    @transaction(
        allow=(MEMBER,),
        event="ScoringReplied",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such request",
            "Forbidden: caller is not a target of the request",
            "BadRequest: malformed reply, row count differs from the request's",
            "Conflict: caller already replied",
        ),
    )
    def reply(self, ctx: Context, round_id: Identifier, request_id: Identifier,
              reply: ScoringReplyInput) -> ScoringReply:
        """A site asked by a recorded request records the features it sends back (before it sends them)."""
        request = load_request(ctx, round_id, request_id)
        sender = ctx.client.mspid
        if sender not in request.targets:
            raise Forbidden(f"{sender} is not asked by scoring request {request_id!r} of round {round_id}")
        if reply.entity_count != request.entity_count:
            raise BadRequest(f"the reply has {reply.entity_count} rows; the request names {request.entity_count}")
        key = keys.scoring_reply_key(round_id, request_id, sender)
        if ctx.read(key) is not None:
            raise Conflict(f"{sender} has already replied to scoring request {request_id!r} of round {round_id}")
        record = ScoringReply(**reply.model_dump(), round_id=round_id, request_id=request_id, sender=sender,
                              receiver=request.requester, recorded_at=ctx.now, tx_id=ctx.tx_id)
        ctx.put(key, record, policy=own_act_policy(ctx, sender))
        ctx.emit({"round": round_id, "request": request_id, "sender": sender, "receiver": record.receiver,
                  "sha256": record.sha256})
        return record

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no such request"),
    )
    def get(self, ctx: Context, round_id: Identifier, request_id: Identifier) -> ScoringView:
        """A scoring request and the replies recorded so far."""
        request = load_request(ctx, round_id, request_id)
        replies = ctx.get_many([keys.scoring_reply_key(round_id, request_id, t) for t in request.targets],
                               ScoringReply)
        return ScoringView(request=request, replies=[r for r in replies if r is not None])
