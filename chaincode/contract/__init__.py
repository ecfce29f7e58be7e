"""Contract base: plain classes whose ``@transaction`` methods become chaincode transactions."""

from swarmfuse.chaincode.contract.base import Contract
from swarmfuse.chaincode.contract.context import Context
from swarmfuse.chaincode.contract.decorators import transaction
from swarmfuse.chaincode.contract.errors import BadRequest, ClockSkew, Conflict, ContractError, Forbidden, NotFound
from swarmfuse.chaincode.contract.router import ContractRouter

__all__ = [
    "BadRequest",
    "ClockSkew",
    "Conflict",
    "Context",
    "Contract",
    "ContractError",
    "ContractRouter",
    "Forbidden",
    "NotFound",
    "transaction",
]
