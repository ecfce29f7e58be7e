"""The contract application the chaincode server serves."""

from __future__ import annotations

from swarmfuse.chaincode.contract import ContractRouter
from swarmfuse.chaincode.contracts.audit import Audit
from swarmfuse.chaincode.contracts.membership import Membership
from swarmfuse.chaincode.contracts.rounds import Rounds
from swarmfuse.chaincode.contracts.sample import Sample
from swarmfuse.chaincode.contracts.summaries import Summaries
from swarmfuse.chaincode.contracts.task import Task


def create_chaincode() -> ContractRouter:
    """Every contract of the swarmfuse chaincode behind one router."""
    return ContractRouter([Sample(), Task(), Membership(), Summaries(), Rounds(), Audit()])
