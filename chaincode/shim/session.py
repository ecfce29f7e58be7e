"""One ``Chaincode.Connect`` stream with a peer: the register handshake, then concurrent transactions.

The peer and the chaincode share one bidirectional stream. After ``REGISTER`` → ``REGISTERED`` →
``READY`` the peer sends ``TRANSACTION``/``INIT`` messages; each runs on a worker thread, and every
ledger call it makes is a request tagged with the transaction's (channel, txid) whose ``RESPONSE``
or ``ERROR`` is routed back to that transaction only.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from fabric_protos.peer import chaincode_pb2
from fabric_protos.peer.chaincode_shim_pb2 import ChaincodeMessage
from google.protobuf.message import DecodeError, Message

from swarmfuse.chaincode.shim.errors import PeerError, PeerStreamClosedError

logger = logging.getLogger(__name__)

MessageType = ChaincodeMessage.Type

# Records per WRITE_BATCH_STATE when the peer accepts batches but names no size.
DEFAULT_WRITE_BATCH_SIZE = 100


class _State(enum.Enum):
    CREATED = "created"  # REGISTER sent, waiting for REGISTERED
    ESTABLISHED = "established"  # waiting for READY
    READY = "ready"  # serving transactions


class TxConnection:
    """The link of one running transaction to the peer: one outstanding request at a time."""

    def __init__(self, session: PeerSession, channel_id: str, txid: str) -> None:
        self.session = session
        self.channel_id = channel_id
        self.txid = txid
        self._replies: queue.SimpleQueue[ChaincodeMessage | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = False

    def call(self, msg_type: int, request: Message) -> bytes:
        """Send one request and return the payload of the peer's ``RESPONSE``; an ``ERROR`` raises."""
        name = MessageType.Name(msg_type)
        with self._lock:
            if self.session.closed:
                raise PeerStreamClosedError(name)
            self._waiting = True
            try:
                self.session.send(
                    ChaincodeMessage(
                        type=msg_type, payload=request.SerializeToString(), txid=self.txid, channel_id=self.channel_id
                    )
                )
                reply = self._replies.get()
            finally:
                self._waiting = False
        if reply is None:
            raise PeerStreamClosedError(name)
        if reply.type == ChaincodeMessage.RESPONSE:
            return reply.payload
        if reply.type == ChaincodeMessage.ERROR:
            raise PeerError(name, reply.payload.decode("utf-8", errors="replace") or "(no message)")
        raise PeerError(name, f"unexpected reply {MessageType.Name(reply.type)}")

    def deliver(self, reply: ChaincodeMessage | None) -> None:
        """Hand a peer reply (or ``None`` when the stream ended) to the waiting request."""
        if reply is not None and not self._waiting:
            logger.warning("[%s] dropping unsolicited %s from the peer", self.txid[:8], MessageType.Name(reply.type))
            return
        self._replies.put(reply)


TransactionRunner = Callable[[TxConnection, ChaincodeMessage], ChaincodeMessage]


class PeerSession:
    """Owns one stream: sends through an outbox, reads on its own thread, runs transactions on a pool."""

    def __init__(self, chaincode_id: str, run_transaction: TransactionRunner, max_workers: int) -> None:
        self._chaincode_id = chaincode_id
        self._run_transaction = run_transaction
        self._outbox: queue.SimpleQueue[ChaincodeMessage | None] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cc-tx")
        self._lock = threading.Lock()
        self._transactions: dict[tuple[str, str], TxConnection] = {}
        self._state = _State.CREATED
        self._closed = threading.Event()
        self._draining = False
        self.write_batch_size = 0  # > 0 once the peer accepts WRITE_BATCH_STATE

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def send(self, message: ChaincodeMessage) -> None:
        self._outbox.put(message)

    def run(self, requests: Iterator[ChaincodeMessage]) -> Iterator[ChaincodeMessage]:
        """Register, then yield every message for the peer until the stream ends."""
        self.send(
            ChaincodeMessage(
                type=ChaincodeMessage.REGISTER,
                payload=chaincode_pb2.ChaincodeID(name=self._chaincode_id).SerializeToString(),
            )
        )
        threading.Thread(target=self._read, args=(requests,), name="cc-stream-reader", daemon=True).start()
        try:
            while (message := self._outbox.get()) is not None:
                yield message
        finally:
            self.close("the stream to the peer ended")

    def drain(self) -> None:
        """Refuse new transactions, let running ones finish, then end the stream."""
        with self._lock:
            self._draining = True
            idle = not self._transactions
        if idle:
            self.close("the chaincode server is stopping")

    def close(self, reason: str = "the chaincode server is stopping") -> None:
        """End the stream; transactions still waiting for the peer get :class:`PeerStreamClosedError`."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            pending = list(self._transactions.values())
        logger.info("closing peer stream: %s", reason)
        for tx in pending:
            tx.deliver(None)
        self._outbox.put(None)
        self._pool.shutdown(wait=False)

    def _read(self, requests: Iterator[ChaincodeMessage]) -> None:
        reason = "the peer closed the stream"
        try:
            for message in requests:
                problem = self._dispatch(message)
                if problem:
                    logger.error("protocol error: %s", problem)
                    self.send(
                        ChaincodeMessage(
                            type=ChaincodeMessage.ERROR,
                            payload=problem.encode(),
                            txid=message.txid,
                            channel_id=message.channel_id,
                        )
                    )
                    reason = problem
                    break
        except Exception as exc:  # noqa: BLE001 - the stream raises grpc errors of several kinds when it breaks
            reason = f"reading from the peer failed: {exc}"
        self.close(reason)

    def _dispatch(self, message: ChaincodeMessage) -> str | None:
        """Act on one message from the peer; return a description of a protocol violation, if any."""
        kind = message.type
        if kind == ChaincodeMessage.KEEPALIVE:
            self.send(message)
            return None
        if self._state is _State.CREATED:
            if kind != ChaincodeMessage.REGISTERED:
                return f"expected REGISTERED from the peer, got {MessageType.Name(kind)}"
            self._state = _State.ESTABLISHED
            return None
        if self._state is _State.ESTABLISHED:
            if kind != ChaincodeMessage.READY:
                return f"expected READY from the peer, got {MessageType.Name(kind)}"
            self._accept_ready(message.payload)
            return None
        if kind in (ChaincodeMessage.RESPONSE, ChaincodeMessage.ERROR):
            self._route_reply(message)
            return None
        if kind in (ChaincodeMessage.TRANSACTION, ChaincodeMessage.INIT):
            self._start_transaction(message)
            return None
        return f"cannot handle {MessageType.Name(kind)} from the peer while ready"

    def _accept_ready(self, payload: bytes) -> None:
        self._state = _State.READY
        params = chaincode_pb2.ChaincodeAdditionalParams()
        try:
            params.ParseFromString(payload)
        except DecodeError:
            logger.warning("ignoring undecodable READY parameters from the peer")
        if params.use_write_batch:
            self.write_batch_size = params.max_size_write_batch or DEFAULT_WRITE_BATCH_SIZE
        logger.info(
            "registered with the peer as %s (write batch size: %s)", self._chaincode_id, self.write_batch_size or "off"
        )

    def _route_reply(self, message: ChaincodeMessage) -> None:
        with self._lock:
            tx = self._transactions.get((message.channel_id, message.txid))
        if tx is None:
            logger.warning("[%s] reply %s for no running transaction", message.txid[:8], MessageType.Name(message.type))
            return
        tx.deliver(message)

    def _start_transaction(self, message: ChaincodeMessage) -> None:
        key = (message.channel_id, message.txid)
        refusal = None
        with self._lock:
            if self._draining:
                refusal = "the chaincode server is shutting down"
            elif key in self._transactions:
                refusal = f"transaction {message.txid} on channel {message.channel_id} is already running"
            else:
                tx = self._transactions[key] = TxConnection(self, message.channel_id, message.txid)
        if refusal:
            self.send(
                ChaincodeMessage(
                    type=ChaincodeMessage.ERROR,
                    payload=refusal.encode(),
                    txid=message.txid,
                    channel_id=message.channel_id,
                )
            )
            return
        self._pool.submit(self._serve, tx, message)

    def _serve(self, tx: TxConnection, message: ChaincodeMessage) -> None:
        try:
            outcome = self._run_transaction(tx, message)
        finally:
            with self._lock:
                self._transactions.pop((tx.channel_id, tx.txid), None)
                finished_draining = self._draining and not self._transactions
        if not self.closed:
            self.send(outcome)
        if finished_draining:
            self.close("the chaincode server is stopping")
