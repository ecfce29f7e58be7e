"""Privacy budgets on the ledger: under agreed DP terms every feature exchange is a release made as agreed, of
the sender's summarised data set, charged to that site's budget for it in exact arithmetic; a release past
the budget is refused (nothing recorded, so the site sends nothing); the same release again costs nothing."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from typing import Any

from cc_world import World, consortium, sha, summary
from test_consortium_agreement import agreed, terms

from swarmfuse.chaincode.contract.endorsement import owner_and_majority
from swarmfuse.chaincode.contracts import keys

SIGMA = "1.081161849521"  # epsilon 4 at delta 1e-5 (client/privacy/accountant.noise_multiplier, rounded up)
PRIVACY = {"mechanism": "gaussian", "kinds": ["features"], "delta": "0.00001", "release_epsilon": "4",
           "budget_epsilon": "6", "budget_sigma": "0.80", "clip": "1", "projection_dim": 32}


ROUND_IDS = itertools.count(1)


def release(sender: str, **changes: Any) -> dict[str, Any]:
    made = {"mechanism": "gaussian", "clip": "1.0", "noise_multiplier": SIGMA, "delta": "0.00001",
            "epsilon": "3.999999", "projection_dim": 32, "projection_sha256": sha("projection"),
            "dataset_sha256": sha(f"{sender.removesuffix('MSP')}/image/manifest/100"), "accountant": "dp-accounting 0.6.0"}
    return made | changes


def exchange(receiver: str, digest: str, privacy: dict[str, Any] | None, kind: str = "features") -> str:
    record = {"receiver": receiver, "kind": kind, "sha256": digest, "bytes": 64, "entity_count": 4}
    return json.dumps(record | ({"privacy": privacy} if privacy is not None else {}))


def round_led_by_another(world: World, digest: str, sender: str) -> tuple[str, str]:
    """A new round of DC1-DC3 under the agreed terms that ``sender`` does not lead: its ID and its leader."""
    for _ in range(4):
        rid = f"p{next(ROUND_IDS)}"
        world.ok("DC1", "Rounds:Open", rid, world.round_spec(agreement_sha256=digest))
        leader = world.join_all(rid)["leader"]
        if leader != f"{sender}MSP":
            return rid, leader
    raise AssertionError(f"{sender} led every round")


def test_feature_releases_are_charged_to_the_senders_budget_and_refused_beyond_it() -> None:
    world = consortium(3)
    for org, modality in (("DC1", "text"), ("DC2", "image"), ("DC3", "image")):
        world.ok(org, "Summaries:Publish", summary(org, modality))
    digest = agreed(world, terms(privacy=PRIVACY))["agreement_sha256"]
    sender, me = "DC2", "DC2MSP"  # image features
    p1, leader = round_led_by_another(world, digest, sender)

    world.refused(sender, "Rounds:RecordExchange", p1, exchange(leader, sha("raw"), None), status=400,
                  fragment="DP release: say how it was made")
    world.refused(sender, "Rounds:RecordExchange", p1, exchange(leader, sha("c"), release(me, clip="2")),
                  status=400, fragment="not the agreed ones")
    world.refused(sender, "Rounds:RecordExchange", p1, exchange(leader, sha("d"), release(me, dataset_sha256=sha("x"))),
                  status=400, fragment="summary names data set")
    world.refused(sender, "Rounds:RecordExchange", p1, exchange(leader, sha("l"), release(me), kind="labels"),
                  status=400, fragment="makes no labels exchange a DP release")

    world.ok(sender, "Rounds:RecordExchange", p1, exchange(leader, sha("first"), release(me)))
    key = keys.budget_key(me, sha("DC2/image/manifest/100"))
    budget = json.loads(world.ledger.state[key])
    assert Fraction(budget["mu_squared"]) == 1 / Fraction(SIGMA) ** 2 and budget["releases"] == [sha("first")]
    assert world.ledger.policies[key] == owner_and_majority(me, ["DC1MSP", "DC2MSP", "DC3MSP"])

    # the same release in a later round: no new information, nothing spent
    p2, leader2 = round_led_by_another(world, digest, sender)
    world.ok(sender, "Rounds:RecordExchange", p2, exchange(leader2, sha("first"), release(me)))
    assert json.loads(world.ledger.state[key]) == budget
    # a second, fresh release: 2 / sigma^2 = 1.71 > 1 / 0.80^2 = 1.5625: refused, nothing recorded
    p3, leader3 = round_led_by_another(world, digest, sender)
    world.refused(sender, "Rounds:RecordExchange", p3, exchange(leader3, sha("second"), release(me)),
                  status=409, fragment="above the agreed budget")
    assert json.loads(world.ledger.state[key]) == budget
    assert world.read("DC1", "Audit:Exchanges", p3, "10", "")["items"] == []
