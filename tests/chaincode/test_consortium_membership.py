"""Membership and summaries: registration, majority admission, suspension, leaving, versions, limits."""

from __future__ import annotations

import json

from cc_identities import DC1_AUDITOR_ATTR, DC1_AUDITOR_OU, OUTSIDER_AUDITOR_ATTR, OUTSIDER_AUDITOR_OU
from cc_world import World, founded, profile, provenance, sha, summary


def test_founders_are_admitted_at_registration() -> None:
    world = founded()
    member = world.read("DC2", "Membership:Get", "DC1MSP")
    assert member["status"] == "active" and member["org"] == "DC1MSP" and member["modalities"] == ["text"]
    assert world.ledger.events[-1].name == "MemberRegistered"


def test_org_is_taken_from_the_creator_never_from_arguments() -> None:
    world = founded(("DC1",))
    sneaky = json.loads(profile("DC2"))
    sneaky["org"] = "DC2MSP"
    world.refused("DC1", "Membership:Register", json.dumps(sneaky), status=400, fragment="org")


def test_outsider_needs_a_majority_of_members() -> None:
    world = founded()
    assert world.ok("DC4", "Membership:Register", profile("DC4"))["status"] == "pending"
    world.refused("DC4", "Summaries:Publish", summary("DC4", "text"), status=403, fragment="needs role member")
    world.refused("DC4", "Membership:Approve", "DC4MSP", status=403)
    first = world.ok("DC1", "Membership:Approve", "DC4MSP")
    assert (first["status"], first["approvals"]) == ("pending", ["DC1MSP"])
    world.refused("DC1", "Membership:Approve", "DC4MSP", status=409, fragment="already approved")
    second = world.ok("DC2", "Membership:Approve", "DC4MSP")
    assert second["status"] == "active"
    event = json.loads(world.ledger.events[-1].payload)
    assert (world.ledger.events[-1].name, event["approvals"], event["needed"]) == ("MemberApproved", 2, 2)
    world.refused("DC3", "Membership:Approve", "DC4MSP", status=409, fragment="only pending or suspended")


def test_approval_rejections() -> None:
    world = founded()
    world.refused("DC1", "Membership:Approve", "DC1MSP", status=400, fragment="cannot approve itself")
    world.refused("DC1", "Membership:Approve", "DC9MSP", status=404, fragment="DC9MSP has not registered")
    world.refused("DC1", "Membership:Approve", "not an msp!", status=400, fragment="argument 'org'")
    world.refused("DC1", "Membership:Register", profile("DC1"), status=409, fragment="already registered")


def test_suspend_by_majority_then_reinstate() -> None:
    world = founded()
    world.refused("DC1", "Membership:Suspend", "DC1MSP", status=400, fragment="use Membership:Leave")
    assert world.ok("DC1", "Membership:Suspend", "DC3MSP")["status"] == "active"
    world.refused("DC1", "Membership:Suspend", "DC3MSP", status=409, fragment="already voted")
    assert world.ok("DC2", "Membership:Suspend", "DC3MSP")["status"] == "suspended"
    world.refused("DC3", "Summaries:Publish", summary("DC3", "text"), status=403)
    assert world.read("DC3", "Membership:Get", "DC3MSP")["status"] == "suspended"
    world.ok("DC1", "Membership:Approve", "DC3MSP")
    assert world.ok("DC2", "Membership:Approve", "DC3MSP")["status"] == "active"


def test_a_founder_that_left_comes_back_pending_and_needs_a_majority() -> None:
    world = founded()
    assert world.ok("DC2", "Membership:Leave")["status"] == "left"
    world.refused("DC2", "Membership:Leave", status=409, fragment="already left")
    world.refused("DC4", "Membership:Leave", status=404)
    back = world.ok("DC2", "Membership:Register", profile("DC2"))
    assert (back["status"], back["left_from"]) == ("pending", None)
    world.refused("DC2", "Summaries:Publish", summary("DC2", "image"), status=403, fragment="needs role member")
    assert world.ok("DC1", "Membership:Approve", "DC2MSP")["status"] == "pending"
    assert world.ok("DC3", "Membership:Approve", "DC2MSP")["status"] == "active"


def test_leaving_cannot_undo_a_suspension() -> None:
    world = founded()
    world.ok("DC1", "Membership:Suspend", "DC3MSP")
    assert world.ok("DC2", "Membership:Suspend", "DC3MSP")["status"] == "suspended"
    left = world.ok("DC3", "Membership:Leave")
    assert (left["status"], left["left_from"]) == ("left", "suspended")
    back = world.ok("DC3", "Membership:Register", profile("DC3"))
    assert back["status"] == "suspended"
    world.refused("DC3", "Summaries:Publish", summary("DC3", "text"), status=403, fragment="needs role member")
    world.refused("DC3", "Membership:Approve", "DC3MSP", status=403)
    world.ok("DC1", "Membership:Approve", "DC3MSP")
    assert world.ok("DC2", "Membership:Approve", "DC3MSP")["status"] == "active"


def test_leaving_sheds_no_votes_cast_against_an_org() -> None:
    world = founded(("DC1", "DC2", "DC3"))
    for org in ("DC4", "DC5"):
        world.ok(org, "Membership:Register", profile(org))
        world.ok("DC1", "Membership:Approve", f"{org}MSP")
        world.ok("DC2", "Membership:Approve", f"{org}MSP")
    assert world.ok("DC1", "Membership:Suspend", "DC4MSP")["suspend_votes"] == ["DC1MSP"]
    world.ok("DC4", "Membership:Leave")
    assert world.ok("DC4", "Membership:Register", profile("DC4"))["status"] == "pending"


def test_auditor_rights_come_only_from_the_auditor_orgs_the_task_named() -> None:
    world = founded()
    assert world.read("Auditor", "Membership:Get", "DC1MSP")["org"] == "DC1MSP"
    assert len(world.read("Auditor", "Audit:Members", "10", "")["items"]) == 3
    world.refused("Auditor", "Membership:Register", profile("Auditor"), status=403, fragment="may only read")
    world.refused("Auditor", "Membership:Approve", "DC1MSP", status=403)
    for forged in (OUTSIDER_AUDITOR_OU, OUTSIDER_AUDITOR_ATTR):
        for function, args in (("Membership:Get", ("DC1MSP",)), ("Audit:Members", ("10", "")), ("Task:Get", ())):
            response = world.query(forged, function, *args)
            assert response.status == 403 and response.message.startswith("Forbidden: "), response.message
        world.refused(forged, "Membership:Approve", "DC1MSP", status=403, error="Forbidden")
    # A member's own certificate with OU auditor or attribute auditor=true is just that member.
    for own in (DC1_AUDITOR_OU, DC1_AUDITOR_ATTR):
        assert world.read(own, "Membership:Get", "DC1MSP")["org"] == "DC1MSP"
        world.refused(own, "Membership:Register", profile("DC1"), status=409, fragment="already registered")


def test_outsiders_cannot_read() -> None:
    world = founded()
    assert world.query("DC4", "Membership:Get", "DC1MSP").status == 403
    assert world.query("DC4", "Audit:Members", "10", "").status == 403


def test_contract_calls_before_init_are_refused() -> None:
    world = World()
    world.refused("DC1", "Membership:Register", profile("DC1"), status=409, fragment="not initialised")


def test_summary_versions_and_history() -> None:
    world = founded()
    first = world.ok("DC3", "Summaries:Publish", summary("DC3", "text", 100))
    second = world.ok("DC3", "Summaries:Publish", summary("DC3", "text", 120))
    assert (first["version"], second["version"]) == (1, 2)
    assert world.read("Auditor", "Summaries:Get", "DC3MSP", "text")["entity_count"] == 120
    history = world.read("Auditor", "Audit:SummaryHistory", "DC3MSP", "text", "10", "")
    assert [h["value"]["entity_count"] for h in history["items"]] == [100, 120]
    assert history["items"][0]["tx_id"] == first["tx_id"]
    assert world.ledger.events[-1].name == "SummaryPublished"


def test_a_summary_carries_its_extractors_provenance() -> None:
    world = founded()
    world.ok("DC1", "Summaries:Publish", summary("DC1", "text"))  # none: unknown (published before provenance)
    published = world.ok("DC1", "Summaries:Publish", summary("DC1", "text", 120, labels="none"))
    assert published["extractor_provenance"] == {**provenance("DC1", "text", 120), "weights_sha256": None,
                                                 "split_round": None, "parent_sha256": None}
    assert world.read("Auditor", "Summaries:Get", "DC1MSP", "text")["extractor_provenance"]["labels"] == "none"
    history = world.read("Auditor", "Audit:SummaryHistory", "DC1MSP", "text", "10", "")
    assert [h["value"]["extractor_provenance"] and h["value"]["extractor_provenance"]["labels"]
            for h in history["items"]] == [None, "none"]
    tuned = {**provenance("DC1", "text"), "labels": "split-gradients", "split_round": "r1", "parent_sha256": sha("p")}
    world.ok("DC1", "Summaries:Publish", json.dumps({**json.loads(summary("DC1", "text")),
                                                     "extractor_provenance": tuned}))


def test_malformed_provenance_is_refused_with_what_is_wrong() -> None:
    world = founded()
    good = json.loads(summary("DC1", "text", labels="none"))
    for change, fragment in [
        ({"labels": "borrowed"}, "extractor_provenance.labels"),
        ({"data_sha256": "abc"}, "extractor_provenance.data_sha256"),
        ({"recipe": "x" * 65}, "extractor_provenance.recipe"),
        ({"recipe": "site text"}, "extractor_provenance.recipe"),
        ({"note": "trust me"}, "extractor_provenance.note"),
        ({"split_round": "r1"}, "split_round and parent_sha256 go together"),
        ({"labels": "split-gradients"}, "labels 'split-gradients' needs the split_round"),
        ({"split_round": "r1", "parent_sha256": sha("p")}, "labels are 'split-gradients' or 'foreign', not 'none'"),
    ]:
        bad = {**good, "extractor_provenance": {**good["extractor_provenance"], **change}}
        world.refused("DC1", "Summaries:Publish", json.dumps(bad), status=400, fragment=fragment)
    world.refused("DC1", "Summaries:Publish", json.dumps({**good, "extractor_provenance": "label-free"}), status=400,
                  fragment="extractor_provenance")
    assert world.query("DC1", "Summaries:Get", "DC1MSP", "text").status == 404


def test_summary_rejections() -> None:
    world = founded()
    world.refused(
        "DC1",
        "Summaries:Publish",
        summary("DC1", "image"),
        status=400,
        fragment="registered modalities text, not 'image'",
    )
    bad = json.loads(summary("DC1", "text"))
    for field, value, fragment in [
        ("manifest_sha256", "abc", "manifest_sha256"),
        ("entity_count", -1, "entity_count"),
        ("raw_rows", ["x"], "raw_rows"),
        ("labels", ["x" * 65], "labels"),
    ]:
        world.refused("DC1", "Summaries:Publish", json.dumps({**bad, field: value}), status=400, fragment=fragment)
    huge = json.dumps({**bad, "extractor": "e", "pad": "x" * 9000})
    world.refused("DC1", "Summaries:Publish", huge, status=400, fragment="above the limit of 8192")
    assert world.query("DC1", "Summaries:Get", "DC1MSP", "text").status == 404
