"""House rules every transaction of the application follows, checked on its metadata."""

from __future__ import annotations

import pytest

from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.contract.metadata import TransactionInfo

TRANSACTIONS = [tx for _, txs in create_chaincode().contracts for tx in txs.values()]
ERROR_NAMES = ("BadRequest", "Forbidden", "NotFound", "Conflict")


@pytest.mark.parametrize("tx", TRANSACTIONS, ids=lambda tx: tx.full_name)
def test_documented_errors_name_a_typed_error(tx: TransactionInfo) -> None:
    for line in tx.spec.errors:
        assert line.split(":")[0] in ERROR_NAMES, f"{tx.full_name}: {line!r}"


@pytest.mark.parametrize("tx", [tx for tx in TRANSACTIONS if not tx.spec.evaluate], ids=lambda tx: tx.full_name)
def test_every_write_emits_an_event_and_documents_its_refusals(tx: TransactionInfo) -> None:
    assert tx.spec.event, f"{tx.full_name} changes state but declares no event"
    assert tx.spec.errors, f"{tx.full_name} documents no refusals"
    assert tx.doc, f"{tx.full_name} has no description"


@pytest.mark.parametrize("tx", [tx for tx in TRANSACTIONS if tx.contract == "Audit"], ids=lambda tx: tx.full_name)
def test_audit_queries_are_paginated_evaluations(tx: TransactionInfo) -> None:
    assert tx.spec.evaluate
    assert [p.name for p in tx.parameters][-2:] == ["page_size", "bookmark"]
