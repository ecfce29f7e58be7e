"""The consortium chaincode on a real network of each engine (Gateway client as each org's admin).

A full round by DC1-DC3 with its event committed for every transition, the auditor's reads and
refused writes, DC4 (outside the task) refused, the MAJORITY endorsement policy enforced, and an org's
own acts guarded by their key-level policies against the other two.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from cc_world import profile, sha
from test_consortium_contributions import table

from swarmfuse.network.blocks import transactions
from swarmfuse.network.tasks import TransactionFailed

pytestmark = pytest.mark.integration


def refused(action: Callable[[], object]) -> str:
    """Run ``action``, which must fail; return the error text."""
    with pytest.raises(TransactionFailed) as info:
        action()
    return str(info.value)


def events_by_tx(net: Any, first_block: int) -> dict[str, str]:
    """Chaincode event name of every endorser transaction in blocks ``first_block``.. (newest), by tx ID."""
    found: dict[str, str] = {}
    for block in net.blocks("DC1", first_block, net.height("DC1") - 1):
        found |= {tx.tx_id: tx.event_name or "" for tx in transactions(block)}
    return found


def test_full_round_by_three_orgs_with_an_event_per_transition(ledger_network: Any) -> None:
    net = ledger_network
    start = net.height("DC1")
    expected: dict[str, str] = {}

    def step(org: str, function: str, *args: str, event: str) -> None:
        result = net.submit(org, function, *args)
        assert result.tx_id, f"{function} by {org} was not committed"
        expected[result.tx_id] = event

    def current() -> dict[str, Any]:
        return json.loads(net.query("Auditor", "Rounds:Get", "it1"))

    for org in ("DC1", "DC2", "DC3"):
        step(org, "Membership:Register", profile(org), event="MemberRegistered")
        assert json.loads(net.query("DC1", "Membership:Get", f"{org}MSP"))["status"] == "active"
    spec = {
        "participants": ["DC1MSP", "DC2MSP", "DC3MSP"],
        "roles": {"DC1MSP": ["text"], "DC2MSP": ["image"], "DC3MSP": ["text"]},
        "label_holder": "DC3MSP",
        "method": "intermediate",
        "model_spec_sha256": sha("head"),
        "deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    step("DC1", "Rounds:Open", "it1", json.dumps(spec), event="RoundOpened")
    for org in ("DC2", "DC3"):
        step(org, "Rounds:Join", "it1", event="RoundJoined")
    opened = current()
    assert opened["state"] == "open" and opened["leader"] in spec["participants"]
    leader = opened["leader"].removesuffix("MSP")
    others = [org for org in ("DC1", "DC2", "DC3") if org != leader]
    for org in others:
        shard = {
            "receiver": opened["leader"],
            "kind": "features",
            "sha256": sha(org),
            "bytes": 1024,
            "entity_count": 10,
        }
        step(org, "Rounds:RecordExchange", "it1", json.dumps(shard), event="ExchangeRecorded")
    model = sha("fused-model")
    acknowledge_by = json.dumps((datetime.now(UTC) + timedelta(hours=1)).isoformat())
    message = refused(lambda: net.submit(others[0], "Rounds:MarkFused", "it1", model, "4096", "{}", acknowledge_by, "null"))
    assert f"Forbidden: only the leader {opened['leader']}" in message
    step(leader, "Rounds:MarkFused", "it1", model, "4096", json.dumps({"accuracy": 0.9}), acknowledge_by, "null", event="ModelFused")
    assert current()["state"] == "fused"
    acknowledged = []
    for org in (leader, *others):
        step(org, "Rounds:Acknowledge", "it1", model, "", event="Acknowledged")
        acknowledged.append(len(current()["acknowledgements"]))
    assert acknowledged == [1, 2, 3] and current()["state"] == "fused"
    step(others[0], "Rounds:Close", "it1", event="RoundClosed")
    assert current()["state"] == "closed"

    history = json.loads(net.query("Auditor", "Audit:RoundHistory", "it1", "50", ""))
    assert [entry["value"]["state"] for entry in history["items"]] == ["open", "fused", "closed"]
    exchanges = json.loads(net.query("Auditor", "Audit:Exchanges", "it1", "1", ""))
    following = json.loads(net.query("Auditor", "Audit:Exchanges", "it1", "1", exchanges["bookmark"]))
    assert {exchanges["items"][0]["sender"], following["items"][0]["sender"]} == {f"{org}MSP" for org in others}
    activity = json.loads(net.query("DC3", "Audit:Activity", f"{leader}MSP", "50", ""))
    assert [a["function"] for a in activity["items"]][-2:] == ["Rounds:MarkFused", "Rounds:Acknowledge"]

    committed = events_by_tx(net, start)
    assert {tx: committed.get(tx) for tx in expected} == expected


def test_auditor_reads_everything_and_writes_nothing(ledger_network: Any) -> None:
    net = ledger_network
    assert json.loads(net.query("Auditor", "Task:Get"))["auditors"] == ["AuditorMSP"]
    members = json.loads(net.query("Auditor", "Audit:Members", "10", ""))
    assert {m["org"] for m in members["items"]} >= {"DC1MSP", "DC2MSP", "DC3MSP"}
    assert "may only read" in refused(lambda: net.submit("Auditor", "Membership:Register", profile("Auditor")))
    assert "may only read" in refused(lambda: net.submit("Auditor", "Membership:Leave"))
    metadata = json.loads(net.query("Auditor", "org.hyperledger.fabric:GetMetadata"))
    rounds = {tx["name"] for tx in metadata["contracts"]["Rounds"]["transactions"]}
    assert rounds >= {"Open", "MarkFused", "Acknowledge"}


def test_org_outside_the_task_is_refused(ledger_network: Any) -> None:
    net = ledger_network
    refused(lambda: net.submit("DC4", "Membership:Register", profile("DC4"), endorsers=["DC1", "DC2"]))
    refused(lambda: net.query("DC4", "Task:Get"))
    assert "NotFound" in refused(lambda: net.query("DC1", "Membership:Get", "DC4MSP"))


def test_majority_endorsement_is_enforced(ledger_network: Any) -> None:
    net = ledger_network
    message = refused(lambda: net.submit("DC1", "Sample:Put", "lonely", "one endorsement", endorsers=["DC1"]))
    assert "ENDORSEMENT_POLICY_FAILURE" in message
    assert "NotFound" in refused(lambda: net.query("DC2", "Sample:Get", "lonely"))
    assert net.submit("DC1", "Sample:Put", "lonely", "two endorsements", endorsers=["DC1", "DC2"]).tx_id
    assert net.query("DC3", "Sample:Get", "lonely") == "two endorsements"


def joined_round(net: Any, round_id: str) -> str:
    """DC1-DC3 registered, round ``round_id`` opened by DC1 (no terms in force) and joined by all; its leader."""
    registered = {m["org"] for m in json.loads(net.query("DC1", "Audit:Members", "10", ""))["items"]}
    for org in ("DC1", "DC2", "DC3"):
        if f"{org}MSP" not in registered:
            net.submit(org, "Membership:Register", profile(org))
    spec = {"participants": ["DC1MSP", "DC2MSP", "DC3MSP"],
            "roles": {"DC1MSP": ["text"], "DC2MSP": ["image"], "DC3MSP": ["text"]}, "label_holder": "DC3MSP",
            "method": "intermediate", "model_spec_sha256": sha("head"),
            "deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    net.submit("DC1", "Rounds:Open", round_id, json.dumps(spec))
    for org in ("DC2", "DC3"):
        net.submit(org, "Rounds:Join", round_id)
    return str(json.loads(net.query("DC1", "Rounds:Get", round_id))["leader"]).removesuffix("MSP")


def test_two_colluding_orgs_cannot_rewrite_or_delete_a_third_orgs_acts(ledger_network: Any) -> None:
    """DC1 and DC2 meet the chaincode's majority and run a chaincode that writes any key (``Sample:PutComposite``,
    endorsed by their own peers). DC3's founding confirmation, registration, vote (to suspend DC2: one of the two
    votes that needs, so nothing changes), join and acknowledgement keys carry DC3's key-level policy (set when DC3
    wrote them): rewriting or deleting them is ENDORSEMENT_POLICY_FAILURE; they read back unchanged."""
    net = ledger_network
    leader = joined_round(net, "sbe1")
    model = sha("sbe-model")
    deadline = json.dumps((datetime.now(UTC) + timedelta(hours=1)).isoformat())
    net.submit(leader, "Rounds:MarkFused", "sbe1", model, "4096", "{}", deadline, "null")
    net.submit("DC3", "Rounds:Acknowledge", "sbe1", model, "")
    before = json.loads(net.query("Auditor", "Rounds:Get", "sbe1"))
    assert before["acknowledgements"] == {"DC3MSP": model}

    target = json.loads(net.query("Auditor", "Membership:Get", "DC2MSP"))
    if "DC3MSP" not in target["suspend_votes"]:  # one vote of the two a suspension needs: DC2 stays active
        target = json.loads(net.invoke("DC3", "Membership:Suspend", "DC2MSP"))
    assert (target["status"], target["suspend_votes"]) == ("active", ["DC3MSP"])
    member = json.loads(net.query("Auditor", "Membership:Get", "DC3MSP"))
    founding = json.loads(net.query("Auditor", "Task:Get"))["config_sha256"]
    attacks = [("ack", "sbe1/DC3MSP"), ("join", "sbe1/DC3MSP"), ("member", "DC3MSP"),
               ("confirmation", f"{founding}/DC3MSP"), ("vote", f"suspend/DC2MSP/{target['epoch']}/DC3MSP")]
    for (object_type, attributes), value in [(attack, value) for attack in attacks for value in ("forged", "")]:
        message = refused(partial(net.submit, "DC1", "Sample:PutComposite", object_type, attributes, value,
                                  endorsers=["DC1", "DC2"]))
        assert "ENDORSEMENT_POLICY_FAILURE" in message, (object_type, value, message)
    assert json.loads(net.query("Auditor", "Rounds:Get", "sbe1")) == before
    assert json.loads(net.query("Auditor", "Membership:Get", "DC3MSP")) == member
    assert json.loads(net.query("Auditor", "Membership:Get", "DC2MSP"))["suspend_votes"] == ["DC3MSP"]


def test_a_founder_cannot_put_terms_in_force_alone(ledger_network: Any) -> None:
    """DC1 proposes terms on the network: they wait for DC2 and DC3; nothing is in force, and DC1 cannot confirm
    them a second time. (Left pending: rounds on this channel keep opening without terms.)"""
    net = ledger_network
    spec = {"model_spec_sha256": sha("head"), "fusion_method": "intermediate", "extractors": {"text": "site"},
            "purpose": "a test of the founders' signatures", "exchange_kinds": ["features"], "retention_days": 1,
            "reward": {"method": "shapley", "metric": "accuracy", "units_per_round": 1,
                       "label_holder_share_percent": 0}, "legal_text_sha256": sha("terms")}
    proposal = json.loads(net.invoke("DC1", "Agreement:Propose", json.dumps(spec)))
    assert (proposal["status"], proposal["awaiting"]) == ("pending", ["DC2MSP", "DC3MSP"])
    assert "already confirmed" in refused(lambda: net.submit("DC1", "Agreement:Confirm", proposal["agreement_sha256"]))
    with pytest.raises(TransactionFailed, match="no terms yet"):
        net.query("DC1", "Agreement:Get")


def test_a_leader_cannot_publish_a_table_its_model_does_not_bear_out_and_nobody_credits_itself(
        ledger_network: Any) -> None:
    """The endorsers check the leader's contribution table against its published metric; a credit key written
    with one org's own peer and chaincode (``Sample:PutComposite``) misses the chaincode's majority."""
    net = ledger_network
    leader = joined_round(net, "credit1")
    model, deadline = sha("credit-model"), json.dumps((datetime.now(UTC) + timedelta(hours=1)).isoformat())
    message = refused(lambda: net.submit(leader, "Rounds:MarkFused", "credit1", model, "4096", '{"accuracy": 0.81}',
                                         deadline, json.dumps(table())))
    assert "the published model's accuracy is 0.81" in message
    net.submit(leader, "Rounds:MarkFused", "credit1", model, "4096", '{"accuracy": 0.8}', deadline, json.dumps(table()))
    for org in ("DC1", "DC2", "DC3"):
        message = refused(partial(net.submit, org, "Sample:PutComposite", "credit", f"credit1/{org}MSP",
                                  json.dumps({"units": 100}), endorsers=[org]))
        assert "ENDORSEMENT_POLICY_FAILURE" in message, (org, message)
    assert json.loads(net.query("Auditor", "Rounds:Credits", "credit1")) == {"items": []}
    recorded = json.loads(net.query("Auditor", "Rounds:GetContribution", "credit1"))
    assert recorded["shapley"] == {"DC1MSP": "47/120", "DC2MSP": "7/60", "DC3MSP": "1/24"}
