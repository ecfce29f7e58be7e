"""Transactions of different orgs that do not logically conflict do not conflict on the ledger.

Every transaction of a batch is endorsed against the same committed state, then the batch is
committed as one block with Fabric's validation (MVCC read versions, phantom reads): this is what
happens when N orgs submit at the same moment. Also: how many round trips each transaction makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cc_world import ORGS, World, chaincode, consortium, initialised, profile, sha, summary

from swarmfuse.chaincode.memstub import Endorsement, Validation
from swarmfuse.chaincode.stub import Response

ALL = [f"DC{i}" for i in range(1, 9)]
MODEL = sha("fused")


def endorse(world: World, org: str, function: str, *args: str) -> Endorsement:
    endorsed = world.ledger.endorse(chaincode(), ORGS[org], function, *args)
    assert endorsed.response.status == 200, f"{function} by {org}: {endorsed.response.message}"
    return endorsed


def one_block(world: World, calls: list[tuple[str, str, tuple[str, ...]]]) -> list[Validation]:
    return world.ledger.commit_block([endorse(world, org, fn, *args) for org, fn, args in calls])


def fused_round(world: World) -> dict:
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec(tuple(ALL)))
    rnd = world.join_all("r1")
    world.ok(rnd["leader"].removesuffix("MSP"), "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null")
    return rnd


def test_eight_acknowledgements_in_one_block_are_all_valid_and_the_round_closes() -> None:
    world = consortium(8)
    fused_round(world)
    codes = one_block(world, [(org, "Rounds:Acknowledge", ("r1", MODEL, "")) for org in ALL])
    assert codes == [Validation.VALID] * 8
    assert one_block(world, [("DC5", "Rounds:Close", ("r1",))]) == [Validation.VALID]
    assert world.read("DC1", "Rounds:Get", "r1")["state"] == "closed"


def test_joins_of_every_participant_in_one_block_are_all_valid() -> None:
    world = consortium(8)
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec(tuple(ALL)))
    assert one_block(world, [(org, "Rounds:Join", ("r1",)) for org in ALL[1:]]) == [Validation.VALID] * 7
    assert world.read("DC1", "Rounds:Get", "r1")["joined"] == sorted(f"{org}MSP" for org in ALL)


def test_exchanges_of_every_sender_in_one_block_are_all_valid() -> None:
    world = consortium(8)
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec(tuple(ALL)))
    leader = world.join_all("r1")["leader"]

    def shard(org: str) -> str:
        return json.dumps({"receiver": leader, "kind": "features", "sha256": sha(org), "bytes": 9, "entity_count": 3})

    senders = [org for org in ALL if f"{org}MSP" != leader]
    assert one_block(world, [(org, "Rounds:RecordExchange", ("r1", shard(org))) for org in senders]) == [
        Validation.VALID
    ] * 7
    # The leader sends the model back to everyone while they acknowledge it: still no conflict.
    world.ok(leader.removesuffix("MSP"), "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null")
    back = [
        (leader.removesuffix("MSP"), "Rounds:RecordExchange",
         ("r1", json.dumps({"receiver": f"{org}MSP", "kind": "model", "sha256": MODEL, "bytes": 9, "entity_count": 0})))
        for org in senders
    ]  # fmt: skip
    acks = [(org, "Rounds:Acknowledge", ("r1", MODEL, "")) for org in senders]
    assert one_block(world, [call for pair in zip(back, acks, strict=True) for call in pair]) == [Validation.VALID] * 14


def test_registrations_and_summaries_of_different_orgs_in_one_block_are_all_valid() -> None:
    world = consortium(3)
    newcomers = ["DC4", "DC5", "DC6"]
    assert one_block(world, [(org, "Membership:Register", (profile(org),)) for org in newcomers]) == [
        Validation.VALID
    ] * 3
    published = [(org, "Summaries:Publish", (summary(org, "text" if org != "DC2" else "image"),)) for org in ALL[:3]]
    assert one_block(world, published) == [Validation.VALID] * 3


def test_founders_register_concurrently_without_conflict() -> None:
    world = initialised()
    assert one_block(world, [(org, "Membership:Register", (profile(org),)) for org in ("DC1", "DC2", "DC3")]) == [
        Validation.VALID
    ] * 3


def test_votes_on_different_questions_do_not_conflict() -> None:
    world = consortium(8)
    for org in ("DC9",):
        world.ok(org, "Membership:Register", profile(org))
    block = [("DC1", "Membership:Approve", ("DC9MSP",)), ("DC2", "Membership:Suspend", ("DC8MSP",)),
             ("DC3", "Membership:Suspend", ("DC7MSP",))]  # fmt: skip
    assert one_block(world, block) == [Validation.VALID] * 3


def test_logical_conflicts_still_conflict() -> None:
    """Two votes on one question read each other; two rounds of one participant set share the rotation."""
    world = consortium(3)
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec())
    votes = one_block(world, [("DC1", "Rounds:Abort", ("r1", "x")), ("DC2", "Rounds:Abort", ("r1", "x"))])
    assert votes == [Validation.VALID, Validation.MVCC_READ_CONFLICT]
    opens = one_block(
        world, [("DC1", "Rounds:Open", ("r2", world.round_spec())), ("DC2", "Rounds:Open", ("r3", world.round_spec()))]
    )
    assert opens == [Validation.VALID, Validation.MVCC_READ_CONFLICT]


def test_block_validation_detects_phantoms() -> None:
    world = consortium(3)
    stub = world.ledger.stub(ORGS["DC1"], "probe")
    list(stub.get_state_by_partial_composite_key("member", []))
    probe = Endorsement(stub, Response(200))
    world.ok("DC4", "Membership:Register", profile("DC4"))
    assert world.ledger.commit_block([probe]) == [Validation.PHANTOM_READ_CONFLICT]


Step = Callable[[World], tuple[str, str, tuple[str, ...]]]


def _exchange_step(world: World) -> tuple[str, str, tuple[str, ...]]:
    rnd = world.ok("DC1", "Rounds:Open", "x1", world.round_spec())
    other = next(p for p in rnd["participants"] if p != rnd["leader"])
    shard = json.dumps({"receiver": rnd["leader"], "kind": "f", "sha256": MODEL, "bytes": 1, "entity_count": 1})
    return other.removesuffix("MSP"), "Rounds:RecordExchange", ("x1", shard)


def _ack_step(world: World) -> tuple[str, str, tuple[str, ...]]:
    world.ok("DC1", "Rounds:Open", "a1", world.round_spec())
    rnd = world.join_all("a1")
    world.ok(rnd["leader"].removesuffix("MSP"), "Rounds:MarkFused", "a1", MODEL, "4096", "{}", world.deadline(), "null")
    return "DC2", "Rounds:Acknowledge", ("a1", MODEL, "")


def _approve_step(world: World) -> tuple[str, str, tuple[str, ...]]:
    world.ok("DC4", "Membership:Register", profile("DC4"))
    return "DC1", "Membership:Approve", ("DC4MSP",)


ROUND_TRIPS: list[tuple[str, Step, int, int]] = [
    ("Membership:Register", lambda w: ("DC4", "Membership:Register", (profile("DC4"),)), 4, 4),
    ("Summaries:Publish", lambda w: ("DC1", "Summaries:Publish", (summary("DC1", "text", labels="none"),)), 5, 5),
    ("Rounds:Open", lambda w: ("DC1", "Rounds:Open", ("o1", w.round_spec())), 12, 8),
    ("Rounds:RecordExchange", _exchange_step, 5, 5),
    ("Rounds:Acknowledge", _ack_step, 5, 5),
    ("Membership:Approve", _approve_step, 10, 7),
]


@pytest.mark.parametrize(("name", "step", "single", "multiple"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_round_trips_per_transaction(name: str, step: Step, single: int, multiple: int) -> None:
    """Reads per transaction with 3 active members and 3 participants: one ``GET_STATE`` per key, or
    ``GET_STATE_MULTIPLE`` where the peer offers it; never a range query in these write paths. A write of
    an org's own act reads the roster once more, for its key-level endorsement policy (and the key itself,
    where the transaction had not read it); a member is its registration and its standing, two keys."""
    for multiple_states, expected in ((False, single), (True, multiple)):
        world = consortium(3)
        org, function, args = step(world)
        world.ledger.multiple_states = multiple_states
        world.ok(org, function, *args)
        calls = world.ledger.last.calls
        assert "GET_STATE_BY_RANGE" not in calls, calls
        assert world.ledger.last.round_trips == expected, (name, multiple_states, dict(calls))
