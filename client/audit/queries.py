"""What an auditor reads from a task's ledger alone: members, summaries, rounds, exchanges, acknowledgements.

:class:`AuditView` connects through the Gateway client as one org's identity (by default the read-only
``Auditor`` org) to a task channel and runs the chaincode's queries (``Audit:*``, ``Rounds:Get``,
``Rounds:GetAlignment``, ``Membership:Get``), following every page. Results are pydantic models; their
``model_dump(mode="json")`` is what ``swarmfuse audit ... --json`` prints.

    with AuditView.open(Path("~/.swarmfuse").expanduser(), "emoji") as view:
        for member in view.members():
            print(member.org, member.status, member.registered_at, member.registered_tx)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from swarmfuse.client.ledger import LedgerNotFound, LedgerRefused, open_task, task_topology
from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.topology import AUDITOR, Topology

logger = logging.getLogger(__name__)

REGISTER = "Membership:Register"


class AuditError(SwarmfuseError):
    """A query cannot be answered (refused by the ledger, or a malformed record); the message says why."""


class UnknownRecord(AuditError):
    """The ledger holds no such round, org or summary."""


class Record(BaseModel):
    """A ledger record as the chaincode wrote it; fields a newer chaincode adds are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class MemberRecord(Record):
    """One org's membership: who it is, its status, and when (and in which transaction) it registered."""

    org: str
    name: str
    status: str = Field(description="pending, active, suspended or left")
    modalities: list[str]
    endpoint: str
    tls_fingerprint: str = Field(description="SHA-256 of the site agent's TLS server certificate")
    epoch: int = 0
    left_from: str | None = None
    registered_at: datetime
    updated_at: datetime
    registered_tx: str | None = Field(default=None, description="the Membership:Register transaction of registered_at")


class AgreementRecord(Record):
    """Terms every founder confirmed: what rounds use and may exchange, the reward rule, the legal text's hash."""

    agreement_sha256: str
    version: int
    model_spec_sha256: str
    fusion_method: str
    extractors: dict[str, str]
    purpose: str
    exchange_kinds: list[str]
    retention_days: int
    reward: dict[str, Any]
    privacy: dict[str, Any] | None = Field(default=None, description="the DP terms of releases, when agreed")
    legal_text_sha256: str
    confirmed_by: list[str]
    activated_at: datetime
    tx_id: str


class AgreementAudit(BaseModel):
    """The terms in force (``None`` while the founders have agreed none) and every version that was, oldest first."""

    in_force: AgreementRecord | None
    history: list[AgreementRecord]


class ProvenanceRecord(Record):
    """Where a summary's extractor came from: recipe, data fingerprint, public corpus / teacher / starting weight
    files by SHA-256, whose labels shaped it (none, own, foreign, split-gradients) and any split-learning round."""

    recipe: str
    labels: str
    data_sha256: str | None = None
    corpus_sha256: str | None = None
    teacher_sha256: str | None = None
    weights_sha256: str | None = None
    split_round: str | None = None
    parent_sha256: str | None = None


class SummaryRecord(Record):
    """One version of what a DC declared about its data for one modality (never the data)."""

    org: str
    modality: str
    version: int
    entity_count: int
    feature_dim: int
    manifest_sha256: str = Field(description="fingerprint of the DC's dataset manifest")
    entity_commitment: str = Field(description="SHA-256 of the DC's salted, sorted entity IDs")
    extractor: str
    extractor_onnx_sha256: str
    labels: list[str] | None = None
    extractor_provenance: ProvenanceRecord | None = Field(default=None, description="none: unknown or a label summary")
    published_at: datetime
    tx_id: str


T = TypeVar("T", bound=Record)


class KeyVersion(Record, Generic[T]):
    """One committed write of a ledger key (from its history): the transaction, its time and the value."""

    tx_id: str
    timestamp: datetime
    is_delete: bool = False
    value: T | None = None


class PublishedSummary(BaseModel):
    """The latest summary of one (org, modality) and every version the key history holds, oldest first."""

    model_config = ConfigDict(frozen=True)
    latest: SummaryRecord
    history: list[KeyVersion[SummaryRecord]]


class RoundRecord(Record):
    """A round's record: its spec, state, leader, joins, fused model and the acknowledgements so far."""

    round_id: str
    state: str = Field(description="open, fused, closed or aborted")
    participants: list[str]
    roles: dict[str, list[str]]
    label_holder: str
    method: str
    model_spec_sha256: str
    deadline: datetime
    agreement_sha256: str | None = Field(default=None, description="the agreement the round was opened under")
    split_epochs: int = Field(default=0, description="epochs of split learning of the extractors (0: none)")
    opened_by: str
    opened_at: datetime
    open_tx: str
    turn: int
    leader: str
    past_leaders: list[str] = Field(default_factory=list)
    joined: list[str] = Field(default_factory=list, description="participants that joined the round")
    model_sha256: str | None = None
    model_bytes: int | None = None
    metrics: dict[str, Any] | None = None
    contribution_sha256: str | None = Field(default=None, description="SHA-256 of the published contribution table")
    acknowledgements: dict[str, str] = Field(default_factory=dict, description="participant -> model hash")
    abort_votes: list[str] = Field(default_factory=list)
    abort_reason: str | None = None
    updated_at: datetime


class AlignmentRecord(Record):
    """The leader's record of the aligned entity set: its size and a salted commitment to it."""

    round_id: str
    leader: str
    entity_count: int
    commitment_sha256: str
    recorded_at: datetime
    tx_id: str


class LeaderExtractorRecord(Record):
    """The extractor split learning fine-tuned at a round's leader that is a feature site, as the leader recorded it
    (its own features are fused, never sent, so no exchange names it)."""

    round_id: str
    org: str
    extractor_onnx_sha256: str
    recorded_at: datetime
    tx_id: str


class ExchangeRecord(Record):
    """One off-chain transfer, as its sender recorded it: who to whom, what, its SHA-256 and size (features: and the
    extractor that made them)."""

    round_id: str
    sender: str
    receiver: str
    kind: str
    sha256: str
    bytes: int
    entity_count: int
    privacy: dict[str, Any] | None = Field(default=None, description="how a DP release was made (sigma, epsilon, ...)")
    extractor_onnx_sha256: str | None = Field(default=None, description="features: the ONNX SHA-256 of the extractor "
                                                                        "that made them, as the sender names it")
    recorded_at: datetime
    tx_id: str


class AcknowledgementRecord(Record):
    """A participant's statement that it verified the fused model's hash (and accepts the contribution table)."""

    round_id: str
    org: str
    model_sha256: str
    contribution_sha256: str | None = None
    acknowledged_at: datetime
    tx_id: str


class CoalitionRecord(Record):
    """A coalition of feature blocks (their senders) and the fusion head's scores on it, one per agreed seed."""

    members: list[str]
    scores: list[str]


class ContributionRecord(Record):
    """A round's contribution table (the leader's) and what the chaincode derived from it: exact Shapley and
    leave-one-out values per player (``numerator/denominator`` text) and the units due to each participant."""

    round_id: str
    metric: str
    seeds: list[int]
    coalitions: list[CoalitionRecord]
    table_sha256: str
    players: list[str]
    exact: bool
    shapley: dict[str, str]
    leave_one_out: dict[str, str]
    method: str | None = Field(description="the agreed value method (shapley or leave-one-out); none without terms")
    pool: int
    units: dict[str, int]
    recorded_at: datetime
    tx_id: str

    def share(self, org: str) -> float:
        """``org``'s Shapley value as a share of the players' total (0 for a total of 0 or below)."""
        total = sum(Fraction(v) for v in self.shapley.values())
        return float(Fraction(self.shapley[org]) / total) if total > 0 else 0.0


class CreditRecord(Record):
    """Units one participant earned in one closed round."""

    round_id: str
    org: str
    units: int
    method: str
    contribution_sha256: str
    credited_at: datetime
    tx_id: str


class ActivityRecord(Record):
    """One write transaction of one org: the function and the keys it wrote."""

    org: str
    tx_id: str
    timestamp: datetime
    function: str
    keys: list[str]


class RoundAudit(BaseModel):
    """Everything the ledger holds about one round."""

    model_config = ConfigDict(frozen=True)
    record: RoundRecord
    history: list[KeyVersion[RoundRecord]] = Field(description="every state the round record went through, oldest first")
    alignment: AlignmentRecord | None
    exchanges: list[ExchangeRecord]
    acknowledgements: list[AcknowledgementRecord]
    contribution: ContributionRecord | None = Field(default=None, description="none when the leader published none")
    credits: list[CreditRecord] = Field(default_factory=list, description="written when the round closed")
    leader_extractor: LeaderExtractorRecord | None = Field(
        default=None, description="a leader that is a feature site of split learning: its own fine-tuned extractor")


class ContributionsAudit(BaseModel):
    """Every round's contribution table with its credits, and the units each org earned in all."""

    model_config = ConfigDict(frozen=True)
    rounds: list[RoundAudit]
    totals: dict[str, int]


class OrgAudit(BaseModel):
    """One org as the ledger knows it: its membership, its summaries and every write it made."""

    model_config = ConfigDict(frozen=True)
    member: MemberRecord
    summaries: list[PublishedSummary]
    activity: list[ActivityRecord]


class LedgerReader(Protocol):
    """The queries :class:`AuditView` needs (``swarmfuse.client.ledger.TaskLedger`` provides them)."""

    @property
    def task(self) -> str: ...

    def evaluate(self, function: str, *args: str) -> Any: ...

    def pages(self, function: str, *args: str) -> list[Any]: ...


M = TypeVar("M", bound=BaseModel)


class AuditView:
    """Read-only queries of one task's ledger, as one org's identity; a context manager closing its gateway."""

    def __init__(self, ledger: LedgerReader, topology: Topology | None = None,
                 close: Callable[[], None] | None = None) -> None:
        """``topology`` lets :meth:`org` take an org name (``DC1``) as well as an MSP ID; ``close`` is
        called by :meth:`close` (the gateway's, when opened with :meth:`open`)."""
        self._ledger = ledger
        self._topology = topology
        self._close = close

    @classmethod
    def open(cls, home: Path, task: str, org: str = AUDITOR, user: str = "user") -> AuditView:
        """Connect to ``task`` as ``user`` of ``org`` with the connection profile of the network under ``home``.

        Raises ``TaskUnknown`` when there is no network, no such task or the org is not one of its orgs, and a
        ``GatewayError`` when the org's peer cannot be reached."""
        topology = task_topology(home, task, org)
        ledger = open_task(home, task, org, user)
        logger.debug("auditing task %s as %s (%s)", task, ledger.mspid, user)
        return cls(ledger, topology, ledger.gateway.close)

    @property
    def task(self) -> str:
        return self._ledger.task

    # --- members and summaries ------------------------------------------------------------------

    def members(self) -> list[MemberRecord]:
        """Every org that registered in the task, with its status and its registration transaction."""
        return [self._with_join_tx(item) for item in self._pages("Audit:Members")]

    def agreement(self) -> AgreementAudit:
        """The terms in force and the versions before them (the newest 100)."""
        try:
            current = _parse(AgreementRecord, self._evaluate("Agreement:Get"), "agreement")
        except UnknownRecord:
            current = None
        found = self._evaluate("Agreement:History", "100")
        history = _parse_list(AgreementRecord, found["items"] if isinstance(found, dict) else [], "Agreement:History")
        return AgreementAudit(in_force=current, history=history)

    def summaries(self, org: str | None = None) -> list[PublishedSummary]:
        """The latest summary of every (org, modality), or of one org's modalities, each with its history."""
        latest = _parse_list(SummaryRecord, self._pages("Audit:Summaries"), "Audit:Summaries")
        chosen = [s for s in latest if org is None or s.org == self.mspid(org)]
        return [PublishedSummary(latest=s, history=self.summary_history(s.org, s.modality)) for s in chosen]

    def summary_history(self, org: str, modality: str) -> list[KeyVersion[SummaryRecord]]:
        """Every version of one org's summary of one modality, oldest first."""
        items = self._pages("Audit:SummaryHistory", self.mspid(org), modality)
        return _parse_list(KeyVersion[SummaryRecord], items, "Audit:SummaryHistory")

    def activity(self, org: str) -> list[ActivityRecord]:
        """Every write transaction of one org, in time order."""
        return _parse_list(ActivityRecord, self._pages("Audit:Activity", self.mspid(org)), "Audit:Activity")

    def org(self, org: str) -> OrgAudit:
        """One org (MSP ID, or an org name of the network): membership, summaries and activity."""
        mspid = self.mspid(org)
        try:
            member = self._evaluate("Membership:Get", mspid)
        except UnknownRecord:
            raise UnknownRecord(f"{mspid} has not registered in task {self.task}") from None
        return OrgAudit(member=self._with_join_tx(member), summaries=self.summaries(mspid),
                        activity=self.activity(mspid))

    def mspid(self, org: str) -> str:
        """The MSP ID of an org named by its network name (``DC1``); anything else is taken as an MSP ID."""
        if self._topology is not None:
            for known in self._topology.orgs:
                if org == known.name:
                    return known.mspid
        return org

    # --- rounds ---------------------------------------------------------------------------------

    def rounds(self) -> list[RoundRecord]:
        """Every round's current record (live rounds with the acknowledgements so far)."""
        return _parse_list(RoundRecord, self._pages("Audit:Rounds"), "Audit:Rounds")

    def round(self, round_id: str) -> RoundAudit:
        """One round: its record, its history, the alignment, every exchange and acknowledgement."""
        record = self._round(round_id)
        alignment = self._alignment(round_id)
        history = _parse_list(KeyVersion[RoundRecord], self._pages("Audit:RoundHistory", round_id),
                              "Audit:RoundHistory")
        contribution, credits = self._contribution(record)
        return RoundAudit(record=record, history=history, alignment=alignment,
                          exchanges=self._exchanges(round_id), acknowledgements=self._acknowledgements(round_id),
                          contribution=contribution, credits=credits, leader_extractor=self._leader_extractor(record))

    def contributions(self) -> ContributionsAudit:
        """The rounds that published a contribution table, newest first, and each org's credited units in all."""
        found = [self.round(r.round_id) for r in sorted(self.rounds(), key=lambda r: r.opened_at, reverse=True)
                 if r.contribution_sha256 is not None]
        totals: dict[str, int] = {}
        for audit in found:
            for credit in audit.credits:
                totals[credit.org] = totals.get(credit.org, 0) + credit.units
        return ContributionsAudit(rounds=found, totals=dict(sorted(totals.items())))

    def exchanges(self, round_id: str) -> list[ExchangeRecord]:
        """The off-chain exchanges recorded in one round (an unknown round is an error, not an empty list)."""
        self._round(round_id)
        return self._exchanges(round_id)

    def acknowledgements(self, round_id: str) -> list[AcknowledgementRecord]:
        """The acknowledgements of one round's model, one per participant that verified it."""
        self._round(round_id)
        return self._acknowledgements(round_id)

    # --- plumbing -------------------------------------------------------------------------------

    def _round(self, round_id: str) -> RoundRecord:
        try:
            return _parse(RoundRecord, self._evaluate("Rounds:Get", round_id), "Rounds:Get")
        except UnknownRecord:
            raise UnknownRecord(f"no round {round_id!r} in task {self.task}") from None

    def _alignment(self, round_id: str) -> AlignmentRecord | None:
        try:
            return _parse(AlignmentRecord, self._evaluate("Rounds:GetAlignment", round_id), "Rounds:GetAlignment")
        except UnknownRecord:
            return None

    def _leader_extractor(self, record: RoundRecord) -> LeaderExtractorRecord | None:
        if not record.split_epochs or set(record.roles.get(record.leader, [])) <= {"label"}:
            return None  # no split learning, or a leader that fine-tunes no extractor
        try:
            return _parse(LeaderExtractorRecord, self._evaluate("Rounds:GetLeaderExtractor", record.round_id),
                          "Rounds:GetLeaderExtractor")
        except UnknownRecord:
            return None

    def _contribution(self, record: RoundRecord) -> tuple[ContributionRecord | None, list[CreditRecord]]:
        if record.contribution_sha256 is None:
            return None, []
        contribution = _parse(ContributionRecord, self._evaluate("Rounds:GetContribution", record.round_id),
                              "Rounds:GetContribution")
        credits = self._evaluate("Rounds:Credits", record.round_id)["items"]
        return contribution, _parse_list(CreditRecord, credits, "Rounds:Credits")

    def _exchanges(self, round_id: str) -> list[ExchangeRecord]:
        return _parse_list(ExchangeRecord, self._pages("Audit:Exchanges", round_id), "Audit:Exchanges")

    def _acknowledgements(self, round_id: str) -> list[AcknowledgementRecord]:
        items = self._pages("Audit:Acknowledgements", round_id)
        return _parse_list(AcknowledgementRecord, items, "Audit:Acknowledgements")

    def _with_join_tx(self, item: dict[str, Any]) -> MemberRecord:
        member = _parse(MemberRecord, item, "member record")
        joined = [a for a in self.activity(member.org) if a.function == REGISTER and a.timestamp == member.registered_at]
        return member.model_copy(update={"registered_tx": joined[0].tx_id if joined else None})

    def _evaluate(self, function: str, *args: str) -> Any:
        try:
            return self._ledger.evaluate(function, *args)
        except LedgerNotFound as exc:
            raise UnknownRecord(f"{function}: {exc.message}") from exc
        except LedgerRefused as exc:
            raise AuditError(f"{function}: {exc.message}") from exc

    def _pages(self, function: str, *args: str) -> list[Any]:
        try:
            return self._ledger.pages(function, *args)
        except LedgerRefused as exc:
            raise AuditError(f"{function}: {exc.message}") from exc

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _parse(model: type[M], item: Any, what: str) -> M:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        raise AuditError(f"{what} returned a record this client cannot read: {exc}") from exc


def _parse_list(model: type[M], items: list[Any], what: str) -> list[M]:
    try:
        return TypeAdapter(list[model]).validate_python(items)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise AuditError(f"{what} returned a record this client cannot read: {exc}") from exc
