"""Composite-key schema of the consortium chaincode (object type, then attributes).

| object type | attributes | value |
|---|---|---|
| ``task`` | ``config`` | :class:`TaskConfig` |
| ``member`` | org MSP ID | :class:`Member` |
| ``summary`` | org, modality | :class:`Summary` (latest version; older ones in the key history) |
| ``round`` | round ID | :class:`Round` |
| ``exchange`` | round ID, sender, receiver, artefact kind | :class:`Exchange` |
| ``activity`` | org, transaction timestamp (ISO 8601, UTC), tx ID | :class:`Activity` |
"""

from __future__ import annotations

from datetime import UTC, datetime

from swarmfuse.chaincode.stub import create_composite_key

TASK = "task"
MEMBER = "member"
SUMMARY = "summary"
ROUND = "round"
EXCHANGE = "exchange"
ACTIVITY = "activity"


def task_key() -> str:
    return create_composite_key(TASK, ["config"])


def member_key(org: str) -> str:
    return create_composite_key(MEMBER, [org])


def summary_key(org: str, modality: str) -> str:
    return create_composite_key(SUMMARY, [org, modality])


def round_key(round_id: str) -> str:
    return create_composite_key(ROUND, [round_id])


def exchange_key(round_id: str, sender: str, receiver: str, kind: str) -> str:
    return create_composite_key(EXCHANGE, [round_id, sender, receiver, kind])


def timestamp_text(moment: datetime) -> str:
    """Fixed-width UTC text that sorts in time order."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def activity_key(org: str, moment: datetime, tx_id: str) -> str:
    return create_composite_key(ACTIVITY, [org, timestamp_text(moment), tx_id])
