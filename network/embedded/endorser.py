"""One org's endorsing peer inside the engine: checks a signed proposal as Fabric's endorser does, runs
it on the org's own chaincode server against a transaction simulator, and signs the proposal
response with the org's peer identity (no endorsement when the chaincode answers an error)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2

from swarmfuse.network.embedded.chaincode import ChaincodeClient, ChaincodeError
from swarmfuse.network.embedded.simulator import TxSimulator
from swarmfuse.network.protocol.identity import ECDSASigner, digest
from swarmfuse.network.protocol.model import StateReader
from swarmfuse.network.protocol.proposals import CheckedProposal
from swarmfuse.network.protocol.txassembly import endorse_response

logger = logging.getLogger(__name__)

ERROR_THRESHOLD = 400  # chaincode statuses from here on are errors (Fabric's shim.ERRORTHRESHOLD)
SHIM_FAILURE = "transaction returned with failure:"  # how the driver reports a chaincode's ERROR message


@dataclass(frozen=True)
class PeerIdentity:
    """The org's peer signing identity: serialized ``SerializedIdentity`` and its signer."""

    mspid: str
    serialized: bytes
    signer: ECDSASigner

    def sign(self, message: bytes) -> bytes:
        return self.signer.sign(digest(message))


class Endorser:
    """Simulates proposals for one org through that org's chaincode server."""

    def __init__(self, org: str, identity: PeerIdentity, chaincode: ChaincodeClient, address: str) -> None:
        self.org = org
        self.identity = identity
        self.address = address
        self._chaincode = chaincode
        self._connect_lock = threading.Lock()

    @property
    def mspid(self) -> str:
        return self.identity.mspid

    def _ensure_connected(self) -> None:
        with self._connect_lock:
            if not self._chaincode.connected:
                self._chaincode.connect(timeout=10.0)

    def process(self, checked: CheckedProposal, reader: StateReader, chaincode_name: str, chaincode_version: str
                ) -> proposal_response_pb2.ProposalResponse:
        """Run the checked proposal over ``reader`` (one height); an endorsed response, or one carrying the
        chaincode's error only."""
        simulator = TxSimulator(reader, chaincode_name, checked.tx_id)
        try:
            self._ensure_connected()
            result = self._chaincode.execute(
                checked.channel, checked.tx_id, checked.signed_proposal, checked.input, simulator,
            )
        except ChaincodeError as exc:  # unreachable, timed out, or a transaction ID already running
            logger.warning("[%s] chaincode of %s failed: %s", checked.tx_id[:8], self.org, exc)
            return error_response(f"error in simulation: {exc}")
        response = result.response
        if response.status == 500 and response.message.startswith(SHIM_FAILURE):  # the chaincode sent ERROR
            return error_response(f"error in simulation: {response.message}")
        if response.status >= ERROR_THRESHOLD:
            return proposal_response_pb2.ProposalResponse(version=1, response=response)
        event = result.event.SerializeToString() if result.event is not None else b""
        return endorse_response(
            proposal=checked.proposal,
            response=response,
            results=simulator.read_write_set().SerializeToString(),
            event=event,
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode_name, version=chaincode_version),
            sign=self.identity.sign,
            endorser=self.identity.serialized,
        )

    def close(self) -> None:
        self._chaincode.close()


def error_response(message: str, status: int = 500) -> proposal_response_pb2.ProposalResponse:
    """A proposal response that carries only an error, as Fabric's endorser returns for a refused proposal."""
    return proposal_response_pb2.ProposalResponse(
        version=1, response=proposal_response_pb2.Response(status=status, message=message)
    )


def chaincode_input(proposal: proposal_pb2.Proposal) -> chaincode_pb2.ChaincodeInput:
    """The invocation's arguments from the proposal payload."""
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    return spec.chaincode_spec.input
