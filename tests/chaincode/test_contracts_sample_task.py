"""The test-only ``Sample`` contract on the in-memory ledger, and the production chaincode without it."""

from __future__ import annotations

import json

import pytest
from cc_identities import DC1, DC2
from sample_app import create_chaincode

from swarmfuse.chaincode.contract import ContractRouter
from swarmfuse.chaincode.memstub import MemoryLedger


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


def test_the_server_entry_point_serves_this_application() -> None:
    from swarmfuse.chaincode.__main__ import load_chaincode

    served = load_chaincode({})
    assert isinstance(served, ContractRouter)
    assert sorted(served.metadata["contracts"]) == ["Agreement", "Audit", "Membership", "Rounds", "Scoring", "Summaries", "Task"]


def test_sample_is_served_only_when_asked_for() -> None:
    from swarmfuse.chaincode.__main__ import load_chaincode

    served = load_chaincode({"CHAINCODE_APP": "sample_app"})
    assert "Sample" in served.metadata["contracts"]  # type: ignore[attr-defined]
