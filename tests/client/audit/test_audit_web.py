"""The audit web app on a fake view and verifier: every REST endpoint, the page and its filters, errors
(404 unknown round or org, 503 ledger unreachable, 409 verification running), no external URL anywhere."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cli_runner import invoke_cli
from fastapi.testclient import TestClient

from swarmfuse.client.audit import web
from swarmfuse.client.audit.queries import (
    AcknowledgementRecord,
    AgreementAudit,
    AgreementRecord,
    AlignmentRecord,
    AuditError,
    AuditView,
    ExchangeRecord,
    KeyVersion,
    MemberRecord,
    OrgAudit,
    ProvenanceRecord,
    PublishedSummary,
    RoundAudit,
    RoundRecord,
    SummaryRecord,
    UnknownRecord,
)
from swarmfuse.client.audit.report import Category, Check, Status, VerificationReport
from swarmfuse.client.gateway import ConnectError, EvaluateError
from swarmfuse.client.ledger import LedgerRefused

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ORGS = ["DC1MSP", "DC2MSP", "DC3MSP"]
VERIFY = {web.VERIFY_HEADER: "verify"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def member(org: str) -> MemberRecord:
    return MemberRecord(org=org, name=org.removesuffix("MSP"), status="active", modalities=["text"],
                        endpoint="127.0.0.1:1", tls_fingerprint=sha(f"tls {org}"), registered_at=at(0),
                        updated_at=at(0), registered_tx=sha(f"join {org}"))


def summary(org: str, modality: str) -> PublishedSummary:
    record = SummaryRecord(org=org, modality=modality, version=1, entity_count=1200, feature_dim=400,
                           manifest_sha256=sha(f"manifest {org}"), entity_commitment=sha(f"ids {org}"),
                           extractor="awd_lstm", extractor_onnx_sha256=sha(f"onnx {org}"), published_at=at(1),
                           tx_id=sha(f"publish {org}"), extractor_provenance=None if modality == "label" else
                           ProvenanceRecord(recipe=f"site-{modality}-0123", labels="foreign" if org == "DC3MSP" else
                                            "none", data_sha256=sha(f"manifest {org}"), teacher_sha256=sha("lite0")))
    return PublishedSummary(latest=record, history=[KeyVersion[SummaryRecord](tx_id=record.tx_id,
                                                                                timestamp=at(1), value=record)])


def round_record(round_id: str, state: str, opened: float, participants: list[str], **update: Any) -> RoundRecord:
    return RoundRecord(round_id=round_id, state=state, participants=participants,
                       roles={p: ["label" if p == "DC1MSP" else "text"] for p in participants}, label_holder="DC1MSP",
                       method="intermediate", model_spec_sha256=sha("spec"), deadline=at(opened + 120),
                       opened_by="DC1MSP", opened_at=at(opened), open_tx=sha(f"open {round_id}"), turn=0,
                       leader=participants[0], updated_at=at(opened), **update)


def exchange(round_id: str, sender: str, receiver: str, minute: float) -> ExchangeRecord:
    return ExchangeRecord(round_id=round_id, sender=sender, receiver=receiver, kind="features",
                          sha256=sha(f"file {round_id} {sender}"), bytes=3_400_000, entity_count=900,
                          recorded_at=at(minute), tx_id=sha(f"tx {round_id} {sender}"))


def round_audit(round_id: str, opened: float, participants: list[str]) -> RoundAudit:
    model = sha(f"model {round_id}")
    opened_record = round_record(round_id, "open", opened, participants)
    fused = round_record(round_id, "fused", opened, participants, model_sha256=model,
                         metrics={"test_accuracy": 0.82, "test_macro_f1": 0.8})
    closed = fused.model_copy(update={"state": "closed", "acknowledgements": {p: model for p in participants}})
    leader = participants[0]
    return RoundAudit(
        record=closed,
        history=[KeyVersion[RoundRecord](tx_id=sha(f"h{i} {round_id}"), timestamp=at(opened + m), value=v)
                 for i, (m, v) in enumerate([(0, opened_record), (5, fused), (7, closed)])],
        alignment=AlignmentRecord(round_id=round_id, leader=leader, entity_count=900,
                                  commitment_sha256=sha(f"aligned {round_id}"), recorded_at=at(opened + 1),
                                  tx_id=sha(f"align {round_id}")),
        exchanges=[exchange(round_id, p, leader, opened + 2 + i) for i, p in enumerate(participants[1:])],
        acknowledgements=[AcknowledgementRecord(round_id=round_id, org=p, model_sha256=model,
                                                acknowledged_at=at(opened + 6), tx_id=sha(f"ack {round_id} {p}"))
                          for p in participants],
    )


ROUNDS = {"round-1": round_audit("round-1", 10, ORGS), "round-2": round_audit("round-2", 30, ["DC1MSP", "DC2MSP"])}


class FakeView:
    """The queries of AuditView on fixed records; ``fail`` makes every query raise it."""

    task = "emoji"

    def __init__(self) -> None:
        self.fail: Exception | None = None
        self.closed = False
        self.terms = AgreementAudit(in_force=None, history=[])

    def _check(self) -> None:
        if self.fail is not None:
            raise self.fail

    def members(self) -> list[MemberRecord]:
        self._check()
        return [member(org) for org in ORGS]

    def summaries(self, org: str | None = None) -> list[PublishedSummary]:
        self._check()
        found = [summary("DC1MSP", "label"), summary("DC2MSP", "text"), summary("DC3MSP", "image")]
        return [s for s in found if org is None or s.latest.org == org]

    def rounds(self) -> list[RoundRecord]:
        self._check()
        return [r.record for r in ROUNDS.values()]

    def agreement(self) -> AgreementAudit:
        self._check()
        return self.terms

    def round(self, round_id: str) -> RoundAudit:
        self._check()
        if round_id not in ROUNDS:
            raise UnknownRecord(f"no round {round_id!r} in task emoji")
        return ROUNDS[round_id]

    def exchanges(self, round_id: str) -> list[ExchangeRecord]:
        return self.round(round_id).exchanges

    def org(self, org: str) -> OrgAudit:
        self._check()
        mspid = org if org.endswith("MSP") else f"{org}MSP"
        if mspid not in ORGS:
            raise UnknownRecord(f"{mspid} has not registered in task emoji")
        return OrgAudit(member=member(mspid), summaries=self.summaries(mspid), activity=[])

    def close(self) -> None:
        self.closed = True


def check(name: str, status: Status, detail: str, category: Category = Category.BLOCKS) -> Check:
    return Check(category=category, name=name, subject=f"subject of {name}", status=status, detail=detail)


PASSING = [check("hash chain", Status.PASS, "12 blocks chained"),
           check("exchange recorded", Status.PASS, "2 exchanges match", Category.STATE),
           check("artefact hash", Status.SKIP, "no artefacts folder given", Category.ARTEFACTS)]
FAILING = check("model acknowledged", Status.FAIL, "DC3MSP acknowledged another hash", Category.STATE)


class FakeVerifier:
    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks
        self.runs = 0
        self.gate: threading.Event | None = None
        self.fail: Exception | None = None

    def __call__(self) -> VerificationReport:
        self.runs += 1
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            self.gate.wait(10)
        return VerificationReport(channel="emoji", chaincode="swarmfuse", engine="embedded", identity="AuditorMSP",
                                  newest_block=12, started_at=T0, seconds=0.4, checks=self.checks)


@pytest.fixture
def view() -> FakeView:
    return FakeView()


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier(PASSING)


@pytest.fixture
def client(view: FakeView, verifier: FakeVerifier) -> Iterator[TestClient]:
    factory: Callable[[], AuditView] = lambda: view  # type: ignore[assignment,return-value]
    with TestClient(web.create_app(factory, verifier)) as test_client:
        yield test_client


def unreachable() -> AuditError:
    """What AuditView raises when the peer is down: AuditError from LedgerRefused from the gateway's error."""
    try:
        try:
            raise EvaluateError("tx", grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", [])
        except EvaluateError as exc:
            raise LedgerRefused("Audit:Members", str(exc)) from exc
    except LedgerRefused as refused:
        error = AuditError(f"Audit:Members: {refused.message}")
        error.__cause__ = refused
        return error


# --- REST -------------------------------------------------------------------------------------------


def test_rest_endpoints_return_the_view_as_json(client: TestClient) -> None:
    assert [m["org"] for m in client.get("/api/members").json()] == ORGS
    assert {s["latest"]["org"] for s in client.get("/api/summaries").json()} == set(ORGS)
    assert [s["latest"]["org"] for s in client.get("/api/summaries", params={"org": "DC2MSP"}).json()] == ["DC2MSP"]
    assert {r["round_id"] for r in client.get("/api/rounds").json()} == set(ROUNDS)
    assert client.get("/api/agreement").json() == {"in_force": None, "history": []}
    detail = client.get("/api/rounds/round-1").json()
    assert detail["record"]["state"] == "closed"
    assert [h["value"]["state"] for h in detail["history"]] == ["open", "fused", "closed"]
    assert detail["alignment"]["entity_count"] == 900 and len(detail["acknowledgements"]) == 3
    exchanges = client.get("/api/rounds/round-1/exchanges").json()
    assert {e["sha256"] for e in exchanges} == {e.sha256 for e in ROUNDS["round-1"].exchanges}
    assert client.get("/api/orgs/DC2").json()["member"]["org"] == "DC2MSP"


@pytest.mark.parametrize("path", ["/api/rounds/nope", "/api/rounds/nope/exchanges", "/api/orgs/DC9MSP"])
def test_unknown_round_or_org_is_404_with_a_message(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert re.search(r"nope|DC9MSP", answer.json()["detail"])


def test_unreachable_ledger_is_503_and_the_view_is_reopened(client: TestClient, view: FakeView) -> None:
    view.fail = unreachable()
    answer = client.get("/api/members")
    assert answer.status_code == 503
    assert "cannot be reached" in answer.json()["detail"] and "UNAVAILABLE" in answer.json()["detail"]
    assert view.closed  # dropped, so the next request reconnects
    view.fail = None
    assert client.get("/api/members").status_code == 200


def test_the_view_is_closed_with_the_app(view: FakeView, verifier: FakeVerifier) -> None:
    with TestClient(web.create_app(lambda: view, verifier)) as client:  # type: ignore[arg-type,return-value]
        client.get("/api/rounds")
        assert not view.closed
    assert view.closed


def test_a_view_that_cannot_connect_is_503(verifier: FakeVerifier) -> None:
    def refuse() -> AuditView:
        raise ConnectError("gateway peer 127.0.0.1:1 is unreachable")

    with TestClient(web.create_app(refuse, verifier)) as client:
        answer = client.get("/api/rounds")
        assert answer.status_code == 503 and "127.0.0.1:1 is unreachable" in answer.json()["detail"]
        assert client.get("/").status_code == 503


def test_a_verification_that_cannot_reach_the_ledger_is_503(client: TestClient, verifier: FakeVerifier) -> None:
    verifier.fail = ConnectError("gateway peer 127.0.0.1:1 is unreachable")
    answer = client.post("/api/verify", headers=VERIFY)
    assert answer.status_code == 503 and "127.0.0.1:1" in answer.json()["detail"]
    assert client.get("/api/verify/latest").status_code == 404


def test_a_refused_query_is_502(client: TestClient, view: FakeView) -> None:
    view.fail = AuditError("Audit:Members: Forbidden: caller is not registered nor an auditor")
    answer = client.get("/api/members")
    assert answer.status_code == 502 and "Forbidden" in answer.json()["detail"]


def test_verify_runs_the_verifier_and_keeps_the_latest(client: TestClient, verifier: FakeVerifier) -> None:
    assert client.get("/api/verify/latest").status_code == 404
    report = client.post("/api/verify", headers=VERIFY).json()
    assert report["ok"] is True and report["summary"] == {"passed": 2, "failed": 0, "skipped": 1, "info": 0}
    assert [c["name"] for c in report["checks"]] == [c.name for c in PASSING] and verifier.runs == 1
    assert client.get("/api/verify/latest").json() == report


def test_a_verification_needs_the_custom_header(client: TestClient, verifier: FakeVerifier) -> None:
    """A form or simple request from another site's page cannot set it, so it cannot start verifications."""
    for headers in ({}, {web.VERIFY_HEADER: "yes"}):
        answer = client.post("/api/verify", headers=headers)
        assert answer.status_code == 403 and web.VERIFY_HEADER in answer.json()["detail"]
    assert verifier.runs == 0
    assert client.get("/api/verify/latest").status_code == 404


def test_a_second_verification_waits_its_turn(client: TestClient, verifier: FakeVerifier) -> None:
    verifier.gate = threading.Event()
    first = threading.Thread(target=client.post, args=("/api/verify",), kwargs={"headers": VERIFY})
    first.start()
    while verifier.runs == 0:
        threading.Event().wait(0.01)
    try:
        assert client.post("/api/verify", headers=VERIFY).status_code == 409
    finally:
        verifier.gate.set()
        first.join()
    assert verifier.runs == 1


def test_no_endpoint_writes(client: TestClient) -> None:
    """Only the verification is a POST, and it reads; nothing else takes PUT, PATCH, DELETE or POST."""
    spec = client.get("/openapi.json").json()
    writes = {(path, method) for path, ops in spec["paths"].items() for method in ops if method != "get"}
    assert writes == {("/api/verify", "post")}


# --- the page -----------------------------------------------------------------------------------------


def test_page_shows_members_summaries_rounds_timelines_and_exchanges(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for record in ROUNDS.values():
        assert f'id="round-{record.record.round_id}"' in html
        for e in record.exchanges:
            assert e.sha256 in html  # full SHA-256, copyable
        for version in record.history:
            assert version.tx_id[:10] in html
    for org in ORGS:
        assert sha(f"tls {org}")[:10] in html
    assert sha("manifest DC3MSP")[:10] in html
    assert "labels <strong>none</strong>; recipe site-text-0123" in html and sha("lite0")[:10] in html
    assert "labels <strong>foreign</strong> (another party's: the reference); recipe site-image-0123" in html
    assert 'id="run-verification"' in html and "No verification has run" in html


def test_page_shows_the_terms_in_force_or_that_there_are_none(client: TestClient, view: FakeView) -> None:
    assert "No terms are in force" in client.get("/").text
    terms = {"model_spec_sha256": sha("head"), "fusion_method": "intermediate", "extractors": {"text": "site"},
             "purpose": "emoji groups", "exchange_kinds": ["features", "model"], "retention_days": 30,
             "reward": {"method": "shapley", "metric": "accuracy", "units_per_round": 100,
                        "label_holder_share_percent": 20}, "legal_text_sha256": sha("legal"),
             "confirmed_by": ORGS, "activated_at": T0, "tx_id": "a" * 64}
    first = AgreementRecord(agreement_sha256=sha("v1"), version=1, **terms)
    second = AgreementRecord(agreement_sha256=sha("v2"), version=2, **terms)
    view.terms = AgreementAudit(in_force=second, history=[first, second])
    html = client.get("/").text
    assert 'id="agreement"' in html and "version 2" in html and sha("v2") in html and sha("legal") in html
    assert "features, model" in html and "shapley over accuracy, 100 units a round, 20 % to the label holder" in html
    assert sha("v1")[:10] in html  # the earlier version


def test_round_filter_shows_that_round_only(client: TestClient) -> None:
    html = client.get("/", params={"round": "round-2"}).text
    assert 'id="round-round-2"' in html and 'id="round-round-1"' not in html
    assert all(e.sha256 in html for e in ROUNDS["round-2"].exchanges)
    assert not any(e.sha256 in html for e in ROUNDS["round-1"].exchanges)
    assert '<option value="round-2" selected>' in html


def test_org_filter_keeps_that_orgs_records(client: TestClient) -> None:
    html = client.get("/", params={"org": "DC3MSP"}).text
    assert 'id="round-round-1"' in html and 'id="round-round-2"' not in html  # DC3 is not in round-2
    sent = [e for e in ROUNDS["round-1"].exchanges if "DC3MSP" in (e.sender, e.receiver)]
    assert sent and all(e.sha256 in html for e in sent)
    assert not any(e.sha256 in html for e in ROUNDS["round-1"].exchanges if e not in sent)
    assert sha("manifest DC3MSP")[:10] in html and sha("manifest DC2MSP")[:10] not in html
    assert sha("tls DC3MSP")[:10] in html and sha("tls DC1MSP")[:10] not in html


def test_empty_filters_mean_everything(client: TestClient) -> None:
    assert client.get("/", params={"org": "", "round": ""}).text.count('class="card round"') == len(ROUNDS)


@pytest.mark.parametrize("params", [{"round": "nope"}, {"org": "DC9MSP"}])
def test_page_with_an_unknown_filter_is_404(client: TestClient, params: dict[str, str]) -> None:
    answer = client.get("/", params=params)
    assert answer.status_code == 404 and "Not on the ledger" in answer.text


def test_timeline_is_in_time_order_with_states_and_records() -> None:
    events = web.timeline(ROUNDS["round-1"])
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert [e.title for e in events if e.kind == "state"] == ["open", "fused", "closed"]
    assert [e.kind for e in events].count("exchange") == 2 and [e.kind for e in events].count("acknowledgement") == 3
    assert events[0].note.startswith("opened by DC1MSP")


def test_verification_result_lists_failing_checks_first(client: TestClient, verifier: FakeVerifier) -> None:
    verifier.checks = [*PASSING, FAILING]
    assert client.post("/api/verify", headers=VERIFY).json()["ok"] is False
    fragment = client.get("/partials/verification").text
    assert 'data-verdict="fail"' in fragment
    assert re.search(r"<strong>2</strong> passed · <strong>1</strong> failed · 1 skipped", fragment)
    assert fragment.index("DC3MSP acknowledged another hash") < fragment.index("hash chain")
    assert fragment.index("model acknowledged") < fragment.index("hash chain")  # in the per-check counts too
    assert "no artefacts folder given" in fragment  # what was skipped, and why
    assert 'data-verdict="fail"' in client.get("/").text  # the page shows the latest run too


def test_page_docs_and_assets_reference_no_external_url(client: TestClient, verifier: FakeVerifier) -> None:
    client.post("/api/verify", headers=VERIFY)
    bodies = {path: client.get(path) for path in ("/", "/?round=round-1", "/docs", "/partials/verification",
                                                  "/static/audit.css", "/static/audit.js")}
    for path, answer in bodies.items():
        assert answer.status_code == 200, path
        assert not re.search(r"(https?:)?//[a-z0-9]", answer.text, re.IGNORECASE), path
    assert "/api/rounds/{round_id}/exchanges" in bodies["/docs"].text


def test_allowed_hosts_refuse_other_host_headers(view: FakeView, verifier: FakeVerifier) -> None:
    app = web.create_app(lambda: view, verifier, allowed_hosts=["127.0.0.1"])  # type: ignore[arg-type,return-value]
    with TestClient(app, base_url="http://127.0.0.1:8600") as client:
        assert client.get("/api/members").status_code == 200
        assert client.get("/api/members", headers={"host": "attacker.example"}).status_code == 400


def test_size_and_short() -> None:
    assert [web.size(n) for n in (512, 1536, 3_400_000, 5 << 30)] == ["512 B", "1.5 KiB", "3.2 MiB", "5.0 GiB"]
    assert web.short("a" * 64) == "a" * 10 + "…" and web.short(None) == ""


def test_serve_is_an_audit_command() -> None:
    out = invoke_cli("audit", "serve", "--help", terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "read-only" in out.output and "127.0.0.1" in out.output and "--artefacts" in out.output
