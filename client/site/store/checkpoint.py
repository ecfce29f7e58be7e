"""A gateway ``Checkpointer`` kept in the site store: one row per (channel, chaincode), replaced atomically."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from swarmfuse.client.gateway.checkpoint import Position
from swarmfuse.client.site.store.db import Store
from swarmfuse.client.site.store.models import EventsCheckpoint, utcnow

log = logging.getLogger(__name__)


class SqlCheckpointer:
    """Where the site's listener resumes on ``channel``'s ``chaincode`` events, one transaction per update.

    Implements :class:`swarmfuse.client.gateway.checkpoint.Checkpointer`; the position is always read from
    the store, so it is exactly what was committed. :meth:`save` with ``session=`` records the position in
    the caller's transaction, together with what the caller did for the event.
    """

    def __init__(self, store: Store, channel: str, chaincode: str) -> None:
        self.store = store
        self.channel = channel
        self.chaincode = chaincode

    @property
    def position(self) -> Position:
        """The committed position (``Position()`` when nothing was checkpointed yet)."""
        with self.store.session() as session:
            row = session.get(EventsCheckpoint, (self.channel, self.chaincode))
            return Position() if row is None else Position(row.block, row.tx_id)

    def checkpoint_block(self, block_number: int) -> None:
        """The whole block is processed: resume at the next one."""
        self.save(Position(block_number + 1))

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        """Events up to this transaction are processed: resume after it."""
        self.save(Position(block_number, transaction_id))

    def save(self, position: Position, *, session: Session | None = None) -> None:
        """Store ``position`` (in ``session``'s transaction if given, else in a transaction of its own)."""
        with self.store.transaction(session) as s:
            row = s.get(EventsCheckpoint, (self.channel, self.chaincode))
            if row is None:
                s.add(EventsCheckpoint(channel=self.channel, chaincode=self.chaincode, block=position.block_number,
                                       tx_id=position.transaction_id))
            else:
                row.block = position.block_number
                row.tx_id = position.transaction_id
                row.updated = utcnow()
            s.flush()
        log.debug("events of %s/%s checkpointed at %s", self.channel, self.chaincode, position)

    def __repr__(self) -> str:
        return f"SqlCheckpointer({self.channel!r}, {self.chaincode!r}, store={self.store.url!r})"
