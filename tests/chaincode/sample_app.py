"""A test chaincode application: the production contracts plus ``Sample``, a plain key/value contract with
no roles that the network, gateway and benchmark runs use (and, with ``PutComposite``, the stand-in for a
colluding member's modified chaincode). Never in the production chaincode: chaincode
servers serve it only when started with ``CHAINCODE_APP=sample_app`` (and this folder on PYTHONPATH)."""

from __future__ import annotations

from swarmfuse.chaincode.app import CONTRACTS
from swarmfuse.chaincode.contract import BadRequest, Context, Contract, ContractRouter, NotFound, transaction
from swarmfuse.chaincode.stub import create_composite_key


def _check_key(key: str) -> None:
    if not key:
        raise BadRequest("key must not be empty")
    if "\x00" in key:
        raise BadRequest("key must not contain U+0000 (reserved for composite keys)")


class Sample(Contract):
    """Write and read plain values; no roles."""

    @transaction(event="Put", errors=("BadRequest: empty key or key with U+0000",))
    def put(self, ctx: Context, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        _check_key(key)
        ctx.stub.put_state(key, value.encode())
        ctx.emit({"key": key, "value": value})

    @transaction(event="Put", errors=("BadRequest: bad composite key",))
    def put_composite(self, ctx: Context, object_type: str, attributes: str, value: str) -> None:
        """Write (an empty ``value``: delete) the composite key ``object_type`` + ``attributes`` ("/"-separated),
        whatever contract owns it: what a member's own modified chaincode server can endorse."""
        try:
            key = create_composite_key(object_type, attributes.split("/"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        if value:
            ctx.stub.put_state(key, value.encode())
        else:
            ctx.stub.del_state(key)
        ctx.emit({"key": f"{object_type}/{attributes}", "value": value})

    @transaction(evaluate=True, errors=("BadRequest: empty key or key with U+0000", "NotFound: no value under key"))
    def get(self, ctx: Context, key: str) -> bytes:
        """The value stored under ``key``, as is."""
        _check_key(key)
        value = ctx.stub.get_state(key)
        if value is None:
            raise NotFound(f"no value under key {key!r}")
        return value


def create_chaincode() -> ContractRouter:
    """The production contracts and ``Sample``."""
    return ContractRouter([Sample(), *(contract() for contract in CONTRACTS)])
