"""The inbox keeps an upload only when it matches its on-chain record, privately, and records every attempt."""

from __future__ import annotations

import asyncio
import hashlib
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from swarmfuse.chaincode.contracts.records import Exchange
from swarmfuse.client.site.inbox import ArtefactRejected, Inbox
from swarmfuse.client.site.store import Store

BODY = b"features " * 1000


def record(body: bytes = BODY) -> Exchange:
    return Exchange(round_id="r1", sender="DC2MSP", receiver="DC1MSP", kind="features",
                    sha256=hashlib.sha256(body).hexdigest(), bytes=len(body), entity_count=10,
                    recorded_at=datetime(2026, 12, 7, tzinfo=UTC), tx_id="t" * 64)


async def chunks(body: bytes, size: int = 1024, pause: float = 0.0) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        if pause:
            await asyncio.sleep(pause)
        yield body[start:start + size]


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(Store.open("sqlite://"), lambda round_id: tmp_path / round_id)


def test_a_matching_upload_is_kept_private_and_recorded_verified(inbox: Inbox) -> None:
    path = asyncio.run(inbox.accept(record(), chunks(BODY)))
    assert path.read_bytes() == BODY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [row] = inbox.store.artefacts("r1")
    assert (row.status.value, row.sha256, row.bytes, row.peer_org) == ("verified", record().sha256, len(BODY), "DC2MSP")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize("body", [BODY[:-1] + b"X", BODY[:-10], BODY + b"more"], ids=["altered", "short", "long"])
def test_an_upload_that_differs_from_its_record_is_refused_and_nothing_kept(inbox: Inbox, tmp_path: Path,
                                                                             body: bytes) -> None:
    with pytest.raises(ArtefactRejected, match="the ledger records"):
        asyncio.run(inbox.accept(record(), chunks(body)))
    assert not any((tmp_path / "r1" / "in").iterdir())
    [row] = inbox.store.artefacts("r1")
    assert row.status.value == "rejected" and row.path is None


def test_two_concurrent_uploads_of_one_artefact_never_mix(inbox: Inbox, tmp_path: Path) -> None:
    """A tampered upload racing the genuine one: each is judged on its own bytes; only the genuine one is kept."""
    tampered = BODY.replace(b"features", b"FEATURES")

    async def both() -> list[Path | BaseException]:
        return await asyncio.gather(inbox.accept(record(), chunks(tampered, pause=0.001)),
                                    inbox.accept(record(), chunks(BODY, pause=0.001)), return_exceptions=True)

    refused, kept = asyncio.run(both())
    assert isinstance(refused, ArtefactRejected) and isinstance(kept, Path)
    assert kept.read_bytes() == BODY
    assert sorted(row.status.value for row in inbox.store.artefacts("r1")) == ["rejected", "verified"]
