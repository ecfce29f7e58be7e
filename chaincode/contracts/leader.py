"""Deterministic leader choice: every endorser picks the same leader from the same inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def choose_leader(candidates: Iterable[str], round_id: str, tx_id: str) -> str:
    """Index the sorted candidates by SHA-256(round ID, U+0000, tx ID) modulo their number."""
    ordered = sorted(set(candidates))
    if not ordered:
        raise ValueError("no candidate to lead the round")
    digest = hashlib.sha256(f"{round_id}\x00{tx_id}".encode()).digest()
    return ordered[int.from_bytes(digest[:8], "big") % len(ordered)]
