"""Iterators over the peer's query results, paging through ``QUERY_STATE_NEXT``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Generic, TypeVar

from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import chaincode_shim_pb2

from swarmfuse.chaincode.shim.session import ChaincodeMessage, TxConnection
from swarmfuse.chaincode.stub import KV, KeyModification

T = TypeVar("T")


def decode_kv(data: bytes) -> KV:
    record = kv_query_result_pb2.KV.FromString(data)
    return KV(key=record.key, value=bytes(record.value))


def decode_key_modification(data: bytes) -> KeyModification:
    record = kv_query_result_pb2.KeyModification.FromString(data)
    return KeyModification(
        tx_id=record.tx_id,
        value=bytes(record.value),
        timestamp=record.timestamp.ToDatetime(tzinfo=UTC),
        is_delete=record.is_delete,
    )


def parse_query_response(payload: bytes) -> chaincode_shim_pb2.QueryResponse:
    return chaincode_shim_pb2.QueryResponse.FromString(payload)


class QueryIterator(Iterator[T], Generic[T]):
    """Yields decoded results batch by batch; asks the peer for the next batch while it has more.

    Exhausting the iterator ends the query on the peer; :meth:`close` ends it early.
    """

    def __init__(
        self,
        tx: TxConnection,
        first: chaincode_shim_pb2.QueryResponse,
        decode: Callable[[bytes], T],
        on_close: Callable[[QueryIterator[T]], None],
    ) -> None:
        self._tx = tx
        self._response = first
        self._decode = decode
        self._on_close = on_close
        self._index = 0
        self._closed = False
        self.metadata = chaincode_shim_pb2.QueryResponseMetadata()
        self._take_metadata(first)

    def __iter__(self) -> QueryIterator[T]:
        return self

    def __next__(self) -> T:
        while self._index >= len(self._response.results):
            if self._closed or not self._response.has_more:
                self._finish()
                raise StopIteration
            payload = self._tx.call(
                ChaincodeMessage.QUERY_STATE_NEXT, chaincode_shim_pb2.QueryStateNext(id=self._response.id)
            )
            self._response = parse_query_response(payload)
            self._take_metadata(self._response)
            self._index = 0
        item = self._decode(self._response.results[self._index].resultBytes)
        self._index += 1
        return item

    def close(self) -> None:
        """End the query; the peer is told only if it still holds results for it."""
        if self._closed:
            return
        try:
            if self._response.has_more:
                self._tx.call(
                    ChaincodeMessage.QUERY_STATE_CLOSE, chaincode_shim_pb2.QueryStateClose(id=self._response.id)
                )
        finally:
            self._finish()

    def __enter__(self) -> QueryIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(self)

    def _take_metadata(self, response: chaincode_shim_pb2.QueryResponse) -> None:
        if response.metadata:
            self.metadata = chaincode_shim_pb2.QueryResponseMetadata.FromString(response.metadata)
