"""What a transaction function receives: the stub, the creator and JSON helpers over state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from swarmfuse.chaincode.contract.canonical import canonical_json
from swarmfuse.chaincode.contract.identity import Client
from swarmfuse.chaincode.stub import ChaincodeStub, create_composite_key

M = TypeVar("M", bound=BaseModel)


class Context:
    """One transaction's view: reads return committed state (a transaction never sees its own writes)."""

    def __init__(self, stub: ChaincodeStub, *, function: str, read_only: bool, event: str | None) -> None:
        self.stub = stub
        self.function = function
        self.read_only = read_only
        self._event = event
        self.client = Client(stub.creator)
        self.written_keys: list[str] = []

    @property
    def tx_id(self) -> str:
        return self.stub.tx_id

    @property
    def now(self) -> datetime:
        """The transaction timestamp (the same on every endorser), never the local clock."""
        return self.stub.timestamp

    @staticmethod
    def key(object_type: str, *attributes: str) -> str:
        return create_composite_key(object_type, attributes)

    def get(self, key: str, model: type[M]) -> M | None:
        raw = self.stub.get_state(key)
        return None if raw is None else model.model_validate_json(raw)

    def put(self, key: str, value: Any) -> None:
        """Write ``value`` as canonical JSON."""
        if self.read_only:
            raise RuntimeError(f"{self.function} is an evaluate transaction and may not write {key!r}")
        self.stub.put_state(key, canonical_json(value))
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
