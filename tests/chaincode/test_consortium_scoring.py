"""``Scoring``: a participant records what it wants scored (a commitment to the IDs, their count, the sites
asked) before any site sends features for it; each asked site records its reply; nobody else takes part."""

from __future__ import annotations

import json

import pytest
from cc_world import World, founded, sha

MODEL = sha("fused")


@pytest.fixture
def fused() -> tuple[World, dict]:
    """Round r1 of DC1-DC3, fused; DC4 an active member outside it."""
    world = founded(("DC1", "DC2", "DC3", "DC4"))
    world.ok("DC1", "Membership:Approve", "DC4MSP")
    world.ok("DC2", "Membership:Approve", "DC4MSP")
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec())
    rnd = world.join_all("r1")
    world.ok(rnd["leader"].removesuffix("MSP"), "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null")
    return world, rnd


def request(request_id: str = "q1", targets: tuple[str, ...] = ("DC2MSP", "DC3MSP"), count: int = 5) -> str:
    return json.dumps({"request_id": request_id, "ids_sha256": sha(f"salt+ids {request_id}"), "entity_count": count,
                       "targets": list(targets)})


def reply(count: int = 5) -> str:
    return json.dumps({"sha256": sha("features"), "bytes": 4 * 16 * count, "entity_count": count})


def test_a_recorded_request_gets_one_recorded_reply_per_site_asked(fused: tuple[World, dict]) -> None:
    world, _ = fused
    recorded = world.ok("DC1", "Scoring:Request", "r1", request())
    assert (recorded["requester"], recorded["targets"], recorded["entity_count"]) == ("DC1MSP", ["DC2MSP", "DC3MSP"],
                                                                                        5)
    assert world.ledger.events[-1].name == "ScoringRequested"
    answered = world.ok("DC2", "Scoring:Reply", "r1", "q1", reply())
    assert (answered["sender"], answered["receiver"], answered["sha256"]) == ("DC2MSP", "DC1MSP", sha("features"))
    assert world.ledger.events[-1].name == "ScoringReplied"
    view = world.read("Auditor", "Scoring:Get", "r1", "q1")
    assert view["request"]["request_id"] == "q1" and [r["sender"] for r in view["replies"]] == ["DC2MSP"]
    world.refused("DC2", "Scoring:Reply", "r1", "q1", reply(), status=409, fragment="already replied")


def test_only_participants_ask_and_only_the_sites_asked_reply(fused: tuple[World, dict]) -> None:
    world, _ = fused
    world.refused("DC4", "Scoring:Request", "r1", request(targets=("DC2MSP",)), status=403, fragment="not a participant")
    for targets in (("DC1MSP",), ("DC4MSP",), ("DC2MSP", "DC9MSP")):
        world.refused("DC1", "Scoring:Request", "r1", request(targets=targets), status=400, fragment="other participants")
    world.refused("DC1", "Scoring:Request", "r1", request(count=10_001), status=400, fragment="entity_count")
    world.refused("DC1", "Scoring:Request", "nope", request(), status=404)
    world.ok("DC1", "Scoring:Request", "r1", request(targets=("DC2MSP",)))
    world.refused("DC3", "Scoring:Request", "r1", request(targets=("DC1MSP",)), status=409, fragment="exists already")
    world.refused("DC3", "Scoring:Reply", "r1", "q1", reply(), status=403, fragment="not asked")
    world.refused("DC4", "Scoring:Reply", "r1", "q1", reply(), status=403)
    world.refused("DC2", "Scoring:Reply", "r1", "q1", reply(count=6), status=400, fragment="names 5")
    world.refused("DC2", "Scoring:Reply", "r1", "q9", reply(), status=404, fragment="no scoring request")


def test_no_scoring_before_a_model_is_published() -> None:
    world = founded()
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec())
    world.join_all("r1")
    world.refused("DC1", "Scoring:Request", "r1", request(), status=409, fragment="no published model")
