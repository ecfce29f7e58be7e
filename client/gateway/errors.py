"""One error type per stage; gRPC failures carry each peer's message from the status details."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fabric_protos.gateway.gateway_pb2 import ErrorDetail

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.status import STATUS_DETAILS_KEY, RpcStatus


@dataclass(frozen=True)
class PeerDetail:
    """What one peer (or orderer) said about a failed request."""

    address: str
    msp_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.msp_id}@{self.address}: {self.message}"


def decode_details(status_details: bytes) -> list[PeerDetail]:
    """Per-peer details from serialized ``google.rpc.Status`` bytes (``gateway.ErrorDetail`` entries)."""
    status = RpcStatus.FromString(status_details)
    details = []
    for item in status.details:
        detail = ErrorDetail()
        if item.Unpack(detail):
            details.append(PeerDetail(detail.address, detail.msp_id, detail.message))
    return details


class GatewayError(SwarmfuseError):
    """Base of every client error."""


class ConnectError(GatewayError):
    """The gateway peer cannot be reached, or its TLS certificate is not trusted."""


class RpcError(GatewayError):
    """A gateway call failed: gRPC code, message and each peer's detail."""

    stage = "gateway call"
    subject = "transaction "

    def __init__(self, tx_id: str, code: grpc.StatusCode, message: str, details: list[PeerDetail]) -> None:
        self.tx_id = tx_id
        self.code = code
        self.message = message
        self.details = details
        lines = [f"{self.stage} of {self.subject}{tx_id} failed ({code.name}): {message}"]
        lines += [f"  {detail}" for detail in details]
        super().__init__("\n".join(lines))

    @classmethod
    def from_grpc(cls, tx_id: str, error: grpc.RpcError) -> RpcError:
        details: list[PeerDetail] = []
        for key, value in error.trailing_metadata() or ():
            if key == STATUS_DETAILS_KEY:
                details = decode_details(value)
        return cls(tx_id, error.code(), error.details() or "", details)


class EndorseError(RpcError):
    stage = "endorsement"


class EvaluateError(RpcError):
    stage = "evaluation"


class SubmitError(RpcError):
    stage = "submit"


class CommitStatusError(RpcError):
    stage = "commit status request"


class EventsError(RpcError):
    """A chaincode-event or block stream failed; ``tx_id`` names the stream."""

    stage = "event stream"
    subject = ""


class CommitError(GatewayError):
    """The transaction was ordered but the peers marked it invalid."""

    def __init__(self, tx_id: str, code: int, code_name: str, block_number: int) -> None:
        self.tx_id = tx_id
        self.code = code
        self.code_name = code_name
        self.block_number = block_number
        super().__init__(f"transaction {tx_id} failed to commit in block {block_number}: {code_name} ({code})")


class MVCCReadConflictError(CommitError):
    """A key the transaction read was changed by an earlier transaction in the ordering."""


class DeliverError(GatewayError):
    """The Deliver service ended the block stream with a non-success status."""
