"""Contributions: the leader's table of coalition scores, the values the chaincode derives from it in exact
arithmetic, the acknowledgements that accept it, and the credits a closed round writes."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from fractions import Fraction
from itertools import permutations
from typing import Any

import pytest
from cc_world import World, consortium, sha
from hypothesis import given, settings
from hypothesis import strategies as st
from test_consortium_agreement import agreed, terms

from swarmfuse.chaincode.contracts import contribution, keys
from swarmfuse.chaincode.contracts.records import ContributionTable

MODEL = sha("model")
PLAYERS = ["DC1MSP", "DC2MSP", "DC3MSP"]
SCORES = {(): "0.25", ("DC1MSP",): "0.6", ("DC2MSP",): "0.3", ("DC3MSP",): "0.2", ("DC1MSP", "DC2MSP"): "0.7",
          ("DC1MSP", "DC3MSP"): "0.65", ("DC2MSP", "DC3MSP"): "0.4", ("DC1MSP", "DC2MSP", "DC3MSP"): "0.8"}


def table(scores: dict[tuple[str, ...], str] = SCORES, metric: str = "accuracy", seeds: tuple[int, ...] = (0,),
          shuffle: int | None = None) -> dict[str, Any]:
    coalitions = [{"members": list(members), "scores": [score] * len(seeds)} for members, score in scores.items()]
    if shuffle is not None:
        random.Random(shuffle).shuffle(coalitions)
        for c in coalitions:
            c["members"] = c["members"][::-1]
    return {"metric": metric, "seeds": list(seeds), "coalitions": coalitions}


def by_permutations(values: dict[frozenset[str], Fraction], players: list[str]) -> dict[str, Fraction]:
    """Shapley values the textbook way: each player's mean marginal gain over every order of the players."""
    totals = dict.fromkeys(players, Fraction(0))
    orders = list(permutations(players))
    for order in orders:
        for k, org in enumerate(order):
            totals[org] += values[frozenset(order[: k + 1])] - values[frozenset(order[:k])]
    return {org: total / len(orders) for org, total in totals.items()}


def test_exact_shapley_of_a_three_block_table() -> None:
    values = {frozenset(members): Fraction(score) for members, score in SCORES.items()}
    found = contribution.shapley(values, PLAYERS, "r1")
    assert found == by_permutations(values, PLAYERS)
    assert found == {"DC1MSP": Fraction(47, 120), "DC2MSP": Fraction(14, 120), "DC3MSP": Fraction(5, 120)}
    assert sum(found.values()) == Fraction("0.8") - Fraction("0.25")  # efficiency
    assert contribution.leave_one_out(values, PLAYERS) == {
        "DC1MSP": Fraction("0.4"), "DC2MSP": Fraction("0.15"), "DC3MSP": Fraction("0.1")}


def test_sampled_shapley_beyond_four_blocks_is_exact_for_an_additive_game() -> None:
    players = [f"DC{i}MSP" for i in range(1, 7)]
    weight = {org: Fraction(i, 10) for i, org in enumerate(players, start=1)}
    needed = contribution.required_coalitions(players, "r1")
    assert len(needed) < 2 ** len(players) and frozenset(players) in needed and frozenset() in needed
    assert all(frozenset(players) - {p} in needed for p in players)
    values = {c: sum((weight[p] for p in c), Fraction(0)) for c in needed}
    assert contribution.shapley(values, players, "r1") == weight  # every order gives each player its own weight
    assert needed == contribution.required_coalitions(list(reversed(players)), "r1")


@settings(max_examples=200, deadline=None)
@given(pool=st.integers(0, 10_000), share=st.integers(0, 100),
       weights=st.lists(st.fractions(min_value=-1, max_value=1, max_denominator=1000), min_size=1, max_size=6))
def test_credits_add_up_to_the_pool(pool: int, share: int, weights: list[Fraction]) -> None:
    players = {f"DC{i}MSP": w for i, w in enumerate(weights, start=1)}
    participants = [*players, "LabelsMSP"]
    units = contribution.allocate(pool, players, "LabelsMSP", share, participants)
    assert sum(units.values()) == pool and min(units.values()) >= 0
    assert units["LabelsMSP"] == pool * share // 100
    best = min(players, key=lambda org: (-players[org], org))  # ties: the first in org order
    if players[best] > 0:
        assert units[best] == max(units[org] for org in players)


def fused_round(world: World, rid: str = "r1", reward: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """A round of DC1-DC3 under agreed terms, everyone joined; its leader's org."""
    digest = agreed(world, terms(reward=reward or {"method": "shapley", "metric": "accuracy", "units_per_round": 100,
                                                    "label_holder_share_percent": 20}))["agreement_sha256"]
    world.ok("DC1", "Rounds:Open", rid, world.round_spec(agreement_sha256=digest))
    rnd = world.join_all(rid)
    return rnd, rnd["leader"].removesuffix("MSP")


def mark_fused(world: World, leader: str, rid: str, accuracy: float, contributions: Any) -> dict[str, Any]:
    return world.ok(leader, "Rounds:MarkFused", rid, MODEL, "4096", json.dumps({"accuracy": accuracy}),
                    world.deadline(), json.dumps(contributions))


def test_the_chaincode_derives_values_and_credits_from_the_table_it_checked() -> None:
    world = consortium(3)
    rnd, leader = fused_round(world)
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.8}', world.deadline(), "null",
                  status=400, fragment="needs the contribution table")
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.8}', world.deadline(),
                  json.dumps(table(metric="f1")), status=400, fragment="values contributions by accuracy")
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.8}', world.deadline(),
                  json.dumps(table(seeds=(0, 1))), status=400, fragment="with seeds [0]")
    partial = {k: v for k, v in SCORES.items() if k != ("DC2MSP",)}
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.8}', world.deadline(),
                  json.dumps(table(partial)), status=400, fragment="missing: {DC2MSP}")
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.8}', world.deadline(),
                  json.dumps(table({**SCORES, ("DC4MSP",): "0.1"})), status=400, fragment="unexpected: {DC4MSP}")
    # the leader cannot publish a table its published model's metric does not match
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.81}', world.deadline(),
                  json.dumps(table()), status=400, fragment="published model's accuracy is 0.81")
    fused = mark_fused(world, leader, "r1", 0.8, table())
    digest = ContributionTable.model_validate(table()).sha256()
    assert fused["contribution_sha256"] == digest
    recorded = world.read("Auditor", "Rounds:GetContribution", "r1")
    assert (recorded["table_sha256"], recorded["players"], recorded["exact"]) == (digest, PLAYERS, True)
    assert recorded["shapley"] == {"DC1MSP": "47/120", "DC2MSP": "7/60", "DC3MSP": "1/24"}
    assert recorded["leave_one_out"] == {"DC1MSP": "2/5", "DC2MSP": "3/20", "DC3MSP": "1/10"}
    # label holder DC3: 20 units; 80 by Shapley 47:14:5 = 56.97, 16.97, 6.06; the 2 units left go to the two
    # equal largest remainders (DC1, DC2)
    assert (recorded["pool"], recorded["units"]) == (100, {"DC1MSP": 57, "DC2MSP": 17, "DC3MSP": 26})
    other = next(p for p in PLAYERS if p != rnd["leader"]).removesuffix("MSP")
    world.refused(other, "Rounds:Acknowledge", "r1", MODEL, "", status=409, fragment="accepts contribution table none")
    world.refused(other, "Rounds:Acknowledge", "r1", MODEL, sha("another table"), status=409,
                  fragment=f"published {digest}")
    for org in PLAYERS:
        ack = world.ok(org.removesuffix("MSP"), "Rounds:Acknowledge", "r1", MODEL, digest)
        assert ack["contribution_sha256"] == digest
    assert world.read("DC1", "Rounds:Credits", "r1") == {"items": []}  # nothing before the round closes
    world.ok("DC2", "Rounds:Close", "r1")
    credits = world.read("Auditor", "Rounds:Credits", "r1")["items"]
    assert {c["org"]: c["units"] for c in credits} == recorded["units"]
    assert {c["contribution_sha256"] for c in credits} == {digest} and sum(c["units"] for c in credits) == 100
    for org in PLAYERS:  # one key per org and round, none owned by the org it credits
        assert keys.owner_of(keys.credit_key("r1", org)) is None


def test_values_and_hash_do_not_depend_on_the_order_the_table_lists_coalitions() -> None:
    recorded = []
    for shuffle in (None, 1, 2):
        world = consortium(3)
        _, leader = fused_round(world)
        mark_fused(world, leader, "r1", 0.8, table(shuffle=shuffle))
        found = world.read("Auditor", "Rounds:GetContribution", "r1")
        recorded.append({k: found[k] for k in ("table_sha256", "coalitions", "shapley", "leave_one_out", "units")})
    assert recorded[0] == recorded[1] == recorded[2]


def test_leave_one_out_terms_and_averaged_seeds() -> None:
    world = consortium(3)
    _, leader = fused_round(world, reward={"method": "leave-one-out", "metric": "accuracy", "units_per_round": 9,
                                           "label_holder_share_percent": 0, "seeds": [3, 1]})
    two_seeds = table(seeds=(3, 1))
    for c in two_seeds["coalitions"]:  # the second seed scores every coalition 0.1 lower
        c["scores"][1] = str(Decimal(c["scores"][0]) - Decimal("0.1"))
    world.ok(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.8}', world.deadline(),
             json.dumps(two_seeds))
    recorded = world.read("Auditor", "Rounds:GetContribution", "r1")
    assert recorded["method"] == "leave-one-out"
    assert recorded["leave_one_out"] == {"DC1MSP": "2/5", "DC2MSP": "3/20", "DC3MSP": "1/10"}  # the shift cancels
    assert recorded["units"] == {"DC1MSP": 6, "DC2MSP": 2, "DC3MSP": 1}  # 9 by 8:3:2: 5.54, 2.08, 1.38


def test_an_aborted_round_credits_nothing_and_rounds_under_no_agreement_credit_nothing() -> None:
    world = consortium(3)
    _rnd, leader = fused_round(world)
    mark_fused(world, leader, "r1", 0.8, table())
    for org in PLAYERS[:2]:
        world.ok(org.removesuffix("MSP"), "Rounds:Abort", "r1", "no")
    assert world.read("DC1", "Rounds:Get", "r1")["state"] == "aborted"
    assert world.read("DC1", "Rounds:Credits", "r1") == {"items": []}

    plain = consortium(3)
    plain.ok("DC1", "Rounds:Open", "p1", plain.round_spec())
    leader = plain.join_all("p1")["leader"].removesuffix("MSP")
    mark_fused(plain, leader, "p1", 0.8, table())  # a table is welcome without terms, values but no units
    recorded = plain.read("Auditor", "Rounds:GetContribution", "p1")
    assert (recorded["method"], recorded["pool"], recorded["units"]) == (None, 0, {})
    digest = recorded["table_sha256"]
    for org in PLAYERS:
        plain.ok(org.removesuffix("MSP"), "Rounds:Acknowledge", "p1", MODEL, digest)
    plain.ok("DC1", "Rounds:Close", "p1")
    assert plain.read("DC1", "Rounds:Credits", "p1") == {"items": []}


@pytest.mark.parametrize("score", ["0.8.1", "1e-3", "nan", ""])
def test_scores_are_plain_decimal_text(score: str) -> None:
    world = consortium(3)
    _, leader = fused_round(world)
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"accuracy": 0.8}', world.deadline(),
                  json.dumps(table({**SCORES, (): score})), status=400, fragment="contributions")
