"""Composite-key schema of the consortium chaincode (object type, then attributes).

The layout keeps transactions of different orgs that do not logically conflict off each other's
keys: what one org writes in a hot path (its acknowledgement, its exchange, its vote, its summary,
its activity) sits under a key that names the org, and no write transaction scans a range.

| object type | attributes | value |
|---|---|---|
| ``task`` | ``config`` | :class:`TaskRecord` (the active task) |
| ``taskproposal`` | config SHA-256 | :class:`TaskProposal` |
| ``confirmation`` | config SHA-256, founder org | :class:`Confirmation` (that founder's own) |
| ``agreement`` | ``active`` | :class:`Agreement` (the terms in force; older ones in the key history) |
| ``agreementproposal`` | agreement SHA-256 | :class:`AgreementProposal` |
| ``agreementconfirm`` | agreement SHA-256, founder org | :class:`Confirmation` (that founder's own) |
| ``member`` | org MSP ID | :class:`Registration` (the org's own profile) |
| ``standing`` | org MSP ID | :class:`Standing` (status and epoch, decided by the consortium) |
| ``roster`` | ``admitted`` | :class:`Roster` (active non-founders) |
| ``vote`` | question, target org, target epoch, voter org | :class:`Vote` |
| ``summary`` | org, modality | :class:`Summary` (latest version; older ones in the key history) |
| ``rotation`` | SHA-256 of the participant set | :class:`Rotation` |
| ``round`` | round ID | :class:`Round` |
| ``join`` | round ID, org | :class:`Join` (a participant's consent to the round) |
| ``ack`` | round ID, org | :class:`Acknowledgement` |
| ``abortvote`` | round ID, org | :class:`AbortVote` |
| ``alignment`` | round ID | :class:`Alignment` (the leader's record of the aligned entity set) |
| ``exchange`` | round ID, sender, receiver, artefact kind | :class:`Exchange` |
| ``contribution`` | round ID | :class:`Contribution` (the leader's table and the values derived from it) |
| ``credit`` | round ID, org | :class:`Credit` (written when the round closes) |
| ``budget`` | org, data set fingerprint | :class:`PrivacyBudget` (what the org's DP releases of it spent) |
| ``scoring`` | round ID, request ID | :class:`ScoringRequest` |
| ``scoringreply`` | round ID, request ID, sender | :class:`ScoringReply` |
| ``activity`` | org, transaction timestamp (UTC), tx ID | :class:`Activity` |
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

from swarmfuse.chaincode.contract.canonical import utc_text
from swarmfuse.chaincode.stub import create_composite_key, split_composite_key

TASK = "task"
TASK_PROPOSAL = "taskproposal"
CONFIRMATION = "confirmation"
AGREEMENT = "agreement"
AGREEMENT_PROPOSAL = "agreementproposal"
AGREEMENT_CONFIRMATION = "agreementconfirm"
MEMBER = "member"
STANDING = "standing"
ROSTER = "roster"
VOTE = "vote"
SUMMARY = "summary"
ROTATION = "rotation"
ROUND = "round"
JOIN = "join"
ACK = "ack"
ABORT_VOTE = "abortvote"
EXCHANGE = "exchange"
ALIGNMENT = "alignment"
CONTRIBUTION = "contribution"
CREDIT = "credit"
BUDGET = "budget"
SCORING = "scoring"
SCORING_REPLY = "scoringreply"
ACTIVITY = "activity"
LEADER_EXTRACTOR = "leaderextractor"

OBJECT_TYPES = (TASK, TASK_PROPOSAL, CONFIRMATION, AGREEMENT, AGREEMENT_PROPOSAL, AGREEMENT_CONFIRMATION, MEMBER,
                STANDING, ROSTER, VOTE, SUMMARY, ROTATION, ROUND, JOIN, ACK, ABORT_VOTE, EXCHANGE, ALIGNMENT,
                CONTRIBUTION, CREDIT, BUDGET, SCORING, SCORING_REPLY, ACTIVITY, LEADER_EXTRACTOR)
"""Every object type of the schema, in the order a scan of the whole namespace visits them."""


def task_key() -> str:
    return create_composite_key(TASK, ["config"])


def task_proposal_key(config_sha256: str) -> str:
    return create_composite_key(TASK_PROPOSAL, [config_sha256])


def confirmation_key(config_sha256: str, org: str) -> str:
    return create_composite_key(CONFIRMATION, [config_sha256, org])


def agreement_key() -> str:
    return create_composite_key(AGREEMENT, ["active"])


def agreement_proposal_key(agreement_sha256: str) -> str:
    return create_composite_key(AGREEMENT_PROPOSAL, [agreement_sha256])


def agreement_confirmation_key(agreement_sha256: str, org: str) -> str:
    return create_composite_key(AGREEMENT_CONFIRMATION, [agreement_sha256, org])


def member_key(org: str) -> str:
    return create_composite_key(MEMBER, [org])


def standing_key(org: str) -> str:
    return create_composite_key(STANDING, [org])


def roster_key() -> str:
    return create_composite_key(ROSTER, ["admitted"])


def vote_key(question: str, target: str, target_epoch: int, voter: str) -> str:
    return create_composite_key(VOTE, [question, target, str(target_epoch), voter])


def summary_key(org: str, modality: str) -> str:
    return create_composite_key(SUMMARY, [org, modality])


def participant_set_sha256(participants: Iterable[str]) -> str:
    return hashlib.sha256("\x00".join(sorted(set(participants))).encode()).hexdigest()


def rotation_key(participants: Iterable[str]) -> str:
    return create_composite_key(ROTATION, [participant_set_sha256(participants)])


def round_key(round_id: str) -> str:
    return create_composite_key(ROUND, [round_id])


def alignment_key(round_id: str) -> str:
    return create_composite_key(ALIGNMENT, [round_id])


def join_key(round_id: str, org: str) -> str:
    return create_composite_key(JOIN, [round_id, org])


def ack_key(round_id: str, org: str) -> str:
    return create_composite_key(ACK, [round_id, org])


def abort_vote_key(round_id: str, org: str) -> str:
    return create_composite_key(ABORT_VOTE, [round_id, org])


def exchange_key(round_id: str, sender: str, receiver: str, kind: str) -> str:
    return create_composite_key(EXCHANGE, [round_id, sender, receiver, kind])


def leader_extractor_key(round_id: str, org: str) -> str:
    return create_composite_key(LEADER_EXTRACTOR, [round_id, org])


def contribution_key(round_id: str) -> str:
    return create_composite_key(CONTRIBUTION, [round_id])


def credit_key(round_id: str, org: str) -> str:
    return create_composite_key(CREDIT, [round_id, org])


def budget_key(org: str, dataset_sha256: str) -> str:
    return create_composite_key(BUDGET, [org, dataset_sha256])


def scoring_key(round_id: str, request_id: str) -> str:
    return create_composite_key(SCORING, [round_id, request_id])


def scoring_reply_key(round_id: str, request_id: str, sender: str) -> str:
    return create_composite_key(SCORING_REPLY, [round_id, request_id, sender])


OWNER_ATTRIBUTE = {CONFIRMATION: 1, AGREEMENT_CONFIRMATION: 1, MEMBER: 0, VOTE: 3, SUMMARY: 0, JOIN: 1, ACK: 1, ABORT_VOTE: 1, EXCHANGE: 1, SCORING_REPLY: 2,
                   BUDGET: 0, ACTIVITY: 0, LEADER_EXTRACTOR: 1}
"""Object types that record one org's own act, and which attribute names that org. Only that org writes them:
each carries its key-level endorsement policy (the org's peer and a majority), and ``audit verify`` checks
that every valid write of one came from a creator of that org."""


def owner_of(key: str) -> str | None:
    """The org whose own act ``key`` records; ``None`` for shared state or a key outside the schema."""
    try:
        object_type, attributes = split_composite_key(key)
    except ValueError:
        return None
    position = OWNER_ATTRIBUTE.get(object_type)
    return attributes[position] if position is not None and position < len(attributes) else None


def of_type(state: Mapping[str, bytes], object_type: str) -> dict[tuple[str, ...], bytes]:
    """The values of ``object_type`` in a key -> value mapping (e.g. a replayed state), by their attributes."""
    found = {}
    for key, value in state.items():
        try:
            kind, attributes = split_composite_key(key)
        except ValueError:
            continue
        if kind == object_type:
            found[tuple(attributes)] = value
    return found


def timestamp_text(moment: datetime) -> str:
    """Fixed-width UTC text that sorts in time order."""
    return utc_text(moment)


def activity_key(org: str, moment: datetime, tx_id: str) -> str:
    return create_composite_key(ACTIVITY, [org, timestamp_text(moment), tx_id])
