"""Each participant's contribution to a round, from the leader's table of coalition scores, in exact arithmetic.

The players are the participants that sent feature blocks. The leader trains the fusion head on coalitions of
those blocks with every seed the agreement names and records each coalition's scores; a coalition's value is the
mean of its scores, as a :class:`~fractions.Fraction` of the scores' decimal text, so every endorser (and every
auditor) derives the same values to the last digit, whatever its floating-point unit.

- Up to :data:`MAX_EXACT_PLAYERS` players the table holds every coalition, the empty one included (the metric of
  predicting the training split's majority class), and Shapley values are exact.
- Beyond, it holds the prefixes of :data:`SAMPLED_PERMUTATIONS` player orders drawn from the round ID (SHA-256,
  so anyone can redraw them) and every "all but one" coalition: Shapley values are the permutation-sampling
  estimate, leave-one-out values stay exact.

Credits share a round's units: the label holder's share first, the rest in proportion to the players' values under
the agreed method (negative values count as zero; all zero: equal parts), rounded down, the units left over going
one by one to the largest remainders (ties in org order), so the credits always add up to the pool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from math import factorial

from swarmfuse.chaincode.contracts.records import RewardMethod, RewardRule

MAX_EXACT_PLAYERS = 4
SAMPLED_PERMUTATIONS = 16

Coalition = frozenset[str]


def required_coalitions(players: Sequence[str], round_id: str) -> list[Coalition]:
    """Every coalition a round's table must score, in a fixed order (by size, then members)."""
    players = sorted(players)
    needed: set[Coalition] = set()
    if len(players) <= MAX_EXACT_PLAYERS:
        for size in range(len(players) + 1):
            needed.update(frozenset(c) for c in combinations(players, size))
    else:
        for order in sampled_orders(players, round_id):
            needed.update(frozenset(order[:k]) for k in range(len(order) + 1))
        needed.update(frozenset(players) - {p} for p in players)
    return sorted(needed, key=lambda c: (len(c), sorted(c)))


def sampled_orders(players: Sequence[str], round_id: str) -> list[list[str]]:
    """The player orders a round with more than :data:`MAX_EXACT_PLAYERS` players samples, drawn from its ID."""

    def rank(k: int, org: str) -> bytes:
        return hashlib.sha256(f"{round_id}\x00{k}\x00{org}".encode()).digest()

    return [sorted(players, key=lambda org: rank(k, org)) for k in range(SAMPLED_PERMUTATIONS)]


def coalition_value(scores: Sequence[str]) -> Fraction:
    """The mean of a coalition's scores (decimal text), exactly."""
    return sum((Fraction(s) for s in scores), Fraction(0)) / len(scores)


def shapley(values: Mapping[Coalition, Fraction], players: Sequence[str], round_id: str) -> dict[str, Fraction]:
    """Each player's Shapley value: exact up to :data:`MAX_EXACT_PLAYERS` players, sampled beyond."""
    players = sorted(players)
    n = len(players)
    if n > MAX_EXACT_PLAYERS:
        orders = sampled_orders(players, round_id)
        totals = dict.fromkeys(players, Fraction(0))
        for order in orders:
            for k, org in enumerate(order):
                totals[org] += values[frozenset(order[: k + 1])] - values[frozenset(order[:k])]
        return {org: total / len(orders) for org, total in totals.items()}
    result = {}
    for org in players:
        others = [p for p in players if p != org]
        total = Fraction(0)
        for size in range(n):
            weight = Fraction(factorial(size) * factorial(n - size - 1), factorial(n))
            for members in combinations(others, size):
                coalition = frozenset(members)
                total += weight * (values[coalition | {org}] - values[coalition])
        result[org] = total
    return result


def leave_one_out(values: Mapping[Coalition, Fraction], players: Sequence[str]) -> dict[str, Fraction]:
    """What the full coalition loses without each player."""
    everyone = frozenset(players)
    return {org: values[everyone] - values[everyone - {org}] for org in sorted(players)}


def allocate(pool: int, weights: Mapping[str, Fraction], label_holder: str, label_share_percent: int,
             participants: Iterable[str]) -> dict[str, int]:
    """Whole units per participant, adding up to ``pool`` exactly (see the module's description)."""
    units = dict.fromkeys(sorted(participants), 0)
    label_units = pool * label_share_percent // 100
    units[label_holder] += label_units
    rest = pool - label_units
    clipped = {org: max(w, Fraction(0)) for org, w in sorted(weights.items())}
    total = sum(clipped.values(), Fraction(0))
    if not clipped:
        units[label_holder] += rest
        return units
    if total == 0:
        clipped = dict.fromkeys(clipped, Fraction(1))
        total = Fraction(len(clipped))
    exact = {org: rest * w / total for org, w in clipped.items()}
    for org, share in exact.items():
        units[org] += share.numerator // share.denominator
    left = rest - sum(share.numerator // share.denominator for share in exact.values())
    by_remainder = sorted(exact, key=lambda org: (-(exact[org] - exact[org].numerator // exact[org].denominator), org))
    for org in by_remainder[:left]:
        units[org] += 1
    return units


@dataclass(frozen=True)
class Derived:
    """What a round's table gives: each player's Shapley and leave-one-out value as exact ``p/q`` text, and the
    units each participant is due from the pool (none without a reward rule)."""

    shapley: dict[str, str]
    leave_one_out: dict[str, str]
    units: dict[str, int]
    pool: int


def derive(scored: Mapping[Coalition, Sequence[str]], players: Sequence[str], round_id: str, rule: RewardRule | None,
           label_holder: str, participants: Iterable[str]) -> Derived:
    """The values and units of a table that scores every coalition :func:`required_coalitions` names — computed
    the same way by the chaincode that records them and by the auditor that checks them."""
    worth = {c: coalition_value(s) for c, s in scored.items()}
    by_shapley, by_loo = shapley(worth, players, round_id), leave_one_out(worth, players)
    units: dict[str, int] = {}
    if rule is not None:
        weights = by_shapley if rule.method is RewardMethod.SHAPLEY else by_loo
        units = allocate(rule.units_per_round, weights, label_holder, rule.label_holder_share_percent, participants)
    return Derived({o: str(v) for o, v in by_shapley.items()}, {o: str(v) for o, v in by_loo.items()}, units,
                   rule.units_per_round if rule is not None else 0)
