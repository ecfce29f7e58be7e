"""A chaincode (optionally one named contract in it): submit and evaluate transactions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from swarmfuse.client.gateway.client import GatewayClient
from swarmfuse.client.gateway.commit import raise_unless_valid
from swarmfuse.client.gateway.proposal import Proposal, ProposalBuilder


class Contract:
    """Transactions of ``chaincode`` on a channel; names are prefixed ``<contract_name>:`` when one is given."""

    def __init__(self, client: GatewayClient, channel: str, chaincode: str, contract_name: str | None = None) -> None:
        self._client = client
        self.channel = channel
        self.chaincode = chaincode
        self.contract_name = contract_name

    def _qualified(self, name: str) -> str:
        return f"{self.contract_name}:{name}" if self.contract_name else name

    def new_proposal(self, name: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                     endorsing_orgs: Sequence[str] | None = None) -> Proposal:
        """A proposal to endorse or evaluate step by step (its bytes and digest are available for offline signing)."""
        builder = ProposalBuilder(self.channel, self.chaincode, self._qualified(name), args,
                                  dict(transient or {}), list(endorsing_orgs or ()))
        return Proposal(self._client, self.channel, builder.build(self._client.creator))

    def evaluate_transaction(self, name: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                             endorsing_orgs: Sequence[str] | None = None) -> bytes:
        """Run a query on one peer (of ``endorsing_orgs`` when given); its result, nothing is ordered."""
        proposal = self.new_proposal(name, *args, transient=transient)
        return proposal.evaluate(list(endorsing_orgs or ()))

    def submit_transaction(self, name: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                           endorsing_orgs: Sequence[str] | None = None) -> bytes:
        """Endorse, submit and wait for a valid commit; the chaincode's result."""
        transaction = self.new_proposal(name, *args, transient=transient, endorsing_orgs=endorsing_orgs).endorse()
        raise_unless_valid(transaction.submit().status())
        return transaction.result
