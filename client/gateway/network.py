"""A channel seen through the gateway: contracts, stored transactions, chaincode and block events."""

from __future__ import annotations

from fabric_protos.gateway import gateway_pb2 as gw

from swarmfuse.client.gateway.checkpoint import Checkpointer
from swarmfuse.client.gateway.client import GatewayClient
from swarmfuse.client.gateway.commit import Commit
from swarmfuse.client.gateway.contract import Contract
from swarmfuse.client.gateway.events import BlockEvents, ChaincodeEvents
from swarmfuse.client.gateway.proposal import Proposal
from swarmfuse.client.gateway.transaction import Transaction


class Network:
    """One channel: the entry point to its contracts and events."""

    def __init__(self, client: GatewayClient, channel: str) -> None:
        self._client = client
        self.name = channel

    def contract(self, chaincode: str, contract_name: str | None = None) -> Contract:
        return Contract(self._client, self.name, chaincode, contract_name)

    def load_proposal(self, data: bytes) -> Proposal:
        """A proposal from ``Proposal.to_bytes()`` (e.g. after signing it offline)."""
        return Proposal(self._client, self.name, gw.ProposedTransaction.FromString(data))

    def load_transaction(self, data: bytes) -> Transaction:
        """A kept transaction from ``Transaction.to_bytes()``; submitting it resends the same signed envelope."""
        return Transaction(self._client, gw.PreparedTransaction.FromString(data))

    def commit(self, transaction_id: str) -> Commit:
        """Commit-status handle for a transaction submitted earlier."""
        return Commit(self._client, self.name, transaction_id)

    def chaincode_events(self, chaincode: str, start_block: int | None = None,
                         checkpointer: Checkpointer | None = None) -> ChaincodeEvents:
        """Events of ``chaincode`` from ``start_block`` (default: the next commit), or after the checkpoint."""
        return ChaincodeEvents(self._client, self.name, chaincode, start_block, checkpointer)

    def block_events(self, start_block: int | None = None, checkpointer: Checkpointer | None = None,
                     filtered: bool = False) -> BlockEvents:
        """Blocks from ``start_block`` (default: the newest), or after the checkpoint; filtered blocks on request."""
        return BlockEvents(self._client, self.name, start_block, checkpointer, filtered)
