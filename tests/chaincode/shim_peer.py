"""Test helpers for the shim: a Python client that plays the peer's side of ``Chaincode.Connect``
over a real socket, proposal builders and certificates. Used by ``test_shim_*.py`` only."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
)
from google.protobuf.timestamp_pb2 import Timestamp

from swarmfuse.chaincode.stub import ChaincodeStub, Response, split_composite_key

Msg = chaincode_shim_pb2.ChaincodeMessage
CHANNEL = "task1"


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def make_cert(
    common_name: str, issuer: KeyPair | None = None, *, ca: bool = False, sans: tuple[str, ...] = ()
) -> KeyPair:
    """An EC P-256 certificate, self-signed or signed by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem)
        issuer_name = issuer_cert.subject
        signing_key = serialization.load_pem_private_key(issuer.key_pem, password=None)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        names: list[x509.GeneralName] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    return KeyPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


# --- proposals ---------------------------------------------------------------------------------


def signed_proposal(
    txid: str,
    mspid: str,
    cert_pem: bytes,
    when: dt.datetime,
    transient: dict[str, bytes] | None = None,
    channel: str = CHANNEL,
) -> proposal_pb2.SignedProposal:
    """A proposal as a client builds it (the signature is not checked by the shim: the peer did that)."""
    timestamp = Timestamp()
    timestamp.FromDatetime(when)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel, tx_id=txid, timestamp=timestamp
    )
    creator = identities_pb2.SerializedIdentity(mspid=mspid, id_bytes=cert_pem)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=creator.SerializeToString(), nonce=b"n" * 24
        ).SerializeToString(),
    )
    payload = proposal_pb2.ChaincodeProposalPayload(input=b"", TransientMap=transient or {})
    proposal = proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())
    return proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString(), signature=b"unchecked")


DEFAULT_CERT = make_cert("user1")
DEFAULT_TIME = dt.datetime(2026, 11, 23, 12, 30, 45, 123456, tzinfo=dt.UTC)


def transaction(
    txid: str, *args: str | bytes, channel: str = CHANNEL, proposal: proposal_pb2.SignedProposal | None = None
) -> Msg:
    raw = [a.encode() if isinstance(a, str) else a for a in args]
    return Msg(
        type=Msg.TRANSACTION,
        txid=txid,
        channel_id=channel,
        payload=chaincode_pb2.ChaincodeInput(args=raw).SerializeToString(),
        proposal=proposal or signed_proposal(txid, "DC1MSP", DEFAULT_CERT.cert_pem, DEFAULT_TIME, channel=channel),
    )


def response_of(message: Msg) -> proposal_response_pb2.Response:
    assert message.type == Msg.COMPLETED, f"expected COMPLETED, got {Msg.Type.Name(message.type)}: {message.payload!r}"
    return proposal_response_pb2.Response.FromString(message.payload)


# --- the peer's side of the stream ---------------------------------------------------------------


@dataclass
class HistoryEntry:
    tx_id: str
    value: bytes
    seconds: int
    is_delete: bool = False


@dataclass
class PeerSim:
    """Plays the peer: answers ledger requests from an in-memory world state, like a peer's simulator
    would, and records every request. Range results come in batches of ``batch_size`` (as the peer's
    ``maxResultLimit``); paginated queries come in one response with bookmark metadata."""

    target: str
    credentials: grpc.ChannelCredentials | None = None
    state: dict[str, bytes] = field(default_factory=dict)
    policies: dict[str, bytes] = field(default_factory=dict)  # key -> VALIDATION_PARAMETER
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)  # per key, oldest first
    batch_size: int = 2
    requests: list[Msg] = field(default_factory=list)
    channel_options: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        options = list(self.channel_options)
        if self.credentials:
            options.append(("grpc.ssl_target_name_override", "localhost"))
            self._channel = grpc.secure_channel(self.target, self.credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.target, options=options)
        self._outbox: queue.SimpleQueue[Msg | None] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[Msg | Exception] = queue.SimpleQueue()
        self._iterators: dict[str, Iterator[bytes]] = {}
        self._iterator_count = 0
        stream = chaincode_shim_pb2_grpc.ChaincodeStub(self._channel).Connect(iter(self._outbox.get, None))
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Iterator[Msg]) -> None:
        try:
            for message in stream:
                self._inbox.put(message)
        except grpc.RpcError as exc:
            self._inbox.put(exc)
        else:
            self._inbox.put(EOFError("the chaincode ended the stream"))

    def send(self, message: Msg) -> None:
        self._outbox.put(message)

    def recv(self, timeout: float = 10.0) -> Msg:
        item = self._inbox.get(timeout=timeout)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self._outbox.put(None)
        self._channel.close()

    def handshake(self, ready: chaincode_pb2.ChaincodeAdditionalParams | None = None) -> chaincode_pb2.ChaincodeID:
        register = self.recv()
        assert register.type == Msg.REGISTER, Msg.Type.Name(register.type)
        self.send(Msg(type=Msg.REGISTERED))
        self.send(Msg(type=Msg.READY, payload=ready.SerializeToString() if ready else b""))
        return chaincode_pb2.ChaincodeID.FromString(register.payload)

    def run(self, message: Msg, timeout: float = 10.0) -> Msg:
        """Send one transaction and answer its requests until it completes; returns COMPLETED/ERROR."""
        self.send(message)
        while True:
            reply = self.recv(timeout)
            if reply.type in (Msg.COMPLETED, Msg.ERROR) and reply.txid == message.txid:
                return reply
            self.answer(reply)

    def answer(self, request: Msg) -> None:
        """Reply to one ledger request as the peer would."""
        self.requests.append(request)
        try:
            payload = self._handle(request)
        except LookupError as exc:
            self.send(Msg(type=Msg.ERROR, payload=str(exc).encode(), txid=request.txid, channel_id=request.channel_id))
            return
        self.send(Msg(type=Msg.RESPONSE, payload=payload, txid=request.txid, channel_id=request.channel_id))

    def reply(self, request: Msg, kind: int, payload: bytes) -> None:
        self.send(Msg(type=kind, payload=payload, txid=request.txid, channel_id=request.channel_id))

    def _handle(self, request: Msg) -> bytes:
        kind = request.type
        if kind == Msg.GET_STATE:
            return self.state.get(chaincode_shim_pb2.GetState.FromString(request.payload).key, b"")
        if kind == Msg.PUT_STATE:
            put = chaincode_shim_pb2.PutState.FromString(request.payload)
            self.state[put.key] = put.value
            return b""
        if kind == Msg.DEL_STATE:
            self.state.pop(chaincode_shim_pb2.DelState.FromString(request.payload).key, None)
            return b""
        if kind == Msg.WRITE_BATCH_STATE:
            for record in chaincode_shim_pb2.WriteBatchState.FromString(request.payload).rec:
                if record.type == chaincode_shim_pb2.WriteRecord.PUT_STATE:
                    self.state[record.key] = record.value
                elif record.type == chaincode_shim_pb2.WriteRecord.PUT_STATE_METADATA:
                    self.policies[record.key] = record.metadata.value
                else:
                    self.state.pop(record.key, None)
            return b""
        if kind == Msg.PUT_STATE_METADATA:
            put_metadata = chaincode_shim_pb2.PutStateMetadata.FromString(request.payload)
            self.policies[put_metadata.key] = put_metadata.metadata.value
            return b""
        if kind == Msg.GET_STATE_METADATA:
            key = chaincode_shim_pb2.GetStateMetadata.FromString(request.payload).key
            entries = [chaincode_shim_pb2.StateMetadata(metakey="VALIDATION_PARAMETER", value=self.policies[key])
                       ] if key in self.policies else []
            return chaincode_shim_pb2.StateMetadataResult(entries=entries).SerializeToString()
        if kind == Msg.GET_STATE_BY_RANGE:
            return self._range(chaincode_shim_pb2.GetStateByRange.FromString(request.payload))
        if kind == Msg.QUERY_STATE_NEXT:
            return self._next_batch(chaincode_shim_pb2.QueryStateNext.FromString(request.payload).id)
        if kind == Msg.QUERY_STATE_CLOSE:
            query_id = chaincode_shim_pb2.QueryStateClose.FromString(request.payload).id
            self._iterators.pop(query_id, None)
            return chaincode_shim_pb2.QueryResponse(id=query_id).SerializeToString()
        if kind == Msg.GET_HISTORY_FOR_KEY:
            key = chaincode_shim_pb2.GetHistoryForKey.FromString(request.payload).key
            # Like Fabric's history database: newest first.
            records = [self._modification(entry) for entry in reversed(self.history.get(key, []))]
            return self._open(iter(records))
        raise LookupError(f"the test peer does not handle {Msg.Type.Name(kind)}")

    @staticmethod
    def _modification(entry: HistoryEntry) -> bytes:
        return kv_query_result_pb2.KeyModification(
            tx_id=entry.tx_id, value=entry.value, timestamp=Timestamp(seconds=entry.seconds), is_delete=entry.is_delete
        ).SerializeToString()

    def _keys(self, start: str, end: str) -> list[str]:
        return sorted(k for k in self.state if k >= start and (not end or k < end))

    def _kv(self, key: str) -> bytes:
        return kv_query_result_pb2.KV(namespace="swarmfuse", key=key, value=self.state[key]).SerializeToString()

    def _range(self, request: chaincode_shim_pb2.GetStateByRange) -> bytes:
        if not request.metadata:
            return self._open(self._kv(k) for k in self._keys(request.startKey, request.endKey))
        meta = chaincode_shim_pb2.QueryMetadata.FromString(request.metadata)
        keys = self._keys(meta.bookmark or request.startKey, request.endKey)
        page, rest = keys[: meta.pageSize], keys[meta.pageSize :]
        self._iterator_count += 1
        metadata = chaincode_shim_pb2.QueryResponseMetadata(
            fetched_records_count=len(page), bookmark=rest[0] if rest else ""
        )
        return chaincode_shim_pb2.QueryResponse(
            results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=self._kv(k)) for k in page],
            has_more=False,
            id=str(self._iterator_count),
            metadata=metadata.SerializeToString(),
        ).SerializeToString()

    def _open(self, results: Iterator[bytes]) -> bytes:
        self._iterator_count += 1
        query_id = str(self._iterator_count)
        self._iterators[query_id] = iter(results)
        return self._next_batch(query_id)

    def _next_batch(self, query_id: str) -> bytes:
        results = self._iterators.get(query_id)
        if results is None:
            raise LookupError(f"query iterator {query_id} does not exist")
        batch = [
            chaincode_shim_pb2.QueryResultBytes(resultBytes=r) for r in itertools.islice(results, self.batch_size + 1)
        ]
        has_more = len(batch) > self.batch_size
        if has_more:  # keep the extra one for the next batch
            extra = batch.pop()
            self._iterators[query_id] = _chain(extra.resultBytes, results)
        else:
            del self._iterators[query_id]
        return chaincode_shim_pb2.QueryResponse(results=batch, has_more=has_more, id=query_id).SerializeToString()


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


# --- a tiny chaincode for the tests ------------------------------------------------------------


def _text(args: list[bytes]) -> list[str]:
    return [a.decode() for a in args]


class ShimTestChaincode:
    """Test-only chaincode: each function exercises one part of the stub."""

    def invoke(self, stub: ChaincodeStub) -> Response:
        function = stub.invocation.function
        args = _text(list(stub.invocation.args))
        handler = getattr(self, f"cc_{function}", None)
        if handler is None:
            return Response(404, f"NotFound: no function {function}")
        return handler(stub, *args)

    def cc_put(self, stub: ChaincodeStub, key: str, value: str) -> Response:
        stub.put_state(key, value.encode())
        stub.set_event("Put", json.dumps({"key": key, "value": value}).encode())
        return Response(200, payload=b"ok")

    def cc_protect(self, stub: ChaincodeStub, key: str, value: str, policy: str) -> Response:
        """Write ``key`` with ``policy`` as its endorsement policy; answer the policy it had before."""
        before = stub.get_state_validation_parameter(key) or b""
        stub.put_state(key, value.encode())
        stub.set_state_validation_parameter(key, policy.encode())
        return Response(200, payload=before)

    def cc_get(self, stub: ChaincodeStub, key: str) -> Response:
        value = stub.get_state(key)
        return Response(404, f"NotFound: {key}") if value is None else Response(200, payload=value)

    def cc_move(self, stub: ChaincodeStub, source: str, target: str) -> Response:
        value = stub.get_state(source)
        if value is None:
            return Response(404, f"NotFound: {source}")
        stub.del_state(source)
        stub.put_state(target, value)
        return Response(200)

    def cc_put_then_fail(self, stub: ChaincodeStub, key: str) -> Response:
        stub.put_state(key, b"never")
        stub.set_event("Never", b"")
        return Response(409, "Conflict: refused after writing")

    def cc_put_then_raise(self, stub: ChaincodeStub, key: str) -> Response:
        stub.put_state(key, b"never")
        raise RuntimeError(f"cannot store {key}")

    def cc_not_a_response(self, stub: ChaincodeStub) -> object:
        return "done"

    def cc_wait_get(self, stub: ChaincodeStub, key: str) -> Response:
        value = stub.get_state(key) or b""
        return Response(200, payload=value + b"@" + stub.tx_id.encode())

    def cc_many(self, stub: ChaincodeStub, count: str) -> Response:
        for i in range(int(count)):
            stub.put_state(f"k{i:04d}", str(i).encode())
        stub.del_state("gone")
        return Response(200)

    def cc_range(self, stub: ChaincodeStub, start: str, end: str) -> Response:
        items = [[kv.key, kv.value.decode()] for kv in stub.get_state_by_range(start, end)]
        return Response(200, payload=json.dumps(items).encode())

    def cc_first(self, stub: ChaincodeStub, start: str, end: str) -> Response:
        first = next(iter(stub.get_state_by_range(start, end)))
        return Response(200, payload=first.key.encode())

    def cc_page(self, stub: ChaincodeStub, start: str, end: str, size: str, bookmark: str) -> Response:
        page = stub.get_state_by_range_with_pagination(start, end, int(size), bookmark)
        body = {"keys": [kv.key for kv in page.items], "bookmark": page.bookmark, "count": page.fetched_records_count}
        return Response(200, payload=json.dumps(body).encode())

    def cc_by_owner(self, stub: ChaincodeStub, owner: str) -> Response:
        found = [split_composite_key(kv.key)[1] for kv in stub.get_state_by_partial_composite_key("asset", [owner])]
        return Response(200, payload=json.dumps(found).encode())

    def cc_owner_page(self, stub: ChaincodeStub, owner: str, size: str, bookmark: str) -> Response:
        page = stub.get_state_by_partial_composite_key_with_pagination("asset", [owner], int(size), bookmark)
        return Response(200, payload=json.dumps({"n": len(page.items), "bookmark": page.bookmark}).encode())

    def cc_history(self, stub: ChaincodeStub, key: str) -> Response:
        rows = [
            {"tx": m.tx_id, "value": m.value.decode(), "at": m.timestamp.isoformat(), "deleted": m.is_delete}
            for m in stub.get_history_for_key(key)
        ]
        return Response(200, payload=json.dumps(rows).encode())

    def cc_whoami(self, stub: ChaincodeStub) -> Response:
        body = {
            "tx": stub.tx_id,
            "channel": stub.channel_id,
            "mspid": stub.creator.mspid,
            "cert": stub.creator.cert_pem.decode(),
            "at": stub.timestamp.isoformat(),
            "transient": {k: v.decode() for k, v in stub.invocation.transient.items()},
        }
        return Response(200, payload=json.dumps(body).encode())
