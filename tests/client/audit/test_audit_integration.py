"""The auditor's view of the main job's round, on a real network of each engine (the session's ``job``
fixture, tests/round_job.py): every audit query, through the Gateway client as the Auditor org, returns
what the round did (the JobReport, the sites' stores and files, the channel's valid transactions); the CLI
prints the same as JSON and fails clearly on an unknown round; and the Auditor cannot write: every submit
transaction of the production chaincode's metadata is refused and the ledger is unchanged.

Other tests on the same network (tests/client/site) open more rounds and kill agents; these tests read
the job's round, the members and the summaries, which those tests leave as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_runner import invoke_cli, run_cli_process
from fabric_protos.common import common_pb2

from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.contract.metadata import METADATA_FUNCTION
from swarmfuse.client.audit.queries import AuditView, ExchangeRecord, KeyVersion, RoundRecord, UnknownRecord
from swarmfuse.client.demo import job as demo
from swarmfuse.client.demo.job import JobConfig, JobReport
from swarmfuse.client.gateway import EndorseError, Gateway, GatewayError
from swarmfuse.client.site.site import Site
from swarmfuse.client.site.tls import site_tls
from swarmfuse.client.site.wiring import open_site
from swarmfuse.extractors.data.cache import sha256_file

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

TASK = "emoji"
AUDITOR = "Auditor"
DCS = {f"{org}MSP" for org in demo.ORGS}

Job = tuple[JobConfig, JobReport]


@pytest.fixture
def view(job: Job) -> Iterator[AuditView]:
    config, _ = job
    with AuditView.open(config.home, TASK, AUDITOR) as opened:
        yield opened


def _gateway(config: JobConfig, user: str = "user") -> Gateway:
    return Gateway.from_profile(Site(config.home, AUDITOR, TASK).profile, user=user)


def _valid_transactions(config: JobConfig) -> set[str]:
    """The IDs of every transaction the channel's blocks mark VALID, read through the Auditor's Deliver."""
    valid = set()
    with _gateway(config) as gateway:
        for block in demo.blocks_of(gateway, TASK):
            flags = block.metadata.metadata[common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER]
            for index, raw in enumerate(block.data.data):
                payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
                if flags[index] == 0:
                    valid.add(common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id)
    return valid


def test_members_are_the_three_sites_with_when_they_joined(job: Job, view: AuditView) -> None:
    config, report = job
    members = view.members()
    assert {m.org for m in members} == DCS and {m.status for m in members} == {"active"}
    opened_at = RoundRecord.model_validate(report.round).opened_at
    for m in members:
        site = Site(config.home, m.org.removesuffix("MSP"), TASK)
        assert m.registered_tx and m.registered_at < opened_at, m
        assert m.modalities == [demo.ORGS[site.org_name]] and m.endpoint == site.url.removeprefix("https://")
        assert m.tls_fingerprint == site_tls(site.folder).fingerprint()
    assert {m.registered_tx for m in members} <= _valid_transactions(config)


def test_summaries_are_what_the_sites_published(job: Job, view: AuditView) -> None:
    config, _ = job
    found = {s.latest.org: s for s in view.summaries()}
    assert set(found) == DCS
    for org, modality in demo.ORGS.items():
        published = found[f"{org}MSP"]
        latest = published.latest
        with open_site(config.home, org, TASK) as parts:
            dataset = parts.store.latest_dataset(modality)
        assert dataset is not None and latest.modality == modality
        assert (latest.manifest_sha256, latest.entity_count, latest.feature_dim, latest.extractor_onnx_sha256) == (
            dataset.fingerprint, dataset.entity_count, dataset.feature_dim, dataset.extractor_sha256)
        assert published.history[-1].value == latest and published.history[-1].tx_id == latest.tx_id
    txs = {h.tx_id for s in found.values() for h in s.history}
    assert txs <= _valid_transactions(config)


def sent_file(round_dir: Path, e: ExchangeRecord) -> Path:
    """Where the sender keeps the file of exchange ``e``: its shard, or a split-learning epoch's file."""
    if e.kind in ("features", "labels"):
        return round_dir / ("features.npy" if e.kind == "features" else "labels.npz")
    return round_dir / "split" / (f"{e.kind}.npy" if e.kind.startswith("features.") else f"{e.kind}.{e.receiver}.npy")


def test_the_round_is_what_the_job_did(job: Job, view: AuditView) -> None:
    config, report = job
    audit = view.round(config.round_id)
    record = audit.record
    assert record == RoundRecord.model_validate(report.round) and record.state == "closed"
    assert audit.history == [KeyVersion[RoundRecord].model_validate(h) for h in report.history]
    assert next(h.value.state for h in audit.history if h.value) == "open" and audit.history[-1].value == record
    assert audit.history[0].tx_id == record.open_tx
    # Every exchange as the job recorded it, and as the sender's file on disk hashes.
    assert {e.tx_id: e.model_dump(include={"sender", "receiver", "kind", "sha256", "bytes", "entity_count"})
            for e in audit.exchanges} == {
        e["tx_id"]: {k: e[k] for k in ("sender", "receiver", "kind", "sha256", "bytes", "entity_count")}
        for e in report.exchanges}
    for e in audit.exchanges:
        path = sent_file(Site(config.home, e.sender.removesuffix("MSP"), TASK).round_dir(config.round_id), e)
        assert record.leader in (e.sender, e.receiver) and e.sender != e.receiver
        assert (e.sender == record.leader) == e.kind.startswith("gradients.")
        assert sha256_file(path) == e.sha256 and path.stat().st_size == e.bytes
    # The model: acknowledged by every participant with the hash the leader published and each site holds.
    assert record.model_sha256 and {a.org: a.model_sha256 for a in audit.acknowledgements} == {
        p: record.model_sha256 for p in record.participants} == record.acknowledgements
    for org in demo.ORGS:
        assert sha256_file(Site(config.home, org, TASK).round_dir(config.round_id) / "model.npz") == record.model_sha256
    assert audit.alignment is not None and audit.alignment.leader == record.leader
    with open_site(config.home, record.leader.removesuffix("MSP"), TASK) as parts:
        stored = parts.store.get_round(config.round_id)
    assert stored is not None and stored.aligned_count == audit.alignment.entity_count
    txs = {h.tx_id for h in audit.history} | {e.tx_id for e in audit.exchanges} | {
        a.tx_id for a in audit.acknowledgements} | {audit.alignment.tx_id}
    assert txs <= _valid_transactions(config)
    assert view.exchanges(config.round_id) == audit.exchanges
    assert config.round_id in {r.round_id for r in view.rounds()}


def test_an_org_with_its_summaries_and_activity(job: Job, view: AuditView) -> None:
    config, _ = job
    audit = view.round(config.round_id)
    sender = next(e.sender for e in audit.exchanges)
    org = view.org(sender.removesuffix("MSP"))
    assert org.member.org == sender and [s.latest.org for s in org.summaries] == [sender]
    by_tx = {a.tx_id: a.function for a in org.activity}
    assert by_tx[org.member.registered_tx or ""] == "Membership:Register"
    assert by_tx[org.summaries[0].latest.tx_id] == "Summaries:Publish"
    assert {by_tx[e.tx_id] for e in audit.exchanges if e.sender == sender} == {"Rounds:RecordExchange"}
    assert {by_tx[a.tx_id] for a in audit.acknowledgements if a.org == sender} == {"Rounds:Acknowledge"}
    with pytest.raises(UnknownRecord, match="AuditorMSP has not registered"):
        view.org(AUDITOR)


def test_cli_json_is_what_the_view_returns(job: Job, view: AuditView) -> None:
    config, _ = job
    common = ["--home", str(config.home), "--task", TASK, "--json"]
    expected: dict[tuple[str, ...], Any] = {
        ("members",): [m.model_dump(mode="json") for m in view.members()],
        ("summaries",): [s.model_dump(mode="json") for s in view.summaries()],
        ("rounds",): [r.model_dump(mode="json") for r in view.rounds()],
        ("round", config.round_id): view.round(config.round_id).model_dump(mode="json"),
        ("exchanges", config.round_id): [e.model_dump(mode="json") for e in view.exchanges(config.round_id)],
        ("org", "DC2"): view.org("DC2").model_dump(mode="json"),
    }
    for args, want in expected.items():
        result = invoke_cli("audit", *args, *common)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == want, args


def test_cli_unknown_round_is_an_error_exit(job: Job) -> None:
    config, _ = job
    for command in ("round", "exchanges"):
        done = run_cli_process("audit", command, "no-such-round", "--task", TASK, "--home", str(config.home),
                               timeout=120)
        assert done.returncode == 1, done
        assert f"no round 'no-such-round' in task {TASK}" in done.stderr and not done.stdout, done


# --- an auditor cannot write ----------------------------------------------------------------------


def _submit_transactions(gateway: Gateway) -> list[tuple[str, list[str]]]:
    """(name, parameter names) of every submit transaction of the deployed chaincode's metadata that belongs
    to the production contracts (the test networks also serve the test-only, role-less ``Sample``)."""
    deployed = json.loads(gateway.network(TASK).contract("swarmfuse").evaluate_transaction(METADATA_FUNCTION))
    production = create_chaincode().metadata["contracts"]
    assert set(production) <= set(deployed["contracts"]), "the network serves another chaincode"
    return [(f"{name}:{tx['name']}", [p["name"] for p in tx["parameters"]])
            for name, contract in deployed["contracts"].items() if name in production
            for tx in contract["transactions"] if "submit" in tx["tag"]]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _plausible(function: str, parameters: list[str], config: JobConfig, record: RoundRecord,
               task: dict[str, Any]) -> list[str]:
    """Arguments a member could well send: well-formed, naming the job's round, members and model."""
    deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    participants = sorted(DCS)
    values = {
        "round_id": "audit-probe" if "spec" in parameters else config.round_id,
        "spec": json.dumps({"participants": participants, "roles": {p: [demo.ORGS[p.removesuffix("MSP")]]
                                                                     for p in participants},
                            "label_holder": "DC1MSP", "method": "intermediate", "model_spec_sha256": sha("spec"),
                            "deadline": deadline}),
        "reason": "auditor probe",
        "model_bytes": "4096",
        "request_id": "audit-probe",
        "request": json.dumps({"request_id": "audit-probe", "ids_sha256": sha("ids"), "entity_count": 3,
                               "targets": ["DC2MSP"]}),
        "reply": json.dumps({"sha256": sha("features"), "bytes": 48, "entity_count": 3}),
        "model_sha256": record.model_sha256 or sha("model"),
        "deadline": json.dumps(deadline),
        "metrics": json.dumps({"test_accuracy": 0.5}),
        "alignment": json.dumps({"entity_count": 10, "commitment_sha256": sha("aligned")}),
        "exchange": json.dumps({"receiver": record.leader, "kind": "features", "sha256": sha("features"), "bytes": 10,
                                "entity_count": 10, "extractor_onnx_sha256": sha("extractor")}),
        "org": "DC2MSP",
        "profile": json.dumps({"name": "auditor", "endpoint": "127.0.0.1:1", "tls_fingerprint": sha("tls"),
                               "modalities": ["text"]}),
        "summary": json.dumps({"modality": "text", "entity_count": 10, "feature_dim": 8, "manifest_sha256": sha("m"),
                               "entity_commitment": sha("c"), "extractor": "awd-lstm",
                               "extractor_onnx_sha256": sha("x")}),
        "config": json.dumps({"task": TASK, "founders": task["founders"], "auditors": task["auditors"]}),
        "config_sha256": task["config_sha256"],
        "terms": json.dumps({"model_spec_sha256": sha("spec"), "fusion_method": "intermediate",
                             "extractors": {"text": "site"}, "purpose": "auditor probe", "exchange_kinds": ["features"],
                             "retention_days": 1, "legal_text_sha256": sha("terms"),
                             "reward": {"method": "shapley", "metric": "accuracy", "units_per_round": 1,
                                        "label_holder_share_percent": 0}}),
        "agreement_sha256": sha("terms"),
        "contributions": json.dumps({"metric": "test_accuracy", "seeds": [0],
                                     "coalitions": [{"members": [], "scores": ["0.5"]}]}),
        "contribution_sha256": record.contribution_sha256 or "",
        "extractor_onnx_sha256": sha("extractor"),
    }
    missing = [p for p in parameters if p not in values]
    assert not missing, f"{function}: add a plausible value for parameter(s) {missing} to this test"
    return [values[p] for p in parameters]


def _ledger_state(config: JobConfig, view: AuditView) -> dict[str, Any]:
    with _gateway(config) as gateway:
        network = gateway.network(TASK)
        height = network.newest_block().header.number + 1
        task = json.loads(network.contract("swarmfuse", "Task").evaluate_transaction("Get"))
    return {
        "height": height, "task": task,
        "members": [m.model_dump(mode="json") for m in view.members()],
        "summaries": [s.model_dump(mode="json") for s in view.summaries()],
        "rounds": [r.model_dump(mode="json") for r in view.rounds()],
        "activity": {org: [a.model_dump(mode="json") for a in view.activity(org)] for org in [*DCS, "AuditorMSP"]},
    }


@pytest.mark.parametrize("user", ["user", "admin"])
def test_the_auditor_cannot_submit_any_transaction(job: Job, view: AuditView, user: str) -> None:
    """Every submit transaction of the chaincode, as the Auditor's client and as its admin (whose identity
    the channel's Writers policy admits): each refused by the chaincode at endorsement, nothing ordered."""
    config, _ = job
    record = view.round(config.round_id).record
    before = _ledger_state(config, view)
    refused: dict[str, EndorseError] = {}
    with _gateway(config, user) as gateway:
        assert gateway.identity.msp_id == "AuditorMSP"
        transactions = _submit_transactions(gateway)
        assert len(transactions) >= 10 and "Rounds:Acknowledge" in dict(transactions)
        contract = gateway.network(TASK).contract("swarmfuse")
        for function, parameters in transactions:
            args = _plausible(function, parameters, config, record, before["task"])
            try:
                contract.submit_transaction(function, *args)
            except EndorseError as exc:
                refused[function] = exc
            except GatewayError as exc:
                pytest.fail(f"{function} by the Auditor's {user} failed other than by an endorsement refusal: {exc}")
            else:
                pytest.fail(f"{function} by the Auditor's {user} was committed")
    for function, exc in refused.items():
        assert exc.details, f"{function}: {exc}"
        for detail in exc.details:
            assert "chaincode response 403, Forbidden: " in detail.message, f"{function}: {exc}"
    assert _ledger_state(config, view) == before  # nothing ordered (same height), nothing written
