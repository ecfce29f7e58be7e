"""Tables of a site's store (SQLAlchemy 2 declarative models) and the plain records the store returns.

The schema itself is owned by the Alembic revisions in ``migrations/versions``; these models must match
them (``tests/client/site/test_site_store.py`` compares the two on every database URL it runs on).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SHA256_LEN = 64
NAME_LEN = 64  # org names, round IDs and artefact kinds on the ledger are at most 64 characters

# Deterministic constraint names: the same on SQLite and PostgreSQL, and what Alembic's batch mode needs.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; use an aware one (UTC)")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    LABEL = "label"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class ArtefactStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class ActionStatus(StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


def _one_of(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(m.value) for m in enum)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Dataset(Base):
    """One registered manifest of this site, with what its data summary publishes."""

    __tablename__ = "datasets"
    __table_args__ = (CheckConstraint(_one_of("modality", Modality), name="modality"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    modality: Mapped[str] = mapped_column(String(16), index=True)
    manifest_path: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(SHA256_LEN))
    fingerprint: Mapped[str] = mapped_column(String(SHA256_LEN))
    entity_count: Mapped[int] = mapped_column(Integer)
    feature_dim: Mapped[int | None] = mapped_column(Integer)
    extractor_sha256: Mapped[str | None] = mapped_column(String(SHA256_LEN))
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class EventsCheckpoint(Base):
    """Where this site's listener resumes on one channel's chaincode events (a gateway ``Position``)."""

    __tablename__ = "events_checkpoint"

    channel: Mapped[str] = mapped_column(String(255), primary_key=True)
    chaincode: Mapped[str] = mapped_column(String(255), primary_key=True)
    block: Mapped[int | None] = mapped_column(BigInteger)
    tx_id: Mapped[str | None] = mapped_column(String(255))
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Round(Base):
    """This site's view of one fusion round."""

    __tablename__ = "rounds"

    round_id: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(32))
    leader: Mapped[str | None] = mapped_column(String(NAME_LEN))
    aligned_count: Mapped[int | None] = mapped_column(Integer)
    commitment: Mapped[str | None] = mapped_column(String(SHA256_LEN))
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Artefact(Base):
    """One artefact sent or received in a round, and the outcome of its check against the ledger.

    A log, not a set: a rejected transfer and its resend are two rows.
    """

    __tablename__ = "artefacts"
    __table_args__ = (
        CheckConstraint(_one_of("direction", Direction), name="direction"),
        CheckConstraint(_one_of("status", ArtefactStatus), name="status"),
        CheckConstraint("bytes >= 0", name="bytes"),
        Index(None, "round_id", "kind", "direction", "peer_org"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_id: Mapped[str] = mapped_column(String(NAME_LEN))
    kind: Mapped[str] = mapped_column(String(NAME_LEN))
    direction: Mapped[str] = mapped_column(String(3))
    peer_org: Mapped[str] = mapped_column(String(NAME_LEN))
    sha256: Mapped[str] = mapped_column(String(SHA256_LEN))
    bytes: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ArtefactStatus.PENDING.value)
    reason: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Action(Base):
    """One step this site took (or is taking) in a round; unique per (round, action) for idempotence."""

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("round_id", "action"),
        CheckConstraint(_one_of("status", ActionStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_id: Mapped[str] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


# --- plain records: what the store hands out (no session, no lazy loading) ---

def _fields(row: Base, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    modality: Modality
    manifest_path: str
    manifest_sha256: str
    fingerprint: str
    entity_count: int
    feature_dim: int | None
    extractor_sha256: str | None
    created: dt.datetime

    @classmethod
    def of(cls, row: Dataset) -> DatasetRecord:
        values = _fields(row, tuple(cls.__dataclass_fields__))
        return cls(**values | {"modality": Modality(row.modality)})


@dataclass(frozen=True)
class RoundRecord:
    round_id: str
    state: str
    role: str | None
    leader: str | None
    aligned_count: int | None
    commitment: str | None
    updated: dt.datetime

    @classmethod
    def of(cls, row: Round) -> RoundRecord:
        return cls(**_fields(row, tuple(cls.__dataclass_fields__)))


@dataclass(frozen=True)
class ArtefactRecord:
    id: int
    round_id: str
    kind: str
    direction: Direction
    peer_org: str
    sha256: str
    bytes: int
    path: str | None
    status: ArtefactStatus
    reason: str | None
    created: dt.datetime

    @classmethod
    def of(cls, row: Artefact) -> ArtefactRecord:
        values = _fields(row, tuple(cls.__dataclass_fields__))
        return cls(**values | {"direction": Direction(row.direction), "status": ArtefactStatus(row.status)})


@dataclass(frozen=True)
class ActionRecord:
    round_id: str
    action: str
    status: ActionStatus
    detail: str | None
    created: dt.datetime
    updated: dt.datetime

    @property
    def done(self) -> bool:
        return self.status is ActionStatus.DONE

    @classmethod
    def of(cls, row: Action) -> ActionRecord:
        return cls(**_fields(row, tuple(cls.__dataclass_fields__)) | {"status": ActionStatus(row.status)})
