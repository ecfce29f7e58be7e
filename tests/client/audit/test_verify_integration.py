"""``swarmfuse audit verify`` after the main job's round (the session's ``job`` fixture, tests/round_job.py) on
a real network of each engine: the untouched ledger and every site's artefacts pass; a copied site folder with
a changed received file, model or own shard fails naming the exact exchange or model record; and, on the
embedded engine, a byte changed in a stored block or in a state value of its SQLite file (behind the running
engine's back, then put back) fails naming the block and transaction, or the key and the write it differs from.

The engine serves Deliver and chaincode reads from SQLite on every request (no block or state cache), so a
change made with another SQLite connection is what a reader gets next."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_runner import invoke_cli
from fabric_protos.common import common_pb2

from swarmfuse.chaincode.contracts import keys
from swarmfuse.client.audit.queries import AuditView
from swarmfuse.client.audit.report import Check, Status, VerificationReport
from swarmfuse.client.audit.verify import verify_task
from swarmfuse.client.demo import job as demo
from swarmfuse.client.demo.job import JobConfig, JobReport
from swarmfuse.network.embedded.engine import ledger_dir
from swarmfuse.network.layout import Layout
from swarmfuse.network.protocol.validator import transaction_rwset

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

Job = tuple[JobConfig, JobReport]
CHAINCODE = "swarmfuse"


def failures(report: VerificationReport) -> list[Check]:
    return report.failures()


def _verify(config: JobConfig, artefacts: Path | None = None) -> VerificationReport:
    started = time.perf_counter()
    report = verify_task(config.home, config.task, artefacts=artefacts)
    print(f"verify {config.engine}: blocks 0..{report.newest_block}, {len(report.checks)} checks, "
          f"{time.perf_counter() - started:.2f} s")
    return report


def test_verify_passes_on_the_untouched_ledger_and_every_sites_artefacts(job: Job, tmp_path: Path) -> None:
    config, job_report = job
    leader = job_report.round["leader"].removesuffix("MSP")
    for org in demo.ORGS:
        report = _verify(config, config.home / "sites" / org)
        assert report.ok, [c.model_dump() for c in failures(report)]
        artefacts = {c.subject: c for c in report.checks if c.category == "artefacts"}
        model = artefacts[f"file rounds/{config.round_id}/model.npz"]
        assert (model.status, model.record) == (Status.PASS, f"model {config.round_id}")
        # the leader received both feature sites' features of each split-learning epoch and their final ones; each
        # feature site the leader's gradients of each epoch
        received = [c for s, c in artefacts.items() if f"rounds/{config.round_id}/in/" in s]
        expected = 2 * (config.split_epochs + 1) if org == leader else config.split_epochs
        assert len(received) == expected and all(c.status == Status.PASS for c in received)
    names = {c.name for c in report.checks}
    assert {"hash chain", "orderer signature", "creator", "endorsements", "validation code", "commit hash",
            "state value", "chaincode definition"} <= names
    # the same on both engines: the definition committed through _lifecycle in a block, block 0 the genesis
    # block the task was created from
    definition = next(c for c in report.checks if c.name == "chaincode definition")
    assert definition.status == Status.PASS and definition.detail.startswith("committed through _lifecycle")
    anchor = next(c for c in report.checks if (c.name, c.subject) == ("hash chain", "block 0"))
    assert anchor.status == Status.PASS and f"{config.task}.block" in anchor.detail
    # the round's contribution values and credits, recomputed from its table
    contributions = next(c for c in report.checks if (c.name, c.subject) == ("contributions", f"round {config.round_id}"))
    assert contributions.status == Status.PASS and "recomputed from the table" in contributions.detail
    result = invoke_cli("audit", "verify", "--home", str(config.home), "--task", config.task,
                        "--out", str(tmp_path / "report"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "report.html").read_text().count("VERIFIED") == 1
    assert VerificationReport.model_validate_json((tmp_path / "report" / "report.json").read_text()).ok


def test_a_changed_artefact_fails_naming_its_exchange_or_model_record(job: Job, tmp_path: Path) -> None:
    config, job_report = job
    round_id, leader = config.round_id, job_report.round["leader"]
    with AuditView.open(config.home, config.task) as view:
        exchanges = {(e.sender, e.kind): e for e in view.exchanges(round_id)}
    org = leader.removesuffix("MSP")
    copy = tmp_path / org  # named after its org, as <home>/sites/<Org>
    shutil.copytree(config.home / "sites" / org, copy, ignore=shutil.ignore_patterns("*.sqlite*"))
    (sender, kind), exchange = next((k, e) for k, e in exchanges.items() if k[1] == "features")
    received = copy / "rounds" / round_id / "in" / f"{sender}-{kind}-{exchange.sha256[:16]}"
    _flip_last_byte(received)
    _flip_last_byte(copy / "rounds" / round_id / "model.npz")
    report = _verify(config, copy)
    failed = {c.subject: c for c in failures(report)}
    assert set(failed) == {f"file rounds/{round_id}/in/{received.name}", f"file rounds/{round_id}/model.npz"}
    file_check = failed[f"file rounds/{round_id}/in/{received.name}"]
    assert file_check.record == f"exchange {round_id} {sender}->{leader} features"
    assert file_check.tx_id == exchange.tx_id and exchange.sha256 in file_check.detail
    model_check = failed[f"file rounds/{round_id}/model.npz"]
    assert model_check.record == f"model {round_id}" and job_report.round["model_sha256"] in model_check.detail
    # a participant's own shard: its exchange record to the leader
    sender_org = sender.removesuffix("MSP")
    own = tmp_path / "senders" / sender_org
    shutil.copytree(config.home / "sites" / sender_org, own, ignore=shutil.ignore_patterns("*.sqlite*"))
    _flip_last_byte(own / "rounds" / round_id / "features.npy")
    [failure] = failures(_verify(config, own))
    assert (failure.subject, failure.record, failure.tx_id) == (
        f"file rounds/{round_id}/features.npy", f"exchange {round_id} {sender}->{leader} features", exchange.tx_id)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


# --- storage changed behind the embedded engine's back ---------------------------------------------


def _ledger_file(config: JobConfig) -> Path:
    if config.engine != "embedded":
        pytest.skip("the storage of a Fabric peer is not this project's to change")
    return ledger_dir(Layout(config.home.resolve())) / f"{config.task}.sqlite"


@contextmanager
def _changed(path: Path, sql: str, new: object, key: tuple[object, ...], old: object) -> Iterator[None]:
    """Run ``sql`` (``UPDATE ... SET column = ? WHERE ...``) with ``new``, then put ``old`` back."""
    with sqlite3.connect(path) as conn:
        assert conn.execute(sql, (new, *key)).rowcount == 1
    try:
        yield
    finally:
        with sqlite3.connect(path) as conn:
            conn.execute(sql, (old, *key))


def test_a_byte_changed_in_a_stored_block_names_the_block_and_the_transaction(job: Job) -> None:
    config, job_report = job
    path = _ledger_file(config)
    sender, exchange = next((e["sender"], e) for e in job_report.exchanges if e["kind"] == "features")
    key = keys.exchange_key(config.round_id, sender, exchange["receiver"], "features")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        (number, index), = conn.execute("SELECT block, idx FROM txs WHERE tx_id = ?", (exchange["tx_id"],))
        (data,), = conn.execute("SELECT data FROM blocks WHERE number = ?", (number,))
    envelope = common_pb2.Block.FromString(data).data.data[index]
    [value] = [w.value for ns, kv, _ in transaction_rwset(envelope) if ns == CHAINCODE for w in kv.writes
               if w.key == key]
    at = data.index(value) + value.index(exchange["sha256"].encode()) + 10  # a hex digit of the recorded SHA-256
    changed = data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:]
    with _changed(path, "UPDATE blocks SET data = ? WHERE number = ?", changed, (number,), data):
        report = _verify(config)
    failed = {(c.name, c.subject) for c in failures(report)}
    subject = f"block {number} tx {index}"
    assert failed == {("data hash", f"block {number}"), ("commit hash", f"block {number}"), ("creator", subject),
                      ("endorsements", subject), ("validation code", subject),
                      ("state value", f"key exchange/{config.round_id}/{sender}/{exchange['receiver']}/features")}
    assert all(c.block == number for c in failures(report))
    assert {c.tx_id for c in failures(report) if c.tx_id} == {exchange["tx_id"]}
    assert _verify(config).ok  # put back: the ledger verifies again


def test_a_state_value_changed_behind_the_engine_names_the_key_and_its_last_write(job: Job) -> None:
    config, job_report = job
    path = _ledger_file(config)
    key = keys.round_key(config.round_id).encode()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        (value, block, tx), = conn.execute("SELECT value, block, tx FROM state WHERE ns = ? AND key = ?",
                                           (CHAINCODE, key))
        (tx_id,), = conn.execute("SELECT tx_id FROM txs WHERE block = ? AND idx = ?", (block, tx))
    digest = job_report.round["model_sha256"].encode()
    changed = value.replace(digest, (b"0" if digest[:1] != b"0" else b"1") + digest[1:])
    assert changed != value
    with _changed(path, "UPDATE state SET value = ? WHERE ns = ? AND key = ?", changed, (CHAINCODE, key), value):
        report = _verify(config)
    [failure] = failures(report)
    assert (failure.name, failure.subject, failure.block, failure.tx_id) == (
        "state value", f"key round/{config.round_id}", block, tx_id)
    assert f"(block {block} tx {tx})" in failure.detail
    assert _verify(config).ok
