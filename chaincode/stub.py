"""The interface between contracts and the ledger: what a transaction may see and do.

Contracts are written against :class:`ChaincodeStub`; the shim (``swarmfuse.chaincode.shim``)
implements it over the peer's gRPC stream, and tests use an in-memory implementation. The
peer-facing entry point is :class:`Chaincode`: the shim calls ``invoke`` once per transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# Composite keys, as the peer understands them: U+0000, object type, U+0000 after every attribute.
COMPOSITE_KEY_NAMESPACE = "\x00"
MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"


@dataclass(frozen=True)
class ClientIdentity:
    """The creator of the transaction: MSP ID and PEM certificate (X.509)."""

    mspid: str
    cert_pem: bytes


@dataclass(frozen=True)
class KV:
    """One key/value pair of a range or composite-key query."""

    key: str
    value: bytes


@dataclass(frozen=True)
class QueryPage:
    """One page of a paginated query; ``bookmark`` is empty after the last page."""

    items: list[KV]
    bookmark: str = ""
    fetched_records_count: int = 0


@dataclass(frozen=True)
class KeyModification:
    """One committed change of a key, oldest first, as returned by the history database."""

    tx_id: str
    value: bytes
    timestamp: datetime
    is_delete: bool


@dataclass(frozen=True)
class Response:
    """The outcome of a transaction, as sent back to the peer (status 200 = OK, >= 400 = error)."""

    status: int
    message: str = ""
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass
class ChaincodeEvent:
    name: str
    payload: bytes = b""


@dataclass(frozen=True)
class Invocation:
    """What was called: function name and arguments, plus transient data (never written to the ledger)."""

    function: str
    args: Sequence[bytes] = ()
    transient: dict[str, bytes] = field(default_factory=dict)


class ChaincodeStub(Protocol):
    """Everything a transaction function may read or write. Writes are buffered by the peer and
    take effect only if the transaction is endorsed, ordered and validated."""

    @property
    def tx_id(self) -> str: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def creator(self) -> ClientIdentity: ...
    @property
    def invocation(self) -> Invocation: ...

    def get_state(self, key: str) -> bytes | None: ...
    def put_state(self, key: str, value: bytes) -> None: ...
    def del_state(self, key: str) -> None: ...

    def get_state_by_range(self, start: str, end: str) -> Iterator[KV]: ...
    def get_state_by_range_with_pagination(self, start: str, end: str, page_size: int, bookmark: str = "") -> QueryPage: ...
    def get_state_by_partial_composite_key(self, object_type: str, attributes: Sequence[str]) -> Iterator[KV]: ...
    def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: Sequence[str], page_size: int, bookmark: str = ""
    ) -> QueryPage: ...
    def get_history_for_key(self, key: str) -> Iterator[KeyModification]: ...

    def get_state_validation_parameter(self, key: str) -> bytes | None:
        """The key's own endorsement policy (a serialized ``SignaturePolicyEnvelope``) as committed; ``None``
        when it has none (the chaincode's policy applies). The read is recorded like a ``get_state``."""
        ...

    def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        """Give the key its own endorsement policy (Fabric's state-based endorsement): once committed, every
        later write of the key, value or policy, must satisfy it instead of the chaincode's policy. A new
        key's policy is judged by the chaincode's policy; a delete removes it."""
        ...

    def set_event(self, name: str, payload: bytes) -> None: ...


class Chaincode(Protocol):
    """What the shim serves: one call per transaction; exceptions are the shim's to turn into errors."""

    def invoke(self, stub: ChaincodeStub) -> Response: ...


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Build a composite key; neither part may contain U+0000 or U+10FFFF."""
    for part in (object_type, *attributes):
        if MIN_UNICODE_RUNE in part or MAX_UNICODE_RUNE in part:
            raise ValueError(f"composite key part {part!r} contains a reserved character (U+0000 or U+10FFFF)")
    if not object_type:
        raise ValueError("composite key object type must not be empty")
    return COMPOSITE_KEY_NAMESPACE + object_type + MIN_UNICODE_RUNE + "".join(a + MIN_UNICODE_RUNE for a in attributes)


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """Inverse of :func:`create_composite_key`."""
    if not key.startswith(COMPOSITE_KEY_NAMESPACE):
        raise ValueError(f"{key!r} is not a composite key")
    parts = key[1:].split(MIN_UNICODE_RUNE)
    return parts[0], parts[1:-1]


def readable_key(key: str) -> str:
    """A composite key as ``type/attr/...`` (for messages and indexes), a plain key as it is."""
    if key.startswith(COMPOSITE_KEY_NAMESPACE):
        object_type, attributes = split_composite_key(key)
        return "/".join([object_type, *attributes])
    return key
