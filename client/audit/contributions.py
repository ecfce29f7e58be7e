"""``audit verify``'s contribution check: every round's recorded values and credits, recomputed from its table.

From the replayed chaincode state alone (no query): for each contribution record, the table's hash, the
coalitions the round needed, each player's Shapley and leave-one-out values and the units due, recomputed with
the round's record and the reward rule of the agreement it was opened under; each acknowledgement of the round
names that table; a closed round credited exactly those units (adding up to the pool), any other round none.
A colluding majority of endorsers can write any shared record; this is where values or credits it bent show.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from swarmfuse.chaincode.contracts import contribution as values
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import (
    Acknowledgement,
    AgreementProposal,
    Contribution,
    ContributionTable,
    Credit,
    Round,
    RoundState,
)
from swarmfuse.chaincode.contracts.rounds import players
from swarmfuse.client.audit.report import Category, Check, Status

NAME = "contributions"


def _problems(recorded: Contribution, state: Mapping[str, bytes], acks: list[Acknowledgement],
              credits: dict[str, Credit]) -> list[str]:
    """What in ``recorded`` (and the round's credits and acknowledgements) the table does not bear out."""
    round_id = recorded.round_id
    raw_round = state.get(keys.round_key(round_id))
    if raw_round is None:
        return [f"no round {round_id} holds it"]
    rnd = Round.model_validate_json(raw_round)
    rule = None
    if rnd.agreement_sha256 is not None:
        raw_terms = state.get(keys.agreement_proposal_key(rnd.agreement_sha256))
        if raw_terms is None:
            return [f"the round's agreement {rnd.agreement_sha256} is not on the ledger"]
        rule = AgreementProposal.model_validate_json(raw_terms).reward
    problems = []
    table = ContributionTable.model_validate(recorded.model_dump(include=set(ContributionTable.model_fields)))
    if table.sha256() != recorded.table_sha256 or rnd.contribution_sha256 != recorded.table_sha256:
        problems.append(f"table hash {recorded.table_sha256}, recomputed {table.sha256()}, the round names "
                        f"{rnd.contribution_sha256}")
    blocks = players(rnd)
    scored = {frozenset(c.members): c.scores for c in table.coalitions}
    if recorded.players != blocks or set(scored) != set(values.required_coalitions(blocks, round_id)):
        return [*problems, f"the table scores other coalitions than the round's players {blocks} need"]
    derived = values.derive(scored, blocks, round_id, rule, rnd.label_holder, rnd.participants)
    units, pool = derived.units, derived.pool
    if derived.shapley != recorded.shapley:
        problems.append(f"Shapley values {recorded.shapley}, recomputed {derived.shapley}")
    if derived.leave_one_out != recorded.leave_one_out:
        problems.append(f"leave-one-out values {recorded.leave_one_out}, recomputed {derived.leave_one_out}")
    if (recorded.units, recorded.pool) != (units, pool):
        problems.append(f"units {recorded.units} of a pool of {recorded.pool}; due by the agreed rule: {units} of "
                        f"{pool}")
    problems += [f"{a.org} acknowledged table {a.contribution_sha256}" for a in acks
                 if a.contribution_sha256 != recorded.table_sha256]
    due = units if rnd.state is RoundState.CLOSED else {}
    paid = {org: c.units for org, c in credits.items()}
    if paid != due:
        problems.append(f"credits {paid or 'none'}, due {due or 'none'} (round {rnd.state.value})")
    elif due and sum(paid.values()) != pool:
        problems.append(f"credits add up to {sum(paid.values())}, not the pool of {pool}")
    return problems


def contribution_checks(state: Mapping[str, bytes]) -> list[Check]:
    """One check per recorded contribution table, and one failed check per credit no table accounts for."""
    checks = []
    tables = keys.of_type(state, keys.CONTRIBUTION)
    acks: dict[str, list[Acknowledgement]] = {}
    credits: dict[str, dict[str, Credit]] = {}
    if tables:
        try:
            for (rid, _), value in keys.of_type(state, keys.ACK).items():
                acks.setdefault(rid, []).append(Acknowledgement.model_validate_json(value))
            for (rid, org), value in keys.of_type(state, keys.CREDIT).items():
                credits.setdefault(rid, {})[org] = Credit.model_validate_json(value)
        except ValidationError as exc:
            return [Check(category=Category.STATE, name=NAME, subject="acknowledgements and credits",
                          status=Status.FAIL,
                          detail=f"a record cannot be read: {exc.errors(include_url=False)[0]['msg']}")]
    for (round_id,), raw in sorted(tables.items()):
        subject = f"round {round_id}"
        try:
            recorded = Contribution.model_validate_json(raw)
            problems = _problems(recorded, state, acks.get(round_id, []), credits.get(round_id, {}))
        except ValidationError as exc:
            checks.append(Check(category=Category.STATE, name=NAME, subject=subject, status=Status.FAIL,
                                detail=f"a record cannot be read: {exc.errors(include_url=False)[0]['msg']}"))
            continue
        detail = "; ".join(problems) if problems else (
            f"{len(recorded.coalitions)} coalitions of {', '.join(recorded.players)}: Shapley "
            f"{recorded.shapley}, leave-one-out {recorded.leave_one_out}, units {recorded.units or 'none'} "
            f"recomputed from the table")
        checks.append(Check(category=Category.STATE, name=NAME, subject=subject,
                            status=Status.FAIL if problems else Status.PASS, detail=detail, tx_id=recorded.tx_id,
                            record=f"contribution {round_id}"))
    for (round_id, org), _ in sorted(keys.of_type(state, keys.CREDIT).items()):
        if (round_id,) not in tables:
            checks.append(Check(category=Category.STATE, name=NAME, subject=f"round {round_id}", status=Status.FAIL,
                                detail=f"{org} holds a credit, but the round recorded no contribution table"))
    return checks
