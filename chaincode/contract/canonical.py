"""Canonical JSON: the one byte encoding every endorser must produce for the same value.

Sorted keys, no whitespace, UTF-8, no NaN or infinity; datetimes as fixed-width UTC text
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``) whatever offset they came with, enums as their values. Pydantic
models are dumped to Python values first, so the bytes depend on this module and the stdlib
``json`` encoder, not on the process's time zone or hash seed (pydantic and pydantic-core are pinned
all the same, since they parse and validate what is encoded).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_text(moment: datetime) -> str:
    """Fixed-width UTC text that sorts in time order; naive datetimes have no canonical form."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone, so it has no canonical form")
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


def to_plain(value: Any) -> Any:
    """Turn models, datetimes and enums (also nested in lists and dicts) into plain JSON-ready values."""
    if isinstance(value, BaseModel):
        return to_plain(value.model_dump(mode="python"))
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_plain(value.value)
    if isinstance(value, dict):
        return {str(to_plain(k)): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        raise TypeError("sets have no canonical order; pass a sorted list")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN or infinity."""
    return json.dumps(
        to_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
