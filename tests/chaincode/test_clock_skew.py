"""Time chosen by the client: proposals outside the allowed skew of the endorser's clock are refused,
every deadline a transaction sets leaves the task's window after the endorser's own clock, and "after
the deadline" needs the endorser's own clock past it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cc_world import ORGS, World, founded, profile, task_config

from swarmfuse.chaincode.__main__ import load_chaincode
from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.contract import ContractRouter
from swarmfuse.chaincode.contract.canonical import utc_text
from swarmfuse.chaincode.contract.clock import (
    DEFAULT_MAX_CLOCK_SKEW,
    SKEW_ENV,
    ClockConfigError,
    endorser_clock,
    endorser_now,
    max_skew_from_env,
)

SKEW = DEFAULT_MAX_CLOCK_SKEW


@pytest.mark.parametrize("offset", [SKEW + timedelta(microseconds=1), -SKEW - timedelta(seconds=1), timedelta(days=3)])
def test_a_proposal_outside_the_skew_is_refused_with_clock_skew(offset: timedelta) -> None:
    world = founded()
    message = world.refused("DC1", "Membership:Leave", status=400, error="ClockSkew", at=world.next_time + offset)
    assert ("ahead of" if offset > timedelta(0) else "behind") in message and "at most 300 s" in message
    response = world.query("Auditor", "Audit:Members", "10", "", at=world.next_time + offset)
    assert (response.status, response.message.split(":")[0]) == (400, "ClockSkew")


@pytest.mark.parametrize("offset", [SKEW, -SKEW, timedelta(0)])
def test_within_the_skew_the_proposal_time_is_the_transaction_time(offset: timedelta) -> None:
    world = founded(("DC1", "DC2"))
    stamped = world.next_time + offset
    member = world.ok("DC3", "Membership:Register", profile("DC3"), at=stamped)
    assert member["registered_at"] == utc_text(stamped)


def test_the_skew_is_measured_against_the_endorsers_clock() -> None:
    world = founded()
    world.ledger.endorser_drift = SKEW + timedelta(seconds=1)
    world.refused("DC1", "Membership:Leave", status=400, error="ClockSkew", fragment="behind this endorser's clock")
    world.ledger.endorser_drift = timedelta(0)
    assert world.ok("DC1", "Membership:Leave")["status"] == "left"


def test_the_skew_is_a_setting_of_the_router() -> None:
    world = founded()
    contracts = [contract for contract, _ in create_chaincode().contracts]
    strict = ContractRouter(contracts, max_clock_skew=timedelta(seconds=2))
    late = world.next_time + timedelta(seconds=3)
    response = world.ledger.submit(strict, ORGS["DC1"], "Membership:Leave", at=late)
    assert (response.status, response.message.split(":")[0]) == (400, "ClockSkew")
    assert world.submit("DC1", "Membership:Leave", at=world.next_time + timedelta(seconds=3)).status == 200
    with pytest.raises(ValueError, match="positive"):
        ContractRouter([], max_clock_skew=timedelta(0))


def test_the_skew_comes_from_the_chaincode_servers_environment() -> None:
    assert max_skew_from_env({}) == SKEW == timedelta(minutes=5)
    assert max_skew_from_env({SKEW_ENV: " 30 "}) == timedelta(seconds=30)
    assert max_skew_from_env({SKEW_ENV: "0.5"}) == timedelta(milliseconds=500)
    for bad in ("soon", "0", "-5", "100000", "nan"):
        with pytest.raises(ClockConfigError, match=SKEW_ENV):
            max_skew_from_env({SKEW_ENV: bad})
    served = load_chaincode({SKEW_ENV: "42"})
    assert isinstance(served, ContractRouter) and served.max_clock_skew == timedelta(seconds=42)
    default = load_chaincode({})
    assert isinstance(default, ContractRouter) and default.max_clock_skew == SKEW
    with pytest.raises(ClockConfigError):
        load_chaincode({SKEW_ENV: "x"})


def test_the_endorser_clock_is_the_system_clock_unless_a_simulation_sets_it() -> None:
    before = datetime.now(UTC)
    assert before <= endorser_now() <= datetime.now(UTC)
    fixed = datetime(2030, 1, 1, tzinfo=UTC)
    with endorser_clock(lambda: fixed):
        assert endorser_now() == fixed
    assert endorser_now() >= before


def test_nobody_acts_after_the_deadline_early_by_stamping_its_proposal_ahead() -> None:
    world = founded()
    rnd = world.ok("DC1", "Rounds:Open", "r1", world.round_spec(("DC1", "DC2"), hours=1))
    deadline = datetime.fromisoformat(rnd["deadline"])
    # Stamped past the deadline, an hour ahead: every endorser's clock check refuses it.
    far = deadline + timedelta(seconds=1)
    world.refused("DC2", "Rounds:Abort", "r1", "mine", status=400, error="ClockSkew", at=far)
    # Four minutes before the deadline, stamped 30 s past it: within the skew and past the deadline by
    # its own stamp, but not by the endorser's clock: DC2's abort is one vote of the two it takes, and
    # no new leader may be elected.
    world.ledger.clock = deadline - timedelta(minutes=4)
    stamped = deadline + timedelta(seconds=30)
    voted = world.ok("DC2", "Rounds:Abort", "r1", "mine", at=stamped)
    assert (voted["state"], voted["abort_votes"]) == ("open", ["DC2MSP"])
    world.refused("DC1", "Rounds:ElectLeader", "r1", world.deadline(2), status=409, fragment="has until", at=stamped)
    # Once the endorser's clock is past the deadline too, one participant aborts alone.
    world.ledger.clock = deadline
    assert world.ok("DC1", "Rounds:Abort", "r1", "late")["state"] == "aborted"


def test_after_the_deadline_an_outsider_still_cannot_abort() -> None:
    world = founded()
    rnd = world.ok("DC1", "Rounds:Open", "r1", world.round_spec(("DC1", "DC2"), hours=1))
    world.refused("DC3", "Rounds:Abort", "r1", "mine", status=403, fragment="not a participant")
    world.ledger.clock = datetime.fromisoformat(rnd["deadline"]) + timedelta(hours=1)
    world.refused("DC3", "Rounds:Abort", "r1", "mine", status=403, fragment="not a participant")


def test_a_proposal_stamped_behind_the_deadline_is_treated_as_before_it() -> None:
    world = founded()
    rnd = world.ok("DC1", "Rounds:Open", "r1", world.round_spec(("DC1", "DC2"), hours=1))
    deadline = datetime.fromisoformat(rnd["deadline"])
    world.ledger.clock = deadline + timedelta(minutes=1)
    voted = world.ok("DC2", "Rounds:Abort", "r1", "x", at=deadline - timedelta(minutes=1))
    assert (voted["state"], voted["abort_votes"]) == ("open", ["DC2MSP"])


def test_a_backdated_proposal_cannot_set_a_deadline_that_has_passed_for_the_endorsers() -> None:
    """The leader-steering attack: stamped 4.5 minutes back (within the skew) with a deadline 4 minutes
    back, a round would be past its deadline for every endorser at once, and its participants could
    elect leaders one block after another. Every deadline must leave the task's window after the
    endorser's clock, whatever the proposal's stamp."""
    world = founded()
    clock = world.next_time
    backdated = clock - timedelta(minutes=4, seconds=30)
    spec = json.loads(world.round_spec(("DC1", "DC2")))
    early = dict(spec, deadline=(clock - timedelta(minutes=4)).isoformat())
    world.refused("DC2", "Rounds:Open", "r1", json.dumps(early), status=400, fragment="deadline window", at=backdated)
    for short in (timedelta(minutes=9), timedelta(minutes=10)):  # within the default window of 10 minutes
        near = dict(spec, deadline=(world.next_time + short).isoformat())
        world.refused("DC2", "Rounds:Open", "r1", json.dumps(near), status=400, fragment="600 s")
    fair = dict(spec, deadline=(world.next_time + timedelta(minutes=11)).isoformat())
    rnd = world.ok("DC2", "Rounds:Open", "r1", json.dumps(fair), at=world.next_time - timedelta(minutes=4))
    # The new leader's deadline follows the same rule, by the endorser's clock.
    world.ledger.clock = datetime.fromisoformat(rnd["deadline"]) + timedelta(seconds=1)
    soon = json.dumps((world.next_time + timedelta(minutes=5)).isoformat())
    world.refused("DC1", "Rounds:ElectLeader", "r1", soon, status=400, fragment="deadline window")
    elected = world.ok("DC1", "Rounds:ElectLeader", "r1", world.deadline(1))
    assert elected["leader"] != rnd["leader"]


def test_the_window_is_the_tasks() -> None:
    world = founded(deadline_window_s=3600)
    assert world.read("DC1", "Task:Get")["deadline_window_s"] == 3600
    spec = json.loads(world.round_spec(("DC1", "DC2")))
    short = dict(spec, deadline=(world.next_time + timedelta(minutes=59)).isoformat())
    world.refused("DC1", "Rounds:Open", "r1", json.dumps(short), status=400, fragment="3600 s")
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec(("DC1", "DC2"), hours=1.1))
    for bad in (59, 7 * 86_400 + 1):
        response = World().submit("DC1", "Task:Init", task_config(deadline_window_s=bad))
        assert (response.status, response.message.split(":")[0]) == (400, "BadRequest"), response.message


def test_a_fused_round_gives_a_fresh_window_to_acknowledge() -> None:
    """Fused just before its deadline, a round is not abortable by one participant the moment after: the
    leader sets a fresh acknowledgement deadline, at least the task's window after the endorser's clock."""
    world = founded()
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec(("DC1", "DC2"), hours=1))
    rnd = world.join_all("r1")
    leader = rnd["leader"].removesuffix("MSP")
    other = "DC2" if leader == "DC1" else "DC1"
    deadline = datetime.fromisoformat(rnd["deadline"])
    world.ledger.clock = deadline - timedelta(seconds=30)
    model = "ab" * 32
    world.refused(leader, "Rounds:MarkFused", "r1", model, "4096", "{}", json.dumps(deadline.isoformat()), "null", status=400,
                  fragment="acknowledgement deadline")  # fmt: skip
    fused = world.ok(leader, "Rounds:MarkFused", "r1", model, "4096", "{}", world.deadline(1), "null")
    assert datetime.fromisoformat(fused["deadline"]) >= world.now + timedelta(minutes=10)
    world.ledger.clock = deadline + timedelta(minutes=1)  # the round's first deadline has passed
    voted = world.ok(leader, "Rounds:Abort", "r1", "impatient")
    assert (voted["state"], voted["abort_votes"]) == ("fused", [rnd["leader"]])
    acked = world.ok(other, "Rounds:Acknowledge", "r1", model, "")
    assert acked["model_sha256"] == model


def test_deadlines_with_any_offset_are_stored_in_utc() -> None:
    world = founded()
    local = (world.now + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    spec = json.loads(world.round_spec(("DC1", "DC2")))
    rnd = world.ok("DC1", "Rounds:Open", "r1", json.dumps(dict(spec, deadline=local.isoformat())))
    assert rnd["deadline"] == utc_text(local) and rnd["deadline"].endswith("Z")
    naive = dict(spec, deadline=local.replace(tzinfo=None).isoformat())
    world.refused("DC1", "Rounds:Open", "r2", json.dumps(naive), status=400, fragment="time zone")
