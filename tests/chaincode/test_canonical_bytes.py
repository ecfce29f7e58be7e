"""Endorsers must agree byte for byte: the same proposals give the same response, event and write
bytes in chaincode processes with other time zones and hash seeds; datetimes are canonical UTC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cc_replay import replay
from cc_world import ORGS, config_sha256, profile, sha, summary

from swarmfuse.chaincode.contract.canonical import canonical_json, to_plain, utc_text
from swarmfuse.chaincode.contracts.leader import leader_for
from swarmfuse.chaincode.memstub import DEFAULT_START

HERE = Path(__file__).resolve().parent
INDIA = timezone(timedelta(hours=5, minutes=30))
NEWFOUNDLAND = timezone(timedelta(hours=-3, minutes=-30))


def scenario() -> list[dict[str, Any]]:
    """A task founded, members admitted, a round run to its end and another aborted, with offsets everywhere."""
    calls: list[dict[str, Any]] = []
    clock = DEFAULT_START

    def call(org: str, function: str, *args: str, submit: bool = True) -> None:
        nonlocal clock
        clock += timedelta(seconds=1)
        who = ORGS[org]
        calls.append(
            {"mspid": who.mspid, "cert": who.cert_pem.decode(), "function": function, "args": list(args),
             "submit": submit, "at": clock.astimezone(INDIA if len(calls) % 2 else NEWFOUNDLAND).isoformat()}
        )  # fmt: skip

    config = json.dumps({"task": "task1", "founders": ["DC3MSP", "DC1MSP", "DC2MSP"], "auditors": ["AuditorMSP"]})
    call("DC2", "Task:Init", config)
    call("DC1", "Task:Confirm", config_sha256(config))
    call("DC3", "Task:Confirm", config_sha256(config))
    for org in ("DC1", "DC2", "DC3", "DC4"):
        call(org, "Membership:Register", profile(org))
    call("DC1", "Membership:Approve", "DC4MSP")
    call("DC3", "Membership:Approve", "DC4MSP")
    call("DC3", "Summaries:Publish", summary("DC3", "text"))
    deadline = (DEFAULT_START + timedelta(hours=2)).astimezone(INDIA).isoformat()
    spec = {
        "participants": ["DC4MSP", "DC2MSP", "DC1MSP"],
        "roles": {"DC4MSP": ["text"], "DC1MSP": ["text"], "DC2MSP": ["image"]},
        "label_holder": "DC2MSP",
        "method": "intermediate",
        "model_spec_sha256": sha("head"),
        "deadline": deadline,
    }
    call("DC1", "Rounds:Open", "r1", json.dumps(spec))
    for org in ("DC4", "DC2"):
        call(org, "Rounds:Join", "r1")
    leader_org = leader_for(spec["participants"], 0).removesuffix("MSP")
    for org in ("DC1", "DC2", "DC4"):
        if org != leader_org:
            shard = {"receiver": f"{leader_org}MSP", "kind": "features", "sha256": sha(org), "bytes": 7,
                     "entity_count": 3}  # fmt: skip
            call(org, "Rounds:RecordExchange", "r1", json.dumps(shard))
    acknowledge_by = json.dumps((DEFAULT_START + timedelta(hours=3)).astimezone(NEWFOUNDLAND).isoformat())
    call(leader_org, "Rounds:MarkFused", "r1", sha("model"), "4096", json.dumps({"acc": 0.1 + 0.2, "f1": 1e-7, "n": 3}),
         acknowledge_by, "null")
    for org in ("DC4", "DC2", "DC1"):
        call(org, "Rounds:Acknowledge", "r1", sha("model"), "")
    call("DC2", "Rounds:Get", "r1", submit=False)
    call("DC1", "Rounds:Close", "r1")
    call("DC2", "Rounds:Open", "r2", json.dumps(dict(spec, deadline=(DEFAULT_START + timedelta(hours=3)).astimezone(
        NEWFOUNDLAND).isoformat())))  # fmt: skip
    call("DC4", "Rounds:Abort", "r2", "data drift")
    call("DC1", "Membership:Suspend", "DC4MSP")
    call("Auditor", "Membership:Get", "DC4MSP", submit=False)
    call("Auditor", "Audit:Rounds", "10", "", submit=False)
    call("Auditor", "Audit:RoundHistory", "r1", "10", "", submit=False)
    call("Auditor", "Audit:Activity", "DC1MSP", "50", "", submit=False)
    call("DC1", "Rounds:Open", "r3", json.dumps(dict(spec, deadline="2020-01-01T00:00:00+09:00")))
    call("DC4", "Task:Init", config)
    return calls


def run_elsewhere(calls: list[dict[str, Any]], tz: str, seed: str) -> list[dict[str, Any]]:
    env = dict(os.environ, TZ=tz, PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    done = subprocess.run(
        [sys.executable, str(HERE / "cc_replay.py")], input=json.dumps(calls), capture_output=True, text=True,
        env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_two_chaincode_processes_return_identical_bytes_for_the_same_proposals() -> None:
    calls = scenario()
    here = replay(calls)
    assert [r["status"] for r in here].count(200) == len(here) - 2, [(r["function"], r["message"]) for r in here]
    for tz, seed in (("Asia/Kolkata", "1"), ("America/St_Johns", "4242")):
        there = run_elsewhere(calls, tz, seed)
        for mine, theirs in zip(here, there, strict=True):
            assert mine == theirs, mine["function"]
    assert all("+05:30" not in json.dumps(r) and "-03:30" not in json.dumps(r) for r in here)


def test_canonical_json_writes_every_datetime_in_utc() -> None:
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=INDIA)
    assert utc_text(moment) == "2026-05-01T06:30:00.000000Z"
    assert canonical_json({"b": moment, "a": [moment.astimezone(NEWFOUNDLAND)]}) == (
        b'{"a":["2026-05-01T06:30:00.000000Z"],"b":"2026-05-01T06:30:00.000000Z"}'
    )
    assert to_plain(datetime(2026, 5, 1, tzinfo=UTC)) == "2026-05-01T00:00:00.000000Z"
    for bad in (datetime(2026, 5, 1), {1, 2}, b"raw"):
        try:
            canonical_json(bad)
        except (TypeError, ValueError):
            continue
        raise AssertionError(f"{bad!r} must have no canonical form")


def test_pinned_versions_are_the_installed_ones() -> None:
    from importlib.metadata import version

    pyproject = (HERE.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    for package in ("pydantic", "pydantic-core"):
        assert f'"{package}=={version(package)}"' in pyproject, package
