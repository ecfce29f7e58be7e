"""Canonical JSON: the one byte encoding every endorser must produce for the same value."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


def to_plain(value: Any) -> Any:
    """Turn pydantic models (also nested in lists and dicts) into plain JSON-ready values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN or infinity."""
    return json.dumps(
        to_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
