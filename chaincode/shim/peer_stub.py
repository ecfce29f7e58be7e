"""The :class:`~swarmfuse.chaincode.stub.ChaincodeStub` of one transaction, backed by the peer.

Reads go to the peer at once (Fabric has no read-your-writes: a read sees the committed state).
Writes (values and key-level endorsement policies) are buffered and sent only when the chaincode's
response is OK, so a failed transaction writes nothing; when the peer offers it, they go as
``WRITE_BATCH_STATE`` messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2
from google.protobuf.message import Message

from swarmfuse.chaincode.shim.proposal import ProposalContext
from swarmfuse.chaincode.shim.queries import QueryIterator, decode_key_modification, decode_kv, parse_query_response
from swarmfuse.chaincode.shim.session import ChaincodeMessage, TxConnection
from swarmfuse.chaincode.stub import (
    COMPOSITE_KEY_NAMESPACE,
    KV,
    MAX_UNICODE_RUNE,
    ChaincodeEvent,
    ClientIdentity,
    Invocation,
    KeyModification,
    QueryPage,
    create_composite_key,
)

T = TypeVar("T")

# A range query from the empty key starts here, so that composite keys (which start with U+0000) stay out.
EMPTY_START_KEY = "\x01"


def _check_simple_key(key: str, role: str) -> None:
    if key.startswith(COMPOSITE_KEY_NAMESPACE):
        raise ValueError(f"{role} key {key!r} starts with U+0000, which is reserved for composite keys")


VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
"""The metadata entry that holds a key's endorsement policy (Fabric's ``MetaDataKeys_VALIDATION_PARAMETER``)."""


def _policy_entry(policy: bytes) -> shim_pb2.StateMetadata:
    return shim_pb2.StateMetadata(metakey=VALIDATION_PARAMETER, value=policy)


def _check_write(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("a state key must be a non-empty string")


class PeerStub:
    """Ledger access for one transaction over its :class:`TxConnection`."""

    def __init__(
        self, tx: TxConnection, context: ProposalContext, invocation: Invocation, write_batch_size: int
    ) -> None:
        self._tx = tx
        self._context = context
        self._invocation = invocation
        self._write_batch_size = write_batch_size
        self._writes: dict[str, bytes | None] = {}  # None marks a delete
        self._policies: dict[str, bytes] = {}  # key -> its endorsement policy (VALIDATION_PARAMETER)
        self._open_queries: list[QueryIterator] = []
        self.event: ChaincodeEvent | None = None

    @property
    def tx_id(self) -> str:
        return self._tx.txid

    @property
    def channel_id(self) -> str:
        return self._tx.channel_id

    @property
    def timestamp(self) -> datetime:
        return self._context.timestamp

    @property
    def creator(self) -> ClientIdentity:
        return self._context.creator

    @property
    def invocation(self) -> Invocation:
        return self._invocation

    # --- single keys -------------------------------------------------------------------------

    def get_state(self, key: str) -> bytes | None:
        value = self._tx.call(ChaincodeMessage.GET_STATE, shim_pb2.GetState(key=key))
        return value or None

    def put_state(self, key: str, value: bytes) -> None:
        _check_write(key)
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"state value for {key!r} must be bytes, not {type(value).__name__}")
        if not value:
            raise ValueError(f"state value for {key!r} is empty; use del_state to remove a key")
        self._writes[key] = bytes(value)

    def del_state(self, key: str) -> None:
        _check_write(key)
        self._writes[key] = None

    # --- key-level endorsement policies --------------------------------------------------------

    def get_state_validation_parameter(self, key: str) -> bytes | None:
        reply = self._tx.call(ChaincodeMessage.GET_STATE_METADATA, shim_pb2.GetStateMetadata(key=key))
        entries = shim_pb2.StateMetadataResult.FromString(reply).entries
        return next((e.value for e in entries if e.metakey == VALIDATION_PARAMETER and e.value), None)

    def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        _check_write(key)
        if not isinstance(policy, (bytes, bytearray)):
            raise TypeError(f"endorsement policy for {key!r} must be bytes, not {type(policy).__name__}")
        self._policies[key] = bytes(policy)

    # --- queries -----------------------------------------------------------------------------

    def get_state_by_range(self, start: str, end: str) -> Iterator[KV]:
        _check_simple_key(start, "start")
        _check_simple_key(end, "end")
        return self._range(start or EMPTY_START_KEY, end)

    def get_state_by_range_with_pagination(self, start: str, end: str, page_size: int, bookmark: str = "") -> QueryPage:
        _check_simple_key(start, "start")
        _check_simple_key(end, "end")
        return self._page(start or EMPTY_START_KEY, end, page_size, bookmark)

    def get_state_by_partial_composite_key(self, object_type: str, attributes: Sequence[str]) -> Iterator[KV]:
        start = create_composite_key(object_type, attributes)
        return self._range(start, start + MAX_UNICODE_RUNE)

    def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: Sequence[str], page_size: int, bookmark: str = ""
    ) -> QueryPage:
        start = create_composite_key(object_type, attributes)
        return self._page(start, start + MAX_UNICODE_RUNE, page_size, bookmark)

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        """Committed changes of ``key``, oldest first (the peer's history database sends newest first)."""
        with self._query(
            ChaincodeMessage.GET_HISTORY_FOR_KEY, shim_pb2.GetHistoryForKey(key=key), decode_key_modification
        ) as query:
            newest_first = list(query)
        return reversed(newest_first)

    # --- events ------------------------------------------------------------------------------

    def set_event(self, name: str, payload: bytes) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a chaincode event needs a non-empty name")
        if not isinstance(payload, (bytes, bytearray)):
            raise TypeError(f"event payload must be bytes, not {type(payload).__name__}")
        self.event = ChaincodeEvent(name=name, payload=bytes(payload))

    # --- end of transaction (called by the shim, not by contracts) -----------------------------

    def close_queries(self) -> None:
        """End queries the chaincode left open."""
        for query in list(self._open_queries):
            query.close()

    def flush_writes(self) -> None:
        """Send the buffered writes to the peer (only for a transaction that succeeded)."""
        if not self._writes and not self._policies:
            return
        if self._write_batch_size:
            records = [self._record(key, value) for key, value in self._writes.items()]
            records += [shim_pb2.WriteRecord(key=key, metadata=_policy_entry(policy),
                                             type=shim_pb2.WriteRecord.PUT_STATE_METADATA)
                        for key, policy in self._policies.items()]
            for first in range(0, len(records), self._write_batch_size):
                chunk = records[first : first + self._write_batch_size]
                self._tx.call(ChaincodeMessage.WRITE_BATCH_STATE, shim_pb2.WriteBatchState(rec=chunk))
            return
        for key, value in self._writes.items():
            if value is None:
                self._tx.call(ChaincodeMessage.DEL_STATE, shim_pb2.DelState(key=key))
            else:
                self._tx.call(ChaincodeMessage.PUT_STATE, shim_pb2.PutState(key=key, value=value))
        for key, policy in self._policies.items():
            self._tx.call(ChaincodeMessage.PUT_STATE_METADATA,
                          shim_pb2.PutStateMetadata(key=key, metadata=_policy_entry(policy)))

    @staticmethod
    def _record(key: str, value: bytes | None) -> shim_pb2.WriteRecord:
        if value is None:
            return shim_pb2.WriteRecord(key=key, type=shim_pb2.WriteRecord.DEL_STATE)
        return shim_pb2.WriteRecord(key=key, value=value, type=shim_pb2.WriteRecord.PUT_STATE)

    def _range(self, start: str, end: str) -> QueryIterator[KV]:
        return self._query(
            ChaincodeMessage.GET_STATE_BY_RANGE, shim_pb2.GetStateByRange(startKey=start, endKey=end), decode_kv
        )

    def _page(self, start: str, end: str, page_size: int, bookmark: str) -> QueryPage:
        if not isinstance(page_size, int) or page_size <= 0:
            raise ValueError(f"page size must be a positive integer, got {page_size!r}")
        metadata = shim_pb2.QueryMetadata(pageSize=page_size, bookmark=bookmark).SerializeToString()
        request = shim_pb2.GetStateByRange(startKey=start, endKey=end, metadata=metadata)
        with self._query(ChaincodeMessage.GET_STATE_BY_RANGE, request, decode_kv) as query:
            items = list(query)
        return QueryPage(
            items=items, bookmark=query.metadata.bookmark, fetched_records_count=query.metadata.fetched_records_count
        )

    def _query(self, msg_type: int, request: Message, decode: Callable[[bytes], T]) -> QueryIterator[T]:
        first = parse_query_response(self._tx.call(msg_type, request))
        query = QueryIterator(self._tx, first, decode, self._open_queries.remove)
        self._open_queries.append(query)
        return query
