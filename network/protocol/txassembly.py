"""Endorsed transactions as Fabric builds them: the endorser's signed proposal response
(``protoutil.CreateProposalResponse``) and the gateway's unsigned transaction payload
(``internal/pkg/gateway`` ``prepareTransaction``, ``protoutil.CreateSignedTx``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.proposals import proposal_hash, tx_proposal_payload


class AssemblyError(SwarmfuseError, ValueError):
    """Proposal responses that cannot make a transaction (failed, mismatched or unendorsed)."""


def endorse_response(
    proposal: proposal_pb2.Proposal,
    response: proposal_response_pb2.Response,
    results: bytes,
    event: bytes,
    chaincode_id: chaincode_pb2.ChaincodeID,
    sign: Callable[[bytes], bytes],
    endorser: bytes,
) -> proposal_response_pb2.ProposalResponse:
    """A signed proposal response: ``ProposalResponsePayload{proposal_hash, extension = ChaincodeAction{results,
    events, response, chaincode_id}}`` with the endorser's signature over payload bytes ‖ serialized endorser.

    ``sign`` takes the message (it hashes with SHA-256 itself); ``endorser`` is the serialized identity.
    """
    action = proposal_pb2.ChaincodeAction(results=results, events=event, response=response, chaincode_id=chaincode_id)
    payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=proposal_hash(proposal), extension=action.SerializeToString()
    ).SerializeToString()
    return proposal_response_pb2.ProposalResponse(
        version=1,
        response=response,
        payload=payload,
        endorsement=proposal_response_pb2.Endorsement(endorser=endorser, signature=sign(payload + endorser)),
    )


def assemble_transaction(
    proposal: proposal_pb2.Proposal, responses: Sequence[proposal_response_pb2.ProposalResponse]
) -> common_pb2.Payload:
    """The transaction payload to sign: ``Payload{header = the proposal's header, data = Transaction{actions:
    [{header = signature header bytes, payload = ChaincodeActionPayload{proposal payload without transient data,
    ChaincodeEndorsedAction{proposal response payload, endorsements (one per endorser)}}}]}}``."""
    if not responses:
        raise AssemblyError("at least one proposal response is required")
    for response in responses:
        if not 200 <= response.response.status < 400:
            raise AssemblyError(f"proposal response was not successful, error code {response.response.status}, "
                                f"msg {response.response.message}")
        if response.payload != responses[0].payload:
            raise AssemblyError("ProposalResponsePayloads do not match")
    endorsements: list[proposal_response_pb2.Endorsement] = []
    endorsers: set[bytes] = set()
    for response in responses:
        if response.HasField("endorsement") and response.endorsement.endorser not in endorsers:
            endorsers.add(response.endorsement.endorser)
            endorsements.append(response.endorsement)
    if not endorsements:
        raise AssemblyError("no endorsements")
    header = common_pb2.Header.FromString(proposal.header)
    chaincode_payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=tx_proposal_payload(chaincode_payload),
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=responses[0].payload, endorsements=endorsements
        ),
    )
    transaction = transaction_pb2.Transaction(actions=[
        transaction_pb2.TransactionAction(header=header.signature_header, payload=action_payload.SerializeToString())
    ])
    return common_pb2.Payload(header=header, data=transaction.SerializeToString())
