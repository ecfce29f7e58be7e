"""The files other sites send this one (step 2 of a round, receiving side): each is kept only when its SHA-256 and
size are those of the sender's on-chain exchange record.

An upload streams into a private temp file of its own (mode 0600 from creation), one upload of a (round, sender,
kind) at a time; it is renamed into the round's ``in/`` folder only once verified, and every attempt, kept or
refused, is a row of the site's store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from swarmfuse.chaincode.contracts.records import Exchange
from swarmfuse.client.site.site import SiteError
from swarmfuse.client.site.store import Store
from swarmfuse.files import open_private

logger = logging.getLogger(__name__)

MAX_ARTEFACT_BYTES = 4 << 30


class ArtefactRejected(SiteError):
    """An upload that does not match its on-chain record (recorded in the store as rejected, nothing kept)."""


@dataclass
class Inbox:
    """Where a site keeps what it receives: ``round_dir(round_id)/in/<sender>-<kind>-<sha256 prefix>``."""

    store: Store
    round_dir: Callable[[str], Path]
    _locks: dict[tuple[str, str, str], asyncio.Lock] = field(default_factory=dict)

    async def accept(self, expected: Exchange, chunks: AsyncIterator[bytes]) -> Path:
        """Stream the upload of ``expected`` (its record) from ``chunks``; the kept file's path, or
        :class:`ArtefactRejected` when its size or SHA-256 differ from the record."""
        round_id, org, kind = expected.round_id, expected.sender, expected.kind
        target = self.round_dir(round_id) / "in" / f"{org}-{kind}-{expected.sha256[:16]}"
        async with self._locks.setdefault((round_id, org, kind), asyncio.Lock()):
            digest, size = await self._receive(expected, target, chunks)
            if size != expected.bytes or digest != expected.sha256:
                reason = (f"got {size} bytes with SHA-256 {digest}; the ledger records {expected.bytes} bytes with "
                          f"SHA-256 {expected.sha256}")
                self.store.add_artefact(round_id, kind=kind, direction="in", peer_org=org, sha256=digest, size=size,
                                        status="rejected", reason=reason)
                logger.warning("round %s: rejected %s from %s: %s", round_id, kind, org, reason)
                raise ArtefactRejected(f"rejected: {reason}")
            self.store.add_artefact(round_id, kind=kind, direction="in", peer_org=org, sha256=expected.sha256,
                                    size=size, path=target, status="verified")
            return target

    @staticmethod
    async def _receive(expected: Exchange, target: Path, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        """Write the stream to a private temp file (at most the recorded size plus one chunk); rename it to
        ``target`` when it matches the record, else delete it. Its SHA-256 and size."""
        digest, size = hashlib.sha256(), 0
        part = target.with_name(f"{target.name}.{secrets.token_hex(8)}.part")
        part.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open_private(part) as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > min(expected.bytes, MAX_ARTEFACT_BYTES):
                        break
                    digest.update(chunk)
                    handle.write(chunk)
        except BaseException:  # the sender went away mid-stream: nothing of it stays
            part.unlink(missing_ok=True)
            raise
        if size == expected.bytes and digest.hexdigest() == expected.sha256:
            part.replace(target)
        else:
            part.unlink(missing_ok=True)
        return digest.hexdigest(), size
