"""An in-memory ledger for contract tests: committed state, history, events, and per-transaction stubs.

It models what the peer does for a chaincode: reads see committed state only (never the
transaction's own writes), a successful submitted transaction commits its writes, history entries
and event at once, and a failed or evaluated transaction leaves the ledger untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from swarmfuse.chaincode.stub import (
    COMPOSITE_KEY_NAMESPACE,
    KV,
    Chaincode,
    ChaincodeEvent,
    ClientIdentity,
    Invocation,
    KeyModification,
    QueryPage,
    Response,
    create_composite_key,
)

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CommittedEvent:
    tx_id: str
    name: str
    payload: bytes


class MemoryStub:
    """``ChaincodeStub`` for one transaction against a :class:`MemoryLedger`."""

    def __init__(
        self, ledger: MemoryLedger, tx_id: str, timestamp: datetime, creator: ClientIdentity, invocation: Invocation
    ) -> None:
        self._ledger = ledger
        self._tx_id = tx_id
        self._timestamp = timestamp
        self._creator = creator
        self._invocation = invocation
        self.writes: dict[str, bytes | None] = {}
        self.event: ChaincodeEvent | None = None

    @property
    def tx_id(self) -> str:
        return self._tx_id

    @property
    def channel_id(self) -> str:
        return self._ledger.channel

    @property
    def timestamp(self) -> datetime:
        return self._timestamp

    @property
    def creator(self) -> ClientIdentity:
        return self._creator

    @property
    def invocation(self) -> Invocation:
        return self._invocation

    def get_state(self, key: str) -> bytes | None:
        _check_key(key)
        return self._ledger.state.get(key)

    def put_state(self, key: str, value: bytes) -> None:
        _check_key(key)
        if not isinstance(value, bytes):
            raise TypeError(f"state values are bytes, got {type(value).__name__}")
        if not value:
            # As on a real peer, where an empty value would be stored as a delete.
            raise ValueError(f"state value for {key!r} is empty; use del_state to remove a key")
        self.writes[key] = value

    def del_state(self, key: str) -> None:
        _check_key(key)
        self.writes[key] = None

    def get_state_by_range(self, start: str, end: str) -> Iterator[KV]:
        return iter(self._range(start, end, composite=False))

    def get_state_by_range_with_pagination(self, start: str, end: str, page_size: int, bookmark: str = "") -> QueryPage:
        return _page(self._range(bookmark or start, end, composite=False), page_size)

    def get_state_by_partial_composite_key(self, object_type: str, attributes: Sequence[str]) -> Iterator[KV]:
        return iter(self._prefixed(create_composite_key(object_type, attributes)))

    def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: Sequence[str], page_size: int, bookmark: str = ""
    ) -> QueryPage:
        items = self._prefixed(create_composite_key(object_type, attributes))
        if bookmark:
            items = [kv for kv in items if kv.key >= bookmark]
        return _page(items, page_size)

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        return iter(list(self._ledger.history.get(key, [])))

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ValueError("event name must not be empty")
        self.event = ChaincodeEvent(name, payload)

    def _range(self, start: str, end: str, *, composite: bool) -> list[KV]:
        keys = sorted(k for k in self._ledger.state if k.startswith(COMPOSITE_KEY_NAMESPACE) == composite)
        return [KV(k, self._ledger.state[k]) for k in keys if k >= start and (not end or k < end)]

    def _prefixed(self, prefix: str) -> list[KV]:
        return [KV(k, self._ledger.state[k]) for k in sorted(self._ledger.state) if k.startswith(prefix)]


def _check_key(key: str) -> None:
    if not key:
        raise ValueError("state key must not be empty")


def _page(items: list[KV], page_size: int) -> QueryPage:
    if page_size <= 0:
        raise ValueError("page size must be positive")
    page = items[:page_size]
    bookmark = items[page_size].key if len(items) > page_size else ""
    return QueryPage(items=page, bookmark=bookmark, fetched_records_count=len(page))


@dataclass
class MemoryLedger:
    """Committed world state of one channel plus key history and the events of committed transactions.

    Each transaction gets a deterministic tx id and a timestamp ``tick`` after the previous one,
    unless the caller passes ``at``.
    """

    channel: str = "task1"
    clock: datetime = DEFAULT_START
    tick: timedelta = timedelta(seconds=1)
    state: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, list[KeyModification]] = field(default_factory=dict)
    events: list[CommittedEvent] = field(default_factory=list)
    _counter: int = 0

    def submit(
        self,
        chaincode: Chaincode,
        creator: ClientIdentity,
        function: str,
        *args: str | bytes,
        at: datetime | None = None,
    ) -> Response:
        """Run a transaction and commit its writes and event if it succeeded."""
        stub = self.stub(creator, function, *args, at=at)
        response = chaincode.invoke(stub)
        if response.ok:
            self._commit(stub)
        return response

    def evaluate(
        self,
        chaincode: Chaincode,
        creator: ClientIdentity,
        function: str,
        *args: str | bytes,
        at: datetime | None = None,
    ) -> Response:
        """Run a query: whatever it writes is discarded."""
        return chaincode.invoke(self.stub(creator, function, *args, at=at))

    def snapshot(self) -> tuple[tuple[tuple[str, bytes], ...], int, int]:
        """A comparable image of everything committed: state bytes, history length, event count."""
        return tuple(sorted(self.state.items())), sum(len(h) for h in self.history.values()), len(self.events)

    def stub(
        self, creator: ClientIdentity, function: str, *args: str | bytes, at: datetime | None = None
    ) -> MemoryStub:
        """A stub for the next transaction; nothing it writes is committed unless :meth:`submit` ran it."""
        self._counter += 1
        self.clock = at if at is not None else self.clock + self.tick
        tx_id = hashlib.sha256(f"{self.channel}/{self._counter}".encode()).hexdigest()
        encoded = tuple(a.encode() if isinstance(a, str) else a for a in args)
        return MemoryStub(self, tx_id, self.clock, creator, Invocation(function, encoded))

    def _commit(self, stub: MemoryStub) -> None:
        for key, value in stub.writes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
            self.history.setdefault(key, []).append(
                KeyModification(stub.tx_id, value or b"", stub.timestamp, value is None)
            )
        if stub.event is not None:
            self.events.append(CommittedEvent(stub.tx_id, stub.event.name, stub.event.payload))
