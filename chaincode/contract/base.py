"""The contract base class: a plain class whose ``@transaction`` methods are its transactions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from swarmfuse.chaincode.contract.context import Context
    from swarmfuse.chaincode.contract.metadata import TransactionInfo


class Contract:
    """Subclass, set ``name`` (defaults to the class name) and decorate methods ``(self, ctx, ...)``.

    Hooks run around every transaction of the contract; raising a ``ContractError`` in them
    refuses the transaction.
    """

    name: ClassVar[str] = ""

    @classmethod
    def contract_name(cls) -> str:
        return cls.name or cls.__name__

    def prepare(self, ctx: Context, tx: TransactionInfo) -> None:
        """Called after arguments are parsed, before roles are checked: refuse transactions the
        contract's state does not allow yet (so that the refusal names the state, not a role)."""

    def roles(self, ctx: Context) -> set[str]:
        """The roles the creator holds, matched against ``@transaction(allow=...)``."""
        return set()

    def before_transaction(self, ctx: Context, tx: TransactionInfo) -> None:
        """Called after arguments are parsed and roles checked, before the function runs."""

    def after_transaction(self, ctx: Context, tx: TransactionInfo, result: Any) -> None:
        """Called after the function returned, before the result is encoded."""
