"""The shim against real Fabric peers (session network from ``tests/conftest.py``)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import FabricNetwork

from swarmfuse.network.errors import CommandFailed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

WRITERS = ("DC1", "DC2", "DC3")


def test_concurrent_transactions_share_the_stream_and_all_commit(fabric_network: FabricNetwork) -> None:
    """Transactions endorsed at the same time on each peer run interleaved on that peer's one
    chaincode stream; every one gets its own replies, commits, and is read back everywhere."""
    prefix = f"shim-{uuid.uuid4().hex[:6]}"
    jobs = [(org, f"{prefix}-{org}-{i}", f"value {i} from {org}") for org in WRITERS for i in range(4)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        list(pool.map(lambda job: fabric_network.invoke(job[0], "Sample:Put", job[1], job[2]), jobs))
    for org, key, value in jobs:
        assert fabric_network.query(org, "Sample:Get", key) == value
        assert fabric_network.query("Auditor", "Sample:Get", key) == value


def test_contract_error_reaches_the_client_with_its_message(fabric_network: FabricNetwork) -> None:
    with pytest.raises(CommandFailed, match=r"NotFound: no value under key 'shim-absent-[0-9a-f]+'"):
        fabric_network.query("DC1", "Sample:Get", f"shim-absent-{uuid.uuid4().hex[:6]}")
