"""An endorsed transaction: its result, signing, and (re)submitting the same signed envelope."""

from __future__ import annotations

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from swarmfuse.client.gateway.client import GatewayClient
from swarmfuse.client.gateway.commit import Commit
from swarmfuse.network.protocol.identity import digest


def _channel_id(envelope: common_pb2.Envelope) -> str:
    payload = common_pb2.Payload.FromString(envelope.payload)
    return common_pb2.ChannelHeader.FromString(payload.header.channel_header).channel_id


def chaincode_result(envelope: common_pb2.Envelope) -> bytes:
    """The chaincode's response payload inside an endorsed transaction envelope."""
    payload = common_pb2.Payload.FromString(envelope.payload)
    action = transaction_pb2.Transaction.FromString(payload.data).actions[0]
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        action_payload.action.proposal_response_payload
    )
    return proposal_pb2.ChaincodeAction.FromString(response_payload.extension).response.payload


class Transaction:
    """A prepared transaction; keep ``to_bytes()`` to resubmit the identical signed envelope later."""

    def __init__(self, client: GatewayClient, prepared: gw.PreparedTransaction) -> None:
        self._client = client
        self._prepared = prepared
        self.channel = _channel_id(prepared.envelope)

    @property
    def transaction_id(self) -> str:
        return self._prepared.transaction_id

    @property
    def result(self) -> bytes:
        return chaincode_result(self._prepared.envelope)

    def to_bytes(self) -> bytes:
        """The serialized ``gateway.PreparedTransaction`` (signature included once signed)."""
        return self._prepared.SerializeToString()

    def digest(self) -> bytes:
        return digest(self._prepared.envelope.payload)

    def set_signature(self, signature: bytes) -> None:
        self._prepared.envelope.signature = signature

    def submit(self) -> Commit:
        """Send the signed envelope to the orderers; calling it again resends the same envelope."""
        if not self._prepared.envelope.signature:
            self.set_signature(self._client.signer.sign(self.digest()))
        request = gw.SubmitRequest(
            transaction_id=self.transaction_id, channel_id=self.channel, prepared_transaction=self._prepared.envelope
        )
        self._client.submit(request)
        return Commit(self._client, self.channel, self.transaction_id)
