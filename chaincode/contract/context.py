"""What a transaction function receives: the stub, the creator, the two clocks and JSON helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from swarmfuse.chaincode.contract.canonical import canonical_json
from swarmfuse.chaincode.contract.identity import Client
from swarmfuse.chaincode.stub import ChaincodeStub, create_composite_key

M = TypeVar("M", bound=BaseModel)


class Context:
    """One transaction's view: reads return committed state (a transaction never sees its own writes).

    Reads are cached for the transaction (committed state does not change under it), so asking
    twice for a key costs one ``GET_STATE``.
    """

    def __init__(
        self,
        stub: ChaincodeStub,
        *,
        function: str,
        read_only: bool,
        event: str | None,
        endorser_time: datetime | None = None,
    ) -> None:
        self.stub = stub
        self.function = function
        self.read_only = read_only
        self._event = event
        self.client = Client(stub.creator)
        self.written_keys: list[str] = []
        self._endorser_time = endorser_time
        self._reads: dict[str, bytes | None] = {}

    @property
    def tx_id(self) -> str:
        return self.stub.tx_id

    @property
    def now(self) -> datetime:
        """The transaction time: the proposal timestamp (the same on every endorser), in UTC.

        The client chose it; the router has already refused it unless it is within the allowed skew
        of the endorser's clock. Every value written or returned uses this time.
        """
        return self.stub.timestamp.astimezone(UTC)

    @property
    def endorser_time(self) -> datetime:
        """This endorser's own clock when the transaction started; only ever used to refuse."""
        return self._endorser_time if self._endorser_time is not None else self.now

    def has_passed(self, moment: datetime) -> bool:
        """Both the transaction time and this endorser's clock are after ``moment``.

        A client that stamps its proposal ahead (within the skew) cannot act "after a deadline"
        before the endorsers' clocks reach it; a client that stamps it behind only delays itself.
        """
        return self.now > moment and self.endorser_time > moment

    @staticmethod
    def key(object_type: str, *attributes: str) -> str:
        return create_composite_key(object_type, attributes)

    def read(self, key: str) -> bytes | None:
        """Committed bytes under ``key`` (``None`` when absent), cached for this transaction."""
        if key not in self._reads:
            self._reads[key] = self.stub.get_state(key)
        return self._reads[key]

    def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Committed bytes of several keys; one ``GET_STATE_MULTIPLE`` when the stub offers it.

        A stub offers it by a true ``multiple_states`` attribute and a ``get_multiple_states(keys)``
        method (Fabric 3 peers announce ``use_get_multiple_keys`` in ``READY``).
        """
        missing = [k for k in dict.fromkeys(keys) if k not in self._reads]
        if len(missing) > 1 and getattr(self.stub, "multiple_states", False):
            for k, value in zip(missing, self.stub.get_multiple_states(missing), strict=True):
                self._reads[k] = value
        return [self.read(k) for k in keys]

    def get(self, key: str, model: type[M]) -> M | None:
        raw = self.read(key)
        return None if raw is None else model.model_validate_json(raw)

    def get_many(self, keys: Sequence[str], model: type[M]) -> list[M | None]:
        return [None if raw is None else model.model_validate_json(raw) for raw in self.read_many(keys)]

    def put(self, key: str, value: Any, *, policy: bytes | None = None) -> None:
        """Write ``value`` as canonical JSON; with ``policy``, the key also gets that endorsement policy
        (see :mod:`~swarmfuse.chaincode.contract.endorsement`) when it does not exist yet, so its later
        writes must satisfy it. A key that exists keeps the policy it has."""
        if self.read_only:
            raise RuntimeError(f"{self.function} is an evaluate transaction and may not write {key!r}")
        self.stub.put_state(key, canonical_json(value))
        if policy is not None and self.read(key) is None:
            self.stub.set_state_validation_parameter(key, policy)
        self.written_keys.append(key)

    def emit(self, payload: Any) -> None:
        """Set the transaction's declared chaincode event with a canonical JSON payload."""
        if self._event is None:
            raise RuntimeError(f"{self.function} emits an event but declares none")
        self.stub.set_event(self._event, canonical_json(payload))

    def scan(self, object_type: str, attributes: Sequence[str], model: type[M]) -> list[M]:
        return [
            model.model_validate_json(kv.value)
            for kv in self.stub.get_state_by_partial_composite_key(object_type, attributes)
        ]
