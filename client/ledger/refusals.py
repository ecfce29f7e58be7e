"""Why the task's chaincode (or the gateway before it) refused a call, as one exception type per status.

The chaincode answers a refused transaction with the status of its error class (``chaincode/contract/errors.py``,
whose statuses these classes take); each endorsing peer reports it to the gateway as
``chaincode response <status>, <message>`` (Fabric's wording), which is where it is read from. A refusal every
peer gave with one status is that status's class; anything else (no peer reached, peers that disagree, a
transaction that failed to commit) is :class:`LedgerRefused` itself.
"""

from __future__ import annotations

import re
from typing import ClassVar

from swarmfuse.chaincode.contract import errors
from swarmfuse.client.gateway import GatewayError
from swarmfuse.errors import SwarmfuseError

_STATUS = re.compile(r"chaincode response (\d{3})")


class LedgerRefused(SwarmfuseError):
    """A transaction or query was refused; ``message`` is what the chaincode or gateway said."""

    status: ClassVar[int | None] = None

    def __init__(self, function: str, message: str) -> None:
        super().__init__(f"{function}: {message}")
        self.function = function
        self.message = message


class LedgerBadRequest(LedgerRefused):
    """Malformed or out-of-rule arguments (the chaincode's ``BadRequest``)."""

    status = errors.BadRequest.status


class LedgerForbidden(LedgerRefused):
    """The caller may not do this (the chaincode's ``Forbidden``)."""

    status = errors.Forbidden.status


class LedgerNotFound(LedgerRefused):
    """No such record (the chaincode's ``NotFound``)."""

    status = errors.NotFound.status


class LedgerConflict(LedgerRefused):
    """The ledger's state does not allow it now: already done, wrong state, over a limit (the chaincode's
    ``Conflict``)."""

    status = errors.Conflict.status


_BY_STATUS = {kind.status: kind for kind in (LedgerBadRequest, LedgerForbidden, LedgerNotFound, LedgerConflict)}


def refusal(function: str, exc: GatewayError) -> LedgerRefused:
    """The typed refusal of a gateway error: the chaincode's status when every peer that answered gave the same."""
    details = getattr(exc, "details", None) or []
    message = "; ".join(d.message for d in details) or str(exc)
    statuses = {int(m.group(1)) for d in details if (m := _STATUS.search(d.message))}
    kind = _BY_STATUS.get(statuses.pop(), LedgerRefused) if len(statuses) == 1 else LedgerRefused
    return kind(function, message)
