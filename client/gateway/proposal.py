"""Transaction proposals: building, the transaction ID, signing (online or offline), endorse and evaluate."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from swarmfuse.client.gateway.client import GatewayClient
from swarmfuse.client.gateway.transaction import Transaction
from swarmfuse.network.protocol.identity import digest, transaction_id

NONCE_BYTES = 24


def new_header(header_type: int, channel: str, creator: bytes, extension: bytes = b"",
               tls_cert_hash: bytes = b"") -> tuple[str, bytes]:
    """A fresh transaction ID and the ``common.Header`` bytes that carry it (new nonce and timestamp).

    ``tls_cert_hash`` is the SHA-256 of the client's TLS certificate: Deliver requests claim it so that a
    peer requiring mutual TLS can bind the request to the connection."""
    nonce = os.urandom(NONCE_BYTES)
    tx_id = transaction_id(nonce, creator)
    timestamp = Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=header_type, channel_id=channel, tx_id=tx_id, timestamp=timestamp, extension=extension,
        tls_cert_hash=tls_cert_hash,
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    return tx_id, header.SerializeToString()


@dataclass
class ProposalBuilder:
    """Builds the signed-proposal skeleton of one chaincode invocation."""

    channel: str
    chaincode: str
    transaction_name: str
    args: Sequence[str | bytes] = ()
    transient: Mapping[str, bytes] = field(default_factory=dict)
    endorsing_orgs: Sequence[str] = ()

    def build(self, creator: bytes) -> gw.ProposedTransaction:
        chaincode_id = chaincode_pb2.ChaincodeID(name=self.chaincode)
        extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString()
        tx_id, header = new_header(common_pb2.ENDORSER_TRANSACTION, self.channel, creator, extension)
        args = [self.transaction_name.encode()] + [a if isinstance(a, bytes) else a.encode() for a in self.args]
        spec = chaincode_pb2.ChaincodeInvocationSpec(
            chaincode_spec=chaincode_pb2.ChaincodeSpec(chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=args))
        )
        payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString(), TransientMap=dict(self.transient))
        proposal = proposal_pb2.Proposal(header=header, payload=payload.SerializeToString())
        return gw.ProposedTransaction(
            transaction_id=tx_id,
            proposal=proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString()),
            endorsing_organizations=list(self.endorsing_orgs),
        )


class Proposal:
    """A proposal ready to endorse or evaluate; its bytes can be kept and its digest signed offline."""

    def __init__(self, client: GatewayClient, channel: str, proposed: gw.ProposedTransaction) -> None:
        self._client = client
        self.channel = channel
        self._proposed = proposed

    @property
    def transaction_id(self) -> str:
        return self._proposed.transaction_id

    def to_bytes(self) -> bytes:
        """The serialized ``gateway.ProposedTransaction`` (with its signature, once signed)."""
        return self._proposed.SerializeToString()

    def digest(self) -> bytes:
        """SHA-256 of the proposal bytes: what the signer signs."""
        return digest(self._proposed.proposal.proposal_bytes)

    def set_signature(self, signature: bytes) -> None:
        """Attach a signature made elsewhere (offline signing)."""
        self._proposed.proposal.signature = signature

    def _signed(self) -> proposal_pb2.SignedProposal:
        if not self._proposed.proposal.signature:
            self.set_signature(self._client.signer.sign(self.digest()))
        return self._proposed.proposal

    def evaluate(self, target_orgs: Sequence[str] = ()) -> bytes:
        """Run the transaction on a peer without ordering it; the chaincode's result payload."""
        request = gw.EvaluateRequest(
            transaction_id=self.transaction_id, channel_id=self.channel,
            proposed_transaction=self._signed(), target_organizations=list(target_orgs),
        )
        return self._client.evaluate(request).result.payload

    def endorse(self) -> Transaction:
        """Collect the endorsements the policy needs; the prepared (unsigned) transaction."""
        request = gw.EndorseRequest(
            transaction_id=self.transaction_id, channel_id=self.channel, proposed_transaction=self._signed(),
            endorsing_organizations=list(self._proposed.endorsing_organizations),
        )
        prepared = self._client.endorse(request).prepared_transaction
        return Transaction(self._client, gw.PreparedTransaction(transaction_id=self.transaction_id, envelope=prepared))
