"""The chaincode the shim serves: routes ``Contract:Function`` calls to contract methods."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from swarmfuse.chaincode.contract.base import Contract
from swarmfuse.chaincode.contract.canonical import canonical_json
from swarmfuse.chaincode.contract.clock import DEFAULT_MAX_CLOCK_SKEW, check_skew, endorser_now
from swarmfuse.chaincode.contract.context import Context
from swarmfuse.chaincode.contract.errors import BadRequest, ContractError, Forbidden
from swarmfuse.chaincode.contract.metadata import (
    METADATA_FUNCTION,
    ContractDefinitionError,
    TransactionInfo,
    describe_contracts,
    inspect_contract,
)
from swarmfuse.chaincode.stub import ChaincodeStub, Response

logger = logging.getLogger(__name__)


def _validation_summary(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "value"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


class ContractRouter:
    """Implements ``stub.Chaincode`` over a set of contracts.

    A refused transaction (a ``ContractError``) becomes a response with its status; anything else
    becomes a 500 naming the exception. The peer discards the writes of any failed transaction.

    Every contract transaction is refused with ``ClockSkew`` when its proposal timestamp is further
    than ``max_clock_skew`` from the endorser's clock (see :mod:`~swarmfuse.chaincode.contract.clock`).
    """

    def __init__(self, contracts: Sequence[Contract], *, max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW) -> None:
        if max_clock_skew <= timedelta(0):
            raise ValueError("the allowed clock skew must be positive")
        self.max_clock_skew = max_clock_skew
        self._contracts: dict[str, tuple[Contract, dict[str, TransactionInfo]]] = {}
        for contract in contracts:
            name = contract.contract_name()
            if name in self._contracts:
                raise ContractDefinitionError(f"two contracts are named {name!r}")
            self._contracts[name] = (contract, inspect_contract(contract))
        self.metadata = describe_contracts(list(self._contracts.values()))

    @property
    def contracts(self) -> list[tuple[Contract, dict[str, TransactionInfo]]]:
        return list(self._contracts.values())

    def invoke(self, stub: ChaincodeStub) -> Response:
        function = stub.invocation.function
        try:
            if function == METADATA_FUNCTION:
                return Response(200, payload=canonical_json(self.metadata))
            contract, tx = self._resolve(function)
            return self._run(stub, contract, tx)
        except ContractError as exc:
            logger.info("%s refused (tx %s): %s", function, stub.tx_id, exc.response_message)
            return Response(exc.status, exc.response_message)
        except Exception as exc:
            logger.exception("%s failed unexpectedly (tx %s)", function, stub.tx_id)
            return Response(500, f"InternalError: {function} failed: {type(exc).__name__}: {exc}")

    def _resolve(self, function: str) -> tuple[Contract, TransactionInfo]:
        contract_name, sep, tx_name = function.partition(":")
        if not sep:
            raise BadRequest(f"transaction name {function!r} must have the form Contract:Function")
        if contract_name not in self._contracts:
            raise BadRequest(f"unknown contract {contract_name!r}; known: {', '.join(sorted(self._contracts))}")
        contract, transactions = self._contracts[contract_name]
        if tx_name not in transactions:
            raise BadRequest(
                f"contract {contract_name} has no transaction {tx_name!r}; known: {', '.join(sorted(transactions))}"
            )
        return contract, transactions[tx_name]

    def _run(self, stub: ChaincodeStub, contract: Contract, tx: TransactionInfo) -> Response:
        endorser_time = endorser_now()
        check_skew(stub.timestamp, endorser_time, self.max_clock_skew)
        args = self._parse_args(tx, stub.invocation.args)
        ctx = Context(
            stub, function=tx.full_name, read_only=tx.spec.evaluate, event=tx.spec.event, endorser_time=endorser_time
        )
        contract.prepare(ctx, tx)
        if tx.spec.allow:
            held = contract.roles(ctx)
            if not held.intersection(tx.spec.allow):
                raise Forbidden(
                    f"{tx.full_name} needs role {' or '.join(tx.spec.allow)}; {ctx.client.mspid} holds "
                    f"{', '.join(sorted(held)) or 'none'}"
                )
        contract.before_transaction(ctx, tx)
        result = tx.method(ctx, *args)
        contract.after_transaction(ctx, tx, result)
        return Response(200, payload=self._encode(tx, result))

    @staticmethod
    def _parse_args(tx: TransactionInfo, raw_args: Sequence[bytes]) -> list[Any]:
        if len(raw_args) != len(tx.parameters):
            names = ", ".join(p.name for p in tx.parameters) or "none"
            raise BadRequest(f"{tx.full_name} takes {len(tx.parameters)} argument(s) ({names}), got {len(raw_args)}")
        size = sum(len(a) for a in raw_args)
        if size > tx.spec.max_bytes:
            raise BadRequest(f"{tx.full_name} arguments total {size} bytes, above the limit of {tx.spec.max_bytes}")
        parsed = []
        for param, raw in zip(tx.parameters, raw_args, strict=True):
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadRequest(f"argument {param.name!r} is not valid UTF-8") from exc
            try:
                parsed.append(
                    param.adapter.validate_python(text) if param.raw_string else param.adapter.validate_json(text)
                )
            except ValidationError as exc:
                raise BadRequest(f"argument {param.name!r}: {_validation_summary(exc)}") from exc
        return parsed

    @staticmethod
    def _encode(tx: TransactionInfo, result: Any) -> bytes:
        if tx.raw_result:
            return bytes(result)
        if result is None:
            return b""
        return canonical_json(result)
