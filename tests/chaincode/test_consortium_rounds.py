"""Fusion rounds: every transition and every rejection, events, leader election, aborts; audit queries."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from cc_world import ORGS, World, chaincode, founded, sha

from swarmfuse.chaincode.contracts.leader import leader_for, rotation_order

PARTICIPANTS = ["DC1MSP", "DC2MSP", "DC3MSP"]
MODEL = sha("model-weights")


def exchange(receiver: str, kind: str = "features", digest: str | None = None) -> str:
    return json.dumps(
        {
            "receiver": receiver,
            "kind": kind,
            "sha256": digest or sha(receiver + kind),
            "bytes": 4096,
            "entity_count": 100,
        }
    )


def org_of(msp: str) -> str:
    return msp.removesuffix("MSP")


@pytest.fixture
def opened() -> tuple[World, dict]:
    """Round r1 of DC1-DC3, opened by DC1 and joined by the two others."""
    world = founded()
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec())
    return world, world.join_all("r1")


def test_a_round_proceeds_only_once_every_participant_joined() -> None:
    world = founded(("DC1", "DC2", "DC3", "DC4"))
    world.ok("DC1", "Membership:Approve", "DC4MSP")
    world.ok("DC2", "Membership:Approve", "DC4MSP")
    rnd = world.ok("DC1", "Rounds:Open", "r1", world.round_spec())
    assert world.read("DC2", "Rounds:Get", "r1")["joined"] == ["DC1MSP"]  # opening is the opener's join
    leader = org_of(rnd["leader"])
    alignment = json.dumps({"entity_count": 10, "commitment_sha256": sha("c")})
    world.refused(leader, "Rounds:RecordAlignment", "r1", alignment, status=409, fragment="has not joined")
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null", status=409,
                  fragment="has not joined")
    world.refused("DC4", "Rounds:Join", "r1", status=403, fragment="not a participant")
    world.refused("DC1", "Rounds:Join", "r1", status=409, fragment="already joined")
    joined = world.ok("DC2", "Rounds:Join", "r1")
    assert (joined["org"], joined["round_id"]) == ("DC2MSP", "r1")
    event = world.ledger.events[-1]
    assert event.name == "RoundJoined" and json.loads(event.payload) == {"round": "r1", "org": "DC2MSP"}
    world.refused("DC2", "Rounds:Join", "r1", status=409, fragment="already joined")
    world.refused(leader, "Rounds:RecordAlignment", "r1", alignment, status=409, fragment="DC3MSP has not joined")
    world.ok("DC3", "Rounds:Join", "r1")
    assert world.read("DC2", "Rounds:Get", "r1")["joined"] == PARTICIPANTS
    world.ok(leader, "Rounds:RecordAlignment", "r1", alignment)
    world.ok(leader, "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null")
    world.refused("DC3", "Rounds:Join", "r1", status=409, fragment="is fused")
    world.refused("DC1", "Rounds:Join", "nope", status=404)


def test_an_aborted_round_keeps_who_had_joined() -> None:
    world = founded()
    world.ok("DC1", "Rounds:Open", "r1", world.round_spec())
    world.ok("DC2", "Rounds:Join", "r1")
    world.ok("DC1", "Rounds:Abort", "r1", "DC3 never joined")
    aborted = world.ok("DC2", "Rounds:Abort", "r1", "DC3 never joined")
    assert (aborted["state"], aborted["joined"]) == ("aborted", ["DC1MSP", "DC2MSP"])


def test_open_takes_the_leader_from_the_rotation_of_the_participant_set(opened: tuple[World, dict]) -> None:
    world, rnd = opened
    assert rnd["state"] == "open" and rnd["participants"] == PARTICIPANTS
    assert (rnd["turn"], rnd["leader"]) == (0, leader_for(PARTICIPANTS, 0))
    event = next(e for e in reversed(world.ledger.events) if e.name == "RoundOpened")
    assert json.loads(event.payload)["leader"] == rnd["leader"]


def test_consecutive_rounds_of_one_set_rotate_the_lead_through_every_participant() -> None:
    world = founded()
    leaders = [world.ok("DC2", "Rounds:Open", f"r{i}", world.round_spec())["leader"] for i in range(6)]
    assert leaders == rotation_order(PARTICIPANTS) * 2
    assert sorted(leaders[:3]) == PARTICIPANTS
    other_set = world.ok("DC1", "Rounds:Open", "pair", world.round_spec(("DC1", "DC3")))
    assert (other_set["turn"], other_set["leader"]) == (0, leader_for(["DC1MSP", "DC3MSP"], 0))


def test_the_leader_depends_on_neither_tx_id_nor_timestamp_nor_round_id() -> None:
    world = founded()
    spec = world.round_spec()
    seen = set()
    for i in range(40):
        endorsed = world.ledger.endorse(
            chaincode(), ORGS["DC1"], "Rounds:Open", f"grind{i}", spec,
            tx_id=sha(f"nonce {i}"), at=world.now + timedelta(seconds=i % 200),
        )  # fmt: skip
        assert endorsed.response.status == 200, endorsed.response.message
        seen.add(json.loads(endorsed.response.payload)["leader"])
    assert seen == {leader_for(PARTICIPANTS, 0)}
    assert leader_for(reversed(PARTICIPANTS), 5) == leader_for(PARTICIPANTS, 5)


def test_the_opener_must_take_part() -> None:
    world = founded(("DC1", "DC2", "DC3", "DC4"))
    world.ok("DC1", "Membership:Approve", "DC4MSP")
    world.ok("DC2", "Membership:Approve", "DC4MSP")
    world.refused("DC4", "Rounds:Open", "r1", world.round_spec(), status=403, fragment="the opener must take part")


def test_full_round_closes_once_every_participant_acknowledged(opened: tuple[World, dict]) -> None:
    world, rnd = opened
    leader = org_of(rnd["leader"])
    others = [org_of(p) for p in PARTICIPANTS if p != rnd["leader"]]
    for org in others:
        world.ok(org, "Rounds:RecordExchange", "r1", exchange(rnd["leader"]))
    assert world.ledger.events[-1].name == "ExchangeRecorded"
    metrics = json.dumps({"accuracy": 0.88, "f1": 0.8, "seeds": 3})
    fused = world.ok(leader, "Rounds:MarkFused", "r1", MODEL, "4096", metrics, world.deadline(), "null")
    assert fused["state"] == "fused" and world.ledger.events[-1].name == "ModelFused"
    for i, org in enumerate([leader, *others]):
        if i:
            world.refused(leader, "Rounds:Close", "r1", status=409, fragment=f"acknowledgements of {others[i - 1]}MSP")
        acked = world.ok(org, "Rounds:Acknowledge", "r1", MODEL, "")
        assert (acked["org"], acked["model_sha256"]) == (f"{org}MSP", MODEL)
        assert world.ledger.events[-1].name == "Acknowledged"
        assert len(world.read("DC1", "Rounds:Get", "r1")["acknowledgements"]) == i + 1
    world.refused("Auditor", "Rounds:Close", "r1", status=403)
    closed = world.ok(others[0], "Rounds:Close", "r1")
    assert closed["state"] == "closed" and closed["acknowledgements"] == {p: MODEL for p in PARTICIPANTS}
    assert world.ledger.events[-1].name == "RoundClosed"
    world.refused(leader, "Rounds:Close", "r1", status=409, fragment="is closed")
    world.refused(leader, "Rounds:Acknowledge", "r1", MODEL, "", status=409, fragment="is closed")
    world.refused(others[0], "Rounds:Abort", "r1", "late", status=409, fragment="is closed")

    history = world.read("Auditor", "Audit:RoundHistory", "r1", "100", "")["items"]
    assert [h["value"]["state"] for h in history] == ["open", "fused", "closed"]
    acks = world.read("Auditor", "Audit:Acknowledgements", "r1", "10", "")["items"]
    assert sorted(a["org"] for a in acks) == PARTICIPANTS
    exchanges = world.read("Auditor", "Audit:Exchanges", "r1", "1", "")
    assert len(exchanges["items"]) == 1 and exchanges["bookmark"]
    rest = world.read("Auditor", "Audit:Exchanges", "r1", "1", exchanges["bookmark"])
    assert {exchanges["items"][0]["sender"], rest["items"][0]["sender"]} == {f"{o}MSP" for o in others}
    activity = world.read("Auditor", "Audit:Activity", f"{leader}MSP", "100", "")["items"]
    assert [a["function"] for a in activity][-2:] == ["Rounds:MarkFused", "Rounds:Acknowledge"]
    assert f"ack/r1/{leader}MSP" in activity[-1]["keys"]


def test_open_rejections() -> None:
    world = founded()
    world.ok(
        "DC4",
        "Membership:Register",
        json.dumps({"name": "x", "endpoint": "x:1", "tls_fingerprint": sha("x"), "modalities": ["text"]}),
    )
    spec = world.round_spec()
    world.refused("DC4", "Rounds:Open", "r1", spec, status=403, fragment="needs role member")
    world.refused("Auditor", "Rounds:Open", "r1", spec, status=403)
    world.refused("DC1", "Rounds:Open", "bad id!", spec, status=400, fragment="argument 'round_id'")
    world.refused(
        "DC1",
        "Rounds:Open",
        "r1",
        world.round_spec(("DC1", "DC4")),
        status=400,
        fragment="DC4MSP is not an active member",
    )
    world.refused("DC1", "Rounds:Open", "r1", world.round_spec(("DC1",)), status=400, fragment="participants")
    world.refused(
        "DC1", "Rounds:Open", "r1", world.round_spec(hours=-1), status=400, fragment="deadline window"
    )
    world.refused(
        "DC1", "Rounds:Open", "r1", world.round_spec(label_holder="DC9MSP"), status=400, fragment="label holder"
    )
    world.refused(
        "DC1", "Rounds:Open", "r1", world.round_spec(roles={"DC1MSP": ["text"]}), status=400, fragment="roles must name"
    )
    wrong_modality = {"DC1MSP": ["image"], "DC2MSP": ["image"], "DC3MSP": ["text"]}
    world.refused(
        "DC1",
        "Rounds:Open",
        "r1",
        world.round_spec(roles=wrong_modality),
        status=400,
        fragment="did not register modality image",
    )
    world.refused("DC1", "Rounds:Open", "r1", world.round_spec(method="magic"), status=400, fragment="method")
    world.refused(
        "DC1", "Rounds:Open", "r1", world.round_spec(model_spec_sha256="ABC"), status=400, fragment="model_spec_sha256"
    )
    world.ok("DC1", "Rounds:Open", "r1", spec)
    world.refused("DC2", "Rounds:Open", "r1", world.round_spec(), status=409, fragment="exists already")


def test_exchange_rejections(opened: tuple[World, dict]) -> None:
    world, _ = opened
    world.ok(
        "DC4",
        "Membership:Register",
        json.dumps({"name": "x", "endpoint": "x:1", "tls_fingerprint": sha("x"), "modalities": ["text"]}),
    )
    world.ok("DC1", "Membership:Approve", "DC4MSP")
    world.ok("DC2", "Membership:Approve", "DC4MSP")
    world.refused("DC4", "Rounds:RecordExchange", "r1", exchange("DC1MSP"), status=403, fragment="not a participant")
    world.refused("DC1", "Rounds:RecordExchange", "r9", exchange("DC2MSP"), status=404, fragment="no round 'r9'")
    world.refused("DC1", "Rounds:RecordExchange", "r1", exchange("DC1MSP"), status=400, fragment="another participant")
    world.refused("DC1", "Rounds:RecordExchange", "r1", exchange("DC4MSP"), status=400, fragment="another participant")
    world.refused(
        "DC1", "Rounds:RecordExchange", "r1", exchange("DC2MSP", digest="z" * 64), status=400, fragment="sha256"
    )
    world.ok("DC1", "Rounds:RecordExchange", "r1", exchange("DC2MSP"))
    world.refused("DC1", "Rounds:RecordExchange", "r1", exchange("DC2MSP"), status=409, fragment="already recorded")


def test_fuse_and_acknowledge_rejections(opened: tuple[World, dict]) -> None:
    world, rnd = opened
    leader = org_of(rnd["leader"])
    other = org_of(next(p for p in PARTICIPANTS if p != rnd["leader"]))
    world.refused(other, "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null", status=403,
                  fragment=f"only the leader {rnd['leader']}")
    world.refused(leader, "Rounds:Acknowledge", "r1", MODEL, "", status=409, fragment="is open; this needs it fused")
    world.refused(leader, "Rounds:MarkFused", "r1", "nothex", "4096", "{}", world.deadline(), "null", status=400,
                  fragment="model_sha256")
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"acc": [1]}', world.deadline(), "null", status=400,
                  fragment="metrics")
    world.ok(leader, "Rounds:MarkFused", "r1", MODEL, "4096", '{"acc": 0.9}', world.deadline(), "null")
    world.refused(leader, "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null", status=409, fragment="is fused")
    world.refused(other, "Rounds:Acknowledge", "r1", sha("other"), "", status=409, fragment="published")
    world.refused("DC4", "Rounds:Acknowledge", "r1", MODEL, "", status=403)
    world.ok(other, "Rounds:Acknowledge", "r1", MODEL, "")
    world.refused(other, "Rounds:Acknowledge", "r1", MODEL, "", status=409, fragment="already acknowledged")
    world.refused(other, "Rounds:Close", "r1", status=409, fragment="still waits for the acknowledgements")


def test_abort_by_majority_of_participants(opened: tuple[World, dict]) -> None:
    world, _ = opened
    assert world.ok("DC1", "Rounds:Abort", "r1", "data issue")["state"] == "open"
    world.refused("DC1", "Rounds:Abort", "r1", "again", status=409, fragment="already voted")
    aborted = world.ok("DC2", "Rounds:Abort", "r1", "data issue")
    assert (aborted["state"], aborted["abort_reason"]) == ("aborted", "data issue")
    assert world.ledger.events[-1].name == "AbortVoted"
    world.refused("DC3", "Rounds:Abort", "r1", "x", status=409, fragment="is aborted")


def test_after_the_deadline_one_participant_aborts_and_a_new_leader_can_be_elected() -> None:
    world = founded(("DC1", "DC2", "DC3", "DC4"))
    world.ok("DC1", "Membership:Approve", "DC4MSP")
    world.ok("DC2", "Membership:Approve", "DC4MSP")
    rnd = world.ok("DC1", "Rounds:Open", "r1", world.round_spec(hours=1))
    world.refused("DC4", "Rounds:Abort", "r1", "x", status=403, fragment="not a participant")
    world.refused("DC1", "Rounds:ElectLeader", "r1", world.deadline(2), status=409, fragment="has until")
    world.ledger.clock += timedelta(hours=2)
    world.refused("DC4", "Rounds:ElectLeader", "r1", world.deadline(1), status=403, fragment="not a participant")
    world.refused("DC1", "Rounds:ElectLeader", "r1", world.deadline(-1), status=400, fragment="the new deadline")
    naive = json.dumps((world.now + timedelta(hours=1)).replace(tzinfo=None).isoformat())
    world.refused("DC1", "Rounds:ElectLeader", "r1", naive, status=400, fragment="time zone")
    elected = world.ok("DC1", "Rounds:ElectLeader", "r1", world.deadline(1))
    order = rotation_order(PARTICIPANTS)
    assert elected["leader"] == order[(order.index(rnd["leader"]) + 1) % 3]
    assert elected["past_leaders"] == [rnd["leader"]]
    assert world.ledger.events[-1].name == "LeaderElected"
    world.refused(org_of(rnd["leader"]), "Rounds:MarkFused", "r1", MODEL, "4096", "{}", world.deadline(), "null", status=403,
                  fragment="only the leader")
    world.ledger.clock += timedelta(hours=2)
    second = world.ok("DC2", "Rounds:ElectLeader", "r1", world.deadline(1))
    assert second["leader"] not in {rnd["leader"], elected["leader"]}
    world.ledger.clock += timedelta(hours=2)
    world.refused("DC2", "Rounds:ElectLeader", "r1", world.deadline(1), status=409, fragment="has led it already")
    world.refused("DC4", "Rounds:Abort", "r1", "nobody fused", status=403, fragment="not a participant")
    assert world.ok("DC2", "Rounds:Abort", "r1", "nobody fused")["state"] == "aborted"


def test_audit_pagination_and_bad_bookmarks(opened: tuple[World, dict]) -> None:
    world, _ = opened
    seen, bookmark = [], ""
    while True:
        page = world.read("Auditor", "Audit:Members", "2", bookmark)
        seen += [m["org"] for m in page["items"]]
        bookmark = page["bookmark"]
        if not bookmark:
            break
    assert seen == PARTICIPANTS
    assert world.query("Auditor", "Audit:Members", "0", "").status == 400
    assert world.query("Auditor", "Audit:Members", "101", "").status == 400
    assert world.query("Auditor", "Audit:Members", "2", "%%%").status == 400
    other = world.read("Auditor", "Audit:Members", "1", "")["bookmark"]
    response = world.query("Auditor", "Audit:Rounds", "1", other)
    assert (response.status, response.message) == (400, "BadRequest: the bookmark belongs to another query")
    assert [r["round_id"] for r in world.read("DC2", "Audit:Rounds", "10", "")["items"]] == ["r1"]
    assert world.read("DC1", "Rounds:Get", "r1")["state"] == "open"
    assert world.query("DC1", "Rounds:Get", "r2").status == 404


def test_the_leader_records_the_alignment_once_and_only_while_open(opened: tuple[World, dict]) -> None:
    world, rnd = opened
    leader = org_of(rnd["leader"])
    other = next(org_of(p) for p in PARTICIPANTS if p != rnd["leader"])
    alignment = json.dumps({"entity_count": 1500, "commitment_sha256": sha("salt+ids")})
    world.refused(other, "Rounds:RecordAlignment", "r1", alignment, status=403, fragment="only the leader")
    world.refused(leader, "Rounds:RecordAlignment", "r1", json.dumps({"entity_count": 0, "commitment_sha256": sha("x")}),
                  status=400)
    recorded = world.ok(leader, "Rounds:RecordAlignment", "r1", alignment)
    assert (recorded["entity_count"], recorded["leader"]) == (1500, rnd["leader"])
    event = world.ledger.events[-1]
    assert event.name == "AlignmentRecorded" and json.loads(event.payload)["entity_count"] == 1500
    world.refused(leader, "Rounds:RecordAlignment", "r1", alignment, status=409, fragment="already recorded")
    assert world.read("Auditor", "Rounds:GetAlignment", "r1")["commitment_sha256"] == sha("salt+ids")
    world.ok(leader, "Rounds:MarkFused", "r1", MODEL, "4096", json.dumps({"accuracy": 0.9}), world.deadline(), "null")
    assert world.query("DC1", "Rounds:GetAlignment", "nope").status == 404


def test_state_digest_pages_every_key_with_the_sha256_of_its_value(opened: tuple[World, dict]) -> None:
    world, rnd = opened
    leader = org_of(rnd["leader"])
    sender = next(org_of(p) for p in PARTICIPANTS if p != rnd["leader"])
    world.ok(leader, "Rounds:RecordAlignment", "r1", json.dumps({"entity_count": 10, "commitment_sha256": sha("c")}))
    world.ok(sender, "Rounds:RecordExchange", "r1", exchange(rnd["leader"]))
    world.ledger.state["plain"] = b"a plain key"  # a key outside the composite schema is covered too
    seen, bookmark = {}, ""
    while True:
        page = world.read("Auditor", "Audit:StateDigest", "3", bookmark)
        assert len(page["items"]) <= 3
        seen |= {item["key"]: item["sha256"] for item in page["items"]}
        bookmark = page["bookmark"]
        if not bookmark:
            break
    assert seen == {key: hashlib.sha256(value).hexdigest() for key, value in world.ledger.state.items()}
    assert world.query("DC4", "Audit:StateDigest", "10", "").status == 403
    assert world.query("Auditor", "Audit:StateDigest", "10", "bm90IGEgcGhhc2U=").status == 400
