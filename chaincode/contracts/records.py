"""Arguments and ledger records of the consortium contracts (pydantic, with explicit limits).

Every date-time is a :data:`UtcDateTime`: validated to carry a time zone, kept in UTC and written in
one fixed-width form, so that endorsers agree byte for byte whatever offset a client sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from swarmfuse.chaincode.contract.canonical import canonical_json
from swarmfuse.chaincode.contracts.fields import (
    STRICT,
    Count,
    DecimalText,
    DisplayName,
    Endpoint,
    Identifier,
    Label,
    MetricName,
    Modality,
    MspId,
    Ratio,
    Reason,
    Score,
    Sha256,
    UtcDateTime,
)


def _unique_sorted(values: list[str], what: str) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")
    return sorted(values)


DEFAULT_DEADLINE_WINDOW_S = 600
"""Least time a deadline must leave after the endorser's clock when a task does not set it: 10 minutes."""
MIN_DEADLINE_WINDOW_S = 60
MAX_DEADLINE_WINDOW_S = 7 * 86_400


class TaskConfig(BaseModel):
    """``Task:Init`` argument: the channel's task, its founding member orgs (two or more) and auditor orgs,
    and the least time (seconds) any deadline a transaction sets must leave after the endorser's clock."""

    model_config = STRICT
    task: Identifier
    founders: list[MspId] = Field(min_length=2, max_length=64)
    auditors: list[MspId] = Field(default_factory=list, max_length=16)
    deadline_window_s: int = Field(
        default=DEFAULT_DEADLINE_WINDOW_S, ge=MIN_DEADLINE_WINDOW_S, le=MAX_DEADLINE_WINDOW_S
    )

    @field_validator("founders", "auditors")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique_sorted(v, "orgs")

    @model_validator(mode="after")
    def _disjoint(self) -> TaskConfig:
        both = set(self.founders) & set(self.auditors)
        if both:
            raise ValueError(f"orgs cannot be founder and auditor at once: {', '.join(sorted(both))}")
        return self

    def config_only(self) -> TaskConfig:
        return TaskConfig(
            task=self.task, founders=self.founders, auditors=self.auditors, deadline_window_s=self.deadline_window_s
        )

    def sha256(self) -> str:
        """SHA-256 (hex) of the canonical JSON of ``{"auditors", "deadline_window_s", "founders", "task"}``,
        lists sorted."""
        return hashlib.sha256(canonical_json(self.config_only())).hexdigest()


class ProposalStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


class FounderSignatures(BaseModel):
    """Who proposed something every founder must confirm, who confirmed it so far and who is awaited."""

    status: ProposalStatus
    proposed_by: MspId
    proposed_at: UtcDateTime
    confirmed_by: list[MspId]
    awaiting: list[MspId]
    tx_id: str

    def confirmed(self, org: str, founders: Sequence[str]) -> Self:
        """This proposal with ``org``'s confirmation added: active once no founder is awaited."""
        confirmed = sorted({*self.confirmed_by, org})
        awaiting = [f for f in founders if f not in confirmed]
        status = ProposalStatus.PENDING if awaiting else ProposalStatus.ACTIVE
        return self.model_copy(update={"confirmed_by": confirmed, "awaiting": awaiting, "status": status})


class TaskProposal(FounderSignatures, TaskConfig):
    """A proposed task configuration and which of its founders confirmed it so far."""

    config_sha256: Sha256


class Confirmation(BaseModel):
    """One founder's own confirmation of what every founder must confirm — a task configuration or an agreement —
    by its SHA-256 (the proposer's is its proposal)."""

    model_config = STRICT
    sha256: Sha256
    org: MspId
    confirmed_at: UtcDateTime
    tx_id: str


class TaskRecord(TaskConfig):
    """The active task: the configuration every one of its founders confirmed."""

    config_sha256: Sha256
    proposed_by: MspId
    confirmed_by: list[MspId]
    activated_at: UtcDateTime
    tx_id: str


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEFT = "left"


class MemberProfile(BaseModel):
    """``Membership:Register`` argument: how others see and reach a DC."""

    model_config = STRICT
    name: DisplayName
    endpoint: Endpoint
    tls_fingerprint: Sha256
    modalities: list[Modality] = Field(min_length=1, max_length=8)

    @field_validator("modalities")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique_sorted(v, "modalities")


class Registration(MemberProfile):
    """What an org says of itself when it registers (its own key: only the org writes it)."""

    model_config = STRICT
    org: MspId
    registered_at: UtcDateTime


class Standing(BaseModel):
    """An org's standing in the task, decided by the consortium (shared state: the majority writes it).
    ``epoch`` goes up at every status change: votes name the epoch they were cast in, so a status change
    makes the votes of the previous question void."""

    model_config = STRICT
    org: MspId
    status: MemberStatus
    epoch: int = Field(default=0, ge=0)
    left_from: MemberStatus | None = Field(default=None, description="status the org had when it left")
    updated_at: UtcDateTime


class Member(MemberProfile):
    """One org's membership: its registration and its standing."""

    org: MspId
    status: MemberStatus
    epoch: int = Field(default=0, ge=0)
    left_from: MemberStatus | None = Field(default=None, description="status the org had when it left")
    registered_at: UtcDateTime
    updated_at: UtcDateTime

    @classmethod
    def of(cls, registration: Registration, standing: Standing) -> Member:
        return cls(**registration.model_dump(), **standing.model_dump(exclude={"org"}))

    def registration(self) -> Registration:
        return Registration(**self.model_dump(include=set(Registration.model_fields)))

    def standing(self) -> Standing:
        return Standing(**self.model_dump(include=set(Standing.model_fields)))


class MemberView(Member):
    """A membership record with the votes that count now on its open question."""

    approvals: list[MspId] = Field(default_factory=list)
    suspend_votes: list[MspId] = Field(default_factory=list)
    electorate: int = Field(description="orgs counted in the majority at this moment")


class Question(StrEnum):
    ADMIT = "admit"
    SUSPEND = "suspend"


class Vote(BaseModel):
    """One org's vote on one question about one org, in the target's epoch."""

    model_config = STRICT
    question: Question
    target: MspId
    target_epoch: int
    voter: MspId
    voter_epoch: int
    cast_at: UtcDateTime
    tx_id: str


class Roster(BaseModel):
    """Active members that are not founders (founders are counted from their own records), with epochs."""

    model_config = STRICT
    admitted: dict[MspId, int] = Field(default_factory=dict)


class LabelSource(StrEnum):
    """Whose labels (among the collaboration's parties) shaped an extractor."""

    NONE = "none"
    OWN = "own"
    """the site's own labels, on its own modality"""
    FOREIGN = "foreign"
    """another party's labels: an extractor trained centrally with the label holder's labels"""
    SPLIT_GRADIENTS = "split-gradients"
    """fine-tuned by split learning: the label holder's gradients, which carry label information"""


class ExtractorProvenance(BaseModel):
    """Where a summary's extractor came from, as its bundle records it. ``recipe``: the cache stage that made it
    (its hash covers the recipe, the data fingerprint and the training code); ``labels``: whose labels shaped it
    (:class:`LabelSource`); ``data_sha256``: the fingerprint of
    the manifest it was trained on (none: a pretrained backbone); ``corpus_sha256``: the public corpus its
    language model pre-trained on; ``teacher_sha256``: the weight file it was distilled from; ``weights_sha256``:
    the weight file training started from (none: random weights); ``split_round`` and ``parent_sha256``: the
    round whose split learning fine-tuned it and the ONNX SHA-256 of the extractor it started from."""

    model_config = STRICT
    recipe: Identifier
    labels: LabelSource
    data_sha256: Sha256 | None = None
    corpus_sha256: Sha256 | None = None
    teacher_sha256: Sha256 | None = None
    weights_sha256: Sha256 | None = None
    split_round: Identifier | None = None
    parent_sha256: Sha256 | None = None

    @model_validator(mode="after")
    def _split(self) -> Self:
        if (self.split_round is None) != (self.parent_sha256 is None):
            raise ValueError("split_round and parent_sha256 go together (an extractor split learning fine-tuned)")
        if self.labels == LabelSource.SPLIT_GRADIENTS and self.split_round is None:
            raise ValueError("labels 'split-gradients' needs the split_round and parent_sha256")
        if self.split_round is not None and self.labels not in (LabelSource.SPLIT_GRADIENTS, LabelSource.FOREIGN):
            raise ValueError(f"a split-fine-tuned extractor's labels are 'split-gradients' or 'foreign', "
                             f"not {self.labels.value!r}")
        return self


class SummaryInput(BaseModel):
    """``Summaries:Publish`` argument: what a DC offers for one modality; never raw data."""

    model_config = STRICT
    modality: Modality
    entity_count: Count
    feature_dim: int = Field(ge=1, le=65_536)
    manifest_sha256: Sha256
    entity_commitment: Sha256 = Field(description="SHA-256 of the sorted, salted entity IDs")
    extractor: Identifier
    extractor_onnx_sha256: Sha256
    labels: list[Label] | None = Field(default=None, max_length=256)
    extractor_provenance: ExtractorProvenance | None = Field(
        default=None, description="where the extractor came from (none: unknown, or a label summary)")

    @field_validator("labels")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _unique_sorted(v, "labels")


class Summary(SummaryInput):
    org: MspId
    version: int
    published_at: UtcDateTime
    tx_id: str


class FusionMethod(StrEnum):
    INTERMEDIATE = "intermediate"
    EARLY = "early"
    LATE = "late"
    HYBRID = "hybrid"


FEATURES_KIND = "features"
GRADIENTS_KIND = "gradients"
SPLIT_KINDS = (FEATURES_KIND, GRADIENTS_KIND)
MAX_SPLIT_EPOCHS = 50


def epoch_kind(kind: str, epoch: int) -> str:
    """The exchange kind of split-learning epoch ``epoch`` (``features.3``, ``gradients.3``)."""
    return f"{kind}.{epoch}"


def kind_epoch(kind: str) -> tuple[str, int | None]:
    """An exchange kind's base kind and split-learning epoch (``None``: not an epoch's exchange)."""
    base, dot, epoch = kind.partition(".")
    return (base, int(epoch)) if dot and epoch.isdigit() and not epoch.startswith("0") else (kind, None)


class RoundSpec(BaseModel):
    """``Rounds:Open`` argument."""

    model_config = STRICT
    participants: list[MspId] = Field(min_length=2, max_length=32)
    roles: dict[MspId, list[Modality]] = Field(description="modalities each participant contributes")
    label_holder: MspId
    method: FusionMethod
    model_spec_sha256: Sha256
    deadline: UtcDateTime
    agreement_sha256: Sha256 | None = Field(default=None, description="the agreement in force, when there is one")
    split_epochs: int = Field(default=0, ge=0, le=MAX_SPLIT_EPOCHS,
                              description="epochs of split learning of the feature sites' extractors before the fusion "
                                          "(each a features.<e> exchange to the leader and a gradients.<e> back); 0: none")

    @field_validator("participants")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique_sorted(v, "participants")

    @model_validator(mode="after")
    def _consistent(self) -> RoundSpec:
        if set(self.roles) != set(self.participants):
            raise ValueError("roles must name exactly the participants")
        if any(not mods or len(set(mods)) != len(mods) or len(mods) > 8 for mods in self.roles.values()):
            raise ValueError("each participant's roles must be 1 to 8 distinct modalities")
        if self.label_holder not in self.participants:
            raise ValueError("the label holder must be a participant")
        return self


Metrics = dict[MetricName, float | int | Label]


class RewardMethod(StrEnum):
    SHAPLEY = "shapley"
    LEAVE_ONE_OUT = "leave-one-out"


class RewardRule(BaseModel):
    """How rounds credit their participants: the value method over the metric, the units a closed round shares,
    and the label holder's share of them in percent."""

    model_config = STRICT
    method: RewardMethod
    metric: MetricName
    units_per_round: int = Field(ge=0, le=1_000_000_000)
    label_holder_share_percent: int = Field(ge=0, le=100)
    seeds: list[int] = Field(default=[0], min_length=1, max_length=5,
                             description="head-training seeds each coalition's score is averaged over; the first one "
                                         "trains the published model")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(not 0 <= seed < 2**31 for seed in v):
            raise ValueError("seeds must be distinct integers from 0 to 2**31 - 1")
        return v


class PrivacyTerms(BaseModel):
    """Differential privacy the members agreed for what leaves a site: which exchange kinds are DP releases, each
    release calibrated for (``release_epsilon``, ``delta``), and the most one site may spend on one data set
    (``budget_epsilon``, and the same budget as the noise multiplier of one Gaussian mechanism at
    (``budget_epsilon``, ``delta``), ``budget_sigma``: Gaussian releases compose to one whose 1/σ² is the sum of
    theirs, so the chaincode refuses a release once Σ 1/σ² over that data set's releases would pass
    1/``budget_sigma``²)."""

    model_config = STRICT
    mechanism: Literal["gaussian"]
    kinds: list[Identifier] = Field(min_length=1, max_length=16, description="exchange kinds that are DP releases")
    delta: DecimalText
    release_epsilon: DecimalText
    budget_epsilon: DecimalText
    budget_sigma: DecimalText
    clip: DecimalText
    projection_dim: int = Field(ge=1, le=4096)

    @field_validator("kinds")
    @classmethod
    def _distinct_kinds(cls, v: list[str]) -> list[str]:
        return _unique_sorted(v, "private exchange kinds")

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if not 0 < Decimal(self.delta) < 1:
            raise ValueError("delta must be between 0 and 1")
        if not 0 < Decimal(self.release_epsilon) <= Decimal(self.budget_epsilon) <= 100:
            raise ValueError("need 0 < release_epsilon <= budget_epsilon <= 100")
        if Decimal(self.budget_sigma) <= 0 or Decimal(self.clip) <= 0:
            raise ValueError("budget_sigma and clip must be positive")
        return self


class AgreementSpec(BaseModel):
    """``Agreement:Propose`` argument: the collaboration's terms. ``model_spec_sha256`` and ``fusion_method`` are
    what every round must use; ``exchange_kinds`` the off-chain transfers rounds may record; the legal text stays
    off-chain, by its SHA-256."""

    model_config = STRICT
    model_spec_sha256: Sha256
    fusion_method: FusionMethod
    extractors: dict[Modality, Label] = Field(description="per modality, the extractor's provenance the members "
                                                          "agreed (e.g. 'label-free site extractor')")
    purpose: Reason = Field(min_length=1)
    exchange_kinds: list[Identifier] = Field(min_length=1, max_length=16)
    retention_days: int = Field(ge=0, le=36_500, description="how long a site keeps artefacts it received")
    reward: RewardRule
    privacy: PrivacyTerms | None = Field(default=None, description="none: releases are not differentially private")
    legal_text_sha256: Sha256

    @field_validator("exchange_kinds")
    @classmethod
    def _distinct_kinds(cls, v: list[str]) -> list[str]:
        return _unique_sorted(v, "exchange kinds")

    def sha256(self) -> str:
        """The hash founders confirm: SHA-256 of the spec's canonical JSON."""
        return hashlib.sha256(canonical_json(self)).hexdigest()


class AgreementProposal(FounderSignatures, AgreementSpec):
    """A proposed agreement and which founders confirmed it so far."""

    agreement_sha256: Sha256


class Agreement(AgreementSpec):
    """The agreement in force: the spec every founder confirmed; ``version`` counts the agreements so far."""

    agreement_sha256: Sha256
    version: int = Field(ge=1)
    confirmed_by: list[MspId]
    activated_at: UtcDateTime
    tx_id: str


class AgreementHistory(BaseModel):
    """``Agreement:History``: the agreements that were in force, oldest first."""

    items: list[Agreement]


class RoundState(StrEnum):
    OPEN = "open"
    FUSED = "fused"
    CLOSED = "closed"
    ABORTED = "aborted"


class Rotation(BaseModel):
    """How many rounds one exact set of participants has opened: the turn of the next one."""

    model_config = STRICT
    participants: list[MspId]
    opened: int = Field(ge=0)


class Round(RoundSpec):
    """A round. While it is live, joins, acknowledgements and abort votes live in their own keys (one per
    org) and ``Rounds:Get`` shows them; ``Rounds:Close`` and ``Rounds:Abort`` copy them in here."""

    round_id: Identifier
    state: RoundState
    opened_by: MspId
    opened_at: UtcDateTime
    open_tx: str
    turn: int = Field(ge=0, description="rounds this participant set opened before this one")
    leader: MspId
    past_leaders: list[MspId] = Field(default_factory=list)
    model_sha256: Sha256 | None = None
    model_bytes: int | None = Field(default=None, description="size of the published model file")
    metrics: Metrics | None = None
    contribution_sha256: Sha256 | None = Field(default=None, description="SHA-256 of the published contribution table")
    joined: list[MspId] = Field(default_factory=list, description="participants that consented (Rounds:Join)")
    acknowledgements: dict[MspId, Sha256] = Field(default_factory=dict)
    abort_votes: list[MspId] = Field(default_factory=list)
    abort_reason: str | None = None
    updated_at: UtcDateTime


class Join(BaseModel):
    """A participant's consent to take part in a round (the opener's is its ``Rounds:Open``)."""

    model_config = STRICT
    round_id: Identifier
    org: MspId
    joined_at: UtcDateTime
    tx_id: str


class Acknowledgement(BaseModel):
    """A participant's statement that it verified the fused model's hash and accepts the contribution table
    published with it."""

    model_config = STRICT
    round_id: Identifier
    org: MspId
    model_sha256: Sha256
    contribution_sha256: Sha256 | None = None
    acknowledged_at: UtcDateTime
    tx_id: str


class AbortVote(BaseModel):
    """A participant's vote to abort a round, in the voter's membership epoch."""

    model_config = STRICT
    round_id: Identifier
    org: MspId
    voter_epoch: int
    reason: Reason
    cast_at: UtcDateTime
    tx_id: str


class ReleasePrivacy(BaseModel):
    """How a DP release was made: mechanism, clip, noise multiplier σ (noise std σ·clip), the projection, δ, the
    accountant's ε, and the data set (its manifest fingerprint) whose budget it spends."""

    model_config = STRICT
    mechanism: Literal["gaussian"]
    clip: DecimalText
    noise_multiplier: DecimalText
    delta: DecimalText
    epsilon: DecimalText
    projection_dim: int = Field(ge=1, le=4096)
    projection_sha256: Sha256
    dataset_sha256: Sha256
    accountant: Label

    @field_validator("noise_multiplier")
    @classmethod
    def _positive(cls, v: str) -> str:
        if Decimal(v) <= 0:
            raise ValueError("the noise multiplier must be positive")
        return v


class ExchangeInput(BaseModel):
    """``Rounds:RecordExchange`` argument: one off-chain transfer, by hash and size (and, for a kind the agreement
    makes a DP release, how it was made; for a ``features`` shard, the ONNX SHA-256 of the extractor that made it)."""

    model_config = STRICT
    receiver: MspId
    kind: Identifier
    sha256: Sha256
    bytes: int = Field(ge=1, le=1 << 40)
    entity_count: Count
    privacy: ReleasePrivacy | None = None
    extractor_onnx_sha256: Sha256 | None = Field(
        default=None, description="only on a features exchange: the ONNX SHA-256 of the extractor that made the "
                                  "shard (required on a feature site's final features after split learning)")


class Exchange(ExchangeInput):
    round_id: Identifier
    sender: MspId
    recorded_at: UtcDateTime
    tx_id: str


class LeaderExtractor(BaseModel):
    """The ONNX SHA-256 of the extractor split learning fine-tuned at a round's leader when the leader is itself a
    feature site: its own final features are never sent, so no exchange names it (``Rounds:RecordLeaderExtractor``;
    the leader's claim, as every feature site's ``extractor_onnx_sha256`` is the sender's)."""

    model_config = STRICT
    round_id: Identifier
    org: MspId
    extractor_onnx_sha256: Sha256
    recorded_at: UtcDateTime
    tx_id: str


class AlignmentInput(BaseModel):
    """``Rounds:RecordAlignment`` argument: the size of the aligned entity set and a commitment to it
    (SHA-256 over a salt and the sorted aligned IDs; the IDs and the salt stay off-chain)."""

    model_config = STRICT
    entity_count: int = Field(ge=1, le=1_000_000_000)
    commitment_sha256: Sha256


class PrivacyBudget(BaseModel):
    """What one site spent of its privacy budget on one data set: Σ 1/σ² over its distinct releases (exact), and
    their SHA-256 (sending the same release again spends nothing)."""

    model_config = STRICT
    org: MspId
    dataset_sha256: Sha256
    mu_squared: Ratio
    releases: list[Sha256] = Field(max_length=100_000)
    updated_at: UtcDateTime
    tx_id: str


class Alignment(AlignmentInput):
    round_id: Identifier
    leader: MspId
    recorded_at: UtcDateTime
    tx_id: str


LABEL_MODALITY = "label"
"""The role of a participant that brings labels only: it is no player of the round's contribution table."""


class CoalitionScore(BaseModel):
    """A coalition of feature blocks (their senders' MSP IDs) and the head's scores on it, one per agreed seed."""

    model_config = STRICT
    members: list[MspId] = Field(max_length=32)
    scores: list[Score] = Field(min_length=1, max_length=5)

    @field_validator("members")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique_sorted(v, "coalition members")


class ContributionTable(BaseModel):
    """``Rounds:MarkFused`` argument: the leader's scores of the fusion head on coalitions of feature blocks, with
    the agreement's metric and seeds (see :mod:`swarmfuse.chaincode.contracts.contribution`)."""

    model_config = STRICT
    metric: MetricName
    seeds: list[int] = Field(min_length=1, max_length=5)
    coalitions: list[CoalitionScore] = Field(min_length=1, max_length=2048)

    @field_validator("coalitions")
    @classmethod
    def _in_order(cls, v: list[CoalitionScore]) -> list[CoalitionScore]:
        """Smaller coalitions first, then by members: one table, one hash, whatever order the leader listed."""
        return sorted(v, key=lambda c: (len(c.members), c.members))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if any(len(c.scores) != len(self.seeds) for c in self.coalitions):
            raise ValueError(f"every coalition needs one score per seed ({len(self.seeds)})")
        if len({tuple(c.members) for c in self.coalitions}) != len(self.coalitions):
            raise ValueError("a coalition is scored twice")
        return self

    def sha256(self) -> str:
        """The hash participants accept with their acknowledgement: SHA-256 of the table's canonical JSON."""
        return hashlib.sha256(canonical_json(self)).hexdigest()


class Contribution(ContributionTable):
    """A round's contribution table with what the chaincode derived from it: each player's Shapley and
    leave-one-out values (exact fractions) and the units each participant is credited when the round closes."""

    round_id: Identifier
    table_sha256: Sha256
    players: list[MspId]
    exact: bool = Field(description="false when Shapley values are the permutation-sampling estimate")
    shapley: dict[MspId, Ratio]
    leave_one_out: dict[MspId, Ratio]
    method: RewardMethod | None = Field(description="the agreed value method; none for a round under no agreement")
    pool: int = Field(ge=0, description="units a closed round shares")
    units: dict[MspId, int] = Field(description="units per participant once the round closes")
    recorded_at: UtcDateTime
    tx_id: str


class Credit(BaseModel):
    """Units one participant earned in one closed round (one key per org and round)."""

    model_config = STRICT
    round_id: Identifier
    org: MspId
    units: int = Field(ge=0)
    method: RewardMethod
    contribution_sha256: Sha256
    credited_at: UtcDateTime
    tx_id: str


class Credits(BaseModel):
    """``Rounds:Credits``: the credits of one round, in org order (none until it closed)."""

    items: list[Credit]


MAX_SCORED = 10_000
"""Most entities one scoring request may name."""


class ScoringRequestInput(BaseModel):
    """``Scoring:Request`` argument: entities a participant wants scored with a round's model, by commitment
    (the IDs and the salt go only to the sites asked, off-chain)."""

    model_config = STRICT
    request_id: Identifier
    ids_sha256: Sha256 = Field(description="SHA-256 of the salt and the sorted entity IDs (see the client)")
    entity_count: int = Field(ge=1, le=MAX_SCORED)
    targets: list[MspId] = Field(min_length=1, max_length=32, description="participants asked for features")

    @field_validator("targets")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique_sorted(v, "targets")


class ScoringRequest(ScoringRequestInput):
    round_id: Identifier
    requester: MspId
    requested_at: UtcDateTime
    tx_id: str


class ScoringReplyInput(BaseModel):
    """``Scoring:Reply`` argument: the features a site sends for a recorded request, by hash and size."""

    model_config = STRICT
    sha256: Sha256
    bytes: int = Field(ge=1, le=1 << 34)
    entity_count: int = Field(ge=1, le=MAX_SCORED)


class ScoringReply(ScoringReplyInput):
    round_id: Identifier
    request_id: Identifier
    sender: MspId
    receiver: MspId
    recorded_at: UtcDateTime
    tx_id: str


class ScoringView(BaseModel):
    """A scoring request with the replies recorded so far (one per target at most)."""

    request: ScoringRequest
    replies: list[ScoringReply]


class Activity(BaseModel):
    """Index entry: one write transaction of one org."""

    model_config = STRICT
    org: MspId
    tx_id: str
    timestamp: UtcDateTime
    function: str
    keys: list[str]
