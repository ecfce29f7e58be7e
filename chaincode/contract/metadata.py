"""Transaction metadata derived from contract method signatures: names, parameters, types, rules."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter

from swarmfuse.chaincode.contract.base import Contract
from swarmfuse.chaincode.contract.decorators import SPEC_ATTRIBUTE, TransactionSpec
from swarmfuse.errors import SwarmfuseError

METADATA_FUNCTION = "org.hyperledger.fabric:GetMetadata"


class ContractDefinitionError(SwarmfuseError, TypeError):
    """A contract class does not follow the rules (raised when the router is built, never per call)."""


@dataclass(frozen=True)
class ParameterInfo:
    name: str
    annotation: Any

    @property
    def raw_string(self) -> bool:
        """``str`` parameters (also constrained ones) take the argument as is; the rest is JSON."""
        base = get_args(self.annotation)[0] if get_origin(self.annotation) is Annotated else self.annotation
        return base is str

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.annotation)

    def schema(self) -> dict[str, Any]:
        return self.adapter.json_schema()


@dataclass(frozen=True)
class TransactionInfo:
    contract: str
    name: str
    method: Callable[..., Any]
    spec: TransactionSpec
    parameters: tuple[ParameterInfo, ...]
    returns: Any
    doc: str

    @property
    def full_name(self) -> str:
        return f"{self.contract}:{self.name}"

    @property
    def raw_result(self) -> bool:
        """A ``bytes`` result is the payload as is; anything else is canonical JSON."""
        return self.returns is bytes

    def returns_schema(self) -> dict[str, Any] | None:
        if self.returns is None or self.returns is type(None):
            return None
        if self.raw_result:
            return {"type": "string", "format": "binary"}
        return TypeAdapter(self.returns).json_schema()

    def describe(self) -> dict[str, Any]:
        """Fabric-style metadata entry for this transaction, with our access rules and event."""
        entry: dict[str, Any] = {
            "name": self.name,
            "tag": ["evaluate" if self.spec.evaluate else "submit"],
            "parameters": [{"name": p.name, "schema": p.schema()} for p in self.parameters],
            "description": self.doc,
            "allow": list(self.spec.allow),
            "errors": list(self.spec.errors),
            "maxArgsBytes": self.spec.max_bytes,
        }
        if self.spec.event:
            entry["event"] = self.spec.event
        returns = self.returns_schema()
        if returns is not None:
            entry["returns"] = returns
        return entry


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def inspect_contract(contract: Contract) -> dict[str, TransactionInfo]:
    """Every ``@transaction`` method of ``contract``, keyed by its transaction name (PascalCase)."""
    contract_name = contract.contract_name()
    found: dict[str, TransactionInfo] = {}
    for attr in sorted(dir(type(contract))):
        method = getattr(contract, attr)
        spec = getattr(method, SPEC_ATTRIBUTE, None)
        if not isinstance(spec, TransactionSpec):
            continue
        hints = get_type_hints(method, include_extras=True)
        params = list(inspect.signature(method).parameters.values())
        if not params or params[0].name != "ctx":
            raise ContractDefinitionError(f"{contract_name}.{attr}: the first parameter must be 'ctx'")
        parameters = []
        for param in params[1:]:
            if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                raise ContractDefinitionError(f"{contract_name}.{attr}: parameter {param.name!r} must be positional")
            if param.name not in hints:
                raise ContractDefinitionError(f"{contract_name}.{attr}: parameter {param.name!r} needs a type hint")
            parameters.append(ParameterInfo(param.name, hints[param.name]))
        if "return" not in hints:
            raise ContractDefinitionError(f"{contract_name}.{attr}: the return type needs a type hint")
        name = _pascal(attr)
        found[name] = TransactionInfo(
            contract=contract_name,
            name=name,
            method=method,
            spec=spec,
            parameters=tuple(parameters),
            returns=hints["return"],
            doc=inspect.cleandoc(method.__doc__ or ""),
        )
    if not found:
        raise ContractDefinitionError(f"contract {contract_name} has no @transaction methods")
    return found


def describe_contracts(contracts: Sequence[tuple[Contract, dict[str, TransactionInfo]]]) -> dict[str, Any]:
    """The document ``org.hyperledger.fabric:GetMetadata`` returns."""
    return {
        "contracts": {
            contract.contract_name(): {
                "name": contract.contract_name(),
                "info": {
                    "title": contract.contract_name(),
                    "description": inspect.cleandoc(type(contract).__doc__ or ""),
                },
                "transactions": [tx.describe() for tx in transactions.values()],
            }
            for contract, transactions in contracts
        }
    }
