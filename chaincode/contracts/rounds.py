"""``Rounds``: the fusion round state machine, open → fused → closed (or aborted).

Consent: naming an org as a participant commits it to nothing. Each participant takes part only by its
own ``Rounds:Join`` (the opener's ``Rounds:Open`` is its join); the alignment cannot be recorded, nor the
model published, until every participant has joined, so a round proceeds with all of them or not at all.

Key layout for concurrency: the round key is written only by the transitions (open, fused, a new
leader, closed, aborted); each participant's join, acknowledgement and abort vote, and each exchange,
has a key of its own. Joins, acknowledgements and exchanges of different orgs therefore never touch the
same key; ``Rounds:Close`` reads every acknowledgement once they are all in. The contribution table is
written once, with the model (``Rounds:MarkFused``); ``Rounds:Close`` writes one credit key per participant;
a DP release charges its sender's own budget key for the data set it released (``Rounds:RecordExchange``),
so releases of different orgs never conflict either.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, Forbidden, NotFound, transaction
from swarmfuse.chaincode.contracts import contribution as values
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.agreement import load_agreement
from swarmfuse.chaincode.contracts.consortium import (
    MEMBER,
    READERS,
    ConsortiumContract,
    abort_threshold,
    load_members,
    load_standings,
    load_task,
    own_act_policy,
)
from swarmfuse.chaincode.contracts.fields import FileSize, Identifier, OptionalSha256, Reason, Sha256, UtcDateTime
from swarmfuse.chaincode.contracts.leader import leader_for, next_leader
from swarmfuse.chaincode.contracts.records import (
    FEATURES_KIND,
    GRADIENTS_KIND,
    LABEL_MODALITY,
    SPLIT_KINDS,
    AbortVote,
    Acknowledgement,
    AgreementProposal,
    Alignment,
    AlignmentInput,
    Contribution,
    ContributionTable,
    Credit,
    Credits,
    Exchange,
    ExchangeInput,
    Join,
    LeaderExtractor,
    MemberStatus,
    Metrics,
    PrivacyBudget,
    PrivacyTerms,
    Rotation,
    Round,
    RoundSpec,
    RoundState,
    Summary,
    epoch_kind,
    kind_epoch,
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


def _check_deadline(ctx: Context, deadline: datetime, what: str) -> None:
    """Refuse a deadline that leaves less than the task's window after this endorser's own clock.

    The proposal time cannot be the reference: a client may stamp it up to the allowed skew in the past,
    and a deadline set from there could already have passed for every endorser (a participant would
    then elect itself leader at once).
    """
    window = timedelta(seconds=load_task(ctx).deadline_window_s)
    earliest = max(ctx.endorser_time + window, ctx.now)
    if deadline <= earliest:
        raise BadRequest(
            f"{what} {deadline.isoformat()} must be after {earliest.isoformat()}: at least the task's deadline "
            f"window ({window.total_seconds():g} s) after this endorser's clock ({ctx.endorser_time.isoformat()})"
        )


def _check_agreement(ctx: Context, spec: RoundSpec) -> None:
    """A round is opened under the agreement in force, when there is one: it names it, and uses its model and
    fusion method."""
    agreement = load_agreement(ctx)
    if agreement is None:
        if spec.agreement_sha256 is not None:
            raise BadRequest(f"the round names agreement {spec.agreement_sha256}, but no agreement is in force")
        return
    if spec.agreement_sha256 != agreement.agreement_sha256:
        raise BadRequest(f"agreement {agreement.agreement_sha256} (version {agreement.version}) is in force: the round "
                         f"must name it, not {spec.agreement_sha256}")
    if (spec.model_spec_sha256, spec.method) != (agreement.model_spec_sha256, agreement.fusion_method):
        raise BadRequest(f"the agreement in force fixes model {agreement.model_spec_sha256} and fusion "
                         f"{agreement.fusion_method.value}; the round asks for {spec.model_spec_sha256} and "
                         f"{spec.method.value}")
    if spec.split_epochs:
        missing = sorted(set(SPLIT_KINDS) - set(agreement.exchange_kinds))
        if missing:
            raise BadRequest(f"split learning sends {' and '.join(SPLIT_KINDS)}; the agreement in force does not allow "
                             f"{', '.join(missing)}")
        if agreement.privacy is not None and set(agreement.privacy.kinds) & set(SPLIT_KINDS):
            raise BadRequest("the agreement in force makes features or gradients DP releases; split learning's "
                             "per-epoch exchanges are not releases it accounts for")


def _round_terms(ctx: Context, rnd: Round) -> AgreementProposal | None:
    """The terms the round was opened under (``None``: under no agreement)."""
    if rnd.agreement_sha256 is None:
        return None
    terms = ctx.get(keys.agreement_proposal_key(rnd.agreement_sha256), AgreementProposal)
    if terms is None:
        raise NotFound(f"round {rnd.round_id} names agreement {rnd.agreement_sha256}, which was never proposed")
    return terms


def _check_split_order(ctx: Context, rnd: Round, sender: str, receiver: str, base: str, epoch: int | None) -> None:
    """Split learning's order, per feature site: ``features.1`` to the leader, ``gradients.1`` back, ...,
    ``gradients.<n>``, then its final ``features``; an epoch's exchange only in a round with that many epochs."""
    if epoch is None:
        if base == FEATURES_KIND and rnd.split_epochs and sender != rnd.leader:
            _require_exchange(ctx, rnd, rnd.leader, sender, epoch_kind(GRADIENTS_KIND, rnd.split_epochs))
        return
    kind = epoch_kind(base, epoch)
    if base not in SPLIT_KINDS or epoch > rnd.split_epochs:
        raise BadRequest(f"round {rnd.round_id} has {rnd.split_epochs} split-learning epochs: no {kind} exchange")
    feature_sites = players(rnd)
    if base == FEATURES_KIND:
        if receiver != rnd.leader or sender not in feature_sites:
            raise BadRequest(f"{kind} go from a feature site to the leader {rnd.leader}")
        if epoch > 1:
            _require_exchange(ctx, rnd, rnd.leader, sender, epoch_kind(GRADIENTS_KIND, epoch - 1))
    else:
        if sender != rnd.leader or receiver not in feature_sites:
            raise BadRequest(f"{kind} go from the leader {rnd.leader} to a feature site")
        _require_exchange(ctx, rnd, receiver, rnd.leader, epoch_kind(FEATURES_KIND, epoch))


def _check_extractor(rnd: Round, exchange: ExchangeInput) -> None:
    """Only a ``features`` exchange names the extractor that made it; after split learning it must (the record of
    which fine-tuned extractor made the features the round fuses). The hash is the sender's claim: the chaincode
    cannot check it against any bytes, so it asks no more of it than its form."""
    if exchange.extractor_onnx_sha256 is not None and exchange.kind != FEATURES_KIND:
        raise BadRequest(f"only a {FEATURES_KIND} exchange names the extractor that made it; {exchange.kind!r} "
                         f"carries no extractor_onnx_sha256")
    if exchange.kind == FEATURES_KIND and rnd.split_epochs and exchange.extractor_onnx_sha256 is None:
        raise BadRequest(f"round {rnd.round_id} fine-tunes the extractors by split learning: its {FEATURES_KIND} "
                         f"exchange must name the fine-tuned extractor's ONNX SHA-256 (extractor_onnx_sha256)")


def _require_exchange(ctx: Context, rnd: Round, sender: str, receiver: str, kind: str) -> None:
    if ctx.read(keys.exchange_key(rnd.round_id, sender, receiver, kind)) is None:
        raise Conflict(f"round {rnd.round_id}: {sender}'s {kind} exchange to {receiver} comes first")


def players(rnd: Round) -> list[str]:
    """The participants whose feature blocks the round fuses: everyone but a holder of labels only."""
    return sorted(p for p in rnd.participants if set(rnd.roles[p]) != {LABEL_MODALITY})


def _coalition_text(coalition: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(coalition)) + "}"


def _contribution(ctx: Context, rnd: Round, table: ContributionTable | None, metrics: Metrics) -> Contribution | None:
    """Check the leader's table against the round's terms and published metric; derive values and units."""
    terms = _round_terms(ctx, rnd)
    rule = terms.reward if terms is not None else None
    if table is None:
        if rule is not None:
            raise BadRequest(f"round {rnd.round_id} runs under agreement {rnd.agreement_sha256}: its model needs the "
                             f"contribution table ({rule.metric}, seeds {rule.seeds})")
        return None
    if rule is not None and (table.metric, table.seeds) != (rule.metric, rule.seeds):
        raise BadRequest(f"the agreement of round {rnd.round_id} values contributions by {rule.metric} with seeds "
                         f"{rule.seeds}; the table uses {table.metric} with seeds {table.seeds}")
    blocks = players(rnd)
    needed = values.required_coalitions(blocks, rnd.round_id)
    scored = {frozenset(c.members): c.scores for c in table.coalitions}
    missing = [_coalition_text(c) for c in needed if c not in scored]
    unexpected = [_coalition_text(c) for c in scored if c not in set(needed)]
    if missing or unexpected:
        raise BadRequest(f"the table must score exactly the {len(needed)} coalitions round {rnd.round_id} needs; "
                         f"missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'}")
    published = metrics.get(table.metric)
    if isinstance(published, bool) or not isinstance(published, (int, float)):
        raise BadRequest(f"the published metrics have no numeric {table.metric!r} to check the table against")
    full = scored[frozenset(blocks)][0]
    if Fraction(full) != Fraction(repr(published)):
        raise BadRequest(f"the table scores the full coalition {full} with seed {table.seeds[0]}, but the published "
                         f"model's {table.metric} is {published!r}")
    derived = values.derive(scored, blocks, rnd.round_id, rule, rnd.label_holder, rnd.participants)
    return Contribution(
        **table.model_dump(), round_id=rnd.round_id, table_sha256=table.sha256(), players=blocks,
        exact=len(blocks) <= values.MAX_EXACT_PLAYERS, shapley=derived.shapley, leave_one_out=derived.leave_one_out,
        method=rule.method if rule is not None else None, pool=derived.pool, units=derived.units,
        recorded_at=ctx.now, tx_id=ctx.tx_id)


def _spend(ctx: Context, rnd: Round, sender: str, exchange: ExchangeInput, terms: PrivacyTerms) -> PrivacyBudget:
    """Check a DP release against the agreed terms and charge it to the sender's budget for the data set it
    released (its current summary of its role's modality); the same release again charges nothing."""
    made = exchange.privacy
    if made is None:
        raise BadRequest(f"the agreement makes every {exchange.kind} exchange a DP release: say how it was made")
    agreed = (terms.mechanism, Fraction(terms.clip), Fraction(terms.delta), terms.projection_dim)
    if (made.mechanism, Fraction(made.clip), Fraction(made.delta), made.projection_dim) != agreed:
        raise BadRequest(f"the release's mechanism, clip, delta or projection ({made.mechanism}, {made.clip}, "
                         f"{made.delta}, {made.projection_dim}) are not the agreed ones ({terms.mechanism}, "
                         f"{terms.clip}, {terms.delta}, {terms.projection_dim})")
    modality = rnd.roles[sender][0]
    summary = ctx.get(keys.summary_key(sender, modality), Summary)
    if summary is None or summary.manifest_sha256 != made.dataset_sha256:
        raise BadRequest(f"{sender}'s {modality} summary names data set "
                         f"{summary.manifest_sha256 if summary else 'none'}, not {made.dataset_sha256}")
    key = keys.budget_key(sender, made.dataset_sha256)
    budget = ctx.get(key, PrivacyBudget) or PrivacyBudget(
        org=sender, dataset_sha256=made.dataset_sha256, mu_squared="0", releases=[], updated_at=ctx.now,
        tx_id=ctx.tx_id)
    if exchange.sha256 in budget.releases:
        return budget  # the same noisy file again: no new information, no new cost
    spent = Fraction(budget.mu_squared) + 1 / Fraction(made.noise_multiplier) ** 2
    limit = 1 / Fraction(terms.budget_sigma) ** 2
    if spent > limit:
        raise Conflict(f"the release would bring {sender}'s spending on data set {made.dataset_sha256[:16]} to "
                       f"sum(1/sigma^2) = {float(spent):.6g}, above the agreed budget {float(limit):.6g} "
                       f"(epsilon {terms.budget_epsilon} at delta {terms.delta})")
    budget = budget.model_copy(update={"mu_squared": str(spent), "releases": [*budget.releases, exchange.sha256],
                                       "updated_at": ctx.now, "tx_id": ctx.tx_id})
    ctx.put(key, budget, policy=own_act_policy(ctx, sender))
    return budget


def load_contribution(ctx: Context, round_id: str) -> Contribution | None:
    return ctx.get(keys.contribution_key(round_id), Contribution)


def _credit(ctx: Context, contribution: Contribution) -> list[Credit]:
    """One credit key per participant of a closing round (written by the chaincode alone, from the table)."""
    if contribution.method is None:
        return []
    credits = [Credit(round_id=contribution.round_id, org=org, units=units, method=contribution.method,
                      contribution_sha256=contribution.table_sha256, credited_at=ctx.now, tx_id=ctx.tx_id)
               for org, units in sorted(contribution.units.items())]
    for credit in credits:
        ctx.put(keys.credit_key(credit.round_id, credit.org), credit)
    return credits


def _save(ctx: Context, rnd: Round, **event: object) -> Round:
    ctx.put(keys.round_key(rnd.round_id), rnd)
    ctx.emit({"round": rnd.round_id, "state": rnd.state.value, "leader": rnd.leader, **event})
    return rnd


def _active_participants(ctx: Context, rnd: Round) -> dict[str, int]:
    """Participants that are active members now, with their membership epochs."""
    standings = load_standings(ctx, rnd.participants)
    return {
        p: s.epoch
        for p, s in zip(rnd.participants, standings, strict=True)
        if s is not None and s.status is MemberStatus.ACTIVE
    }


def _joined(ctx: Context, rnd: Round) -> list[str]:
    joins = ctx.get_many([keys.join_key(rnd.round_id, p) for p in rnd.participants], Join)
    return [p for p, j in zip(rnd.participants, joins, strict=True) if j is not None]


def _all_joined(ctx: Context, rnd: Round, step: str) -> None:
    missing = sorted(set(rnd.participants) - set(_joined(ctx, rnd)))
    if missing:
        raise Conflict(f"round {rnd.round_id} cannot {step}: {', '.join(missing)} has not joined it")


def _record_join(ctx: Context, round_id: str, org: str) -> Join:
    join = Join(round_id=round_id, org=org, joined_at=ctx.now, tx_id=ctx.tx_id)
    ctx.put(keys.join_key(round_id, org), join, policy=own_act_policy(ctx, org))
    return join


def _acknowledgements(ctx: Context, rnd: Round) -> dict[str, str]:
    acks = ctx.get_many([keys.ack_key(rnd.round_id, p) for p in rnd.participants], Acknowledgement)
    return {p: a.model_sha256 for p, a in zip(rnd.participants, acks, strict=True) if a is not None}


def _counted_abort_votes(ctx: Context, rnd: Round, counted: dict[str, int]) -> list[str]:
    """Participants in ``counted`` whose abort vote was cast in their current membership epoch."""
    orgs = sorted(counted)
    votes = ctx.get_many([keys.abort_vote_key(rnd.round_id, p) for p in orgs], AbortVote)
    return [p for p, v in zip(orgs, votes, strict=True) if v is not None and v.voter_epoch == counted[p]]


def round_view(ctx: Context, rnd: Round) -> Round:
    """A live round with the joins, acknowledgements and abort votes recorded in their own keys so far."""
    if rnd.state not in LIVE:
        return rnd
    return rnd.model_copy(
        update={
            "joined": _joined(ctx, rnd),
            "acknowledgements": _acknowledgements(ctx, rnd),
            "abort_votes": _counted_abort_votes(ctx, rnd, _active_participants(ctx, rnd)),
        }
    )


class Rounds(ConsortiumContract):
    """Open a round, record off-chain exchanges, publish the fused model, acknowledge it, close it.

    Time: every deadline a transaction sets (the round's, a new leader's, the acknowledgement window of
    a fused round) must be at least the task's deadline window after the endorser's own clock, so a
    proposal stamped in the past cannot set one that has already passed. "After the deadline" needs
    both the transaction time and the endorser's clock past it, so a proposal stamped ahead cannot act
    early. Only participants act on a round, before or after its deadline.
    """

    @transaction(
        allow=(MEMBER,),
        event="RoundOpened",
        errors=(
            NOT_ACTIVE,
            "Forbidden: caller is not a participant",
            ("BadRequest: malformed spec, participant not an active member, modality not registered, "
            "deadline within the task's window, spec outside the agreement in force, split learning the agreement "
            "does not allow"),
            "Conflict: round ID taken",
        ),
    )
    def open(self, ctx: Context, round_id: Identifier, spec: RoundSpec) -> Round:
        """Open a round among active members including the caller (its join); the leader comes from the set's
        rotation; every other participant takes part only once it joins."""
        opener = ctx.client.mspid
        if opener not in spec.participants:
            raise Forbidden(f"{opener} is not a participant of the round it opens; the opener must take part")
        if ctx.read(keys.round_key(round_id)) is not None:
            raise Conflict(f"round {round_id!r} exists already")
        members = load_members(ctx, spec.participants)
        for org, member in zip(spec.participants, members, strict=True):
            if member is None or member.status is not MemberStatus.ACTIVE:
                raise BadRequest(f"participant {org} is not an active member")
            missing = set(spec.roles[org]) - set(member.modalities)
            if missing:
                raise BadRequest(f"{org} did not register modality {', '.join(sorted(missing))}")
        _check_deadline(ctx, spec.deadline, "deadline")
        _check_agreement(ctx, spec)
        rotation = ctx.get(keys.rotation_key(spec.participants), Rotation) or Rotation(
            participants=spec.participants, opened=0
        )
        ctx.put(keys.rotation_key(spec.participants), rotation.model_copy(update={"opened": rotation.opened + 1}))
        rnd = Round(
            **spec.model_dump(),
            round_id=round_id,
            state=RoundState.OPEN,
            opened_by=opener,
            opened_at=ctx.now,
            open_tx=ctx.tx_id,
            turn=rotation.opened,
            leader=leader_for(spec.participants, rotation.opened),
            updated_at=ctx.now,
        )
        _record_join(ctx, round_id, opener)
        return _save(ctx, rnd, participants=rnd.participants, deadline=rnd.deadline, turn=rnd.turn)

    @transaction(
        allow=(MEMBER,),
        event="RoundJoined",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "Conflict: round not open, caller already joined",
        ),
    )
    def join(self, ctx: Context, round_id: Identifier) -> Join:
        """A participant consents to take part in an open round (its own act, once; it reads no other org's
        join, so participants join concurrently without conflicts)."""
        rnd = load_round(ctx, round_id)
        org = _participant(ctx, rnd)
        _in_state(rnd, RoundState.OPEN)
        if ctx.read(keys.join_key(round_id, org)) is not None:
            raise Conflict(f"{org} has already joined round {round_id}")
        join = _record_join(ctx, round_id, org)
        ctx.emit({"round": round_id, "org": org})
        return join

    @transaction(
        allow=(MEMBER,),
        event="AlignmentRecorded",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not the leader",
            "BadRequest: malformed alignment",
            "Conflict: round not open, a participant has not joined, alignment already recorded",
        ),
    )
    def record_alignment(self, ctx: Context, round_id: Identifier, alignment: AlignmentInput) -> Alignment:
        """The leader records the entity alignment it computed by private set intersection: its size and commitment."""
        rnd = load_round(ctx, round_id)
        if ctx.client.mspid != rnd.leader:
            raise Forbidden(f"only the leader {rnd.leader} may record the alignment of round {round_id}")
        _in_state(rnd, RoundState.OPEN)
        _all_joined(ctx, rnd, "record its alignment")
        key = keys.alignment_key(round_id)
        if ctx.read(key) is not None:
            raise Conflict(f"the alignment of round {round_id} is already recorded")
        record = Alignment(**alignment.model_dump(), round_id=round_id, leader=rnd.leader, recorded_at=ctx.now,
                           tx_id=ctx.tx_id)
        ctx.put(key, record)
        ctx.emit({"round": round_id, "leader": rnd.leader, "entity_count": record.entity_count,
                  "commitment_sha256": record.commitment_sha256})
        return record

    @transaction(
        allow=(MEMBER,),
        event="ExchangeRecorded",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            ("BadRequest: malformed exchange, receiver not another participant, a kind the agreement does not allow, "
            "a DP release not made as agreed or of another data set than the sender's summary, a split-learning "
            "epoch the round does not have or between other sites than a feature site and the leader, an extractor "
            "hash on another kind than features, final features of a split-learning round naming no extractor"),
            ("Conflict: round not open or fused, exchange already recorded, the release would exceed the sender's "
            "privacy budget, a split-learning exchange before the one it follows"),
        ),
    )
    def record_exchange(self, ctx: Context, round_id: Identifier, exchange: ExchangeInput) -> Exchange:
        """Record one off-chain transfer sent by the caller's org: receiver, kind, SHA-256, size, entities, and for
        features the ONNX SHA-256 of the extractor that made them (required after split learning); a kind the
        agreement makes a DP release is charged to the sender's privacy budget for the data set it released."""
        rnd = load_round(ctx, round_id)
        sender = _participant(ctx, rnd)
        _in_state(rnd, *LIVE)
        if exchange.receiver == sender or exchange.receiver not in rnd.participants:
            raise BadRequest(f"receiver {exchange.receiver} must be another participant of round {round_id}")
        base, epoch = kind_epoch(exchange.kind)
        _check_extractor(rnd, exchange)
        _check_split_order(ctx, rnd, sender, exchange.receiver, base, epoch)
        terms = _round_terms(ctx, rnd)
        if terms is not None and base not in terms.exchange_kinds:
            raise BadRequest(f"the agreement of round {round_id} allows exchanges of "
                             f"{', '.join(terms.exchange_kinds)}, not {exchange.kind!r}")
        key = keys.exchange_key(round_id, sender, exchange.receiver, exchange.kind)
        if ctx.read(key) is not None:
            raise Conflict(
                f"{sender} already recorded a {exchange.kind} exchange to {exchange.receiver} in round {round_id}"
            )
        private = terms.privacy if terms is not None and terms.privacy is not None else None
        if private is not None and base in private.kinds:
            _spend(ctx, rnd, sender, exchange, private)
        elif exchange.privacy is not None:
            raise BadRequest(f"round {round_id}'s agreement makes no {exchange.kind} exchange a DP release")
        record = Exchange(
            **exchange.model_dump(), round_id=round_id, sender=sender, recorded_at=ctx.now, tx_id=ctx.tx_id
        )
        ctx.put(key, record, policy=own_act_policy(ctx, sender))
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
        event="LeaderExtractorRecorded",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not the leader",
            "BadRequest: malformed hash, a round without split learning, a leader that holds no feature block",
            "Conflict: round not open, already recorded",
        ),
    )
    def record_leader_extractor(
        self, ctx: Context, round_id: Identifier, extractor_onnx_sha256: Sha256
    ) -> LeaderExtractor:
        """The leader of a split-learning round that is itself a feature site records the ONNX SHA-256 of the
        extractor split learning fine-tuned at its site, whose features it fuses without sending them (the other
        feature sites name theirs on their final ``features`` exchange); before it publishes the model."""
        rnd = load_round(ctx, round_id)
        if ctx.client.mspid != rnd.leader:
            raise Forbidden(f"only the leader {rnd.leader} records its own extractor in round {round_id}")
        _in_state(rnd, RoundState.OPEN)
        if not rnd.split_epochs:
            raise BadRequest(f"round {round_id} has no split learning: no extractor was fine-tuned in it")
        if rnd.leader not in players(rnd):
            raise BadRequest(f"the leader {rnd.leader} of round {round_id} holds labels only: it fine-tunes no "
                             "extractor")
        key = keys.leader_extractor_key(round_id, rnd.leader)
        if ctx.read(key) is not None:
            raise Conflict(f"{rnd.leader} already recorded its extractor in round {round_id}")
        record = LeaderExtractor(round_id=round_id, org=rnd.leader, extractor_onnx_sha256=extractor_onnx_sha256,
                                 recorded_at=ctx.now, tx_id=ctx.tx_id)
        ctx.put(key, record, policy=own_act_policy(ctx, rnd.leader))
        ctx.emit({"round": round_id, "org": rnd.leader, "extractor_onnx_sha256": extractor_onnx_sha256})
        return record

    @transaction(
        allow=(MEMBER,),
        event="ModelFused",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not the leader",
            ("BadRequest: malformed hash, size or metrics, deadline within the task's window, contribution table "
            "missing under an agreement, not with the agreed metric and seeds, not scoring exactly the coalitions "
            "the round needs, or its full coalition not scoring the published metric"),
            ("Conflict: round not open, a participant has not joined, a leader that is a feature site of a "
             "split-learning round has not recorded its extractor"),
        ),
        max_bytes=512 * 1024,
    )
    def mark_fused(
        self, ctx: Context, round_id: Identifier, model_sha256: Sha256, model_bytes: FileSize, metrics: Metrics,
        deadline: UtcDateTime, contributions: ContributionTable | None,
    ) -> Round:
        """The leader publishes the fused model's hash, size and metrics, the contribution table (required under an
        agreement), and a fresh deadline to acknowledge them; the chaincode derives each participant's values and
        units from the table."""
        rnd = load_round(ctx, round_id)
        if ctx.client.mspid != rnd.leader:
            raise Forbidden(f"only the leader {rnd.leader} may publish the model of round {round_id}")
        _in_state(rnd, RoundState.OPEN)
        _all_joined(ctx, rnd, "publish a model")
        if rnd.split_epochs and rnd.leader in players(rnd) and \
                ctx.read(keys.leader_extractor_key(round_id, rnd.leader)) is None:
            raise Conflict(f"round {round_id}: the leader {rnd.leader} fuses its own features of split learning: it "
                           "records its fine-tuned extractor (Rounds:RecordLeaderExtractor) first")
        _check_deadline(ctx, deadline, "acknowledgement deadline")
        contribution = _contribution(ctx, rnd, contributions, metrics)
        if contribution is not None:
            ctx.put(keys.contribution_key(round_id), contribution)
        update = {"state": RoundState.FUSED, "model_sha256": model_sha256, "model_bytes": model_bytes,
                  "metrics": metrics, "deadline": deadline, "updated_at": ctx.now,
                  "contribution_sha256": contribution.table_sha256 if contribution is not None else None}
        return _save(ctx, rnd.model_copy(update=update), model_sha256=model_sha256, model_bytes=model_bytes,
                     deadline=deadline, contribution_sha256=update["contribution_sha256"])

    @transaction(
        allow=(MEMBER,),
        event="Acknowledged",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "BadRequest: malformed hash",
            "Conflict: round not fused, already acknowledged, model or contribution hash differs from the published one",
        ),
    )
    def acknowledge(
        self, ctx: Context, round_id: Identifier, model_sha256: Sha256, contribution_sha256: OptionalSha256
    ) -> Acknowledgement:
        """A participant confirms the model hash it verified and accepts the contribution table published with it
        (empty when the round published none); its own key, so acknowledgements never conflict."""
        rnd = load_round(ctx, round_id)
        org = _participant(ctx, rnd)
        _in_state(rnd, RoundState.FUSED)
        key = keys.ack_key(round_id, org)
        if ctx.read(key) is not None:
            raise Conflict(f"{org} has already acknowledged round {round_id}")
        if model_sha256 != rnd.model_sha256:
            raise Conflict(f"{org} verified {model_sha256} but round {round_id} published {rnd.model_sha256}")
        if (contribution_sha256 or None) != rnd.contribution_sha256:
            raise Conflict(f"{org} accepts contribution table {contribution_sha256 or 'none'} but round {round_id} "
                           f"published {rnd.contribution_sha256 or 'none'}")
        ack = Acknowledgement(round_id=round_id, org=org, model_sha256=model_sha256,
                              contribution_sha256=rnd.contribution_sha256, acknowledged_at=ctx.now, tx_id=ctx.tx_id)
        ctx.put(key, ack, policy=own_act_policy(ctx, org))
        ctx.emit({"round": round_id, "org": org, "model_sha256": model_sha256,
                  "contribution_sha256": rnd.contribution_sha256})
        return ack

    @transaction(
        allow=(MEMBER,),
        event="RoundClosed",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "Conflict: round not fused, or a participant has not acknowledged",
        ),
    )
    def close(self, ctx: Context, round_id: Identifier) -> Round:
        """Close a fused round once every participant acknowledged it; the acknowledgements go into the round, and
        each participant is credited the units its contribution earned (rounds under an agreement)."""
        rnd = load_round(ctx, round_id)
        _participant(ctx, rnd)
        _in_state(rnd, RoundState.FUSED)
        acks = _acknowledgements(ctx, rnd)
        missing = [p for p in rnd.participants if p not in acks]
        if missing:
            raise Conflict(f"round {round_id} still waits for the acknowledgements of {', '.join(missing)}")
        update = {"state": RoundState.CLOSED, "joined": list(rnd.participants), "acknowledgements": acks,
                  "updated_at": ctx.now}
        rnd = rnd.model_copy(update=update)
        contribution = load_contribution(ctx, round_id) if rnd.contribution_sha256 is not None else None
        credits = _credit(ctx, contribution) if contribution is not None else []
        return _save(ctx, rnd, acknowledged=len(acks), credits={c.org: c.units for c in credits})

    @transaction(
        allow=(MEMBER,),
        event="AbortVoted",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "Conflict: round closed or aborted, caller already voted",
        ),
    )
    def abort(self, ctx: Context, round_id: Identifier, reason: Reason) -> Round:
        """Vote to abort: a majority of the participants active now aborts; after the deadline one participant does."""
        rnd = load_round(ctx, round_id)
        org = _participant(ctx, rnd)
        _in_state(rnd, *LIVE)
        counted = _active_participants(ctx, rnd)
        if ctx.has_passed(rnd.deadline):
            votes = sorted({*_counted_abort_votes(ctx, rnd, counted), org})
            aborted, needed = True, 1
        else:
            key = keys.abort_vote_key(round_id, org)
            earlier = ctx.get(key, AbortVote)
            if earlier is not None and earlier.voter_epoch == counted[org]:
                raise Conflict(f"{org} has already voted to abort round {round_id}")
            others = _counted_abort_votes(ctx, rnd, {p: e for p, e in counted.items() if p != org})
            votes = sorted([*others, org])
            needed = abort_threshold(len(counted))
            aborted = len(votes) >= needed
            vote = AbortVote(
                round_id=round_id, org=org, voter_epoch=counted[org], reason=reason, cast_at=ctx.now, tx_id=ctx.tx_id
            )
            ctx.put(key, vote, policy=own_act_policy(ctx, org))
        if aborted:
            update = {"state": RoundState.ABORTED, "joined": _joined(ctx, rnd), "abort_votes": votes,
                      "abort_reason": reason, "updated_at": ctx.now}
            rnd = rnd.model_copy(update=update)
            return _save(ctx, rnd, by=org, votes=len(votes), needed=needed, reason=reason)
        ctx.emit(
            {"round": round_id, "state": rnd.state.value, "leader": rnd.leader, "by": org, "votes": len(votes),
             "needed": needed, "reason": reason}
        )  # fmt: skip
        return rnd.model_copy(update={"abort_votes": votes})

    @transaction(
        allow=(MEMBER,),
        event="LeaderElected",
        errors=(
            NOT_ACTIVE,
            "NotFound: no such round",
            "Forbidden: caller is not a participant",
            "BadRequest: new deadline within the task's window",
            "Conflict: round not open, leader's deadline not passed, no participant left to lead",
        ),
    )
    def elect_leader(self, ctx: Context, round_id: Identifier, deadline: UtcDateTime) -> Round:
        """After the leader missed the deadline, the next active participant in rotation leads (never a past leader)."""
        rnd = load_round(ctx, round_id)
        _participant(ctx, rnd)
        _in_state(rnd, RoundState.OPEN)
        if not ctx.has_passed(rnd.deadline):
            raise Conflict(f"leader {rnd.leader} has until {rnd.deadline.isoformat()}")
        _check_deadline(ctx, deadline, "the new deadline")
        past = sorted({*rnd.past_leaders, rnd.leader})
        inactive = set(rnd.participants) - set(_active_participants(ctx, rnd))
        leader = next_leader(rnd.participants, rnd.leader, [*past, *inactive])
        if leader is None:
            raise Conflict(f"every active participant of round {round_id} has led it already; abort the round")
        rnd = rnd.model_copy(
            update={"leader": leader, "past_leaders": past, "deadline": deadline, "updated_at": ctx.now}
        )
        return _save(ctx, rnd, previous=past, deadline=deadline)

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no alignment recorded"),
    )
    def get_alignment(self, ctx: Context, round_id: Identifier) -> Alignment:
        """The alignment the round's leader recorded (size and commitment of the aligned entity set)."""
        found = ctx.get(keys.alignment_key(round_id), Alignment)
        if found is None:
            raise NotFound(f"no alignment recorded for round {round_id!r}")
        return found

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor",
                "NotFound: no such round, no leader's extractor recorded"),
    )
    def get_leader_extractor(self, ctx: Context, round_id: Identifier) -> LeaderExtractor:
        """The extractor split learning fine-tuned at the round's leader, as the leader recorded it."""
        rnd = load_round(ctx, round_id)
        found = ctx.get(keys.leader_extractor_key(round_id, rnd.leader), LeaderExtractor)
        if found is None:
            raise NotFound(f"no extractor of the leader {rnd.leader} recorded for round {round_id!r}")
        return found

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no contribution table recorded"),
    )
    def get_contribution(self, ctx: Context, round_id: Identifier) -> Contribution:
        """The round's contribution table with each player's Shapley and leave-one-out values and the units due."""
        found = load_contribution(ctx, round_id)
        if found is None:
            raise NotFound(f"no contribution table recorded for round {round_id!r}")
        return found

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no such round"),
    )
    def credits(self, ctx: Context, round_id: Identifier) -> Credits:
        """The units each participant was credited when the round closed (none before, none for an aborted round)."""
        rnd = load_round(ctx, round_id)
        found = ctx.get_many([keys.credit_key(round_id, p) for p in rnd.participants], Credit)
        return Credits(items=[c for c in found if c is not None])

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no such round"),
    )
    def get(self, ctx: Context, round_id: Identifier) -> Round:
        """One round's current record, with the acknowledgements and abort votes recorded so far."""
        return round_view(ctx, load_round(ctx, round_id))
