"""gRPC failures as Fabric's gateway sends them: a status code, a message and ``gateway.ErrorDetail``
entries (address, MSP ID, message of each peer) in the ``grpc-status-details-bin`` trailer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import grpc
from fabric_protos.gateway.gateway_pb2 import ErrorDetail
from google.protobuf import any_pb2

from swarmfuse.client.gateway.errors import RpcStatus

_DETAILS_KEY = "grpc-status-details-bin"


class RpcFailure(Exception):
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
