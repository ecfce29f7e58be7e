"""An in-memory ledger for contract tests: committed state, history, events, and per-transaction stubs.

It models what the peer does for a chaincode: reads see committed state only (never the
transaction's own writes), a successful submitted transaction commits its writes, history entries
and event at once, and a failed or evaluated transaction leaves the ledger untouched.

It also models what the tests of the trust rules need:

- two clocks: ``clock`` is the wall clock (it moves on by ``tick`` for every transaction), the
  endorser's clock is ``clock + endorser_drift``, and a proposal is stamped with ``clock`` unless
  the caller forges another timestamp (``at=``); the chaincode reads the endorser's clock through
  :func:`swarmfuse.chaincode.contract.clock.endorser_clock`;
- forged transaction IDs (``tx_id=``), as a client grinding its nonce would produce;
- the round trips a transaction makes to the peer, counted per message type in ``MemoryStub.calls``
  (``GET_STATE``, ``GET_STATE_MULTIPLE``, ``GET_STATE_BY_RANGE``, ``GET_HISTORY_FOR_KEY``);
- read sets (key versions, range results) and Fabric's validation of a block of transactions
  endorsed against the same state (:meth:`MemoryLedger.commit_block`: MVCC and phantom reads);
- key-level endorsement policies, stored and kept as a peer keeps them (a value write keeps the key's
  policy, a delete removes it, a policy on a key that does not exist is dropped); nothing here has
  endorsers, so no policy is evaluated: the engine's tests do that.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from swarmfuse.chaincode.contract.clock import endorser_clock
from swarmfuse.chaincode.stub import (
    COMPOSITE_KEY_NAMESPACE,
    KV,
    MAX_UNICODE_RUNE,
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

Version = int | None
"""A committed key's version: how many times it was written (``None``: absent)."""


class Validation(StrEnum):
    """Validation codes of :meth:`MemoryLedger.commit_block`, named as Fabric names them."""

    VALID = "VALID"
    ENDORSEMENT_FAILED = "ENDORSEMENT_POLICY_FAILURE"
    MVCC_READ_CONFLICT = "MVCC_READ_CONFLICT"
    PHANTOM_READ_CONFLICT = "PHANTOM_READ_CONFLICT"


@dataclass(frozen=True)
class CommittedEvent:
    tx_id: str
    name: str
    payload: bytes


@dataclass(frozen=True)
class RangeRead:
    """One range query of a transaction and the (key, version) pairs it saw."""

    start: str
    end: str
    seen: tuple[tuple[str, Version], ...]


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
        self.policies: dict[str, bytes] = {}
        self.event: ChaincodeEvent | None = None
        self.calls: Counter[str] = Counter()
        self.reads: dict[str, Version] = {}
        self.range_reads: list[RangeRead] = []

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

    @property
    def round_trips(self) -> int:
        """Messages this transaction sent to the peer before completing (reads and queries)."""
        return sum(self.calls.values())

    def get_state(self, key: str) -> bytes | None:
        _check_key(key)
        self.calls["GET_STATE"] += 1
        return self._read(key)

    @property
    def multiple_states(self) -> bool:
        """Whether this stub answers ``get_multiple_states`` (as a Fabric 3 peer that offers it)."""
        return self._ledger.multiple_states

    def get_multiple_states(self, keys: Sequence[str]) -> list[bytes | None]:
        """Several keys in one round trip (Fabric 3's ``GET_STATE_MULTIPLE``)."""
        for key in keys:
            _check_key(key)
        self.calls["GET_STATE_MULTIPLE"] += 1
        return [self._read(key) for key in keys]

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

    def get_state_validation_parameter(self, key: str) -> bytes | None:
        _check_key(key)
        self.calls["GET_STATE_METADATA"] += 1
        self.reads.setdefault(key, self._ledger.version(key))
        return self._ledger.policies.get(key)

    def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        _check_key(key)
        if not isinstance(policy, bytes):
            raise TypeError(f"endorsement policies are bytes, got {type(policy).__name__}")
        self.policies[key] = policy

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
        self.calls["GET_HISTORY_FOR_KEY"] += 1
        return iter(list(self._ledger.history.get(key, [])))

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ValueError("event name must not be empty")
        self.event = ChaincodeEvent(name, payload)

    def _read(self, key: str) -> bytes | None:
        self.reads.setdefault(key, self._ledger.version(key))
        return self._ledger.state.get(key)

    def _range(self, start: str, end: str, *, composite: bool) -> list[KV]:
        self.calls["GET_STATE_BY_RANGE"] += 1
        keys = sorted(k for k in self._ledger.state if k.startswith(COMPOSITE_KEY_NAMESPACE) == composite)
        found = [KV(k, self._ledger.state[k]) for k in keys if k >= start and (not end or k < end)]
        self._record_range(start, end, found)
        return found

    def _prefixed(self, prefix: str) -> list[KV]:
        self.calls["GET_STATE_BY_RANGE"] += 1
        found = [KV(k, self._ledger.state[k]) for k in sorted(self._ledger.state) if k.startswith(prefix)]
        self._record_range(prefix, prefix + MAX_UNICODE_RUNE, found)
        return found

    def _record_range(self, start: str, end: str, found: list[KV]) -> None:
        seen = tuple((kv.key, self._ledger.version(kv.key)) for kv in found)
        self.range_reads.append(RangeRead(start, end, seen))


def _check_key(key: str) -> None:
    if not key:
        raise ValueError("state key must not be empty")


def _page(items: list[KV], page_size: int) -> QueryPage:
    if page_size <= 0:
        raise ValueError("page size must be positive")
    page = items[:page_size]
    bookmark = items[page_size].key if len(items) > page_size else ""
    return QueryPage(items=page, bookmark=bookmark, fetched_records_count=len(page))


@dataclass(frozen=True)
class Endorsement:
    """A simulated transaction: its stub (read and write sets, event) and the chaincode's response."""

    stub: MemoryStub
    response: Response


@dataclass
class MemoryLedger:
    """Committed world state of one channel plus key history and the events of committed transactions.

    Each transaction gets a deterministic tx id and the wall clock, which moves ``tick`` on before
    every transaction; ``at=`` stamps a proposal with another (forged) time and ``tx_id=`` gives it
    another ID, without moving the wall clock. The endorser's clock is the wall clock plus
    ``endorser_drift``.
    """

    channel: str = "task1"
    clock: datetime = DEFAULT_START
    tick: timedelta = timedelta(seconds=1)
    endorser_drift: timedelta = timedelta(0)
    multiple_states: bool = False
    """Offer ``GET_STATE_MULTIPLE`` to the chaincode (off: one ``GET_STATE`` per key, as today's shim)."""
    state: dict[str, bytes] = field(default_factory=dict)
    policies: dict[str, bytes] = field(default_factory=dict)
    """Each key's own endorsement policy (``VALIDATION_PARAMETER``), when it has one."""
    history: dict[str, list[KeyModification]] = field(default_factory=dict)
    events: list[CommittedEvent] = field(default_factory=list)
    last: MemoryStub | None = None
    """The stub of the most recent transaction (submitted or evaluated): its calls and read set."""
    _counter: int = 0

    @property
    def endorser_time(self) -> datetime:
        """What the endorser's own clock says now."""
        return self.clock + self.endorser_drift

    def version(self, key: str) -> Version:
        return len(self.history.get(key, ())) if key in self.state else None

    def submit(
        self,
        chaincode: Chaincode,
        creator: ClientIdentity,
        function: str,
        *args: str | bytes,
        at: datetime | None = None,
        tx_id: str | None = None,
    ) -> Response:
        """Run a transaction and commit its writes and event if it succeeded."""
        endorsed = self.endorse(chaincode, creator, function, *args, at=at, tx_id=tx_id)
        if endorsed.response.ok:
            self._commit(endorsed.stub)
        return endorsed.response

    def evaluate(
        self,
        chaincode: Chaincode,
        creator: ClientIdentity,
        function: str,
        *args: str | bytes,
        at: datetime | None = None,
        tx_id: str | None = None,
    ) -> Response:
        """Run a query: whatever it writes is discarded."""
        return self.endorse(chaincode, creator, function, *args, at=at, tx_id=tx_id).response

    def endorse(
        self,
        chaincode: Chaincode,
        creator: ClientIdentity,
        function: str,
        *args: str | bytes,
        at: datetime | None = None,
        tx_id: str | None = None,
    ) -> Endorsement:
        """Simulate a transaction against the committed state without committing it."""
        stub = self.stub(creator, function, *args, at=at, tx_id=tx_id)
        endorser_time = self.endorser_time
        with endorser_clock(lambda: endorser_time):
            response = chaincode.invoke(stub)
        self.last = stub
        return Endorsement(stub, response)

    def commit_block(self, endorsements: Sequence[Endorsement]) -> list[Validation]:
        """Validate and commit endorsed transactions in order, as a peer commits one block.

        A transaction is valid when its response is OK and every key it read (and every range it
        scanned) is as it was at endorsement, after the valid transactions before it in the block.
        """
        codes = []
        for endorsed in endorsements:
            code = self._validate(endorsed)
            if code is Validation.VALID:
                self._commit(endorsed.stub)
            codes.append(code)
        return codes

    def snapshot(self) -> tuple[tuple[tuple[str, bytes], ...], int, int]:
        """A comparable image of everything committed: state bytes, history length, event count."""
        return tuple(sorted(self.state.items())), sum(len(h) for h in self.history.values()), len(self.events)

    def stub(
        self,
        creator: ClientIdentity,
        function: str,
        *args: str | bytes,
        at: datetime | None = None,
        tx_id: str | None = None,
    ) -> MemoryStub:
        """A stub for the next transaction; nothing it writes is committed unless :meth:`submit` ran it."""
        self._counter += 1
        self.clock += self.tick
        chosen_id = tx_id or hashlib.sha256(f"{self.channel}/{self._counter}".encode()).hexdigest()
        encoded = tuple(a.encode() if isinstance(a, str) else a for a in args)
        return MemoryStub(self, chosen_id, at if at is not None else self.clock, creator, Invocation(function, encoded))

    def _validate(self, endorsed: Endorsement) -> Validation:
        if not endorsed.response.ok:
            return Validation.ENDORSEMENT_FAILED
        stub = endorsed.stub
        if any(self.version(key) != version for key, version in stub.reads.items()):
            return Validation.MVCC_READ_CONFLICT
        for scan in stub.range_reads:
            now = tuple(
                (k, self.version(k))
                for k in sorted(self.state)
                if k >= scan.start and (not scan.end or k < scan.end)
                and k.startswith(COMPOSITE_KEY_NAMESPACE) == scan.start.startswith(COMPOSITE_KEY_NAMESPACE)
            )
            if now != scan.seen:
                return Validation.PHANTOM_READ_CONFLICT
        return Validation.VALID

    def _commit(self, stub: MemoryStub) -> None:
        for key, policy in stub.policies.items():
            if key in self.state or stub.writes.get(key) is not None:
                self.policies[key] = policy
        for key, value in stub.writes.items():
            if value is None:
                self.state.pop(key, None)
                self.policies.pop(key, None)
            else:
                self.state[key] = value
            self.history.setdefault(key, []).append(
                KeyModification(stub.tx_id, value or b"", stub.timestamp, value is None)
            )
        if stub.event is not None:
            self.events.append(CommittedEvent(stub.tx_id, stub.event.name, stub.event.payload))
