"""Why the task's chaincode (or the gateway before it) refused a call, as one exception type per status.

The chaincode answers a refused transaction with a status of its own (``chaincode/contract/errors.py``: 400 bad
request, 403 forbidden, 404 not found, 409 conflict); each endorsing peer reports it to the gateway as
``chaincode response <status>, <message>`` (Fabric's wording), which is where it is read from. A refusal every
peer gave with one status is that status's class; anything else (no peer reached, peers that disagree, a
transaction that failed to commit) is :class:`LedgerRefused` itself.
"""

from __future__ import annotations

import re

from swarmfuse.client.gateway import GatewayError
from swarmfuse.errors import SwarmfuseError

_STATUS = re.compile(r"chaincode response (\d{3})")


class LedgerRefused(SwarmfuseError):
    """A transaction or query was refused; ``message`` is what the chaincode or gateway said."""

    status: int | None = None

    def __init__(self, function: str, message: str) -> None:
        super().__init__(f"{function}: {message}")
        self.function = function
        self.message = message


class LedgerBadRequest(LedgerRefused):
    """Malformed or out-of-rule arguments (400)."""

    status = 400


class LedgerForbidden(LedgerRefused):
    """The caller may not do this (403)."""

    status = 403


class LedgerNotFound(LedgerRefused):
    """No such record (404)."""

    status = 404


class LedgerConflict(LedgerRefused):
    """The ledger's state does not allow it now: already done, wrong state, over a limit (409)."""

    status = 409


_BY_STATUS: dict[int, type[LedgerRefused]] = {c.status: c for c in (LedgerBadRequest, LedgerForbidden,  # type: ignore[misc]
                                                                    LedgerNotFound, LedgerConflict)}


def refusal(function: str, exc: GatewayError) -> LedgerRefused:
    """The typed refusal of a gateway error: the chaincode's status when every peer that answered gave the same."""
    details = getattr(exc, "details", None) or []
    message = "; ".join(d.message for d in details) or str(exc)
    statuses = {int(m.group(1)) for d in details if (m := _STATUS.search(d.message))}
    kind = _BY_STATUS.get(statuses.pop(), LedgerRefused) if len(statuses) == 1 else LedgerRefused
    return kind(function, message)
