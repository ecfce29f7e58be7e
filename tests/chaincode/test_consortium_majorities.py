"""Majorities at their edges: 2, 3 and 8 members; who counts, and votes of orgs suspended or gone since."""

from __future__ import annotations

import json

import pytest
from cc_world import World, consortium, founded, initialised, profile


def status(world: World, org: str) -> str:
    return world.read("DC1", "Membership:Get", f"{org}MSP")["status"]


def register_newcomer(world: World, org: str) -> None:
    assert world.ok(org, "Membership:Register", profile(org))["status"] == "pending"


@pytest.mark.parametrize(
    ("size", "admit", "suspend"),
    [(2, 2, None), (3, 2, 2), (8, 5, 4)],
    ids=["2 members", "3 members", "8 members"],
)
def test_thresholds(size: int, admit: int, suspend: int | None) -> None:
    """Admission: more than half of the active members. Suspension: more than half of the others, two at least."""
    world = consortium(size)
    newcomer = "DC9"
    register_newcomer(world, newcomer)
    for i in range(1, admit + 1):
        result = world.ok(f"DC{i}", "Membership:Approve", f"{newcomer}MSP")
        assert result["electorate"] == size
        assert result["status"] == ("active" if i == admit else "pending"), (i, result)
    world.ok(newcomer, "Membership:Leave")
    target = f"DC{size}"
    if suspend is None:
        message = world.refused("DC1", "Membership:Suspend", f"{target}MSP", status=409, error="Conflict")
        assert "at least two other counted orgs; 1 counted" in message
        return
    voters = [f"DC{i}" for i in range(1, size)]
    for i, voter in enumerate(voters[:suspend], start=1):
        result = world.ok(voter, "Membership:Suspend", f"{target}MSP")
        assert result["electorate"] == size - 1
        assert result["status"] == ("suspended" if i == suspend else "active"), (i, result)
    event = json.loads(world.ledger.events[-1].payload)
    assert (event["votes"], event["needed"], event["electorate"]) == (suspend, suspend, size - 1)


def test_two_members_cannot_remove_each_other_but_admit_only_together() -> None:
    world = consortium(2)
    world.refused("DC2", "Membership:Suspend", "DC1MSP", status=409, fragment="no single member may suspend another")
    register_newcomer(world, "DC5")
    assert world.ok("DC1", "Membership:Approve", "DC5MSP")["status"] == "pending"
    world.refused("DC1", "Membership:Approve", "DC5MSP", status=409, fragment="already approved")
    assert world.ok("DC2", "Membership:Approve", "DC5MSP")["status"] == "active"


def test_founders_not_yet_registered_count_so_nothing_is_decided_behind_their_back() -> None:
    world = initialised()
    world.ok("DC1", "Membership:Register", profile("DC1"))
    register_newcomer(world, "DC4")
    result = world.ok("DC1", "Membership:Approve", "DC4MSP")
    assert (result["status"], result["electorate"]) == ("pending", 3)
    world.ok("DC2", "Membership:Register", profile("DC2"))
    assert world.ok("DC2", "Membership:Approve", "DC4MSP")["status"] == "active"


def test_approvals_of_an_org_suspended_since_no_longer_count() -> None:
    world = founded()
    register_newcomer(world, "DC4")
    assert world.ok("DC1", "Membership:Approve", "DC4MSP")["approvals"] == ["DC1MSP"]
    world.ok("DC2", "Membership:Suspend", "DC1MSP")
    assert world.ok("DC3", "Membership:Suspend", "DC1MSP")["status"] == "suspended"
    assert world.read("DC2", "Membership:Get", "DC4MSP")["approvals"] == []
    world.refused("DC1", "Membership:Approve", "DC4MSP", status=403, fragment="needs role member")
    assert world.ok("DC2", "Membership:Approve", "DC4MSP")["status"] == "pending", "DC1's approval must not count"
    # Reinstated, DC1 is counted again, but its approval from before its suspension is still void.
    world.ok("DC2", "Membership:Approve", "DC1MSP")
    assert world.ok("DC3", "Membership:Approve", "DC1MSP")["status"] == "active"
    assert world.read("DC2", "Membership:Get", "DC4MSP")["approvals"] == ["DC2MSP"]
    assert world.ok("DC1", "Membership:Approve", "DC4MSP")["status"] == "active"


def test_suspend_votes_of_an_org_gone_since_no_longer_count() -> None:
    world = consortium(8)
    world.ok("DC1", "Membership:Suspend", "DC8MSP")
    world.ok("DC2", "Membership:Suspend", "DC8MSP")
    world.ok("DC3", "Membership:Suspend", "DC8MSP")
    world.ok("DC1", "Membership:Leave")
    view = world.read("DC2", "Membership:Get", "DC8MSP")
    assert (view["suspend_votes"], view["electorate"]) == (["DC2MSP", "DC3MSP"], 6)
    # 7 active now, DC8 aside 6 count: 4 needed; DC1's vote is gone, so DC4's makes 3, DC5's makes 4.
    assert world.ok("DC4", "Membership:Suspend", "DC8MSP")["status"] == "active"
    assert world.ok("DC5", "Membership:Suspend", "DC8MSP")["status"] == "suspended"


def test_a_status_change_voids_the_votes_of_the_previous_question() -> None:
    world = founded()
    world.ok("DC1", "Membership:Suspend", "DC3MSP")
    assert world.ok("DC2", "Membership:Suspend", "DC3MSP")["status"] == "suspended"
    world.ok("DC1", "Membership:Approve", "DC3MSP")
    assert world.ok("DC2", "Membership:Approve", "DC3MSP")["status"] == "active"
    assert world.read("DC2", "Membership:Get", "DC3MSP")["suspend_votes"] == []
    assert world.ok("DC1", "Membership:Suspend", "DC3MSP")["status"] == "active", "old votes must not carry over"


def abort_round(world: World, participants: tuple[str, ...]) -> None:
    world.ok(participants[0], "Rounds:Open", "r1", world.round_spec(participants))


def test_abort_needs_a_majority_of_the_participants_active_now() -> None:
    world = consortium(3)
    abort_round(world, ("DC1", "DC2", "DC3"))
    assert world.ok("DC3", "Rounds:Abort", "r1", "bad data")["abort_votes"] == ["DC3MSP"]
    world.ok("DC1", "Membership:Suspend", "DC3MSP")
    world.ok("DC2", "Membership:Suspend", "DC3MSP")
    # DC3 is suspended: its vote no longer counts, and the majority is of the two active participants.
    voted = world.ok("DC1", "Rounds:Abort", "r1", "bad data")
    assert (voted["state"], voted["abort_votes"]) == ("open", ["DC1MSP"])
    assert world.ok("DC2", "Rounds:Abort", "r1", "bad data")["state"] == "aborted"


def test_abort_between_two_participants_needs_both() -> None:
    world = consortium(2)
    abort_round(world, ("DC1", "DC2"))
    assert world.ok("DC1", "Rounds:Abort", "r1", "x")["state"] == "open"
    assert world.ok("DC2", "Rounds:Abort", "r1", "x")["state"] == "aborted"


def test_abort_with_eight_participants_needs_five() -> None:
    world = consortium(8)
    abort_round(world, tuple(f"DC{i}" for i in range(1, 9)))
    states = [world.ok(f"DC{i}", "Rounds:Abort", "r1", "x")["state"] for i in range(1, 6)]
    assert states == ["open"] * 4 + ["aborted"]
