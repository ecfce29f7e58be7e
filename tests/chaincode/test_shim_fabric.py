"""The shim driven by a real network of each engine (session network from ``tests/conftest.py``)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import LedgerNetwork

from swarmfuse.network.tasks import TransactionFailed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

WRITERS = ("DC1", "DC2", "DC3")


def test_concurrent_transactions_share_the_stream_and_all_commit(ledger_network: LedgerNetwork) -> None:
    """Transactions endorsed at the same time on each peer run interleaved on that peer's one
    chaincode stream; every one gets its own replies, commits, and is read back everywhere."""
    prefix = f"shim-{uuid.uuid4().hex[:6]}"
    jobs = [(org, f"{prefix}-{org}-{i}", f"value {i} from {org}") for org in WRITERS for i in range(4)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        list(pool.map(lambda job: ledger_network.invoke(job[0], "Sample:Put", job[1], job[2]), jobs))
    for org, key, value in jobs:
        assert ledger_network.query(org, "Sample:Get", key) == value
        assert ledger_network.query("Auditor", "Sample:Get", key) == value


def test_contract_error_reaches_the_client_with_its_message(ledger_network: LedgerNetwork) -> None:
    with pytest.raises(TransactionFailed, match=r"NotFound: no value under key 'shim-absent-[0-9a-f]+'"):
        ledger_network.query("DC1", "Sample:Get", f"shim-absent-{uuid.uuid4().hex[:6]}")
