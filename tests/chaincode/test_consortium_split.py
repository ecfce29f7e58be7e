"""Split learning on the ledger: a round with ``split_epochs`` takes, per feature site, ``features.1`` to the leader,
``gradients.1`` back, ... ``gradients.<n>``, then the site's final ``features``, naming the fine-tuned extractor's
ONNX SHA-256; nothing out of that order, between other sites, or in a round without those epochs; under an agreement
only when it allows both kinds and makes neither a DP release."""

from __future__ import annotations

import json

from cc_world import World, founded, sha
from test_consortium_agreement import agreed, terms

from swarmfuse.chaincode.contracts.records import kind_epoch


def exchange(receiver: str, kind: str, extractor: str | None = None) -> str:
    return json.dumps({"receiver": receiver, "kind": kind, "sha256": sha(receiver + kind), "bytes": 4096,
                       "entity_count": 100, **({"extractor_onnx_sha256": extractor} if extractor else {})})


def split_round(world: World, round_id: str = "s1", epochs: int = 2, **changes: object) -> dict:
    world.ok("DC1", "Rounds:Open", round_id, world.round_spec(split_epochs=epochs, **changes))
    return world.join_all(round_id)


def test_each_feature_site_alternates_features_and_gradients_with_the_leader_then_sends_its_final_features() -> None:
    world = founded()
    rnd = split_round(world)
    leader = rnd["leader"]
    lead = leader.removesuffix("MSP")
    sites = [p.removesuffix("MSP") for p in rnd["participants"] if p != leader]
    first, second = sites
    world.refused(first, "Rounds:RecordExchange", "s1", exchange(leader, "features.2"), status=409,
                  fragment=f"{leader}'s gradients.1 exchange to {first}MSP comes first")
    world.refused(lead, "Rounds:RecordExchange", "s1", exchange(f"{first}MSP", "gradients.1"), status=409,
                  fragment=f"{first}MSP's features.1 exchange to {leader} comes first")
    world.refused(first, "Rounds:RecordExchange", "s1", exchange(leader, "features", sha("tuned")), status=409,
                  fragment="gradients.2 exchange")
    for epoch in (1, 2):
        for site in sites:
            world.ok(site, "Rounds:RecordExchange", "s1", exchange(leader, f"features.{epoch}"))
            world.ok(lead, "Rounds:RecordExchange", "s1", exchange(f"{site}MSP", f"gradients.{epoch}"))
    world.ok(first, "Rounds:RecordExchange", "s1", exchange(leader, "features", sha("tuned")))
    world.refused(second, "Rounds:RecordExchange", "s1", exchange(leader, "features.2"), status=409,
                  fragment="already recorded")
    recorded = world.read("Auditor", "Audit:Exchanges", "s1", "100", "")["items"]
    assert sorted(e["kind"] for e in recorded if e["sender"] == f"{first}MSP") == ["features", "features.1",
                                                                                    "features.2"]
    assert sorted(e["kind"] for e in recorded if e["sender"] == leader) == ["gradients.1"] * 2 + ["gradients.2"] * 2
    assert {e["receiver"] for e in recorded if e["sender"] == leader} == {f"{s}MSP" for s in sites}


def test_split_exchanges_go_only_between_a_feature_site_and_the_leader_within_the_rounds_epochs() -> None:
    world = founded()
    rnd = split_round(world)
    leader = rnd["leader"]
    first, second = (p for p in rnd["participants"] if p != leader)
    name = first.removesuffix("MSP")
    world.refused(name, "Rounds:RecordExchange", "s1", exchange(leader, "features.3"), status=400,
                  fragment="2 split-learning epochs: no features.3")
    world.refused(name, "Rounds:RecordExchange", "s1", exchange(second, "features.1"), status=400,
                  fragment="from a feature site to the leader")
    world.refused(name, "Rounds:RecordExchange", "s1", exchange(second, "gradients.1"), status=400,
                  fragment="from the leader")
    world.refused(name, "Rounds:RecordExchange", "s1", exchange(leader, "labels.1"), status=400,
                  fragment="no labels.1 exchange")
    world.ok("DC1", "Rounds:Open", "plain", world.round_spec())
    plain = world.join_all("plain")
    sender = next(p for p in plain["participants"] if p != plain["leader"]).removesuffix("MSP")
    world.refused(sender, "Rounds:RecordExchange", "plain", exchange(plain["leader"], "features.1"), status=400,
                  fragment="0 split-learning epochs")
    world.ok(sender, "Rounds:RecordExchange", "plain", exchange(plain["leader"], "features"))  # no epochs to wait for


def test_final_features_of_a_split_round_name_their_extractor_and_only_features_name_one() -> None:
    world = founded()
    rnd = split_round(world, epochs=1)
    leader = rnd["leader"]
    site = next(p for p in rnd["participants"] if p != leader).removesuffix("MSP")
    tuned = sha("fine-tuned extractor")
    world.refused(site, "Rounds:RecordExchange", "s1", exchange(leader, "features.1", tuned), status=400,
                  fragment="'features.1' carries no extractor_onnx_sha256")
    world.ok(site, "Rounds:RecordExchange", "s1", exchange(leader, "features.1"))
    world.refused(leader.removesuffix("MSP"), "Rounds:RecordExchange", "s1",
                  exchange(f"{site}MSP", "gradients.1", tuned), status=400, fragment="only a features exchange")
    world.ok(leader.removesuffix("MSP"), "Rounds:RecordExchange", "s1", exchange(f"{site}MSP", "gradients.1"))
    world.refused(site, "Rounds:RecordExchange", "s1", exchange(leader, "features"), status=400,
                  fragment="must name the fine-tuned extractor's ONNX SHA-256")
    world.refused(site, "Rounds:RecordExchange", "s1", exchange(leader, "features", "F" * 64), status=400,
                  fragment="extractor_onnx_sha256")
    recorded = world.ok(site, "Rounds:RecordExchange", "s1", exchange(leader, "features", tuned))
    assert recorded["extractor_onnx_sha256"] == tuned
    finals = [e for e in world.read("Auditor", "Audit:Exchanges", "s1", "100", "")["items"] if e["kind"] == "features"]
    assert [(e["sender"], e["extractor_onnx_sha256"]) for e in finals] == [(f"{site}MSP", tuned)]
    world.ok("DC1", "Rounds:Open", "plain", world.round_spec())
    plain = world.join_all("plain")
    senders = [p.removesuffix("MSP") for p in plain["participants"] if p != plain["leader"]]
    world.ok(senders[0], "Rounds:RecordExchange", "plain", exchange(plain["leader"], "features"))  # optional here
    named = world.ok(senders[1], "Rounds:RecordExchange", "plain", exchange(plain["leader"], "features", tuned))
    assert named["extractor_onnx_sha256"] == tuned
    world.refused(senders[0], "Rounds:RecordExchange", "plain", exchange(plain["leader"], "labels", tuned), status=400,
                  fragment="only a features exchange")


def test_under_an_agreement_split_rounds_need_both_kinds_allowed_and_no_dp_on_them() -> None:
    world = founded()
    without = agreed(world, terms())["agreement_sha256"]  # features, labels, model: no gradients
    world.refused("DC1", "Rounds:Open", "s1", world.round_spec(split_epochs=2, agreement_sha256=without), status=400,
                  fragment="does not allow gradients")
    allowing = agreed(world, terms(exchange_kinds=["features", "gradients", "labels"]))["agreement_sha256"]
    world.ok("DC1", "Rounds:Open", "s1", world.round_spec(split_epochs=2, agreement_sha256=allowing))


def test_epoch_kinds_parse_only_in_their_canonical_form() -> None:
    assert kind_epoch("gradients.12") == ("gradients", 12)
    assert kind_epoch("features") == ("features", None)
    assert kind_epoch("features.01")[1] is None and kind_epoch("features.x")[1] is None


def test_a_leader_that_is_a_feature_site_records_its_own_fine_tuned_extractor_before_the_model() -> None:
    """Its own final features are fused, never sent: no exchange names its extractor, so it records it itself, once,
    and cannot publish the model before; nobody else records it, nor in a round without split learning."""
    world = founded()
    rnd = split_round(world, epochs=1)
    leader = rnd["leader"]
    lead = leader.removesuffix("MSP")
    other = next(p for p in rnd["participants"] if p != leader).removesuffix("MSP")
    tuned = sha("the leader's fine-tuned extractor")
    model = (sha("model"), "4096", "{}", world.deadline(), "null")
    world.refused(lead, "Rounds:MarkFused", "s1", *model, status=409, fragment="RecordLeaderExtractor")
    world.refused(other, "Rounds:RecordLeaderExtractor", "s1", tuned, status=403, fragment=f"only the leader {leader}")
    world.refused(lead, "Rounds:RecordLeaderExtractor", "s1", "F" * 64, status=400)
    world.refused(lead, "Rounds:GetLeaderExtractor", "s1", status=404, fragment="no extractor of the leader")
    recorded = world.ok(lead, "Rounds:RecordLeaderExtractor", "s1", tuned)
    assert (recorded["org"], recorded["extractor_onnx_sha256"]) == (leader, tuned)
    assert world.ledger.events[-1].name == "LeaderExtractorRecorded"
    world.refused(lead, "Rounds:RecordLeaderExtractor", "s1", sha("another"), status=409, fragment="already recorded")
    assert world.read("Auditor", "Audit:Exchanges", "s1", "100", "")["items"] == []  # no exchange: its own record
    assert world.read("Auditor", "Rounds:GetLeaderExtractor", "s1")["extractor_onnx_sha256"] == tuned
    assert world.ok(lead, "Rounds:MarkFused", "s1", *model)["state"] == "fused"
    world.refused(lead, "Rounds:RecordLeaderExtractor", "s1", tuned, status=409, fragment="is fused")

    world.ok("DC1", "Rounds:Open", "plain", world.round_spec())
    plain = world.join_all("plain")
    world.refused(plain["leader"].removesuffix("MSP"), "Rounds:RecordLeaderExtractor", "plain", tuned, status=400,
                  fragment="no split learning")
