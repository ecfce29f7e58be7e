"""AuditView, its models, tables and CLI on the real chaincode run in memory (no network): a task of DC1-DC3
and the Auditor, summaries (one published twice), one round through alignment, exchanges, fusion and
acknowledgements to ``closed``; the queries go through TaskLedger over a contract that evaluates on that
in-memory ledger as the Auditor, so paging and refusals take the client's real paths."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))  # the in-memory world's helpers
from cc_world import World, founded, sha, summary
from cli_runner import invoke_cli

from swarmfuse.client.audit import cli
from swarmfuse.client.audit.queries import (
    AuditError,
    AuditView,
    KeyVersion,
    RoundAudit,
    RoundRecord,
    UnknownRecord,
)
from swarmfuse.client.gateway import EvaluateError, Gateway, PeerDetail
from swarmfuse.client.ledger import TaskLedger
from swarmfuse.network.topology import Topology

ROUND = "r1"
MODEL = sha("fused model")
PARTICIPANTS = ["DC1MSP", "DC2MSP", "DC3MSP"]


class MemoryContract:
    """``Contract.evaluate_transaction`` on the in-memory ledger; refusals raised as the gateway raises them."""

    def __init__(self, world: World, org: str) -> None:
        self.world = world
        self.org = org

    def evaluate_transaction(self, name: str, *args: str) -> bytes:
        response = self.world.query(self.org, name, *args)
        if response.status != 200:
            message = f"chaincode response {response.status}, {response.message}"
            raise EvaluateError("tx", grpc.StatusCode.UNKNOWN, "evaluate failed",
                                [PeerDetail("127.0.0.1:7051", "DC1MSP", message)])
        return bytes(response.payload)


class MemoryGateway:
    def __init__(self, world: World, org: str) -> None:
        self.contract_ = MemoryContract(world, org)

    def network(self, task: str) -> MemoryGateway:
        return self

    def contract(self, chaincode: str) -> MemoryContract:
        return self.contract_


def ledger(world: World, org: str = "Auditor") -> TaskLedger:
    return TaskLedger(cast(Gateway, MemoryGateway(world, org)), "task1")


@pytest.fixture(scope="module")
def world() -> World:
    world = founded()
    world.ok("DC1", "Summaries:Publish", summary("DC1", "text"))
    world.ok("DC2", "Summaries:Publish", summary("DC2", "image"))
    world.ok("DC3", "Summaries:Publish", summary("DC3", "image", entities=90))
    world.ok("DC3", "Summaries:Publish", summary("DC3", "image", entities=120))  # version 2
    world.ok("DC1", "Rounds:Open", ROUND, world.round_spec())
    rnd = world.join_all(ROUND)
    leader = rnd["leader"].removesuffix("MSP")
    world.ok(leader, "Rounds:RecordAlignment", ROUND, json.dumps({"entity_count": 80, "commitment_sha256": sha("a")}))
    for org in ("DC1", "DC2", "DC3"):
        if org != leader:
            world.ok(org, "Rounds:RecordExchange", ROUND, json.dumps(
                {"receiver": rnd["leader"], "kind": "features", "sha256": sha(org), "bytes": 4096,
                 "entity_count": 80}))
    world.ok(leader, "Rounds:MarkFused", ROUND, MODEL, "4096", json.dumps({"test_accuracy": 0.8}), world.deadline(), "null")
    for org in ("DC1", "DC2", "DC3"):
        world.ok(org, "Rounds:Acknowledge", ROUND, MODEL, "")
    world.ok(leader, "Rounds:Close", ROUND)
    return world


@pytest.fixture
def view(world: World) -> AuditView:
    return AuditView(ledger(world), Topology(n_orgs=3, auditor=True))


def test_members_with_their_registration_transactions(view: AuditView, world: World) -> None:
    members = view.members()
    assert [m.org for m in members] == PARTICIPANTS and {m.status for m in members} == {"active"}
    for m in members:
        register = [a for a in view.activity(m.org) if a.function == "Membership:Register"]
        assert m.registered_tx == register[0].tx_id and m.registered_at == register[0].timestamp


def test_summaries_carry_their_version_history(view: AuditView) -> None:
    found = {(s.latest.org, s.latest.modality): s for s in view.summaries()}
    assert set(found) == {("DC1MSP", "text"), ("DC2MSP", "image"), ("DC3MSP", "image")}
    dc3 = found[("DC3MSP", "image")]
    assert dc3.latest.version == 2 and dc3.latest.entity_count == 120
    assert [h.value.entity_count for h in dc3.history if h.value] == [90, 120]
    assert dc3.history[-1].tx_id == dc3.latest.tx_id and dc3.history[-1].value == dc3.latest
    assert [s.latest.org for s in view.summaries("DC3")] == ["DC3MSP"]


def test_a_round_with_its_history_alignment_exchanges_and_acknowledgements(view: AuditView) -> None:
    audit = view.round(ROUND)
    record = audit.record
    assert (record.state, record.model_sha256, record.participants) == ("closed", MODEL, PARTICIPANTS)
    assert [h.value.state for h in audit.history if h.value] == ["open", "fused", "closed"]
    assert audit.history[0].tx_id == record.open_tx and audit.history[-1].value == record
    assert audit.alignment is not None and (audit.alignment.leader, audit.alignment.entity_count) == (record.leader, 80)
    assert sorted(e.sender for e in audit.exchanges) == sorted(p for p in PARTICIPANTS if p != record.leader)
    assert all(e.receiver == record.leader and e.sha256 == sha(e.sender.removesuffix("MSP")) for e in audit.exchanges)
    assert {a.org: a.model_sha256 for a in audit.acknowledgements} == {p: MODEL for p in PARTICIPANTS}
    assert view.exchanges(ROUND) == audit.exchanges and view.acknowledgements(ROUND) == audit.acknowledgements
    assert [r.round_id for r in view.rounds()] == [ROUND]


def test_unknown_round_and_org_are_clear_errors(view: AuditView) -> None:
    for query in (view.round, view.exchanges, view.acknowledgements):
        with pytest.raises(UnknownRecord, match="no round 'nope' in task task1"):
            query("nope")
    with pytest.raises(UnknownRecord, match="DC4MSP has not registered in task task1"):
        view.org("DC4MSP")


def test_an_org_by_name_or_msp_id(view: AuditView) -> None:
    by_name, by_msp = view.org("DC3"), view.org("DC3MSP")
    assert by_name == by_msp and by_name.member.org == "DC3MSP"
    assert [s.latest.modality for s in by_name.summaries] == ["image"]
    functions = [a.function for a in by_name.activity]
    assert functions.index("Task:Confirm") < functions.index("Membership:Register") < functions.index("Summaries:Publish")
    assert "Rounds:Acknowledge" in functions
    assert [a.timestamp for a in by_name.activity] == sorted(a.timestamp for a in by_name.activity)


def test_outsiders_are_refused_with_the_chaincodes_words(world: World) -> None:
    with pytest.raises(AuditError, match="Forbidden"):
        AuditView(ledger(world, "DC4")).rounds()


def test_every_page_is_followed(world: World) -> None:
    reader = ledger(world)
    one_by_one = reader.pages("Audit:Activity", "DC1MSP", page_size=1)
    assert len(one_by_one) > 3 and one_by_one == reader.pages("Audit:Activity", "DC1MSP")


def test_json_dumps_parse_back_to_the_same_models(view: AuditView) -> None:
    audit = view.round(ROUND)
    dumped = json.loads(json.dumps(audit.model_dump(mode="json")))
    assert RoundAudit.model_validate(dumped) == audit
    assert dumped["record"]["opened_at"].endswith("Z") and dumped["exchanges"][0]["bytes"] == 4096
    assert KeyVersion[RoundRecord].model_validate(dumped["history"][0]) == audit.history[0]


def test_a_malformed_record_is_an_audit_error(world: World) -> None:
    class Broken:
        task = "task1"

        def evaluate(self, function: str, *args: str) -> Any:
            return {"round_id": ROUND, "state": "closed"}

        def pages(self, function: str, *args: str) -> list[Any]:
            return []

    with pytest.raises(AuditError, match="Rounds:Get returned a record this client cannot read"):
        AuditView(Broken()).round(ROUND)


def _text(*renderables: Any) -> str:
    console = Console(record=True, width=400)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def test_tables_show_records_in_full_and_lists_with_short_hashes(view: AuditView) -> None:
    audit = view.round(ROUND)
    assert audit.alignment is not None
    text = _text(*cli.round_tables(audit))
    for full in (MODEL, audit.record.open_tx, audit.alignment.commitment_sha256, audit.alignment.tx_id):
        assert full in text  # the round's own record, in full
    for e in audit.exchanges:
        assert f"{e.sha256[:16]}…" in text and f"{e.tx_id[:16]}…" in text and e.sha256 not in text
    for a in audit.acknowledgements:
        assert f"{a.tx_id[:16]}…" in text
    assert [len(h.tx_id) for h in audit.history] == [64] * 3 and "--json prints them in full" in text
    members = view.members()
    text = _text(cli.members_table(members, "task1"))
    assert all(f"{m.registered_tx[:16]}…" in text for m in members if m.registered_tx)
    summaries = view.summaries()
    text = _text(cli.summaries_table(summaries, "summaries"))
    assert all(f"{s.latest.manifest_sha256[:16]}…" in text for s in summaries) and "2 of 2" in text
    org = view.org("DC2")
    text = _text(*cli.org_tables(org))
    assert org.member.tls_fingerprint in text and "Membership:Register" in text and "Summaries:Publish" in text
    assert cli.short(None) == "" and cli.short("abc") == "abc"


@pytest.fixture
def cli_view(monkeypatch: pytest.MonkeyPatch, world: World) -> Iterator[None]:
    """``swarmfuse audit`` commands open a view on the in-memory ledger."""
    monkeypatch.setattr(AuditView, "open", classmethod(
        lambda cls, home, task, org="Auditor", user="user": cls(ledger(world, org), Topology(n_orgs=3, auditor=True))))
    yield


def test_cli_json_is_the_models_dump(cli_view: None, view: AuditView) -> None:
    expected = {
        ("members",): [m.model_dump(mode="json") for m in view.members()],
        ("summaries",): [s.model_dump(mode="json") for s in view.summaries()],
        ("rounds",): [r.model_dump(mode="json") for r in view.rounds()],
        ("round", ROUND): view.round(ROUND).model_dump(mode="json"),
        ("exchanges", ROUND): [e.model_dump(mode="json") for e in view.exchanges(ROUND)],
        ("org", "DC2"): view.org("DC2").model_dump(mode="json"),
    }
    for args, want in expected.items():
        result = invoke_cli("audit", *args, "--task", "task1", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == want, args
        tables = invoke_cli("audit", *args, "--task", "task1")
        assert tables.exit_code == 0 and tables.stdout.strip(), tables.output


def test_cli_unknown_round_exits_non_zero_naming_it(cli_view: None) -> None:
    for command in ("round", "exchanges"):
        result = invoke_cli("audit", command, "nope", "--task", "task1")
        assert result.exit_code == 1 and "no round 'nope' in task task1" in result.stderr, result.output


def test_cli_without_a_network_says_so(tmp_path: Path) -> None:
    result = invoke_cli("audit", "members", "--task", "task1", "--home", str(tmp_path / "none"))
    assert result.exit_code == 1 and "no network under" in result.stderr, result.output


TERMS = {"model_spec_sha256": sha("fusion-head-v1"), "fusion_method": "intermediate",
         "extractors": {"image": "label-free site extractor"}, "purpose": "auditing the terms",
         "exchange_kinds": ["features", "model"], "retention_days": 7, "legal_text_sha256": sha("terms"),
         "reward": {"method": "shapley", "metric": "accuracy", "units_per_round": 10,
                    "label_holder_share_percent": 25}}


def agree(world: World, **changes: Any) -> str:
    proposal = world.ok("DC1", "Agreement:Propose", json.dumps({**TERMS, **changes}))
    for org in ("DC2", "DC3"):
        world.ok(org, "Agreement:Confirm", proposal["agreement_sha256"])
    return cast(str, proposal["agreement_sha256"])


def test_the_agreement_in_force_and_its_earlier_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    world = founded()
    view = AuditView(ledger(world), Topology(n_orgs=3, auditor=True))
    assert view.agreement().model_dump() == {"in_force": None, "history": []}
    monkeypatch.setattr(AuditView, "open", classmethod(
        lambda cls, home, task, org="Auditor", user="user": cls(ledger(world, org), Topology(n_orgs=3, auditor=True))))
    none = invoke_cli("audit", "agreement", "--task", "task1")
    assert none.exit_code == 0 and "no terms are in force in task1" in none.stdout, none.output
    first = agree(world)
    second = agree(world, retention_days=14)
    found = view.agreement()
    current = found.in_force
    assert current is not None and (current.agreement_sha256, current.version, current.retention_days) == (second, 2, 14)
    assert [(a.agreement_sha256, a.version) for a in found.history] == [(first, 1), (second, 2)]
    shown = invoke_cli("audit", "agreement", "--task", "task1", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout) == found.model_dump(mode="json")
    text = _text(cli.agreement_table(current, found.history))
    assert second in text and "14 days" in text and "shapley over accuracy (seeds [0]), 10 units" in text and "1: " in text


def test_a_split_round_shows_its_feature_site_leaders_own_extractor_record() -> None:
    world = founded()
    world.ok("DC1", "Rounds:Open", "s1", world.round_spec(split_epochs=1))
    rnd = world.join_all("s1")
    view = AuditView(ledger(world), Topology(n_orgs=3, auditor=True))
    assert view.round("s1").leader_extractor is None  # not recorded yet
    world.ok(rnd["leader"].removesuffix("MSP"), "Rounds:RecordLeaderExtractor", "s1", sha("tuned"))
    own = view.round("s1").leader_extractor
    assert own is not None and (own.org, own.extractor_onnx_sha256) == (rnd["leader"], sha("tuned"))
