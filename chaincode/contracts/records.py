"""Arguments and ledger records of the consortium contracts (pydantic, with explicit limits)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

from swarmfuse.chaincode.contracts.fields import (
    STRICT,
    Count,
    DisplayName,
    Endpoint,
    Identifier,
    Label,
    MetricName,
    Modality,
    MspId,
    Sha256,
)


def _unique_sorted(values: list[str], what: str) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")
    return sorted(values)


class TaskConfig(BaseModel):
    """``Task:Init`` argument: the channel's task, its founding member orgs and auditor orgs."""

    model_config = STRICT
    task: Identifier
    founders: list[MspId] = Field(min_length=1, max_length=64)
    auditors: list[MspId] = Field(default_factory=list, max_length=16)

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


class TaskRecord(TaskConfig):
    initialised_by: MspId
    initialised_at: datetime
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


class Member(MemberProfile):
    org: MspId
    status: MemberStatus
    registered_at: datetime
    updated_at: datetime
    approvals: list[MspId] = Field(default_factory=list)
    suspend_votes: list[MspId] = Field(default_factory=list)


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

    @field_validator("labels")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _unique_sorted(v, "labels")


class Summary(SummaryInput):
    org: MspId
    version: int
    published_at: datetime
    tx_id: str


class FusionMethod(StrEnum):
    INTERMEDIATE = "intermediate"
    EARLY = "early"
    LATE = "late"
    HYBRID = "hybrid"


class RoundSpec(BaseModel):
    """``Rounds:Open`` argument."""

    model_config = STRICT
    participants: list[MspId] = Field(min_length=2, max_length=32)
    roles: dict[MspId, list[Modality]] = Field(description="modalities each participant contributes")
    label_holder: MspId
    method: FusionMethod
    model_spec_sha256: Sha256
    deadline: datetime

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
        if self.deadline.tzinfo is None:
            raise ValueError("the deadline needs a time zone")
        return self


Metrics = dict[MetricName, float | int | Label]


class RoundState(StrEnum):
    OPEN = "open"
    FUSED = "fused"
    CLOSED = "closed"
    ABORTED = "aborted"


class Round(RoundSpec):
    round_id: Identifier
    state: RoundState
    opened_by: MspId
    opened_at: datetime
    open_tx: str
    leader: MspId
    past_leaders: list[MspId] = Field(default_factory=list)
    model_sha256: Sha256 | None = None
    metrics: Metrics | None = None
    acknowledgements: dict[MspId, Sha256] = Field(default_factory=dict)
    abort_votes: list[MspId] = Field(default_factory=list)
    abort_reason: str | None = None
    updated_at: datetime


class ExchangeInput(BaseModel):
    """``Rounds:RecordExchange`` argument: one off-chain transfer, by hash and size."""

    model_config = STRICT
    receiver: MspId
    kind: Identifier
    sha256: Sha256
    bytes: int = Field(ge=1, le=1 << 40)
    entity_count: Count


class Exchange(ExchangeInput):
    round_id: Identifier
    sender: MspId
    recorded_at: datetime
    tx_id: str


class Activity(BaseModel):
    """Index entry: one write transaction of one org."""

    model_config = STRICT
    org: MspId
    tx_id: str
    timestamp: datetime
    function: str
    keys: list[str]
