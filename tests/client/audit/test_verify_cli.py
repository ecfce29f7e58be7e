"""``swarmfuse audit verify`` as a command, without a network: the replay of a real engine channel's blocks
(the embedded engine's orderer, validator and SQLite ledger, as in test_verify_replay) stands in for
``verify_task``'s Deliver walk; the errors come from the real ``verify_task``. Exit status 0 when every check
passed, 1 when one failed, 2 when the ledger could not be verified; the report is written to ``--out``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bundle_files import IDENTITY, minimal_bundle
from cli_runner import invoke_cli
from click.testing import Result
from test_verify_replay import CHAINCODE, CHANNEL, DC2_CLIENT, EXCHANGE_KEY, ROUND_KEY, EngineChannel, envelope

from swarmfuse.client.audit import cli
from swarmfuse.client.audit import verify as verify_module
from swarmfuse.client.audit.replay import LedgerReplay
from swarmfuse.client.audit.report import Status, VerificationReport


@pytest.fixture
def channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineChannel]:
    """An engine channel with two blocks of transactions; ``verify_task`` replays it, reporting progress."""
    engine = EngineChannel(tmp_path / "ledger.sqlite")
    engine.block(envelope({ROUND_KEY: b'{"state":"open"}'}))
    engine.block(envelope({EXCHANGE_KEY: b'{"sha256":"' + b"ab" * 32 + b'"}'}, creator=DC2_CLIENT))
    calls: list[tuple[Path, str, str]] = []

    def replayed(home: Path, task: str, org: str, *, artefacts: Path | None = None,
                 progress: verify_module.Progress | None = None) -> VerificationReport:
        calls.append((home, task, org))
        replay = LedgerReplay(CHAINCODE)
        for number in range(engine.ledger.height):
            replay.add(engine.ledger.block(number))  # type: ignore[arg-type]
            if progress is not None:
                progress(number, engine.ledger.height - 1)
        replay.final_checks({k: hashlib.sha256(v.value).hexdigest()
                             for k, v in engine.ledger.get_state_range(CHAINCODE, "", "")})
        return VerificationReport(channel=task, chaincode=CHAINCODE, engine="embedded", identity=org,
                                  newest_block=replay.newest, started_at=datetime.now(UTC), seconds=0.1,
                                  checks=replay.checks)

    monkeypatch.setattr(verify_module, "verify_task", replayed)
    engine.calls = calls
    yield engine
    engine.channel.stop()


def run(*args: str) -> Result:
    return invoke_cli("audit", "verify", *args)


def test_an_untouched_ledger_exits_0_and_writes_both_reports(channel: EngineChannel, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run("--home", str(tmp_path), "--task", CHANNEL, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert channel.calls == [(tmp_path, CHANNEL, "Auditor")]
    assert "verified" in result.stdout and "hash chain" in result.stdout
    report = VerificationReport.model_validate_json((out / "report.json").read_text())
    assert report.ok and report.newest_block == 3 and report.summary.failed == 0
    assert (out / "report.html").read_text().count("VERIFIED") == 1
    assert f"report: {out / 'report.html'}" in result.output


def test_a_failed_check_exits_1_with_failures_first(channel: EngineChannel, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "width", 200)  # a wide terminal: no cell folded
    channel.tamper("UPDATE state SET value = ? WHERE ns = ? AND key = ?", b'{"state":"closed"}', CHAINCODE,
                   ROUND_KEY.encode())
    result = run("--home", str(tmp_path), "--task", CHANNEL, "--out", str(tmp_path / "r"))
    assert result.exit_code == 1, result.output
    stdout = result.stdout
    assert stdout.index("1 failed check") < stdout.index("verification of task1")  # the failures table first
    assert "key round/r1" in stdout and "1 check failed" in stdout
    summary = stdout[stdout.index("verification of task1"):]
    assert summary.index("state value") < summary.index("hash chain")  # the failing check's row first
    [failure] = VerificationReport.model_validate_json((tmp_path / "r" / "report.json").read_text()).failures()
    assert (failure.name, failure.subject, failure.block) == ("state value", "key round/r1", 2)


def test_json_prints_the_report(channel: EngineChannel, tmp_path: Path) -> None:
    result = run("--home", str(tmp_path), "--task", CHANNEL, "--out", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["newest_block"] == 3
    assert {check["status"] for check in document["checks"]} <= {s.value for s in Status}


def test_it_exits_2_when_it_cannot_verify(tmp_path: Path) -> None:
    """The real ``verify_task``: no network under the home; an artefacts folder that is not one."""
    result = run("--home", str(tmp_path / "nothing"), "--task", CHANNEL, "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "no network under" in result.output
    assert not (tmp_path / "r").exists()
    result = run("--home", str(tmp_path), "--task", CHANNEL, "--artefacts", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "not a folder" in result.output


def test_a_changed_bundle_exits_2_naming_the_file(channel: EngineChannel, tmp_path: Path) -> None:
    bundle = minimal_bundle(tmp_path / "auditor-bundle", "Auditor", CHANNEL)
    (bundle / IDENTITY).write_text("another certificate\n")
    result = run("--bundle", str(bundle), "--out", str(tmp_path / "report"))
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "identities/user/cert.pem was altered" in text
    assert channel.calls == [] and not (tmp_path / "report").exists()


def test_a_bundle_of_another_task_or_org_exits_2(channel: EngineChannel, tmp_path: Path) -> None:
    bundle = minimal_bundle(tmp_path / "auditor-bundle", "Auditor", CHANNEL)
    result = run("--bundle", str(bundle), "--task", "other", "--out", str(tmp_path / "report"))
    assert result.exit_code == 2 and "--task other is not the bundle's" in result.output
    result = run("--bundle", str(bundle), "--org", "DC1", "--out", str(tmp_path / "report"))
    assert result.exit_code == 2 and "--org DC1 is not the bundle's" in result.output


def test_without_task_or_bundle_exits_2(channel: EngineChannel, tmp_path: Path) -> None:
    result = run("--home", str(tmp_path), "--out", str(tmp_path / "report"))
    assert result.exit_code == 2 and "give --task (or --bundle)" in result.output
