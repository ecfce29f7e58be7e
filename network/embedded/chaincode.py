"""The peer side of the chaincode protocol, for chaincode-as-a-service servers.

:class:`ChaincodeClient` dials a CCaaS server's ``protos.Chaincode/Connect`` bidirectional stream with
mutual TLS and drives it as a Fabric peer does (core/chaincode/handler.go, chaincode_support.go):

- the chaincode sends ``REGISTER`` with its package ID; the peer answers ``REGISTERED`` then ``READY``
  carrying ``ChaincodeAdditionalParams`` (write batches and multi-key reads on, 1000 each);
- each :meth:`ChaincodeClient.execute` sends ``TRANSACTION`` (or ``INIT``) with the signed proposal and
  waits for ``COMPLETED`` or ``ERROR``; transactions share the stream, keyed by (channel, txid);
- the chaincode's state calls are served from the transaction's :class:`TxSimulator`, each answered by
  ``RESPONSE`` or by ``ERROR`` with the peer's message ``"<TYPE> failed: transaction ID: <txid>: <reason>"``;
  query results come at most 100 per ``QueryResponse`` (the rest through ``QUERY_STATE_NEXT``), a
  paginated range query comes in one response with its bookmark;
- key metadata (``GET_STATE_METADATA``, ``PUT_STATE_METADATA``, also as a write-batch record) is served from
  the simulator: that is how a chaincode reads and sets a key's endorsement policy;
- chaincode-to-chaincode calls, rich queries and private data are refused.

Outcomes use the texts of Fabric's ``ChaincodeSupport.Execute``; Fabric's endorser prefixes them with
``"error in simulation: "`` when it turns them into a proposal response.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
)
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.embedded.simulator import RangeIterator, SimulationError, TxSimulator
from swarmfuse.network.protocol.model import HistoryEntry

logger = logging.getLogger(__name__)

Msg = chaincode_shim_pb2.ChaincodeMessage

MAX_RESULT_LIMIT = 100  # results per QueryResponse (Fabric's QueryResponseGenerator.MaxResultLimit)
TOTAL_QUERY_LIMIT = 100_000  # results per query at most (core.yaml ledger.state.totalQueryLimit)
MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # Fabric's default gRPC message limit
ERROR_THRESHOLD = 400  # a response status from here on is an error (shim.ERRORTHRESHOLD)
NOT_SUPPORTED = "not supported by the embedded engine"

READY_PARAMS = chaincode_pb2.ChaincodeAdditionalParams(
    use_write_batch=True, max_size_write_batch=1000, use_get_multiple_keys=True, max_size_get_multiple_keys=1000
)

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    # Fabric's client keepalive (comm.DefaultKeepaliveOptions): ping every minute, 20 s to answer.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

REQUEST_TYPES = frozenset(
    {
        Msg.GET_STATE,
        Msg.GET_STATE_MULTIPLE,
        Msg.PUT_STATE,
        Msg.DEL_STATE,
        Msg.WRITE_BATCH_STATE,
        Msg.GET_STATE_BY_RANGE,
        Msg.QUERY_STATE_NEXT,
        Msg.QUERY_STATE_CLOSE,
        Msg.GET_HISTORY_FOR_KEY,
        Msg.INVOKE_CHAINCODE,
        Msg.GET_QUERY_RESULT,
        Msg.GET_PRIVATE_DATA_HASH,
        Msg.GET_STATE_METADATA,
        Msg.PUT_STATE_METADATA,
        Msg.PURGE_PRIVATE_DATA,
    }
)


class ChaincodeError(SwarmfuseError):
    """Executing a transaction failed before the chaincode gave an outcome."""


class ChaincodeUnavailable(ChaincodeError):
    """No working stream to the chaincode server (never connected, refused, or broken)."""


class ChaincodeTimeout(ChaincodeError):
    """The chaincode did not finish the transaction in time."""


@dataclass(frozen=True)
class ExecuteResult:
    """The chaincode's response and, for a successful one, the event it set."""

    response: proposal_response_pb2.Response
    event: chaincode_event_pb2.ChaincodeEvent | None


class _RequestError(Exception):
    """A state call is refused; the message is the reason the peer gives."""


def _name(kind: int) -> str:
    return Msg.Type.Name(kind) if kind in Msg.Type.values() else str(kind)


def _parse(message_type: type[Message], data: bytes) -> Message:
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise _RequestError(f"unmarshal failed: {exc}") from exc
    return message


def _refuse_collection(collection: str) -> None:
    if collection:
        raise _RequestError(f"private data (collection {collection!r}) is {NOT_SUPPORTED}")


@dataclass
class _Query:
    """An open query of one transaction: its results, the batch being filled, and the count returned."""

    results: Iterator[bytes]
    close: Callable[[], None]
    bookmark_and_close: Callable[[], str] | None = None
    pending: list[chaincode_shim_pb2.QueryResultBytes] = field(default_factory=list)
    returned: int = 0


@dataclass
class _TxContext:
    channel: str
    tx_id: str
    simulator: TxSimulator
    outcome: queue.SimpleQueue[Msg | ChaincodeError] = field(default_factory=queue.SimpleQueue)
    queries: dict[str, _Query] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close_queries(self) -> None:
        with self.lock:
            queries, self.queries = list(self.queries.values()), {}
        for query in queries:
            query.close()


def _range_results(iterator: RangeIterator, namespace: str) -> Iterator[bytes]:
    for key, value in iterator:
        yield kv_query_result_pb2.KV(namespace=namespace, key=key, value=value.value).SerializeToString()


def _history_results(entries: list[HistoryEntry]) -> Iterator[bytes]:
    for entry in entries:
        yield kv_query_result_pb2.KeyModification(
            tx_id=entry.tx_id,
            value=entry.value,
            timestamp=Timestamp(seconds=entry.timestamp_s, nanos=entry.timestamp_nanos),
            is_delete=entry.is_delete,
        ).SerializeToString()


class _Connection:
    """One ``Connect`` stream: handshake, transaction contexts, and the state calls of the chaincode."""

    def __init__(
        self,
        address: str,
        credentials: grpc.ChannelCredentials,
        options: list[tuple[str, int | str]],
        keepalive_s: float,
        max_workers: int,
    ) -> None:
        self.address = address
        self.chaincode_id = ""
        self._channel = grpc.secure_channel(address, credentials, options=options)
        self._outbox: queue.SimpleQueue[Msg | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._contexts: dict[tuple[str, str], _TxContext] = {}
        self._active: set[tuple[str, str]] = set()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cc-request")
        self._ready = threading.Event()
        self._settled = threading.Event()  # ready or dead
        self._dead = threading.Event()
        self.failure = ""
        self._call = chaincode_shim_pb2_grpc.ChaincodeStub(self._channel).Connect(iter(self._outbox.get, None))
        threading.Thread(target=self._read, name="cc-stream-reader", daemon=True).start()
        if keepalive_s > 0:
            threading.Thread(target=self._keepalive, args=(keepalive_s,), name="cc-keepalive", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._dead.is_set()

    def wait_ready(self, timeout: float) -> None:
        if not self._settled.wait(timeout):
            self.close("no REGISTER from the chaincode in time")
            raise ChaincodeUnavailable(f"chaincode server {self.address} did not register within {timeout:g} s")
        if self._dead.is_set():
            raise ChaincodeUnavailable(f"cannot connect to chaincode server {self.address}: {self.failure}")

    def send(self, message: Msg) -> None:
        self._outbox.put(message)

    def close(self, reason: str) -> None:
        """End the stream; transactions still waiting get :class:`ChaincodeUnavailable`."""
        with self._lock:
            if self._dead.is_set():
                return
            self._dead.set()
            self.failure = reason
            waiting = list(self._contexts.values())
        logger.info("chaincode stream to %s closed: %s", self.address, reason)
        for ctx in waiting:
            ctx.outcome.put(
                ChaincodeUnavailable(
                    f"failed to execute transaction {ctx.tx_id}: error sending: chaincode stream terminated ({reason})"
                )
            )
        self._settled.set()
        self._outbox.put(None)
        self._call.cancel()
        self._channel.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- transactions ------------------------------------------------------------------------

    def open_tx(self, channel: str, tx_id: str, simulator: TxSimulator) -> _TxContext:
        with self._lock:
            if self._dead.is_set():
                raise ChaincodeUnavailable(f"chaincode server {self.address} is not connected: {self.failure}")
            if (channel, tx_id) in self._contexts:
                raise ChaincodeError(f"txid: {tx_id}({channel}) exists")
            ctx = self._contexts[(channel, tx_id)] = _TxContext(channel, tx_id, simulator)
        return ctx

    def close_tx(self, ctx: _TxContext) -> None:
        with self._lock:
            self._contexts.pop((ctx.channel, ctx.tx_id), None)
        ctx.close_queries()

    # --- the stream --------------------------------------------------------------------------

    def _read(self) -> None:
        reason = "the chaincode closed the stream"
        try:
            for message in self._call:
                problem = self._dispatch(message)
                if problem:
                    logger.error("chaincode %s: %s", self.address, problem)
                    reason = problem
                    break
        except grpc.RpcError as exc:
            reason = f"{exc.code().name}: {exc.details()}"
        if not self._dead.is_set():
            logger.warning("chaincode stream to %s broke: %s", self.address, reason)
        self.close(reason)

    def _keepalive(self, interval: float) -> None:
        while not self._dead.wait(interval):
            self.send(Msg(type=Msg.KEEPALIVE))

    def _dispatch(self, message: Msg) -> str | None:
        """Act on one message; return why the stream must end, if it must."""
        kind = message.type
        if kind == Msg.KEEPALIVE:
            return None
        if not self._ready.is_set():
            if kind != Msg.REGISTER:
                return (
                    f"[{message.txid}] Fabric side handler cannot handle message ({_name(kind)}) while in created state"
                )
            return self._register(message.payload)
        if kind in (Msg.COMPLETED, Msg.ERROR):
            self._notify(message)
            return None
        if kind in REQUEST_TYPES:
            try:
                self._pool.submit(self._serve, message)
            except RuntimeError:  # the pool is shut down: the stream is closing
                return "the stream is closed"
            return None
        return f"[{message.txid}] Fabric side handler cannot handle message ({_name(kind)}) while in ready state"

    def _register(self, payload: bytes) -> str | None:
        chaincode_id = chaincode_pb2.ChaincodeID()
        try:
            chaincode_id.ParseFromString(payload)
        except DecodeError as exc:
            return f"could not unmarshal REGISTER: {exc}"
        if not chaincode_id.name:
            return "error in handling register chaincode, chaincodeID name is empty"
        self.chaincode_id = chaincode_id.name
        self.send(Msg(type=Msg.REGISTERED))
        self.send(Msg(type=Msg.READY, payload=READY_PARAMS.SerializeToString()))
        logger.info("chaincode %s registered from %s", self.chaincode_id, self.address)
        self._ready.set()
        self._settled.set()
        return None

    def _notify(self, message: Msg) -> None:
        with self._lock:
            ctx = self._contexts.get((message.channel_id, message.txid))
        if ctx is None:
            logger.debug("[%s] %s for no running transaction", message.txid[:8], _name(message.type))
            return
        ctx.outcome.put(message)
        ctx.close_queries()

    # --- state calls ---------------------------------------------------------------------------

    def _serve(self, message: Msg) -> None:
        key = (message.channel_id, message.txid)
        with self._lock:
            if key in self._active:
                logger.error(
                    "[%s] another request is pending for this transaction; dropping %s",
                    message.txid[:8],
                    _name(message.type),
                )
                return
            self._active.add(key)
            ctx = self._contexts.get(key)
        try:
            if ctx is None:
                raise _RequestError("no ledger context")
            reply = Msg(type=Msg.RESPONSE, payload=self._handle(message, ctx))
        except (_RequestError, SimulationError) as exc:
            reply = self._error(message, str(exc))
        except Exception as exc:  # a failing ledger read must still answer the chaincode
            logger.exception("[%s] %s failed", message.txid[:8], _name(message.type))
            reply = self._error(message, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._active.discard(key)
        reply.txid, reply.channel_id = message.txid, message.channel_id
        self.send(reply)

    @staticmethod
    def _error(message: Msg, reason: str) -> Msg:
        text = f"{_name(message.type)} failed: transaction ID: {message.txid}: {reason}"
        logger.debug("[%s] %s", message.txid[:8], text)
        return Msg(type=Msg.ERROR, payload=text.encode("utf-8"))

    def _handle(self, message: Msg, ctx: _TxContext) -> bytes:
        sim = ctx.simulator
        kind = message.type
        if kind == Msg.GET_STATE:
            request = _parse(chaincode_shim_pb2.GetState, message.payload)
            _refuse_collection(request.collection)
            return sim.get_state(request.key)
        if kind == Msg.GET_STATE_MULTIPLE:
            request = _parse(chaincode_shim_pb2.GetStateMultiple, message.payload)
            _refuse_collection(request.collection)
            values = sim.get_state_multiple(list(request.keys))
            return chaincode_shim_pb2.GetStateMultipleResult(values=values).SerializeToString()
        if kind == Msg.PUT_STATE:
            request = _parse(chaincode_shim_pb2.PutState, message.payload)
            _refuse_collection(request.collection)
            sim.put_state(request.key, request.value)
            return b""
        if kind == Msg.DEL_STATE:
            request = _parse(chaincode_shim_pb2.DelState, message.payload)
            _refuse_collection(request.collection)
            sim.del_state(request.key)
            return b""
        if kind == Msg.GET_STATE_METADATA:
            request = _parse(chaincode_shim_pb2.GetStateMetadata, message.payload)
            _refuse_collection(request.collection)
            entries = sim.get_state_metadata(request.key)
            return chaincode_shim_pb2.StateMetadataResult(entries=[
                chaincode_shim_pb2.StateMetadata(metakey=name, value=entries[name]) for name in sorted(entries)
            ]).SerializeToString()
        if kind == Msg.PUT_STATE_METADATA:
            request = _parse(chaincode_shim_pb2.PutStateMetadata, message.payload)
            _refuse_collection(request.collection)
            sim.set_state_metadata(request.key, {request.metadata.metakey: request.metadata.value})
            return b""
        if kind == Msg.WRITE_BATCH_STATE:
            self._write_batch(_parse(chaincode_shim_pb2.WriteBatchState, message.payload), sim)
            return b""
        if kind == Msg.GET_STATE_BY_RANGE:
            return self._range(_parse(chaincode_shim_pb2.GetStateByRange, message.payload), ctx)
        if kind == Msg.QUERY_STATE_NEXT:
            request = _parse(chaincode_shim_pb2.QueryStateNext, message.payload)
            with ctx.lock:
                known = request.id in ctx.queries
            if not known:
                raise _RequestError("query iterator not found")
            return self._respond(ctx, request.id, paginated=False, limit=TOTAL_QUERY_LIMIT)
        if kind == Msg.QUERY_STATE_CLOSE:
            request = _parse(chaincode_shim_pb2.QueryStateClose, message.payload)
            with ctx.lock:
                query = ctx.queries.pop(request.id, None)
            if query is not None:
                query.close()
            return chaincode_shim_pb2.QueryResponse(has_more=False, id=request.id).SerializeToString()
        if kind == Msg.GET_HISTORY_FOR_KEY:
            request = _parse(chaincode_shim_pb2.GetHistoryForKey, message.payload)
            entries = sim.get_history_for_key(request.key)
            query_id = self._open_query(ctx, _Query(results=_history_results(entries), close=lambda: None))
            return self._respond(ctx, query_id, paginated=False, limit=TOTAL_QUERY_LIMIT)
        raise _RequestError(NOT_SUPPORTED)

    @staticmethod
    def _write_batch(batch: chaincode_shim_pb2.WriteBatchState, sim: TxSimulator) -> None:
        for record in batch.rec:
            if record.type in (chaincode_shim_pb2.WriteRecord.PUT_STATE, chaincode_shim_pb2.WriteRecord.DEL_STATE):
                _refuse_collection(record.collection)
                if record.type == chaincode_shim_pb2.WriteRecord.PUT_STATE:
                    sim.put_state(record.key, record.value)
                else:
                    sim.del_state(record.key)
            elif record.type == chaincode_shim_pb2.WriteRecord.PUT_STATE_METADATA:
                _refuse_collection(record.collection)
                sim.set_state_metadata(record.key, {record.metadata.metakey: record.metadata.value})
            elif record.type == chaincode_shim_pb2.WriteRecord.PURGE_PRIVATE_DATA:
                raise _RequestError(f"PURGE_PRIVATE_DATA is {NOT_SUPPORTED}")
            else:
                raise _RequestError("unknown operation type")

    def _range(self, request: chaincode_shim_pb2.GetStateByRange, ctx: _TxContext) -> bytes:
        _refuse_collection(request.collection)
        metadata = _parse(chaincode_shim_pb2.QueryMetadata, request.metadata) if request.metadata else None
        limit = TOTAL_QUERY_LIMIT
        if metadata is not None and 0 < metadata.pageSize < limit:
            limit = metadata.pageSize
        paginated = metadata is not None and (metadata.pageSize != 0 or metadata.bookmark != "")
        sim = ctx.simulator
        if paginated:
            iterator = sim.get_state_range_paginated(
                metadata.bookmark or request.startKey, request.endKey, metadata.pageSize
            )
        else:
            iterator = sim.get_state_range(request.startKey, request.endKey)
        query = _Query(
            results=_range_results(iterator, sim.namespace),
            close=iterator.close,
            bookmark_and_close=iterator.bookmark_and_close,
        )
        return self._respond(ctx, self._open_query(ctx, query), paginated=paginated, limit=limit)

    @staticmethod
    def _open_query(ctx: _TxContext, query: _Query) -> str:
        query_id = str(uuid.uuid4())
        with ctx.lock:
            ctx.queries[query_id] = query
        return query_id

    @staticmethod
    def _respond(ctx: _TxContext, query_id: str, paginated: bool, limit: int) -> bytes:
        """The next ``QueryResponse`` of a query, cut as Fabric's ``QueryResponseGenerator`` does."""
        with ctx.lock:
            query = ctx.queries[query_id]
        try:
            while query.returned < limit:
                item = next(query.results, None)
                if item is None:
                    break
                result = chaincode_shim_pb2.QueryResultBytes(resultBytes=item)
                if not paginated and len(query.pending) == MAX_RESULT_LIMIT:
                    batch, query.pending = query.pending, [result]
                    query.returned += 1
                    response = chaincode_shim_pb2.QueryResponse(results=batch, has_more=True, id=query_id)
                    return response.SerializeToString()
                query.pending.append(result)
                query.returned += 1
        except Exception:
            with ctx.lock:
                ctx.queries.pop(query_id, None)
            query.close()
            raise
        batch, query.pending = query.pending, []
        with ctx.lock:
            ctx.queries.pop(query_id, None)
        response = chaincode_shim_pb2.QueryResponse(results=batch, has_more=False, id=query_id)
        if paginated and query.bookmark_and_close is not None:
            response.metadata = chaincode_shim_pb2.QueryResponseMetadata(
                fetched_records_count=query.returned, bookmark=query.bookmark_and_close()
            ).SerializeToString()
        else:
            query.close()
        return response.SerializeToString()


class ChaincodeClient:
    """The peer's end of one CCaaS chaincode server; :meth:`connect` again after a failure."""

    def __init__(
        self,
        address: str,
        root_cert: bytes,
        client_cert: bytes,
        client_key: bytes,
        server_name: str | None = None,
        *,
        keepalive_s: float = 0.0,
        max_workers: int = 32,
    ) -> None:
        self.address = address
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=root_cert, private_key=client_key, certificate_chain=client_cert
        )
        self._options: list[tuple[str, int | str]] = list(CHANNEL_OPTIONS)
        if server_name:
            self._options.append(("grpc.ssl_target_name_override", server_name))
        self._keepalive_s = keepalive_s  # KEEPALIVE messages; 0 = none, as core.yaml's chaincode.keepalive
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._failure = "connect() was not called"

    @property
    def connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.ready

    @property
    def chaincode_id(self) -> str:
        """The package ID the chaincode registered with ("" before it has)."""
        connection = self._connection
        return connection.chaincode_id if connection is not None else ""

    def connect(self, timeout: float) -> None:
        """Open a new stream (closing any previous one) and complete the register handshake."""
        self.close()
        connection = _Connection(self.address, self._credentials, self._options, self._keepalive_s, self._max_workers)
        try:
            connection.wait_ready(timeout)
        except ChaincodeUnavailable as exc:
            self._failure = str(exc)
            raise
        with self._lock:
            self._connection = connection

    def execute(
        self,
        channel: str,
        tx_id: str,
        signed_proposal: proposal_pb2.SignedProposal,
        input: chaincode_pb2.ChaincodeInput,
        simulator: TxSimulator,
        init: bool = False,
        timeout: float = 30.0,
    ) -> ExecuteResult:
        """Run one transaction on the chaincode, serving its state calls from ``simulator``.

        A chaincode ``ERROR`` becomes status 500 with Fabric's message; the event is dropped for a
        status >= 400, as Fabric's endorser does. Raises :class:`ChaincodeUnavailable` when there is no
        stream or it breaks, :class:`ChaincodeTimeout` after ``timeout`` seconds."""
        with self._lock:
            connection = self._connection
            failure = self._failure
        if connection is None:
            raise ChaincodeUnavailable(f"chaincode server {self.address} is not connected: {failure}")
        ctx = connection.open_tx(channel, tx_id, simulator)
        try:
            connection.send(
                Msg(
                    type=Msg.INIT if init else Msg.TRANSACTION,
                    payload=input.SerializeToString(),
                    txid=tx_id,
                    channel_id=channel,
                    proposal=signed_proposal,
                )
            )
            try:
                outcome = ctx.outcome.get(timeout=timeout)
            except queue.Empty:
                raise ChaincodeTimeout(
                    f"failed to execute transaction {tx_id}: error sending: timeout expired while executing transaction"
                ) from None
        finally:
            connection.close_tx(ctx)
        if isinstance(outcome, ChaincodeError):
            raise outcome
        return _result(outcome, tx_id, simulator.namespace)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            self._failure = "the client was closed"
        if connection is not None:
            connection.close("the client was closed")


def _result(message: Msg, tx_id: str, namespace: str) -> ExecuteResult:
    if message.type == Msg.ERROR:
        text = message.payload.decode("utf-8", errors="replace")
        return ExecuteResult(
            proposal_response_pb2.Response(status=500, message=f"transaction returned with failure: {text}"), None
        )
    response = proposal_response_pb2.Response()
    try:
        response.ParseFromString(message.payload)
    except DecodeError as exc:
        raise ChaincodeError(f"failed to unmarshal response for transaction {tx_id}: {exc}") from exc
    event = None
    if message.HasField("chaincode_event") and response.status < ERROR_THRESHOLD:
        event = chaincode_event_pb2.ChaincodeEvent()
        event.CopyFrom(message.chaincode_event)
        event.chaincode_id = namespace
        event.tx_id = tx_id
    return ExecuteResult(response, event)
