"""``Agreement``: terms every founder signs, in force for the rounds opened after; amendments follow the same
path and never change a past round's terms; no founder, and no other member, can put terms in force alone."""

from __future__ import annotations

import json
from typing import Any

from cc_world import World, consortium, sha

from swarmfuse.chaincode.contract.endorsement import owner_and_majority
from swarmfuse.chaincode.contracts import keys

FOUNDERS = ["DC1MSP", "DC2MSP", "DC3MSP"]


def terms(**changes: Any) -> str:
    spec = {
        "model_spec_sha256": sha("fusion-head-v1"),
        "fusion_method": "intermediate",
        "extractors": {"text": "label-free site extractor", "image": "label-free site extractor"},
        "purpose": "group classification of emoji",
        "exchange_kinds": ["features", "labels", "model"],
        "retention_days": 30,
        "reward": {"method": "shapley", "metric": "accuracy", "units_per_round": 100,
                   "label_holder_share_percent": 20},
        "legal_text_sha256": sha("contract.pdf"),
    }
    spec.update(changes)
    return json.dumps(spec)


def agreed(world: World, spec: str) -> dict[str, Any]:
    proposal = world.ok("DC1", "Agreement:Propose", spec)
    for org in ("DC2", "DC3"):
        world.ok(org, "Agreement:Confirm", proposal["agreement_sha256"])
    return world.read("DC1", "Agreement:Get")


def test_terms_are_in_force_only_once_every_founder_confirmed_them() -> None:
    world = consortium(4)  # DC4 was admitted: a member, not a founder
    proposal = world.ok("DC1", "Agreement:Propose", terms())
    assert (proposal["status"], proposal["confirmed_by"], proposal["awaiting"]) == ("pending", ["DC1MSP"],
                                                                                    ["DC2MSP", "DC3MSP"])
    digest = proposal["agreement_sha256"]
    world.refused("DC4", "Agreement:Confirm", digest, status=403, fragment="not a founder")
    world.refused("DC4", "Agreement:Propose", terms(purpose="something else"), status=403, fragment="not a founder")
    world.ok("DC2", "Agreement:Confirm", digest)
    world.refused("DC2", "Agreement:Confirm", digest, status=409, fragment="already confirmed")
    world.refused("DC1", "Agreement:Get", status=404, fragment="no terms yet")
    last = world.ok("DC3", "Agreement:Confirm", digest)
    assert (last["status"], last["awaiting"]) == ("active", [])
    agreement = world.read("DC4", "Agreement:Get")
    assert (agreement["agreement_sha256"], agreement["version"], agreement["confirmed_by"]) == (digest, 1, FOUNDERS)
    world.refused("DC2", "Agreement:Propose", terms(), status=409, fragment="already in force")
    for org in FOUNDERS:  # each confirmation is that founder's own key, under its own policy
        key = keys.agreement_confirmation_key(digest, org)
        assert world.ledger.policies[key] == owner_and_majority(org, FOUNDERS)


def test_rounds_follow_the_terms_in_force_and_keep_their_own() -> None:
    world = consortium(3)
    world.ok("DC1", "Rounds:Open", "before", world.round_spec())  # no terms yet: a round names none
    first = agreed(world, terms())
    digest = first["agreement_sha256"]
    world.refused("DC1", "Rounds:Open", "r1", world.round_spec(), status=400, fragment="must name it")
    world.refused("DC1", "Rounds:Open", "r1", world.round_spec(agreement_sha256=digest, method="late"),
                  status=400, fragment="fixes model")
    world.refused("DC1", "Rounds:Open", "r1", world.round_spec(agreement_sha256=digest,
                                                             model_spec_sha256=sha("other head")),
                  status=400, fragment="fixes model")
    rnd = world.ok("DC1", "Rounds:Open", "r1", world.round_spec(agreement_sha256=digest))
    assert rnd["agreement_sha256"] == digest
    rnd = world.join_all("r1")
    sender = next(p for p in rnd["participants"] if p != rnd["leader"]).removesuffix("MSP")

    def shard(kind: str) -> str:
        return json.dumps({"receiver": rnd["leader"], "kind": kind, "sha256": sha(kind), "bytes": 1,
                           "entity_count": 1})

    world.refused(sender, "Rounds:RecordExchange", "r1", shard("raw-rows"), status=400,
                  fragment="allows exchanges of features, labels, model, not 'raw-rows'")
    world.ok(sender, "Rounds:RecordExchange", "r1", shard("features"))

    amended = agreed(world, terms(exchange_kinds=["features", "model", "raw-rows"]))
    assert (amended["version"], [a["version"] for a in world.read("DC1", "Agreement:History", "10")["items"]]) == \
        (2, [1, 2])
    world.refused(sender, "Rounds:RecordExchange", "r1", shard("raw-rows"), status=400, fragment="not 'raw-rows'")
    world.ok(sender, "Rounds:RecordExchange", "r1", shard("labels"))  # r1 keeps the terms it was opened under
    world.refused("DC1", "Rounds:Open", "r2", world.round_spec(agreement_sha256=digest), status=400,
                  fragment=f"{amended['agreement_sha256']} (version 2) is in force")
