"""Contributions as the auditor sees them: the rounds' tables, values and credits through AuditView, the CLI and
the REST API, and ``audit verify``'s recomputation of them from the replayed state, which names what a
colluding majority bent (a credit, a value, an acknowledgement of another table, a credit with no table)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from test_audit_views import ledger

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))  # the in-memory world's helpers
from cc_world import World, consortium, sha
from cli_runner import invoke_cli
from test_consortium_agreement import agreed, terms
from test_consortium_contributions import MODEL, PLAYERS, table

from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import Acknowledgement, Contribution, Credit
from swarmfuse.client.audit import cli
from swarmfuse.client.audit.contributions import contribution_checks
from swarmfuse.client.audit.queries import AuditView
from swarmfuse.client.audit.report import Status
from swarmfuse.client.audit.web import create_app
from swarmfuse.network.topology import Topology


@pytest.fixture
def world() -> World:
    """Round r1 under agreed terms, closed with its table; round r2 fused with its table, not closed."""
    world = consortium(3)
    digest = agreed(world, terms())["agreement_sha256"]
    for rid in ("r1", "r2"):
        world.ok("DC1", "Rounds:Open", rid, world.round_spec(agreement_sha256=digest))
        leader = world.join_all(rid)["leader"].removesuffix("MSP")
        world.ok(leader, "Rounds:MarkFused", rid, MODEL, "4096", '{"accuracy": 0.8}', world.deadline(),
                 json.dumps(table()))
    recorded = world.read("DC1", "Rounds:GetContribution", "r1")
    for org in PLAYERS:
        world.ok(org.removesuffix("MSP"), "Rounds:Acknowledge", "r1", MODEL, recorded["table_sha256"])
    world.ok("DC1", "Rounds:Close", "r1")
    return world


def test_the_auditor_reads_each_rounds_values_and_credits(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    view = AuditView(ledger(world), Topology(n_orgs=3, auditor=True))
    found = view.contributions()
    assert [a.record.round_id for a in found.rounds] == ["r2", "r1"]
    closed = found.rounds[1]
    assert closed.contribution is not None and closed.contribution.shapley["DC1MSP"] == "47/120"
    assert {c.org: c.units for c in closed.credits} == closed.contribution.units == found.totals
    assert found.rounds[0].credits == [] and sum(found.totals.values()) == 100  # r2 is not closed: no credit
    assert view.round("r1").contribution == closed.contribution
    monkeypatch.setattr(AuditView, "open", classmethod(
        lambda cls, home, task, org="Auditor", user="user": cls(ledger(world, org), Topology(n_orgs=3, auditor=True))))
    shown = invoke_cli("audit", "contributions", "--task", "task1")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "contributions to round r1 (closed): accuracy, seeds [0], exact Shapley" in text
    assert "units credited in task1" in text
    wide = Console(record=True, width=200)
    wide.print(cli.contribution_table(closed))
    row = next(line for line in wide.export_text().splitlines() if "DC1MSP" in line)
    assert "+0.3917 (47/120)" in row and "71%" in row and "+0.4000" in row and row.count("57") == 2
    as_json = invoke_cli("audit", "contributions", "--task", "task1", "--json")
    assert json.loads(as_json.stdout) == found.model_dump(mode="json")
    one = invoke_cli("audit", "round", "r1", "--task", "task1")
    assert "contributions to round r1" in " ".join(one.stdout.split()), one.output
    app = create_app(lambda: AuditView(ledger(world), Topology(n_orgs=3, auditor=True)), lambda: None)  # type: ignore[arg-type,return-value]
    with TestClient(app) as client:
        assert client.get("/api/contributions").json() == found.model_dump(mode="json")
        page = client.get("/", params={"round": "r1"}).text
        assert 'id="contributions-r1"' in page and 'data-org="DC1MSP"' in page and "+0.3917" in page


def checks(world: World) -> dict[str, tuple[Status, str]]:
    return {c.subject: (c.status, c.detail) for c in contribution_checks(world.ledger.state)}


def rewrite(world: World, key: str, model: type, **changes: object) -> None:
    """What a colluding majority of endorsers can do to a shared record."""
    record = model.model_validate_json(world.ledger.state[key])
    world.ledger.state[key] = record.model_copy(update=changes).model_dump_json().encode()


def test_verify_recomputes_values_and_credits_and_names_what_was_bent(world: World) -> None:
    assert {s: status for s, (status, _) in checks(world).items()} == {"round r1": Status.PASS, "round r2": Status.PASS}
    assert "recomputed from the table" in checks(world)["round r1"][1]

    rewrite(world, keys.credit_key("r1", "DC2MSP"), Credit, units=90)
    status, detail = checks(world)["round r1"]
    assert status is Status.FAIL and "credits" in detail and "'DC2MSP': 90" in detail

    rewrite(world, keys.contribution_key("r2"), Contribution, shapley={"DC1MSP": "1", "DC2MSP": "0", "DC3MSP": "0"})
    status, detail = checks(world)["round r2"]
    assert status is Status.FAIL and "Shapley values" in detail and "recomputed" in detail

    rewrite(world, keys.ack_key("r1", "DC3MSP"), Acknowledgement, contribution_sha256=sha("another table"))
    assert f"DC3MSP acknowledged table {sha('another table')}" in checks(world)["round r1"][1]

    world.ledger.state[keys.credit_key("r9", "DC1MSP")] = world.ledger.state[keys.credit_key("r1", "DC1MSP")]
    status, detail = checks(world)["round r9"]
    assert status is Status.FAIL and "recorded no contribution table" in detail
