"""Adversarial property test: an attacker that controls its own client and CA, among honest members.

Interleaved with honest calls that move a round on, the generator draws the attacker moves of
issue 11: forged timestamps, nonce grinding for the leader, self-issued auditor certificates of an
outside org, leave-and-return of a suspended member, opening a round one does not take part in,
initialising the task first, votes of suspended orgs (plus: acting "after the deadline" with a
proposal stamped ahead, auditor writes, publishing as somebody else's leader). Every attacker call
must be refused with its typed error and leave the ledger byte-for-byte unchanged; grinding must
not change the leader.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cc_identities import OUTSIDER_AUDITOR_ATTR, OUTSIDER_AUDITOR_OU
from cc_world import (
    ORGS,
    World,
    chaincode,
    config_sha256,
    founded,
    profile,
    sha,
    summary,
    task_config,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmfuse.chaincode.contract.clock import DEFAULT_MAX_CLOCK_SKEW
from swarmfuse.chaincode.stub import ClientIdentity

MODEL = sha("model")
MEMBERS = ["DC1", "DC2", "DC3", "DC4"]
ROUND_PARTICIPANTS = ("DC1", "DC2", "DC3")


@dataclass(frozen=True)
class Attack:
    move: str
    who: str | ClientIdentity
    function: str
    args: tuple[str, ...]
    error: str
    at: datetime | None = None
    tx_id: str | None = None


def stage() -> World:
    """Founders DC1-DC3, DC4 admitted, DC5 suspended, DC6 pending; round r1 of DC1-DC3 open, not joined by DC3."""
    world = founded(("DC1", "DC2", "DC3", "DC4", "DC5", "DC6"))
    for org, approvers in (("DC4", ("DC1", "DC2")), ("DC5", ("DC1", "DC2", "DC3"))):
        for approver in approvers:
            world.ok(approver, "Membership:Approve", f"{org}MSP")
    for voter in ("DC1", "DC2", "DC3"):
        world.ok(voter, "Membership:Suspend", "DC5MSP")
    assert world.read("DC1", "Membership:Get", "DC5MSP")["status"] == "suspended"
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec(ROUND_PARTICIPANTS, hours=2))
    world.ok("DC2", "Rounds:Join", "r1")  # DC3 joins in an honest step
    return world


def pending_stage() -> World:
    """A channel where DC4 called Task:Init first, naming itself and DC1, and no auditor."""
    world = World()
    world.ok("DC4", "Task:Init", task_config(["DC4MSP", "DC1MSP"], auditors=()))
    return world


def status(world: World, org: str) -> str:
    raw = world.ledger.state.get(f"\x00standing\x00{org}MSP\x00")
    return json.loads(raw)["status"] if raw else "none"


def rounds(world: World) -> list[dict]:
    return [json.loads(v) for k, v in sorted(world.ledger.state.items()) if k.startswith("\x00round\x00")]


def live_round(world: World) -> dict | None:
    """The most recently opened round that is still open or fused, with its joins (read from the state: a query
    would move the ledger's clock)."""
    live = [r for r in rounds(world) if r["state"] in ("open", "fused")]
    if not live:
        return None
    rnd = max(live, key=lambda r: r["opened_at"])
    joined = [p for p in rnd["participants"] if f"\x00join\x00{rnd['round_id']}\x00{p}\x00" in world.ledger.state]
    return {**rnd, "joined": joined}


def live_id(world: World) -> str:
    rnd = live_round(world)
    return rnd["round_id"] if rnd else "r1"


# --- attacker moves --------------------------------------------------------------------------------


def forged_timestamp(world: World, draw: st.DrawFn) -> Attack:
    beyond = timedelta(seconds=draw(st.integers(1, 10 * 24 * 3600)))
    offset = DEFAULT_MAX_CLOCK_SKEW + beyond
    at = world.next_time + (offset if draw(st.booleans()) else -offset)
    org = draw(st.sampled_from(MEMBERS))
    rid = live_id(world)
    function, args = draw(
        st.sampled_from(
            [
                ("Rounds:Abort", (rid, "forged")),
                ("Rounds:ElectLeader", (rid, json.dumps((at + timedelta(hours=1)).isoformat()))),
                ("Rounds:Open", ("rx", world.round_spec(ROUND_PARTICIPANTS))),
                ("Summaries:Publish", (summary(org, "text"),)),
                ("Membership:Leave", ()),
                ("Membership:Suspend", ("DC2MSP",)),
                ("Audit:Members", ("10", "")),
            ]
        )
    )
    return Attack("forged timestamp", org, function, args, "ClockSkew", at=at)


def ahead_within_skew(world: World, draw: st.DrawFn) -> Attack | None:
    """A non-participant acts "after the deadline" by stamping its proposal just past it."""
    rnd = live_round(world)
    if rnd is None:
        return None
    deadline = datetime.fromisoformat(rnd["deadline"])
    lead = timedelta(seconds=draw(st.integers(2, int(DEFAULT_MAX_CLOCK_SKEW.total_seconds()) - 2)))
    if world.next_time >= deadline - lead:
        return None
    world.ledger.clock = deadline - lead  # the wall clock only moves forward
    at = deadline + timedelta(seconds=1)
    rid = rnd["round_id"]
    if rnd["state"] == "open" and draw(st.booleans()):
        voter = draw(st.sampled_from(ROUND_PARTICIPANTS))
        return Attack("early leader election", voter, "Rounds:ElectLeader", (rid, world.deadline(3)), "Conflict", at=at)
    return Attack("early abort by an outsider", "DC4", "Rounds:Abort", (rid, "mine"), "Forbidden", at=at)


def outsider_auditor(world: World, draw: st.DrawFn) -> Attack:
    cert = draw(st.sampled_from([OUTSIDER_AUDITOR_OU, OUTSIDER_AUDITOR_ATTR]))
    function, args = draw(
        st.sampled_from(
            [
                ("Membership:Get", ("DC1MSP",)),
                ("Audit:Members", ("10", "")),
                ("Audit:Activity", ("DC1MSP", "10", "")),
                ("Rounds:Get", (live_id(world),)),
                ("Task:Get", ()),
                ("Summaries:Get", ("DC1MSP", "text")),
                ("Membership:Approve", ("DC6MSP",)),
                ("Rounds:Abort", (live_id(world), "x")),
            ]
        )
    )
    return Attack("self-issued auditor certificate", cert, function, args, "Forbidden")


def named_auditor_writes(world: World, draw: st.DrawFn) -> Attack:
    function, args = draw(
        st.sampled_from(
            [
                ("Membership:Register", (profile("Auditor"),)),
                ("Membership:Leave", ()),
                ("Rounds:Abort", (live_id(world), "x")),
            ]
        )
    )
    return Attack("auditor write", "Auditor", function, args, "Forbidden")


def leave_and_return(world: World, draw: st.DrawFn) -> Attack:
    """The suspended DC5 leaves and registers again (both accepted), then acts as a member."""
    if status(world, "DC5") == "suspended":
        world.ok("DC5", "Membership:Leave")
    assert world.ok("DC5", "Membership:Register", profile("DC5"))["status"] == "suspended"
    function, args = draw(
        st.sampled_from(
            [
                ("Summaries:Publish", (summary("DC5", "image"),)),
                ("Membership:Approve", ("DC6MSP",)),
                ("Rounds:Open", ("r5", world.round_spec(("DC5", "DC1")))),
                ("Membership:Suspend", ("DC1MSP",)),
            ]
        )
    )
    return Attack("leave and return while suspended", "DC5", function, args, "Forbidden")


def suspended_votes(world: World, draw: st.DrawFn) -> Attack:
    function, args = draw(
        st.sampled_from(
            [
                ("Membership:Approve", ("DC6MSP",)),
                ("Membership:Approve", ("DC5MSP",)),
                ("Membership:Suspend", ("DC2MSP",)),
                ("Rounds:Abort", (live_id(world), "x")),
            ]
        )
    )
    assert status(world, "DC5") in ("suspended", "left")
    return Attack("vote of a suspended org", "DC5", function, args, "Forbidden")


def non_participant_open(world: World, draw: st.DrawFn) -> Attack:
    opener = draw(st.sampled_from(MEMBERS))
    others = tuple(o for o in MEMBERS if o != opener)
    chosen = draw(st.lists(st.sampled_from(others), min_size=2, max_size=3, unique=True))
    round_id = draw(st.sampled_from([live_id(world), "r99", "steal"]))
    spec = world.round_spec(tuple(chosen))
    return Attack("non-participant open", opener, "Rounds:Open", (round_id, spec), "Forbidden")


def not_the_leader(world: World, draw: st.DrawFn) -> Attack | None:
    rnd = live_round(world)
    if rnd is None or rnd["state"] != "open":
        return None
    impostor = draw(st.sampled_from([p.removesuffix("MSP") for p in rnd["participants"] if p != rnd["leader"]]))
    return Attack("fuse as non-leader", impostor, "Rounds:MarkFused", (rnd["round_id"], MODEL, "4096", "{}", world.deadline(), "null"),
                  "Forbidden")


def backdated_deadline(world: World, draw: st.DrawFn) -> Attack:
    """A participant stamps its proposal back (within the skew) to set a deadline that has passed, or will
    within the task's window, for every endorser: the leader-steering attack."""
    opener = draw(st.sampled_from(ROUND_PARTICIPANTS))
    back = timedelta(seconds=draw(st.integers(0, int(DEFAULT_MAX_CLOCK_SKEW.total_seconds()) - 2)))
    at = world.next_time - back
    deadline = world.next_time + timedelta(seconds=draw(st.integers(-300, 599)))
    spec = world.round_spec(ROUND_PARTICIPANTS, deadline=deadline.isoformat())
    return Attack("backdated deadline", opener, "Rounds:Open", (f"b{draw(st.integers(0, 99))}", spec), "BadRequest",
                  at=at)


def outsider_joins(world: World, draw: st.DrawFn) -> Attack | None:
    rnd = live_round(world)
    if rnd is None:
        return None
    return Attack("join by an outsider", draw(st.sampled_from(["DC4", "DC6"])), "Rounds:Join", (rnd["round_id"],),
                  "Forbidden")


def fuse_before_every_join(world: World, draw: st.DrawFn) -> Attack | None:
    rnd = live_round(world)
    if rnd is None or rnd["state"] != "open" or set(rnd["joined"]) == set(rnd["participants"]):
        return None
    return Attack("fuse before every participant joined", rnd["leader"].removesuffix("MSP"), "Rounds:MarkFused",
                  (rnd["round_id"], MODEL, "4096", "{}", world.deadline(), "null"), "Conflict")


def late_outsider_abort(world: World, draw: st.DrawFn) -> Attack | None:
    """Past a live round's deadline by every clock, a member outside the round still has no say in it."""
    rnd = live_round(world)
    if rnd is None:
        return None
    deadline = datetime.fromisoformat(rnd["deadline"])
    if world.next_time <= deadline:
        world.ledger.clock = deadline + timedelta(seconds=1)
    return Attack("late abort by an outsider", "DC4", "Rounds:Abort", (rnd["round_id"], "mine now"), "Forbidden")


def unasked_scoring(world: World, draw: st.DrawFn) -> Attack | None:
    """Scoring off the record: an outsider asks, or a participant asks of itself or of an outsider."""
    rnd = live_round(world)
    if rnd is None:
        return None
    participants = [p.removesuffix("MSP") for p in rnd["participants"]]
    request = {"request_id": f"s{draw(st.integers(0, 99))}", "ids_sha256": sha("ids"), "entity_count": 3}
    if draw(st.booleans()):
        asked = dict(request, targets=[rnd["participants"][0]])
        return Attack("scoring asked by an outsider", "DC4", "Scoring:Request", (rnd["round_id"], json.dumps(asked)),
                      "Forbidden")
    asker = draw(st.sampled_from(participants))
    target = draw(st.sampled_from([f"{asker}MSP", "DC4MSP"]))
    return Attack("scoring asked of a non-participant", asker, "Scoring:Request",
                  (rnd["round_id"], json.dumps(dict(request, targets=[target]))),
                  "Conflict" if rnd["state"] == "open" else "BadRequest")


def late_init(world: World, draw: st.DrawFn) -> Attack:
    org = draw(st.sampled_from(["DC4", "DC1", "DC6"]))
    config = task_config([f"{org}MSP", "DC2MSP"], auditors=())
    if draw(st.booleans()):
        return Attack("init after the task is active", org, "Task:Init", (config,), "Conflict")
    return Attack("confirm after the task is active", org, "Task:Confirm", (config_sha256(config),), "Conflict")


ATTACKS: list[Callable[[World, st.DrawFn], Attack | None]] = [
    forged_timestamp,
    forged_timestamp,
    ahead_within_skew,
    outsider_auditor,
    named_auditor_writes,
    leave_and_return,
    suspended_votes,
    non_participant_open,
    not_the_leader,
    late_init,
    backdated_deadline,
    outsider_joins,
    fuse_before_every_join,
    late_outsider_abort,
    unasked_scoring,
]


def first_caller_attack(world: World, draw: st.DrawFn) -> Attack:
    """On the channel DC4 initialised first: nothing runs, and the grab cannot be completed alone."""
    grab = config_sha256(task_config(["DC4MSP", "DC1MSP"], auditors=()))
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return Attack("first-caller init alone", "DC4", "Task:Init", (task_config(["DC4MSP"]),), "BadRequest")
    if choice == 1:
        return Attack("first-caller init for others", "DC4", "Task:Init", (task_config(),), "Forbidden")
    if choice == 2:
        who = draw(st.sampled_from(["DC2", "DC3", "Auditor"]))
        return Attack("confirm a grab one is not named in", who, "Task:Confirm", (grab,), "Forbidden")
    if choice == 3:
        return Attack("confirm one's own grab twice", "DC4", "Task:Confirm", (grab,), "Conflict")
    function, args = draw(
        st.sampled_from(
            [
                ("Membership:Register", (profile("DC4"),)),
                ("Summaries:Publish", (summary("DC4", "text"),)),
                ("Rounds:Open", ("r1", world.round_spec(("DC4", "DC1")))),
                ("Audit:Members", ("10", "")),
                ("Task:Get", ()),
            ]
        )
    )
    return Attack("act on a task that is not active", "DC4", function, args, "Conflict")


# --- honest moves ----------------------------------------------------------------------------------


def honest_step(world: World, draw: st.DrawFn, tally: Counter[str]) -> None:
    """Move the live round on (or open the next one), publish, or let time pass; refusals here are fine."""
    rnd = live_round(world)
    choice = draw(st.integers(0, 9))
    if choice == 0:
        world.ledger.clock += timedelta(minutes=draw(st.sampled_from([1, 30, 90, 180])))
        return
    if choice == 1:
        org = draw(st.sampled_from(["DC1", "DC2", "DC3", "DC4"]))
        response = world.submit(org, "Summaries:Publish", summary(org, "image" if org == "DC2" else "text"))
    elif rnd is None:
        opener = draw(st.sampled_from(ROUND_PARTICIPANTS))
        rid = f"r{len(rounds(world)) + 1}"
        response = world.submit(opener, "Rounds:Open", rid, world.round_spec(ROUND_PARTICIPANTS, hours=2))
    else:
        rid, leader = rnd["round_id"], rnd["leader"].removesuffix("MSP")
        others = [p.removesuffix("MSP") for p in rnd["participants"] if p != rnd["leader"]]
        unjoined = [p.removesuffix("MSP") for p in rnd["participants"] if p not in rnd["joined"]]
        if rnd["state"] == "open" and unjoined:
            response = world.submit(draw(st.sampled_from(unjoined)), "Rounds:Join", rid)
        elif rnd["state"] == "open" and choice < 6:
            org = draw(st.sampled_from(others))
            shard = {"receiver": rnd["leader"], "kind": "features", "sha256": sha(org), "bytes": 8, "entity_count": 2}
            response = world.submit(org, "Rounds:RecordExchange", rid, json.dumps(shard))
        elif rnd["state"] == "open":
            response = world.submit(leader, "Rounds:MarkFused", rid, MODEL, "4096", '{"acc": 0.9}', world.deadline(), "null")
        else:
            acked = [o for o in [leader, *others] if f"\x00ack\x00{rid}\x00{o}MSP\x00" in world.ledger.state]
            missing = [o for o in [leader, *others] if o not in acked]
            if missing:
                response = world.submit(draw(st.sampled_from(missing)), "Rounds:Acknowledge", rid, MODEL, "")
            else:
                response = world.submit(draw(st.sampled_from(acked)), "Rounds:Close", rid)
                tally["rounds closed"] += response.ok
    tally["honest accepted" if response.ok else "honest refused"] += 1


# --- the property ----------------------------------------------------------------------------------


def refused_unchanged(world: World, attack: Attack, tally: Counter[str]) -> None:
    before = world.ledger.snapshot()
    response = world.submit(attack.who, attack.function, *attack.args, at=attack.at, tx_id=attack.tx_id)
    where = f"{attack.move}: {attack.function} by {attack.who if isinstance(attack.who, str) else attack.who.mspid}"
    assert not response.ok, f"{where} was accepted"
    assert response.message.split(":")[0] == attack.error, f"{where}: {response.message}"
    assert world.ledger.snapshot() == before, f"{where} changed the ledger"
    tally[attack.move] += 1
    tally["refused"] += 1


def grind_the_leader(world: World, draw: st.DrawFn, tally: Counter[str]) -> None:
    """An active participant tries many transaction IDs and timestamps for one Rounds:Open."""
    opener = draw(st.sampled_from(["DC1", "DC2", "DC3"]))
    participants = tuple(sorted({opener, *draw(st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3))}))
    if len(participants) < 2:
        return
    spec = world.round_spec(participants)
    before = world.ledger.snapshot()
    leaders = set()
    for attempt in range(draw(st.integers(4, 12))):
        shift = timedelta(seconds=draw(st.integers(-240, 240)))
        endorsed = world.ledger.endorse(
            chaincode(), ORGS[opener], "Rounds:Open", f"g{attempt}", spec,
            tx_id=sha(f"nonce {draw(st.integers(0, 2**64))}"), at=world.next_time + shift,
        )  # fmt: skip
        assert endorsed.response.ok, endorsed.response.message
        leaders.add(json.loads(endorsed.response.payload)["leader"])
        tally["grinding attempts"] += 1
    assert len(leaders) == 1, f"the opener could choose among leaders {leaders}"
    assert world.ledger.snapshot() == before


def test_attacker_moves_are_refused_with_their_typed_error_and_change_nothing() -> None:
    tally: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def run(data: st.DataObject) -> None:
        world, pending = stage(), pending_stage()
        for _ in range(data.draw(st.integers(10, 18))):
            kind = data.draw(st.integers(0, 9))
            if kind < 3:
                honest_step(world, data.draw, tally)
            elif kind == 3:
                refused_unchanged(pending, first_caller_attack(pending, data.draw), tally)
            elif kind == 4:
                grind_the_leader(world, data.draw, tally)
            else:
                attack = data.draw(st.sampled_from(ATTACKS))(world, data.draw)
                if attack is not None:
                    refused_unchanged(world, attack, tally)

    run()
    assert tally["refused"] >= 200, tally
    moves = {"forged timestamp", "self-issued auditor certificate", "leave and return while suspended",
             "non-participant open", "vote of a suspended org", "act on a task that is not active",
             "first-caller init alone", "early abort by an outsider", "backdated deadline", "join by an outsider",
             "fuse before every participant joined", "late abort by an outsider", "scoring asked by an outsider",
             "scoring asked of a non-participant"}  # fmt: skip
    assert moves <= set(tally), tally
    assert tally["grinding attempts"] >= 100, tally
    assert tally["rounds closed"] > 0 and tally["honest accepted"] >= 100, tally
