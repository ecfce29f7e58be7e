"""The contract base on the in-memory ledger: routing, argument parsing, errors, metadata, identity."""

from __future__ import annotations

import json
from typing import Annotated

import pytest
from cc_identities import DC1, DC1_AUDITOR_ATTR, DC1_AUDITOR_OU, DC1_BAD_CERT
from pydantic import BaseModel, Field

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, Contract, ContractRouter, transaction
from swarmfuse.chaincode.contract.metadata import METADATA_FUNCTION, ContractDefinitionError
from swarmfuse.chaincode.memstub import MemoryLedger


class Point(BaseModel):
    x: int
    y: int = Field(ge=0)


class Demo(Contract):
    """A contract exercising every argument kind."""

    @transaction(event="Stored")
    def store(self, ctx: Context, key: str, count: int, point: Point, tags: list[str]) -> dict[str, object]:
        """Write two keys, then maybe fail."""
        ctx.put(ctx.key("demo", key), {"count": count, "point": point, "tags": tags})
        ctx.put(ctx.key("demo", key, "copy"), {"count": count})
        ctx.emit({"key": key})
        if count == 13:
            raise Conflict("unlucky count")
        if count == 14:
            raise ZeroDivisionError("boom")
        return {"b": 2, "a": [point]}

    @transaction(evaluate=True)
    def who(self, ctx: Context) -> dict[str, object]:
        """Report the creator."""
        client = ctx.client
        return {
            "msp": client.mspid,
            "cn": client.common_name,
            "ous": list(client.organizational_units),
            "attrs": client.attributes,
            "id": client.id,
        }

    @transaction(evaluate=True)
    def scribble(self, ctx: Context) -> None:
        """An evaluate transaction that tries to write."""
        ctx.put("x", {"y": 1})

    @transaction(allow=("boss",))
    def guarded(self, ctx: Context, name: Annotated[str, Field(pattern=r"^[a-z]+$")]) -> str:
        """Needs a role nobody holds."""
        return name

    @transaction
    def check(self, ctx: Context, name: Annotated[str, Field(pattern=r"^[a-z]+$")]) -> str:
        """A constrained string parameter, taken without JSON quoting."""
        if name == "bad":
            raise BadRequest("name is bad")
        return name


@pytest.fixture
def cc() -> ContractRouter:
    return ContractRouter([Demo()])


def test_success_returns_canonical_json_commits_writes_and_event(cc: ContractRouter) -> None:
    ledger = MemoryLedger()
    response = ledger.submit(cc, DC1, "Demo:Store", "k", "3", '{"y": 1, "x": 2}', '["t"]')
    assert response.status == 200
    assert response.payload == b'{"a":[{"x":2,"y":1}],"b":2}'
    assert ledger.state[ctx_key("demo", "k")] == b'{"count":3,"point":{"x":2,"y":1},"tags":["t"]}'
    assert [(e.name, e.payload) for e in ledger.events] == [("Stored", b'{"key":"k"}')]


def ctx_key(*parts: str) -> str:
    return Context.key(*parts)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("k", "x", '{"x":1,"y":1}', "[]"), "argument 'count'"),
        (("k", "1", '{"x":1,"y":-1}', "[]"), "argument 'point': y: Input should be greater than or equal to 0"),
        (("k", "1", '{"x":1}', "[]"), "argument 'point': y"),
        (("k", "1", '{"x":1,"y":1}'), "takes 4 argument(s) (key, count, point, tags), got 3"),
        (("k", "1", '{"x":1,"y":1}', '"t"'), "argument 'tags'"),
    ],
)
def test_malformed_arguments_are_400_and_write_nothing(
    cc: ContractRouter, args: tuple[str, ...], fragment: str
) -> None:
    ledger = MemoryLedger()
    response = ledger.submit(cc, DC1, "Demo:Store", *args)
    assert response.status == 400
    assert response.message.startswith("BadRequest: ")
    assert fragment in response.message
    assert ledger.state == {} and ledger.events == []


def test_non_utf8_argument_is_400(cc: ContractRouter) -> None:
    response = MemoryLedger().submit(cc, DC1, "Demo:Check", b"\xff\xfe")
    assert (response.status, response.message) == (400, "BadRequest: argument 'name' is not valid UTF-8")


def test_constrained_string_is_taken_as_is_and_validated(cc: ContractRouter) -> None:
    ledger = MemoryLedger()
    assert ledger.submit(cc, DC1, "Demo:Check", "abc").payload == b'"abc"'
    bad = ledger.submit(cc, DC1, "Demo:Check", "ABC")
    assert bad.status == 400 and "argument 'name'" in bad.message


def test_typed_error_discards_writes_and_event(cc: ContractRouter) -> None:
    ledger = MemoryLedger()
    response = ledger.submit(cc, DC1, "Demo:Store", "k", "13", '{"x":1,"y":1}', "[]")
    assert (response.status, response.message) == (409, "Conflict: unlucky count")
    assert ledger.snapshot() == MemoryLedger().snapshot()


def test_unexpected_exception_is_500_with_clear_message(cc: ContractRouter) -> None:
    ledger = MemoryLedger()
    response = ledger.submit(cc, DC1, "Demo:Store", "k", "14", '{"x":1,"y":1}', "[]")
    assert response.status == 500
    assert response.message == "InternalError: Demo:Store failed: ZeroDivisionError: boom"
    assert ledger.state == {}


def test_evaluate_transaction_may_not_write(cc: ContractRouter) -> None:
    response = MemoryLedger().submit(cc, DC1, "Demo:Scribble")
    assert response.status == 500 and "evaluate transaction and may not write" in response.message


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        ("Store", "must have the form Contract:Function"),
        ("Nope:Store", "unknown contract 'Nope'; known: Demo"),
        ("Demo:Nope", "contract Demo has no transaction 'Nope'; known: Check, Guarded, Scribble, Store, Who"),
    ],
)
def test_unknown_functions_are_400(cc: ContractRouter, function: str, fragment: str) -> None:
    response = MemoryLedger().submit(cc, DC1, function)
    assert response.status == 400 and fragment in response.message


def test_roles_are_enforced_before_the_function(cc: ContractRouter) -> None:
    response = MemoryLedger().submit(cc, DC1, "Demo:Guarded", "abc")
    assert (response.status, response.message) == (403, "Forbidden: Demo:Guarded needs role boss; DC1MSP holds none")


def test_identity_exposes_ous_and_fabric_ca_attributes(cc: ContractRouter) -> None:
    ledger = MemoryLedger()
    ou = json.loads(ledger.evaluate(cc, DC1_AUDITOR_OU, "Demo:Who").payload)
    assert ou.pop("id") == "x509::CN=audit1,OU=auditor,OU=client,O=DC1MSP::CN=audit1,OU=auditor,OU=client,O=DC1MSP"
    assert ou == {"msp": "DC1MSP", "cn": "audit1", "ous": ["client", "auditor"], "attrs": {}}
    attr = json.loads(ledger.evaluate(cc, DC1_AUDITOR_ATTR, "Demo:Who").payload)
    assert attr["attrs"] == {"auditor": "true"} and attr["ous"] == ["client"]


def test_unreadable_certificate_is_403(cc: ContractRouter) -> None:
    response = MemoryLedger().evaluate(cc, DC1_BAD_CERT, "Demo:Who")
    assert response.status == 403 and "not a readable PEM X.509 certificate" in response.message


def test_metadata_lists_contracts_functions_and_schemas(cc: ContractRouter) -> None:
    response = MemoryLedger().evaluate(cc, DC1, METADATA_FUNCTION)
    meta = json.loads(response.payload)
    txs = {tx["name"]: tx for tx in meta["contracts"]["Demo"]["transactions"]}
    assert sorted(txs) == ["Check", "Guarded", "Scribble", "Store", "Who"]
    store = txs["Store"]
    assert store["tag"] == ["submit"] and store["event"] == "Stored"
    assert [p["name"] for p in store["parameters"]] == ["key", "count", "point", "tags"]
    assert store["parameters"][1]["schema"] == {"type": "integer"}
    assert store["parameters"][2]["schema"]["required"] == ["x", "y"]
    assert txs["Who"]["tag"] == ["evaluate"]
    assert txs["Guarded"]["allow"] == ["boss"]


def test_contract_definition_errors_are_caught_at_build_time() -> None:
    class NoCtx(Contract):
        @transaction
        def f(self, x: str) -> None: ...

    class NoHint(Contract):
        @transaction
        def f(self, ctx: Context, x) -> None: ...  # type: ignore[no-untyped-def]

    for contract in (NoCtx(), NoHint()):
        with pytest.raises(ContractDefinitionError):
            ContractRouter([contract])
    with pytest.raises(ContractDefinitionError, match="two contracts are named 'Demo'"):
        ContractRouter([Demo(), Demo()])
