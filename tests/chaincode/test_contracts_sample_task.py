"""``Sample`` and ``Task`` through ``create_chaincode()`` on the in-memory ledger."""

from __future__ import annotations

import json

import pytest
from cc_identities import AUDITOR, DC1, DC2, DC4

from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.contract import ContractRouter
from swarmfuse.chaincode.memstub import MemoryLedger

CONFIG = json.dumps({"task": "task1", "founders": ["DC3MSP", "DC1MSP", "DC2MSP"], "auditors": ["AuditorMSP"]})


@pytest.fixture(scope="module")
def cc() -> ContractRouter:
    return create_chaincode()


def test_sample_put_get_and_event(cc: ContractRouter) -> None:
    ledger = MemoryLedger()
    assert ledger.submit(cc, DC1, "Sample:Put", "colour", "blue").status == 200
    got = ledger.evaluate(cc, DC2, "Sample:Get", "colour")
    assert (got.status, got.payload) == (200, b"blue")
    assert [(e.name, json.loads(e.payload)) for e in ledger.events] == [("Put", {"key": "colour", "value": "blue"})]


@pytest.mark.parametrize("key", ["", "a\x00b"])
def test_sample_rejects_bad_keys(cc: ContractRouter, key: str) -> None:
    ledger = MemoryLedger()
    assert ledger.submit(cc, DC1, "Sample:Put", key, "v").status == 400
    assert ledger.evaluate(cc, DC1, "Sample:Get", key).status == 400
    assert ledger.state == {}


def test_sample_get_absent_is_404(cc: ContractRouter) -> None:
    response = MemoryLedger().evaluate(cc, DC1, "Sample:Get", "nothing")
    assert (response.status, response.message) == (404, "NotFound: no value under key 'nothing'")


def test_task_init_once_by_a_founder(cc: ContractRouter) -> None:
    ledger = MemoryLedger()
    first = ledger.submit(cc, DC1, "Task:Init", CONFIG)
    assert first.status == 200, first.message
    record = json.loads(first.payload)
    assert record["founders"] == ["DC1MSP", "DC2MSP", "DC3MSP"] and record["initialised_by"] == "DC1MSP"
    assert ledger.events[-1].name == "TaskInitialised"
    again = ledger.submit(cc, DC2, "Task:Init", CONFIG)
    assert (again.status, again.message) == (409, "Conflict: task task1 is already initialised")
    read = ledger.evaluate(cc, AUDITOR, "Task:Get")
    assert json.loads(read.payload)["auditors"] == ["AuditorMSP"]
    assert ledger.evaluate(cc, DC4, "Task:Get").status == 403


@pytest.mark.parametrize(
    ("who", "config", "status", "fragment"),
    [
        ("DC4", CONFIG, 403, "DC4MSP is not among the founders"),
        ("DC1", CONFIG.replace("task1", "task2"), 400, "config names task 'task2' but this is channel 'task1'"),
        ("DC1", '{"task":"task1","founders":[]}', 400, "founders"),
        ("DC1", '{"task":"task1","founders":["DC1MSP","DC1MSP"]}', 400, "must not repeat"),
        ("DC1", '{"task":"task1","founders":["DC1MSP"],"auditors":["DC1MSP"]}', 400, "founder and auditor at once"),
        ("DC1", '{"task":"task1","founders":["DC1MSP"],"extra":1}', 400, "extra"),
        ("DC1", "not json", 400, "argument 'config'"),
    ],
)
def test_task_init_rejections_write_nothing(
    cc: ContractRouter, who: str, config: str, status: int, fragment: str
) -> None:
    ledger = MemoryLedger()
    creator = {"DC1": DC1, "DC4": DC4}[who]
    response = ledger.submit(cc, creator, "Task:Init", config)
    assert response.status == status and fragment in response.message, response.message
    assert ledger.snapshot() == MemoryLedger().snapshot()


def test_task_get_before_init_is_refused(cc: ContractRouter) -> None:
    assert MemoryLedger().evaluate(cc, DC1, "Task:Get").status == 403


def test_the_server_entry_point_serves_this_application() -> None:
    from swarmfuse.chaincode.__main__ import load_chaincode

    served = load_chaincode()
    assert isinstance(served, ContractRouter)
    assert sorted(served.metadata["contracts"]) == ["Audit", "Membership", "Rounds", "Sample", "Summaries", "Task"]
