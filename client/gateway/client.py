"""The gRPC side of a gateway: one channel, the Gateway and Deliver stubs, per-call deadlines and retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.gateway.gateway_pb2_grpc import GatewayStub
from fabric_protos.peer.events_pb2_grpc import DeliverStub

from swarmfuse.client.gateway import errors
from swarmfuse.client.gateway._retry import retrying
from swarmfuse.network.protocol.identity import Identity, Signer

T = TypeVar("T")


@dataclass(frozen=True)
class Timeouts:
    """Deadlines in seconds for each kind of call."""

    connect: float = 10.0
    endorse: float = 30.0
    evaluate: float = 30.0
    submit: float = 30.0
    commit_status: float = 60.0


class GatewayClient:
    """Signed calls to one gateway peer over a single gRPC channel, errors mapped to the stage's type."""

    def __init__(self, channel: grpc.Channel, identity: Identity, signer: Signer, timeouts: Timeouts,
                 tls_cert_hash: bytes = b"") -> None:
        self.channel = channel
        self.identity = identity
        self.signer = signer
        self.timeouts = timeouts
        # SHA-256 of the client TLS certificate (empty without one): Deliver requests claim it (TLS binding).
        self.tls_cert_hash = tls_cert_hash
        self.creator = identity.serialize()
        self._gateway = GatewayStub(channel)
        self._deliver = DeliverStub(channel)

    def endorse(self, request: gw.EndorseRequest) -> gw.EndorseResponse:
        return _mapped(errors.EndorseError, request.transaction_id,
                       lambda: self._gateway.Endorse(request, timeout=self.timeouts.endorse))

    def evaluate(self, request: gw.EvaluateRequest) -> gw.EvaluateResponse:
        return _mapped(errors.EvaluateError, request.transaction_id,
                       lambda: retrying(lambda: self._gateway.Evaluate(request, timeout=self.timeouts.evaluate)))

    def submit(self, request: gw.SubmitRequest) -> gw.SubmitResponse:
        # Retrying sends the very same signed envelope again: never a new endorsement.
        return _mapped(errors.SubmitError, request.transaction_id,
                       lambda: retrying(lambda: self._gateway.Submit(request, timeout=self.timeouts.submit)))

    def commit_status(self, tx_id: str, request: gw.SignedCommitStatusRequest) -> gw.CommitStatusResponse:
        return _mapped(errors.CommitStatusError, tx_id,
                       lambda: retrying(lambda: self._gateway.CommitStatus(request, timeout=self.timeouts.commit_status)))

    def chaincode_events(self, request: gw.SignedChaincodeEventsRequest) -> grpc.Call:
        return self._gateway.ChaincodeEvents(request)

    def deliver(self, envelope: common_pb2.Envelope, filtered: bool) -> grpc.Call:
        method = self._deliver.DeliverFiltered if filtered else self._deliver.Deliver
        return method(iter([envelope]))

    def close(self) -> None:
        self.channel.close()


def _mapped(error_type: type[errors.RpcError], tx_id: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except grpc.RpcError as exc:
        raise error_type.from_grpc(tx_id, exc) from exc


def stream_errors(tx_id: str, responses: Iterator[T]) -> Iterator[T]:
    """Re-raise a stream's gRPC failure (other than our own cancel) as an ``EventsError``."""
    try:
        yield from responses
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            raise errors.EventsError.from_grpc(tx_id, exc) from exc
