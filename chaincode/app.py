"""The contract application the chaincode server serves (``python -m swarmfuse.chaincode``)."""

from __future__ import annotations

from swarmfuse.chaincode.contract import Contract, ContractRouter
from swarmfuse.chaincode.contracts.agreement import Agreement
from swarmfuse.chaincode.contracts.audit import Audit
from swarmfuse.chaincode.contracts.membership import Membership
from swarmfuse.chaincode.contracts.rounds import Rounds
from swarmfuse.chaincode.contracts.scoring import Scoring
from swarmfuse.chaincode.contracts.summaries import Summaries
from swarmfuse.chaincode.contracts.task import Task

CONTRACTS: tuple[type[Contract], ...] = (Task, Agreement, Membership, Summaries, Rounds, Scoring, Audit)


def create_chaincode() -> ContractRouter:
    """Every contract of the swarmfuse chaincode behind one router."""
    return ContractRouter([contract() for contract in CONTRACTS])
