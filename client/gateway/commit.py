"""A submitted transaction: waiting for its commit status (signed request, signable offline)."""

from __future__ import annotations

from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.peer.transaction_pb2 import TxValidationCode

from swarmfuse.client.gateway.client import GatewayClient
from swarmfuse.client.gateway.errors import CommitError, MVCCReadConflictError
from swarmfuse.client.gateway.status import Status
from swarmfuse.network.protocol.identity import digest


class Commit:
    """Handle on a submitted transaction; ``status()`` blocks until the peer has committed it."""

    def __init__(self, client: GatewayClient, channel: str, tx_id: str) -> None:
        self._client = client
        self.transaction_id = tx_id
        request = gw.CommitStatusRequest(transaction_id=tx_id, channel_id=channel, identity=client.creator)
        self._signed = gw.SignedCommitStatusRequest(request=request.SerializeToString())

    def to_bytes(self) -> bytes:
        return self._signed.SerializeToString()

    def digest(self) -> bytes:
        return digest(self._signed.request)

    def set_signature(self, signature: bytes) -> None:
        self._signed.signature = signature

    def status(self) -> Status:
        """The validation code and block number (waits for the commit)."""
        if not self._signed.signature:
            self.set_signature(self._client.signer.sign(self.digest()))
        response = self._client.commit_status(self.transaction_id, self._signed)
        return Status(self.transaction_id, response.block_number, response.result)


def raise_unless_valid(status: Status) -> None:
    """Raise ``CommitError`` (``MVCCReadConflictError`` for read conflicts) unless the transaction is valid."""
    if status.successful:
        return
    error = MVCCReadConflictError if status.code == TxValidationCode.MVCC_READ_CONFLICT else CommitError
    raise error(status.transaction_id, status.code, status.code_name, status.block_number)
