"""A channel seen through the gateway: contracts, stored transactions, chaincode and block events."""

from __future__ import annotations

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2 as gw
from fabric_protos.peer import events_pb2

from swarmfuse.client.gateway.checkpoint import Checkpointer
from swarmfuse.client.gateway.client import GatewayClient
from swarmfuse.client.gateway.commit import Commit
from swarmfuse.client.gateway.contract import Contract
from swarmfuse.client.gateway.events import (
    BlockEvents,
    BlockEventsRequest,
    ChaincodeEvents,
    ChaincodeEventsRequest,
    newest_block,
)
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

    def new_chaincode_events_request(self, chaincode: str, start_block: int | None = None,
                                     checkpointer: Checkpointer | None = None) -> ChaincodeEventsRequest:
        """A chaincode-events request to sign offline (``digest()``/``set_signature()``) before ``events()``."""
        return ChaincodeEventsRequest.build(self._client, self.name, chaincode, start_block, checkpointer)

    def load_chaincode_events_request(self, data: bytes, checkpointer: Checkpointer | None = None) -> ChaincodeEventsRequest:
        """A chaincode-events request from ``ChaincodeEventsRequest.to_bytes()`` (e.g. after signing it offline)."""
        return ChaincodeEventsRequest(self._client, gw.SignedChaincodeEventsRequest.FromString(data), checkpointer)

    def chaincode_events(self, chaincode: str, start_block: int | None = None,
                         checkpointer: Checkpointer | None = None) -> ChaincodeEvents:
        """Events of ``chaincode`` after the checkpoint when it has a position, else from ``start_block``, else
        from the next block to commit."""
        return self.new_chaincode_events_request(chaincode, start_block, checkpointer).events()

    def new_block_events_request(self, start_block: int | None = None, checkpointer: Checkpointer | None = None,
                                 filtered: bool = False) -> BlockEventsRequest:
        """A block-events (Deliver) request to sign offline (``digest()``/``set_signature()``) before ``events()``."""
        return BlockEventsRequest.build(self._client, self.name, start_block, checkpointer, filtered)

    def load_block_events_request(self, data: bytes, filtered: bool = False,
                                  checkpointer: Checkpointer | None = None) -> BlockEventsRequest:
        """A block-events request from ``BlockEventsRequest.to_bytes()`` (a signed or unsigned ``common.Envelope``)."""
        return BlockEventsRequest(self._client, common_pb2.Envelope.FromString(data), filtered, checkpointer)

    def block_events(self, start_block: int | None = None, checkpointer: Checkpointer | None = None,
                     filtered: bool = False) -> BlockEvents:
        """Blocks after the checkpoint when it has a position, else from ``start_block``, else from the next
        block to commit (not the newest committed one); filtered blocks on request. The stream has no end."""
        return self.new_block_events_request(start_block, checkpointer, filtered).events()

    def newest_block(self, filtered: bool = False) -> common_pb2.Block | events_pb2.FilteredBlock:
        """The newest committed block of the channel (its number + 1 is the channel's height)."""
        return newest_block(self._client, self.name, filtered)
