"""Typed transaction errors: each maps to a response status and a ``"<Name>: <message>"`` message."""

from __future__ import annotations

from typing import ClassVar

from swarmfuse.errors import SwarmfuseError


class ContractError(SwarmfuseError):
    """A transaction refused on purpose; the router turns it into an error response."""

    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def response_message(self) -> str:
        return f"{type(self).__name__}: {self.message}"


class BadRequest(ContractError):
    """Malformed, missing or over-long input."""

    status = 400


class Forbidden(ContractError):
    """The caller may not perform this transaction."""

    status = 403


class NotFound(ContractError):
    """The named object does not exist."""

    status = 404


class Conflict(ContractError):
    """The object exists already, or is in the wrong state for this transaction."""

    status = 409


class ClockSkew(BadRequest):
    """The proposal's timestamp is too far from the endorser's clock (the client chose it)."""
