"""``Rounds``: the fusion round state machine, open → fused → closed (or aborted)."""

from __future__ import annotations

from datetime import datetime

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, Forbidden, NotFound, transaction
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import MEMBER, READERS, ConsortiumContract, load_member
from swarmfuse.chaincode.contracts.fields import Identifier, Reason, Sha256
from swarmfuse.chaincode.contracts.leader import choose_leader
from swarmfuse.chaincode.contracts.membership import majority_of
from swarmfuse.chaincode.contracts.records import (
    Exchange,
    ExchangeInput,
    MemberStatus,
    Metrics,
    Round,
    RoundSpec,
    RoundState,
)

LIVE = (RoundState.OPEN, RoundState.FUSED)
NOT_ACTIVE = "Forbidden: caller is not an active member"


def load_round(ctx: Context, round_id: str) -> Round:
    found = ctx.get(keys.round_key(round_id), Round)
    if found is None:
        raise NotFound(f"no round {round_id!r}")
    return found


def _participant(ctx: Context, rnd: Round) -> str:
    org = ctx.client.mspid
    if org not in rnd.participants:
        raise Forbidden(f"{org} is not a participant of round {rnd.round_id}")
    return org


def _in_state(rnd: Round, *states: RoundState) -> None:
    if rnd.state not in states:
        allowed = " or ".join(s.value for s in states)
        raise Conflict(f"round {rnd.round_id} is {rnd.state.value}; this needs it {allowed}")


def _save(ctx: Context, rnd: Round, **event: object) -> Round:
    ctx.put(keys.round_key(rnd.round_id), rnd)
    ctx.emit({"round": rnd.round_id, "state": rnd.state.value, "leader": rnd.leader, **event})
    return rnd


class Rounds(ConsortiumContract):
    """Open a round, record off-chain exchanges, publish the fused model, acknowledge it."""

    @transaction(
        allow=(MEMBER,),
        event="RoundOpened",
        errors=(
            NOT_ACTIVE,
            "BadRequest: malformed spec, participant not an active member, modality not registered, deadline passed",
            "Conflict: round ID taken",
        ),
    )
    def open(self, ctx: Context, round_id: Identifier, spec: RoundSpec) -> Round:
        """Open a round; the leader is chosen from the participants and this transaction's ID."""
        if ctx.stub.get_state(keys.round_key(round_id)) is not None:
            raise Conflict(f"round {round_id!r} exists already")
        for org in spec.participants:
            member = load_member(ctx, org)
            if member is None or member.status is not MemberStatus.ACTIVE:
                raise BadRequest(f"participant {org} is not an active member")
            missing = set(spec.roles[org]) - set(member.modalities)
            if missing:
                raise BadRequest(f"{org} did not register modality {', '.join(sorted(missing))}")
        if spec.deadline <= ctx.now:
            raise BadRequest(
                f"deadline {spec.deadline.isoformat()} is not after the transaction time {ctx.now.isoformat()}"
            )
        rnd = Round(
            **spec.model_dump(),
            round_id=round_id,
            state=RoundState.OPEN,
            opened_by=ctx.client.mspid,
            opened_at=ctx.now,
            open_tx=ctx.tx_id,
            leader=choose_leader(spec.participants, round_id, ctx.tx_id),
            updated_at=ctx.now,
        )
        return _save(ctx, rnd, participants=rnd.participants, deadline=rnd.deadline.isoformat())

    @transaction(
        allow=(MEMBER,),
        event="ExchangeRecorded",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "BadRequest: malformed exchange, receiver not another participant",
            "Conflict: round not open or fused, exchange already recorded",
        ),
    )
    def record_exchange(self, ctx: Context, round_id: Identifier, exchange: ExchangeInput) -> Exchange:
        """Record one off-chain transfer sent by the caller's org: receiver, kind, SHA-256, size, entities."""
        rnd = load_round(ctx, round_id)
        sender = _participant(ctx, rnd)
        _in_state(rnd, *LIVE)
        if exchange.receiver == sender or exchange.receiver not in rnd.participants:
            raise BadRequest(f"receiver {exchange.receiver} must be another participant of round {round_id}")
        key = keys.exchange_key(round_id, sender, exchange.receiver, exchange.kind)
        if ctx.stub.get_state(key) is not None:
            raise Conflict(
                f"{sender} already recorded a {exchange.kind} exchange to {exchange.receiver} in round {round_id}"
            )
        record = Exchange(
            **exchange.model_dump(), round_id=round_id, sender=sender, recorded_at=ctx.now, tx_id=ctx.tx_id
        )
        ctx.put(key, record)
        ctx.emit(
            {
                "round": round_id,
                "sender": sender,
                "receiver": record.receiver,
                "kind": record.kind,
                "sha256": record.sha256,
            }
        )
        return record

    @transaction(
        allow=(MEMBER,),
        event="ModelFused",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not the leader",
            "BadRequest: malformed hash or metrics",
            "Conflict: round not open",
        ),
    )
    def mark_fused(self, ctx: Context, round_id: Identifier, model_sha256: Sha256, metrics: Metrics) -> Round:
        """The leader publishes the fused model's SHA-256 and its metrics."""
        rnd = load_round(ctx, round_id)
        if ctx.client.mspid != rnd.leader:
            raise Forbidden(f"only the leader {rnd.leader} may publish the model of round {round_id}")
        _in_state(rnd, RoundState.OPEN)
        rnd = rnd.model_copy(
            update={"state": RoundState.FUSED, "model_sha256": model_sha256, "metrics": metrics, "updated_at": ctx.now}
        )
        return _save(ctx, rnd, model_sha256=model_sha256)

    @transaction(
        allow=(MEMBER,),
        event="Acknowledged",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "BadRequest: malformed hash",
            "Conflict: round not fused, already acknowledged, hash differs from the published one",
        ),
    )
    def acknowledge(self, ctx: Context, round_id: Identifier, model_sha256: Sha256) -> Round:
        """A participant confirms the model hash it verified; the last acknowledgement closes the round."""
        rnd = load_round(ctx, round_id)
        org = _participant(ctx, rnd)
        _in_state(rnd, RoundState.FUSED)
        if org in rnd.acknowledgements:
            raise Conflict(f"{org} has already acknowledged round {round_id}")
        if model_sha256 != rnd.model_sha256:
            raise Conflict(f"{org} verified {model_sha256} but round {round_id} published {rnd.model_sha256}")
        acks = {**rnd.acknowledgements, org: model_sha256}
        state = RoundState.CLOSED if set(acks) == set(rnd.participants) else RoundState.FUSED
        rnd = rnd.model_copy(update={"acknowledgements": acks, "state": state, "updated_at": ctx.now})
        return _save(ctx, rnd, org=org, acknowledged=len(acks), of=len(rnd.participants))

    @transaction(
        allow=(MEMBER,),
        event="AbortVoted",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: before the deadline, caller is not a participant",
            "Conflict: round closed or aborted, caller already voted",
        ),
    )
    def abort(self, ctx: Context, round_id: Identifier, reason: Reason) -> Round:
        """Vote to abort: a majority of participants aborts; after the deadline any member aborts at once."""
        rnd = load_round(ctx, round_id)
        _in_state(rnd, *LIVE)
        org = ctx.client.mspid
        if ctx.now > rnd.deadline:
            votes = sorted({*rnd.abort_votes, org})
            aborted = True
        else:
            _participant(ctx, rnd)
            if org in rnd.abort_votes:
                raise Conflict(f"{org} has already voted to abort round {round_id}")
            votes = sorted([*rnd.abort_votes, org])
            aborted = len(votes) >= majority_of(len(rnd.participants))
        update: dict[str, object] = {"abort_votes": votes, "updated_at": ctx.now}
        if aborted:
            update |= {"state": RoundState.ABORTED, "abort_reason": reason}
        rnd = rnd.model_copy(update=update)
        return _save(ctx, rnd, by=org, votes=len(votes), reason=reason)

    @transaction(
        allow=(MEMBER,),
        event="LeaderElected",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "BadRequest: new deadline not after the transaction time",
            "Conflict: round not open, leader's deadline not passed, no participant left to lead",
        ),
    )
    def elect_leader(self, ctx: Context, round_id: Identifier, deadline: datetime) -> Round:
        """After the leader missed the deadline, choose a new one (never a past leader) with a new deadline."""
        rnd = load_round(ctx, round_id)
        _participant(ctx, rnd)
        _in_state(rnd, RoundState.OPEN)
        if ctx.now <= rnd.deadline:
            raise Conflict(f"leader {rnd.leader} has until {rnd.deadline.isoformat()}")
        if deadline.tzinfo is None or deadline <= ctx.now:
            raise BadRequest("the new deadline must carry a time zone and be after the transaction time")
        past = sorted({*rnd.past_leaders, rnd.leader})
        candidates = set(rnd.participants) - set(past)
        if not candidates:
            raise Conflict(f"every participant of round {round_id} has led it already; abort the round")
        leader = choose_leader(candidates, round_id, ctx.tx_id)
        rnd = rnd.model_copy(
            update={"leader": leader, "past_leaders": past, "deadline": deadline, "updated_at": ctx.now}
        )
        return _save(ctx, rnd, previous=past, deadline=deadline.isoformat())

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no such round"),
    )
    def get(self, ctx: Context, round_id: Identifier) -> Round:
        """One round's current record."""
        return load_round(ctx, round_id)
