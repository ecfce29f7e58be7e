"""gRPC failures as Fabric's gateway sends them: a status code, a message and ``gateway.ErrorDetail``
entries (address, MSP ID, message of each peer) in the ``grpc-status-details-bin`` trailer."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

import grpc
from fabric_protos.gateway.gateway_pb2 import ErrorDetail
from google.protobuf import any_pb2

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.status import RpcStatus

_DETAILS_KEY = "grpc-status-details-bin"


class RpcFailure(SwarmfuseError):
    """Raised inside a servicer; turned into the gRPC status by :func:`abort`."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[ErrorDetail] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)


def detail(address: str, mspid: str, message: str) -> ErrorDetail:
    return ErrorDetail(address=address, msp_id=mspid, message=message)


def abort(context: grpc.ServicerContext, failure: RpcFailure) -> NoReturn:
    """End the call with ``failure``'s code, message and details."""
    status = RpcStatus(code=failure.code.value[0], message=failure.message)
    for item in failure.details:
        packed = any_pb2.Any()
        packed.Pack(item)
        status.details.append(packed)
    context.set_trailing_metadata(((_DETAILS_KEY, status.SerializeToString()),))
    context.abort(failure.code, failure.message)


class StreamSlots:
    """How many long-lived calls of one kind an org endpoint serves at once.

    Each open call holds one of the endpoint's server threads while it waits (for blocks, or for its transaction
    to commit), so every kind is bounded and the endpoint has a thread for each bounded call plus its unary
    threads: the long-lived calls, however many, never take the threads of Endorse, Submit and Evaluate. A call
    beyond the bound is refused with RESOURCE_EXHAUSTED at once instead of queueing without bound.
    """

    def __init__(self, limit: int, calls: str) -> None:
        if limit < 1:
            raise ValueError("a stream limit must be at least 1")
        self.limit = limit
        self.calls = calls
        self._free = threading.BoundedSemaphore(limit)

    def take(self) -> None:
        """Take a slot for a call that starts, or refuse it with RESOURCE_EXHAUSTED; :meth:`release` when it ends."""
        if not self._free.acquire(blocking=False):
            raise RpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED,
                             f"this peer serves at most {self.limit} open {self.calls} calls at once; retry later")

    def release(self) -> None:
        self._free.release()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.take()
        try:
            yield
        finally:
            self.release()
