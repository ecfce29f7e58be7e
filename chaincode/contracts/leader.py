"""Leader choice by rotation: no transaction ID, nonce, timestamp or round ID enters it.

The participants of a round, in canonical (sorted) order, take the lead in turn: the ``turn``-th
round a given participant set opens is led by ``order[(offset + turn) % n]``, where the offset is
taken from the SHA-256 of the set itself (so that the org whose name sorts first does not lead the
first round of every new set). The turn is an on-chain counter per participant set, read and
advanced by ``Rounds:Open``. Whoever opens the round therefore cannot steer the leader by retrying
with other transaction IDs or timestamps; the only inputs are the participant set (visible to every
participant, who may vote to abort) and how many rounds that set opened before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def rotation_order(participants: Iterable[str]) -> list[str]:
    """The participants in the order they take the lead, starting at turn 0."""
    ordered = sorted(set(participants))
    if not ordered:
        raise ValueError("no candidate to lead the round")
    digest = hashlib.sha256("\x00".join(ordered).encode()).digest()
    offset = int.from_bytes(digest[:8], "big") % len(ordered)
    return ordered[offset:] + ordered[:offset]


def leader_for(participants: Iterable[str], turn: int) -> str:
    """The leader of the ``turn``-th round (0-based) of this participant set."""
    order = rotation_order(participants)
    return order[turn % len(order)]


def next_leader(participants: Iterable[str], current: str, excluded: Iterable[str]) -> str | None:
    """The first participant after ``current`` in rotation order that is not ``excluded``."""
    order = rotation_order(participants)
    barred = set(excluded) | {current}
    start = order.index(current) + 1 if current in order else 0
    for step in range(len(order)):
        candidate = order[(start + step) % len(order)]
        if candidate not in barred:
            return candidate
    return None
