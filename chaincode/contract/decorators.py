"""The ``@transaction`` marker: what makes a contract method callable from the ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

DEFAULT_MAX_ARGS_BYTES = 32 * 1024
"""Upper bound on the summed size of one transaction's arguments, unless a transaction sets its own."""

F = TypeVar("F", bound=Callable[..., Any])

SPEC_ATTRIBUTE = "__swarmfuse_transaction__"


@dataclass(frozen=True)
class TransactionSpec:
    """What the decorator declares about one transaction.

    ``allow`` names the roles (as the contract's ``roles()`` reports them) of which the caller needs
    at least one; empty means any identity on the channel. ``event`` is the chaincode event the
    transaction emits on success. ``errors`` documents the refusals a caller may get.
    """

    evaluate: bool = False
    allow: tuple[str, ...] = ()
    event: str | None = None
    errors: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_ARGS_BYTES


@overload
def transaction(func: F) -> F: ...
@overload
def transaction(
    *,
    evaluate: bool = False,
    allow: tuple[str, ...] = (),
    event: str | None = None,
    errors: tuple[str, ...] = (),
    max_bytes: int = DEFAULT_MAX_ARGS_BYTES,
) -> Callable[[F], F]: ...


def transaction(
    func: F | None = None,
    *,
    evaluate: bool = False,
    allow: tuple[str, ...] = (),
    event: str | None = None,
    errors: tuple[str, ...] = (),
    max_bytes: int = DEFAULT_MAX_ARGS_BYTES,
) -> F | Callable[[F], F]:
    """Mark a contract method as a transaction (``evaluate=True``: a read-only query)."""
    spec = TransactionSpec(
        evaluate=evaluate, allow=tuple(allow), event=event, errors=tuple(errors), max_bytes=max_bytes
    )

    def mark(f: F) -> F:
        setattr(f, SPEC_ATTRIBUTE, spec)
        return f

    return mark(func) if func is not None else mark
